"""Response bodies. Field names are the public contract (DESIGN: "HTTP API")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Error(BaseModel):
    error: str = Field(description="what was wrong, in one line")


class RangeViews(BaseModel):
    video_id: str
    start: str = Field(description="first minute counted, RFC 3339 UTC")
    end: str = Field(description="first minute not counted, RFC 3339 UTC")
    views: int = Field(description="batch_views + speed_views")
    batch_views: int = Field(description="views on final days (promoted batch)")
    speed_views: int = Field(description="views on provisional days (speed layer)")
    final: bool = Field(description="true iff every day of the range is final")
    provisional_days: list[str] = Field(description="UTC days (YYYY-MM-DD) answered by the speed layer")


class MinutePoint(BaseModel):
    minute: str
    views: int
    source: Literal["batch", "speed"]


class MinutelyViews(BaseModel):
    video_id: str
    points: list[MinutePoint] = Field(description="minutes with views, ascending")


class TopVideo(BaseModel):
    video_id: str
    views: int


class TopVideos(BaseModel):
    day: str
    videos: list[TopVideo] = Field(description="most viewed first; ties by video_id")


class LiveStatus(BaseModel):
    state: Literal["following", "starting", "behind", "unreachable", "off"] = Field(
        description="following: provisional days answered from partitions held in memory and kept "
                    "current by the counter's cell feed; otherwise they are read from Cassandra "
                    "(at most VIEWCOUNT_SERVING_SPEED_CACHE_S old)")
    detail: str
    lag_seconds: float
    partitions: int


class Health(BaseModel):
    status: Literal["ok"]
    cassandra: Literal["up"]
    live: LiveStatus


class ReconciliationCauses(BaseModel):
    late: int
    duplicate: int
    missing_in_speed: int
    missing_in_archive: int
    after_cutoff: int = 0  # summaries stored before the cause existed lack it
    other: int


class Divergence(BaseModel):
    video_id: str
    minute: str
    speed: int
    batch: int
    delta: int
    cause: str
    billable: bool


class ReconciliationSummary(BaseModel):
    day: str
    status: Literal["pass", "fail"]
    cells_compared: int
    cells_divergent: int
    billing_cells_divergent: int
    views_speed: int
    views_batch: int
    abs_delta_views: int
    money_at_risk: dict[str, str] | float = Field(
        description="currency (ISO 4217) -> the exact amount at risk, as a decimal string; "
                    "a bare number in summaries written before 2026-12-02")
    causes: ReconciliationCauses
    divergences: list[Divergence]
    report_uri: str | None


ERRORS = {
    400: {"model": Error, "description": "bad input"},
    429: {"model": Error, "description": "over the client's rate limit; retry after Retry-After seconds"},
    503: {"model": Error, "description": "Cassandra unavailable; retry"},
}
