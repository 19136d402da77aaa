"""``/v1/top``: a final day's most viewed videos, from its promoted batch version.

A day without a promoted batch has no exact ranking yet: 404, "not final yet" (the speed
layer's counts are not ranked, so a provisional top list is never answered).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from serving.dependencies import Store
from serving.errors import NotFound
from serving.limits import TOP_ROWS_STORED
from serving.models import ERRORS, Error, TopVideo, TopVideos
from serving.ranges import BadRequest, parse_day

router = APIRouter(prefix="/v1", tags=["top"])


@router.get(
    "/top", response_model=TopVideos,
    responses={**ERRORS, 404: {"model": Error, "description": "the day is not final yet"}},
)
async def top_videos(
    day: Annotated[str, Query(description="UTC day, YYYY-MM-DD", examples=["2026-11-25"],
                              json_schema_extra={"format": "date"})],
    store: Store,
    limit: Annotated[int | None, Query(
        description="how many videos (default 10; at most VIEWCOUNT_MAX_TOP_LIMIT, default 1000)",
        json_schema_extra={"minimum": 1, "maximum": TOP_ROWS_STORED})] = None,
) -> TopVideos:
    asked = parse_day(day)
    most = store.limits.max_top_limit
    limit = min(store.limits.default_top_limit, most) if limit is None else limit
    if not 1 <= limit <= most:
        raise BadRequest(f"limit must be between 1 and {most}")
    version = await store.promoted_version(asked)
    if version is None:
        raise NotFound(f"day {asked.isoformat()} is not final yet: no promoted batch")
    videos = (await store.top_videos(asked, version))[:limit]
    return TopVideos(
        day=asked.isoformat(),
        videos=[TopVideo(video_id=video_id, views=views) for video_id, views in videos],
    )
