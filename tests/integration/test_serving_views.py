"""Views over ranges, merged per day: a promoted day answers its batch version, every
other day the speed table, and the answer says which days are provisional."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from tests.support.serving import batch_of, generated_counts, iso, minute_of, new_video, total, write_batch, write_speed

pytestmark = pytest.mark.integration

DAYS = [dt.date(2031, 3, 10), dt.date(2031, 3, 11), dt.date(2031, 3, 12)]


@dataclass
class Known:
    video_id: str
    speed: dict  # day -> counts
    batch: dict  # day -> counts of version 1 (days 0 and 2 are promoted)


@pytest.fixture(scope="module")
def known(cassandra_session, served_promotions):
    video_id = new_video()
    speed = {day: generated_counts(seed=i, day=day) for i, day in enumerate(DAYS)}
    batch = {day: batch_of(speed[day], seed=10 + i) for i, day in enumerate(DAYS) if i != 1}
    for day in DAYS:
        write_speed(cassandra_session, video_id, speed[day])
    for day, counts in batch.items():
        write_batch(cassandra_session, video_id, 1, counts)
        served_promotions.promote(day, 1)
    return Known(video_id, speed, batch)


def views(api, video_id, start, end, path="views"):
    response = api.get(f"/v1/videos/{video_id}/{path}", params={"start": start, "end": end})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_range_inside_a_provisional_day_is_the_speed_count(api, known):
    day = DAYS[1]
    start, end = minute_of(day, 600), minute_of(day, 721)
    expected = total(known.speed[day], start, end)
    assert views(api, known.video_id, iso(start), iso(end)) == {
        "video_id": known.video_id, "start": iso(start), "end": iso(end), "views": expected,
        "batch_views": 0, "speed_views": expected, "final": False,
        "provisional_days": [day.isoformat()],
    }


def test_a_range_inside_a_final_day_is_the_batch_count(api, known):
    day = DAYS[0]
    start, end = minute_of(day, 0), minute_of(day, 1439)  # all but the day's last minute
    expected = total(known.batch[day], start, end)
    assert expected != total(known.speed[day], start, end)
    body = views(api, known.video_id, iso(start), iso(end))
    assert (body["views"], body["batch_views"], body["speed_views"]) == (expected, expected, 0)
    assert (body["final"], body["provisional_days"]) == (True, [])


def test_a_range_across_the_final_provisional_boundary_sums_each_day_from_its_source(api, known):
    start, end = minute_of(DAYS[0], 1200), minute_of(DAYS[2], 300)
    batch_views = total(known.batch[DAYS[0]], start) + total(known.batch[DAYS[2]], None, end)
    speed_views = total(known.speed[DAYS[1]])
    body = views(api, known.video_id, iso(start), iso(end))
    assert (body["views"], body["batch_views"], body["speed_views"]) == (
        batch_views + speed_views, batch_views, speed_views)
    assert (body["final"], body["provisional_days"]) == (False, [DAYS[1].isoformat()])


def test_whole_days_and_the_midnight_minutes(api, known):
    start, end = minute_of(DAYS[0], 1439), minute_of(DAYS[1], 1)  # 23:59 and 00:00 only
    body = views(api, known.video_id, iso(start), iso(end))
    last, first = known.batch[DAYS[0]][start], known.speed[DAYS[1]][minute_of(DAYS[1], 0)]
    assert (body["batch_views"], body["speed_views"]) == (last, first)
    all_days = views(api, known.video_id, "2031-03-10T00:00:00Z", "2031-03-13T00:00:00Z")
    assert all_days["views"] == (
        total(known.batch[DAYS[0]]) + total(known.speed[DAYS[1]]) + total(known.batch[DAYS[2]]))


def test_unaligned_times_count_the_minutes_that_start_inside_and_any_offset_is_accepted(api, known):
    day = DAYS[1]
    # 10:00:30Z .. 11:00:00.5Z: minutes 10:01 to 11:00 start inside it
    body = views(api, known.video_id, "2031-03-11T11:00:30+01:00", "2031-03-11T13:00:00.5+02:00")
    start, end = minute_of(day, 601), minute_of(day, 661)
    assert (body["start"], body["end"]) == ("2031-03-11T10:01:00Z", "2031-03-11T11:01:00Z")
    assert body["views"] == body["speed_views"] == total(known.speed[day], start, end)


def test_minutely_lists_minutes_with_views_and_their_source(api, known, cassandra_session, store, store_clock):
    start, end = minute_of(DAYS[1], 1380), minute_of(DAYS[2], 60)
    zero_minute = minute_of(DAYS[1], 1381)
    write_speed(cassandra_session, known.video_id, {zero_minute: 0})
    store_clock.skip(store.limits.speed_cache_s)  # the partition read by the tests before may be answered until then
    known.speed[DAYS[1]][zero_minute] = 0
    expected = [
        {"minute": iso(m), "views": v, "source": "speed"}
        for m, v in sorted(known.speed[DAYS[1]].items()) if start <= m and v > 0
    ] + [
        {"minute": iso(m), "views": v, "source": "batch"}
        for m, v in sorted(known.batch[DAYS[2]].items()) if m < end
    ]
    body = views(api, known.video_id, iso(start), iso(end), path="views/minutely")
    assert body == {"video_id": known.video_id, "points": expected}


def test_an_unknown_video_has_no_views_and_the_answer_still_says_which_days_are_final(api, known):
    body = views(api, new_video(), "2031-03-10T00:00:00Z", "2031-03-12T00:00:00Z")
    assert (body["views"], body["final"], body["provisional_days"]) == (0, False, ["2031-03-11"])
    minutely = views(api, "nobody", "2031-03-10T00:00:00Z", "2031-03-12T00:00:00Z", "views/minutely")
    assert minutely == {"video_id": "nobody", "points": []}


def test_a_final_day_without_rows_for_the_video_is_zero_not_the_speed_count(api, cassandra_session, served_promotions):
    """The promoted batch is authoritative: its silence is 0 views, never a fallback."""
    day = dt.date(2031, 4, 1)
    video_id = new_video()
    write_speed(cassandra_session, video_id, generated_counts(seed=5, day=day, minutes=20))
    served_promotions.promote(day, 7)
    body = views(api, video_id, "2031-04-01T00:00:00Z", "2031-04-02T00:00:00Z")
    assert (body["views"], body["batch_views"], body["speed_views"], body["final"]) == (0, 0, 0, True)


def test_promoting_another_version_or_rolling_back_is_seen_once_promotions_are_read_again(
    api, cassandra_session, store, served_promotions
):
    day = dt.date(2031, 4, 2)
    video_id = new_video()
    speed = generated_counts(seed=6, day=day, minutes=50)
    first, second = batch_of(speed, seed=7), batch_of(speed, seed=8)
    write_speed(cassandra_session, video_id, speed)
    write_batch(cassandra_session, video_id, 1, first)
    write_batch(cassandra_session, video_id, 2, second)
    whole_day = ("2031-04-02T00:00:00Z", "2031-04-03T00:00:00Z")

    served_promotions.promote(day, 1)
    assert views(api, video_id, *whole_day)["views"] == total(first)
    assert views(api, video_id, *whole_day)["views"] == total(first)  # now from the cache
    assert ("batch", video_id, day, 1) in store.cache._entries
    served_promotions.promote(day, 2)
    assert views(api, video_id, *whole_day)["views"] == total(second)
    served_promotions.unpromote(day)
    body = views(api, video_id, *whole_day)
    assert (body["views"], body["final"], body["provisional_days"]) == (
        total(speed), False, [day.isoformat()])
