"""The cell feed's records (storage.cell_feed): the counter builds them in the JVM
(``cell_records``), the API workers read them in Python (``decode``); both must agree with
``encode`` byte for byte, or a worker would read a cell as another or not at all."""

from __future__ import annotations

import datetime as dt

import pytest

from storage.cell_feed import Cell, cell_records, decode, encode

WRITTEN_AT = 1_795_613_999_123_456  # microseconds, as the counter writes to Cassandra
CELLS = [
    ("v1", dt.datetime(2026, 11, 25, 13, 40, tzinfo=dt.timezone.utc), 7),
    ("v1", dt.datetime(2026, 11, 25, 0, 0, tzinfo=dt.timezone.utc), 1),
    ("v2", dt.datetime(2026, 11, 25, 23, 59, tzinfo=dt.timezone.utc), 2_147_483_648),  # beyond an int
    ("v@3", dt.datetime(1970, 1, 1, 0, 1, tzinfo=dt.timezone.utc), 0),  # an '@' in the id
    ("vidéo-4", dt.datetime(2026, 12, 31, 23, 59, tzinfo=dt.timezone.utc), 12),  # UTF-8
]


def _ms(minute: dt.datetime) -> int:
    return int(minute.timestamp() * 1000)


def test_the_jvm_records_are_the_bytes_encode_gives(spark):
    counts = spark.createDataFrame(CELLS, "video_id string, minute timestamp, views long")

    records = [(bytes(row.key), bytes(row.value)) for row in cell_records(counts, WRITTEN_AT).collect()]

    assert sorted(records) == sorted(encode(video, _ms(minute), views, WRITTEN_AT) for video, minute, views in CELLS)


def test_the_jvm_records_do_not_depend_on_the_session_time_zone(spark):
    """Minutes are instants: a driver in another zone publishes the same keys."""
    counts = spark.createDataFrame(CELLS[:1], "video_id string, minute timestamp, views long")
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/Los_Angeles")
    try:
        record = cell_records(counts, WRITTEN_AT).collect()[0]
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
    assert bytes(record.key) == b"v1@" + str(_ms(CELLS[0][1])).encode()


def test_decode_gives_back_each_cell_encoded():
    for video, minute, views in CELLS:
        cell = decode(*encode(video, _ms(minute), views, WRITTEN_AT))
        assert cell == Cell(video, minute.date(), minute.hour * 60 + minute.minute, views, WRITTEN_AT)
        assert cell.minute == minute


def test_the_record_format_is_the_documented_one():
    key, value = encode("v1", 1_795_613_940_000, 7, WRITTEN_AT)
    assert key == b"v1@1795613940000"
    assert value == b'{"views":7,"write_timestamp":1795613999123456}'


@pytest.mark.parametrize(("key", "value"), [
    (b"v1", b'{"views":1,"write_timestamp":1}'),  # no minute
    (b"@1795613940000", b'{"views":1,"write_timestamp":1}'),  # no video
    (b"v1@17956x", b'{"views":1,"write_timestamp":1}'),  # not a number
    (b"v1@1795613940000", b'{"views":"1","write_timestamp":1}'),
    (b"v1@1795613940000", b'{"views":1,"write_timestamp":1.5}'),
    (b"v1@1795613940000", b'{"views":true,"write_timestamp":1}'),
    (b"v1@1795613940000", b'{"views":1}'),  # no write timestamp
    (b"v1@1795613940000", b'[1,2]'),
    (b"v1@1795613940000", b'{"views":1,'),  # not JSON
    (b"v\xff@1795613940000", b'{"views":1,"write_timestamp":1}'),  # not UTF-8
])
def test_decode_refuses_what_is_not_a_cell(key, value):
    with pytest.raises(ValueError):
        decode(key, value)
