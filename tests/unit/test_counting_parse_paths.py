"""parse_events takes shortcuts for speed; at their edges it must still agree with the oracle.

- A value that is one flat object ('{', no other '}', '}' last) is parsed once; any other
  value takes the wrapped parse that rejects trailing text. The cases sit on both sides.
- Deeply nested values must become reasons, not a StackOverflowError that fails the job.
  The rows come from an RDD so that they are parsed on an executor thread, as in a stream.
"""

from __future__ import annotations

from counting.events import SHALLOW_VALUE_BYTES, parse_events
from tests.unit.test_counting_support import KAFKA_SCHEMA, KAFKA_TIME, view
from viewcount import oracle


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
