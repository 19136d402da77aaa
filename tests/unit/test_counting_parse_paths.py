"""parse_events takes shortcuts for speed; at their edges it must still agree with the oracle.

- A value in the canonical layout (counting.events.CANONICAL_REGEX) has its fields read by
  position instead of by the JSON parser; values on both sides of that layout agree with
  the oracle field by field.

- A value that is one flat object ('{', no other '}', '}' last) is parsed once; any other
  value takes the wrapped parse that rejects trailing text. The cases sit on both sides.
- Deeply nested values must become reasons, not a StackOverflowError that fails the job.
  The rows come from an RDD so that they are parsed on an executor thread, as in a stream.
"""

from __future__ import annotations

from pyspark.sql import functions as F

from counting.events import CANONICAL_REGEX, SHALLOW_VALUE_BYTES, parse_events
from tests.support.counting import KAFKA_SCHEMA, KAFKA_TIME, view
from oracle import counts as oracle


def _padded_view(total_bytes: int) -> bytes:
    short = view(pad="")
    return view(pad="x" * (total_bytes - len(short)))


def _nested_object(levels: int, inner: bytes = b"1") -> bytes:
    return b'{"a":' * levels + inner + b"}" * levels


EDGE_VALUES = [
    view(),
    b" " + view(),
    view() + b"\n",
    view(user_id="}"),
    view(user_id="a}b") + b" x",
    view(extra={"nested": 1}),
    view(extra={"nested": 1}) + b"}",
    view() + b"}",
    view() + b" }",
    view() + b"]",
    b"{}",
    b"{}}",
    b"{ }",
    b"{",
    b"}",
    b"{" + view()[1:-1],
    _padded_view(SHALLOW_VALUE_BYTES),
    _padded_view(SHALLOW_VALUE_BYTES + 1),
    _padded_view(SHALLOW_VALUE_BYTES) + b"}",
    _nested_object(998),
    _nested_object(999),
    _nested_object(1_000),
    b'{"event_id":' + _nested_object(997) + b"}",
    b'{"event_id":"e","video_id":"v","event_time":0,"user_id":' + _nested_object(997) + b"}",
    b'{"event_id":"e","video_id":"v","event_time":0,"user_id":' + b"[" * 997 + b"]" * 997 + b"}",
    b'{"event_id":"e","video_id":"v","event_time":' + b'[{"a":' * 498 + b"1" + b"}]" * 498 + b"}",
]


def test_shortcut_edges_and_deep_nesting_agree_with_the_oracle(spark):
    rows = [(b"k", value, "views", 0, offset, KAFKA_TIME) for offset, value in enumerate(EDGE_VALUES)]
    records = spark.createDataFrame(spark.sparkContext.parallelize(rows, 2), KAFKA_SCHEMA)

    parsed = records.transform(parse_events()).selectExpr("offset", "reason", "unix_micros(event_time) AS micros")
    spark_says = {row.offset: (row.reason, None if row.reason else row.micros) for row in parsed.collect()}

    kafka_ms = int(KAFKA_TIME.timestamp() * 1000)
    expected = {}
    for offset, value in enumerate(EDGE_VALUES):
        reason, event = oracle.classify(value, kafka_ms)
        expected[offset] = (reason, None if event is None else event.event_time_us)
    assert spark_says == expected


def _canonical(event_id: str = "e1", video_id: str = "v1", event_time: str = '"2026-11-25T13:45:12.345Z"',
               user: str = ',"user_id":"u1"') -> bytes:
    return f'{{"event_id":"{event_id}","video_id":"{video_id}","event_time":{event_time}{user}}}'.encode()


KAFKA_MS = int(KAFKA_TIME.timestamp() * 1000)
# In the canonical layout: the fields are read by position; every rule still applies.
CANONICAL_VALUES = [
    _canonical(),
    _canonical(event_time=str(KAFKA_MS - 5_000)),
    _canonical(event_time=str(KAFKA_MS - 5_000), user=',"user_id":null'),
    _canonical(event_time=str(KAFKA_MS - 5_000), user=""),
    _canonical(user=',"user_id":null'),
    _canonical(user=""),
    _canonical(user=',"user_id":""'),
    _canonical(event_time='"2026-11-25T19:15:12.345678+05:30"'),
    _canonical(event_time='"2026-11-25 13:45:12z"'),
    _canonical(event_time="999999999999999999"),  # 18 digits: an integer, out of range
    _canonical(event_time=str(KAFKA_MS + 300_000)),  # exactly the allowance: valid
    _canonical(event_time=str(KAFKA_MS + 300_001)),  # future
    _canonical(event_time='"2026-02-30T10:00:00Z"'),
    _canonical(event_time='"not a time"'),
    _canonical(event_time='""'),
    _canonical(event_id=""),
    _canonical(event_id="é" * 64),  # 64 characters, 128 bytes: valid
    _canonical(event_id="é" * 65),
    _canonical(event_id="x\x7fy"),  # DEL is no control character to JSON
    _canonical(video_id=""),
    _canonical(video_id="bad id"),
    _canonical(video_id="v" * 65),
    _canonical(video_id="v1", user=',"user_id":"}"'),
    _canonical(event_id=":", video_id=",", user=',"user_id":":"'),
    _canonical(event_id="user_id", video_id="event_time", user=',"user_id":"user_id"'),
]
# Just outside it: the JSON parser reads them, and the answers are the same.
OTHER_LAYOUT_VALUES = [
    _canonical(event_time="1234567890123456789"),  # 19 digits
    _canonical(event_time="0"),
    _canonical(event_time="01796169601782"),  # a leading zero is not JSON
    _canonical(event_time="-5000"),
    _canonical(event_time="1.5e12"),
    _canonical(video_id="\\u00761"),  # an escape: the parsed video_id is "v1"
    _canonical(event_id="tab\there"),  # a raw control character: not JSON
    _canonical(user=',"user_id":5'),
    _canonical(user=',"user_id":"u1","extra":1'),
    _canonical(user=',"user_id":"u1","user_id":"u2"'),
    _canonical(user=',"user_id":"u1"') + b" ",
    b" " + _canonical(),
    _canonical().replace(b":", b": ", 1),
    b'{"video_id":"v1","event_id":"e1","event_time":"2026-11-25T13:45:12.345Z"}',
    _canonical(event_time='"2026-11-25T13:45:12.345Z"', user=',"user_id":null}'),
    _canonical(event_id="e").replace(b'"e"', b'"e\xff"'),  # not UTF-8
]


def test_the_canonical_layout_is_read_by_position_and_agrees_with_the_oracle(spark):
    values = CANONICAL_VALUES + OTHER_LAYOUT_VALUES
    rows = [(b"k", value, "views", 0, offset, KAFKA_TIME) for offset, value in enumerate(values)]
    records = spark.createDataFrame(spark.sparkContext.parallelize(rows, 2), KAFKA_SCHEMA)

    # The layout's regex takes exactly the first list (else the shortcut is never exercised);
    # a text that is not UTF-8 never reaches it.
    text = F.col("value").cast("string")
    layout = records.select("offset", (F.is_valid_utf8(text) & F.regexp_like(text, F.lit(CANONICAL_REGEX))).alias("canonical"))
    assert sorted(row.offset for row in layout.collect() if row.canonical) == list(range(len(CANONICAL_VALUES)))

    parsed = records.transform(parse_events()).selectExpr(
        "offset", "reason", "event_id", "video_id", "user_id", "unix_micros(event_time) AS micros")
    spark_says = {row.offset: (row.reason, None) if row.reason else
                  (None, (row.event_id, row.video_id, row.user_id, row.micros)) for row in parsed.collect()}
    expected = {}
    for offset, value in enumerate(values):
        reason, event = oracle.classify(value, KAFKA_MS)
        expected[offset] = (reason, None if event is None else
                            (event.event_id, event.video_id, event.user_id, event.event_time_us))
    assert spark_says == expected
    reasons = {reason for reason, _ in list(spark_says.values())[:len(CANONICAL_VALUES)]}
    assert reasons >= {None, "bad_event_id", "bad_video_id", "bad_event_time", "future_event_time"}
