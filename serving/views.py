"""``/v1/videos/{video_id}/views``: a video's views over a range, merged per UTC day.

Each day of the range comes whole from one source: the promoted batch version when the
day has one (final), else the speed table (provisional, listed in ``provisional_days``).

The answers are built once, as JSON bytes, by ``range_views_body`` and
``minutely_views_body``: the routes below answer them (and declare the models, for the
schema), and ``serving.fast_path`` answers them without FastAPI's routing, dependency
injection and response validation, which cost the API more CPU than the answer itself.
An answer is kept, encoded, until a promotion or a pushed cell of the video changes what
it was built from (``serving.answers``): most requests repeat an earlier one.
"""

from __future__ import annotations

import functools
from typing import Annotated

import msgspec
from fastapi import APIRouter, Path, Query, Response

from serving.dependencies import Store
from serving.live import LiveRows
from serving.models import ERRORS, MinutelyViews, RangeViews
from serving.ranges import VIDEO_ID, DayWindow, check_video_id, format_time, minute_range
from serving.store import DayMinutes, ViewStore

router = APIRouter(prefix="/v1/videos", tags=["views"])
JSON = "application/json"
RANGES_KEPT = 4096  # checked ranges kept (_counted): well under a kilobyte each
encode = msgspec.json.Encoder().encode

# The constraints are documented in the schema (json_schema_extra) but checked by
# serving.ranges, whose errors say what a client must fix; "end after start, at most
# VIEWCOUNT_MAX_RANGE_DAYS" is beyond what OpenAPI can say.
VideoId = Annotated[str, Path(
    description="1 to 64 characters of [A-Za-z0-9_-]", examples=["video-42"],
    json_schema_extra={"pattern": f"^{VIDEO_ID.pattern}$", "minLength": 1, "maxLength": 64})]
Start = Annotated[str, Query(
    description="RFC 3339, any offset; minutes starting at or after it count",
    examples=["2026-11-25T00:00:00Z"], json_schema_extra={"format": "date-time"})]
End = Annotated[str, Query(
    description="RFC 3339, any offset; minutes starting before it count; "
    "at most VIEWCOUNT_MAX_RANGE_DAYS (default 31) days after start",
    examples=["2026-11-26T00:00:00Z"], json_schema_extra={"format": "date-time"})]


@functools.lru_cache(maxsize=RANGES_KEPT)
def _counted(start: str, end: str, max_days: int) -> tuple[str, str, tuple[DayWindow, ...]]:
    """The range counted, as the answer says it (``format_time``), and its UTC days, checked
    (``serving.ranges``: pure functions of the text) once per distinct (start, end) while it
    is among the ``RANGES_KEPT`` last asked: clients ask a few ranges over and over (whole
    days, a dashboard's window), and checking one cost a request more than its answer. A
    bad range raises every time."""
    counted = minute_range(start, end, max_days)
    return format_time(counted.start), format_time(counted.end), tuple(counted.days())


def _range_views(video_id: str, counted_start: str, counted_end: str, days: list[DayMinutes]) -> bytes:
    """A ``RangeViews`` (its fields in its order) as JSON."""
    batch_views = speed_views = 0
    provisional = []
    for day in days:
        if day.final:
            batch_views += day.views
        else:
            speed_views += day.views
            provisional.append(day.day.isoformat())
    return encode({
        "video_id": video_id,
        "start": counted_start,
        "end": counted_end,
        "views": batch_views + speed_views,
        "batch_views": batch_views,
        "speed_views": speed_views,
        "final": not provisional,
        "provisional_days": provisional,
    })


def _minutely_views(video_id: str, _start: str, _end: str, days: list[DayMinutes]) -> bytes:
    """A ``MinutelyViews`` as JSON."""
    # msgspec writes an aware UTC datetime as format_time does (whole seconds, "Z"), in a
    # fraction of its time: a day's minutes cost a few microseconds each, not hundreds.
    points = [
        {"minute": minute, "views": views, "source": day.source}
        for day in days
        for minute, views in day.minutes
        if views > 0
    ]
    return encode({"video_id": video_id, "points": points})


async def _answer(store: ViewStore, route: str, build, video_id: str, start: str, end: str) -> bytes:
    """The route's answer: kept encoded (``serving.answers``) while nothing it was built
    from changed, else built from the store's days and kept when each provisional day came
    from a partition the worker holds current. Raises ``BadRequest`` or ``StoreUnavailable``."""
    check_video_id(video_id)  # bad input is a 400 whether or not Cassandra answers
    counted_start, counted_end, windows = _counted(start, end, store.limits.max_range_days)
    promoted = await store.promotions()  # one snapshot for the whole request
    key = (route, video_id, start, end)
    body = store.answers.get(key, promoted)
    if body is not None:
        return body
    days = await store.day_minutes(video_id, list(windows), promoted)
    body = build(video_id, counted_start, counted_end, days)
    held = [(video_id, day.day) for day in days if not day.final]
    if all(isinstance(day.rows, LiveRows) and store.live.holds((video_id, day.day), day.rows.held)
           for day in days if not day.final):
        store.answers.put(key, body, promoted, held)  # no await since the days were read: still current
    return body


async def range_views_body(store: ViewStore, video_id: str, start: str, end: str) -> bytes:
    """A ``RangeViews`` as JSON; raises ``BadRequest`` or ``StoreUnavailable``."""
    return await _answer(store, "views", _range_views, video_id, start, end)


async def minutely_views_body(store: ViewStore, video_id: str, start: str, end: str) -> bytes:
    """A ``MinutelyViews`` as JSON; raises ``BadRequest`` or ``StoreUnavailable``."""
    return await _answer(store, "views/minutely", _minutely_views, video_id, start, end)


@router.get("/{video_id}/views", response_model=RangeViews, responses=ERRORS)
async def range_views(video_id: VideoId, start: Start, end: End, store: Store) -> Response:
    return Response(await range_views_body(store, video_id, start, end), media_type=JSON)


@router.get("/{video_id}/views/minutely", response_model=MinutelyViews, responses=ERRORS)
async def minutely_views(video_id: VideoId, start: Start, end: End, store: Store) -> Response:
    return Response(await minutely_views_body(store, video_id, start, end), media_type=JSON)
