"""The pure-Python oracle: every rule, its edges, and the count it derives."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from counting import reasons as R
from oracle import counts as oracle

TS = 1_795_564_800_000  # 2026-11-25T00:00:00Z, the Kafka record timestamp
GOOD = {"event_id": "e-1", "video_id": "vid_1-A", "event_time": "2026-11-24T23:59:30.250Z"}


def value_with(**fields) -> bytes:
    body = {**GOOD, **fields}
    return json.dumps({name: v for name, v in body.items() if v is not ...}).encode()


def reason_of(value: bytes | None, ts: int = TS) -> str | None:
    return oracle.classify(value, ts)[0]


def test_a_valid_event_is_parsed():
    reason, event = oracle.classify(value_with(user_id="u1", extra={"nested": [1, None]}), TS)
    assert reason is None
    assert (event.event_id, event.video_id, event.user_id) == ("e-1", "vid_1-A", "u1")
    assert event.event_time_ms == TS - 29_750
    assert event.minute_ms == TS - 60_000


@pytest.mark.parametrize("value, reason", [
    (b'{"a":"' + b"x" * 65_536 + b'"}', R.TOO_LARGE),
    (b"\xff" * 65_537, R.TOO_LARGE),
    (b'{"event_id":"\xff"}', R.INVALID_UTF8),
    (b'{"event_id":"\xed\xa0\x80"}', R.INVALID_UTF8),  # an encoded surrogate is not UTF-8
    (None, R.BAD_JSON), (b"", R.BAD_JSON), (b" ", R.BAD_JSON), (b"{", R.BAD_JSON),
    (b'{"a":NaN}', R.BAD_JSON), (b'{"a":Infinity}', R.BAD_JSON), (b'{"a":1,"a":1}', R.BAD_JSON),
    (b'{"a":{"b":1,"b":2}}', R.BAD_JSON), (b'{"a":"\tb"}', R.BAD_JSON), (b"{} {}", R.BAD_JSON),
    (b"{'a':1}", R.BAD_JSON), (b'{"a":01}', R.BAD_JSON), (b"\xef\xbb\xbf{}", R.BAD_JSON),
    (b"[" * 5000 + b"]" * 5000, R.BAD_JSON),
    (b"[]", R.NOT_OBJECT), (b"null", R.NOT_OBJECT), (b'"s"', R.NOT_OBJECT), (b" 1 ", R.NOT_OBJECT),
    (b"{}", R.MISSING_EVENT_ID),
])
def test_byte_and_document_rules(value, reason):
    assert reason_of(value) == reason


@pytest.mark.parametrize("field, value, reason", [
    ("event_id", ..., R.MISSING_EVENT_ID), ("event_id", None, R.MISSING_EVENT_ID),
    ("event_id", "", R.BAD_EVENT_ID), ("event_id", "e" * 65, R.BAD_EVENT_ID),
    ("event_id", 7, R.BAD_EVENT_ID), ("event_id", ["e"], R.BAD_EVENT_ID),
    ("video_id", ..., R.MISSING_VIDEO_ID), ("video_id", None, R.MISSING_VIDEO_ID),
    ("video_id", "", R.BAD_VIDEO_ID), ("video_id", "a" * 65, R.BAD_VIDEO_ID),
    ("video_id", "abc\n", R.BAD_VIDEO_ID), ("video_id", "a b", R.BAD_VIDEO_ID),
    ("video_id", "vidé", R.BAD_VIDEO_ID), ("video_id", 12, R.BAD_VIDEO_ID),
    ("event_time", ..., R.MISSING_EVENT_TIME), ("event_time", None, R.MISSING_EVENT_TIME),
    ("user_id", 5, R.BAD_USER_ID), ("user_id", {}, R.BAD_USER_ID), ("user_id", False, R.BAD_USER_ID),
])
def test_field_rules(field, value, reason):
    assert reason_of(value_with(**{field: value})) == reason


def test_event_id_length_counts_characters_not_bytes():
    assert reason_of(value_with(event_id="é" * 64)) is None
    assert reason_of(value_with(event_id="x" * 64)) is None


def test_user_id_may_be_absent_or_null():
    assert reason_of(value_with(user_id=None)) is None
    assert reason_of(value_with(user_id=...)) is None


def test_the_first_broken_rule_wins():
    assert reason_of(value_with(event_id=1, video_id=2, event_time=True, user_id=3)) == R.BAD_EVENT_ID
    assert reason_of(value_with(event_time="nope", user_id=3)) == R.BAD_EVENT_TIME


@pytest.mark.parametrize("text, epoch_ms", [
    ("2026-11-24T23:59:30Z", TS - 30_000),
    ("2026-11-24t23:59:30.5z", TS - 29_500),
    ("2026-11-24 23:59:30.123456789Z", TS - 29_877),
    ("2026-11-25T05:29:30+05:30", TS - 30_000),
    ("2026-11-24T15:59:30-08:00", TS - 30_000),
    ("2024-02-29T00:00:00Z", 1_709_164_800_000),
    ("0001-01-01T00:00:00Z", R.MIN_EPOCH_MILLIS),
    ("1969-12-31T23:59:59.999Z", -1),
])
def test_rfc3339_times(text, epoch_ms):
    reason, event = oracle.classify(value_with(event_time=text), TS)
    assert reason is None
    assert event.event_time_ms == epoch_ms


@pytest.mark.parametrize("event_time", [
    "2026-11-24T24:00:00Z", "2026-11-24T23:59:60Z", "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
    "2026-13-01T00:00:00Z", "0000-06-01T00:00:00Z", "2026-11-24T23:59:30", "2026-11-24",
    "2026-11-24T23:59:30.Z", "2026-11-24T23:59:30+24:00", "2026-11-24T23:59:30+05:60",
    " 2026-11-24T23:59:30Z", "2026-11-24T23:59:30Z ", "\u0662026-11-24T23:59:30Z", "2026-11-24T23:59:30ZZ",
    "0001-01-01T00:00:00+00:01", "1795564800000", "", 1.7e12, 1_795_564_800_000.0, True, [1], {"ms": 1},
    R.MAX_EPOCH_MILLIS + 1, R.MIN_EPOCH_MILLIS - 1, 10**50,
])
def test_bad_event_times(event_time):
    assert reason_of(value_with(event_time=event_time)) == R.BAD_EVENT_TIME


def test_integer_epoch_millis_over_the_whole_range():
    assert oracle.classify(value_with(event_time=TS), TS)[1].event_time_ms == TS
    assert reason_of(value_with(event_time=R.MIN_EPOCH_MILLIS)) is None
    assert reason_of(value_with(event_time=R.MAX_EPOCH_MILLIS), R.MAX_EPOCH_MILLIS) is None


def test_future_is_more_than_300_seconds_after_the_kafka_timestamp():
    limit = TS + R.MAX_FUTURE_SECONDS * 1000
    assert reason_of(value_with(event_time=limit)) is None
    assert reason_of(value_with(event_time=limit + 1)) == R.FUTURE_EVENT_TIME
    assert reason_of(value_with(event_time="2026-11-25T00:05:00.000001Z")) == R.FUTURE_EVENT_TIME
    assert reason_of(value_with(event_time="2026-11-25T00:05:00.000000999Z")) is None


def test_minutes_floor_in_utc_also_before_1970():
    assert oracle.classify(value_with(event_time=-1), TS)[1].minute_ms == -60_000


def test_views_count_distinct_event_ids_per_video_and_minute():
    records = [
        (value_with(event_id="a", event_time=TS - 1), TS),
        (value_with(event_id="a", event_time=TS - 1), TS + 5_000),  # a re-send
        (value_with(event_id="b", event_time=TS - 59_999), TS),
        (value_with(event_id="c", event_time=TS), TS),  # the next minute
        (value_with(event_id="d", video_id="other", event_time=TS), TS),
        (value_with(event_id="e", event_time=TS + 400_000), TS),  # future: never counted
        (b"not json", TS),
    ]
    counter = oracle.ViewCounter().add_all(records)
    assert counter.views() == {("vid_1-A", TS - 60_000): 2, ("vid_1-A", TS): 1, ("other", TS): 1}
    assert counter.invalid == {R.FUTURE_EVENT_TIME: 1, R.BAD_JSON: 1}
    assert counter.valid_records == 5


def test_importing_the_oracle_does_not_import_spark():
    code = "import sys, oracle.counts; print('pyspark' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
