"""Reasons about the record as a whole: size, UTF-8, JSON, object; priority; never throwing."""

from __future__ import annotations

import random
import re
import subprocess
import sys

from pyspark.sql import functions as F

from counting import reasons as R
from counting.events import parse_events
from tests.support.counting import assert_reasons, kafka_records, view


def test_reasons_are_in_priority_order_and_importable_without_spark():
    probe = "import sys, counting.reasons; print('pyspark' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "False"
    assert R.REASONS == (
        "too_large", "invalid_utf8", "bad_json", "not_object", "missing_event_id", "bad_event_id",
        "missing_video_id", "bad_video_id", "missing_event_time", "bad_event_time", "bad_user_id",
        "future_event_time",
    )  # fmt: skip


def test_patterns_are_meant_for_fullmatch():
    assert re.fullmatch(R.VIDEO_ID_PATTERN, "Ab_-09")
    assert not re.fullmatch(R.VIDEO_ID_PATTERN, "v1\n")
    assert re.fullmatch(R.RFC3339_PATTERN, "2026-11-25t13:45:12.5+05:30")
    assert not re.fullmatch(R.RFC3339_PATTERN, "2026-11-25T13:45:12Z\n")


def _padded_view(total_bytes: int) -> bytes:
    """A valid view whose value is exactly total_bytes long."""
    short = view(pad="")
    return view(pad="x" * (total_bytes - len(short)))


def test_too_large_is_over_64_kib_exactly(spark):
    assert len(_padded_view(65_536)) == 65_536
    assert_reasons(
        spark,
        [
            (_padded_view(65_536), None),
            (_padded_view(65_537), "too_large"),
            (b"\xff" * 65_537, "too_large"),
            (b"{" * 100_000, "too_large"),
        ],
    )


def test_invalid_utf8(spark):
    assert_reasons(
        spark,
        [
            (b'{"event_id":"\xc3\x28","video_id":"v1","event_time":0}', "invalid_utf8"),
            (b"\xff\xfe{}", "invalid_utf8"),
            (b'{"event_id":"\xc0\xaf"}', "invalid_utf8"),  # overlong encoding of '/'
            (b'{"event_id":"\xed\xa0\x80"}', "invalid_utf8"),  # a UTF-16 surrogate, UTF-8 encoded
            (b'{"event_id":"\xe2\x82"}', "invalid_utf8"),  # truncated sequence
            (view(event_id="é😀"), None),
        ],
    )


def test_bad_json(spark):
    good = b'{"event_id":"e1","video_id":"v1","event_time":0}'
    assert_reasons(
        spark,
        [
            (None, "bad_json"),
            (b"", "bad_json"),
            (b"   ", "bad_json"),
            (b'{"event_id":"e1","video_id":"v1","event_time":NaN}', "bad_json"),
            (b'{"event_id":"e1","video_id":"v1","event_time":Infinity}', "bad_json"),
            (b'{"event_id":"e1","event_id":"e2","video_id":"v1","event_time":0}', "bad_json"),
            (b"{'event_id':'e1','video_id':'v1','event_time':0}", "bad_json"),
            (b'{"event_id":"e\x01","video_id":"v1","event_time":0}', "bad_json"),
            (b'{"event_id":"e1","video_id":"v1","event_time":0,}', "bad_json"),
            (b'{event_id:"e1"}', "bad_json"),
            (b"\xef\xbb\xbf" + good, "bad_json"),
            (good + b" x", "bad_json"),
            (good + b"{}", "bad_json"),
            (good + b"] [", "bad_json"),
            (good + b"} {", "bad_json"),
            (good + b', "x"', "bad_json"),
            (good + b', "x": 1', "bad_json"),
            (good + b" // comment", "bad_json"),
            (b"[" * 1_000 + b"]" * 1_000, "bad_json"),  # deeper than 999 levels
            (b" \n" + good + b"\r\n\t ", None),
        ],
    )


def test_not_object(spark):
    assert_reasons(
        spark,
        [
            (b"null", "not_object"),
            (b"[]", "not_object"),
            (b"[" + view() + b"]", "not_object"),
            (b'"e1"', "not_object"),
            (b"1", "not_object"),
            (b"true", "not_object"),
            (b"{}", "missing_event_id"),
        ],
    )


def test_the_first_broken_rule_wins(spark):
    assert_reasons(
        spark,
        [
            (b"\xff" * 65_537, "too_large"),
            (b"{\xff", "invalid_utf8"),
            (b"{", "bad_json"),
            (b"[1", "bad_json"),
            (view(event_id=None, video_id="bad id", event_time="never", user_id=5), "missing_event_id"),
            (view(event_id="", video_id=None, event_time="never"), "bad_event_id"),
            (view(video_id=None, event_time="never", user_id=5), "missing_video_id"),
            (view(video_id="bad id", event_time=None, user_id=5), "bad_video_id"),
            (view(event_time=None, user_id=5), "missing_event_time"),
            (view(event_time="never", user_id=5), "bad_event_time"),
            (view(event_time="2999-01-01T00:00:00Z", user_id=5), "bad_user_id"),
            (view(event_time="2999-01-01T00:00:00Z"), "future_event_time"),
        ],
    )


def test_poison_records_become_invalid_rows_never_errors(spark):
    rng = random.Random(20261125)
    poison = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(300)]
    numbers = (b"1e400", b"-1e400", b"9" * 400, b"-9223372036854775809", b"9223372036854775808", b"1.0")
    poison += [b'{"event_id":"e1","video_id":"v1","event_time":' + number + b"}" for number in numbers]
    poison += [view(event_time="9999-12-31T23:59:59.999999999-23:59"), view(event_time="0000-01-01T00:00:00Z")]
    poison += [b'{"event_time":"' + b"9" * 60_000 + b'"}', b"[" * 32_768 + b"]" * 32_768, b'"' + b"\\u" * 30_000]
    parsed = kafka_records(spark, poison).transform(parse_events())

    reasons = {row.reason for row in parsed.groupBy("reason").count().collect()}

    assert None not in reasons
    assert reasons <= set(R.REASONS)
    assert parsed.filter(F.col("value").isNull()).count() == 0

