"""The cell feed: the counter's changed per-minute cells, published to a compacted topic
(``Settings.cells_topic``) after each micro-batch has written them to the speed table, for
the API workers that hold provisional partitions in memory (``serving.live``).

One record per cell:
- key: ``<video_id>@<minute, epoch milliseconds>`` (UTF-8). Compaction keeps the newest
  record of each cell. The minute is the last field and all digits, so splitting at the
  last ``@`` gives the video back whatever its id holds.
- value: ``{"views": N, "write_timestamp": T}`` (JSON): the cell's absolute count and the
  write timestamp (microseconds) the counter wrote it to Cassandra with. A reader keeps,
  per cell, the value with the newest write timestamp, as Cassandra does, so a replayed
  batch (the same values, the same timestamp) changes nothing and an older record read
  after a newer one cannot undo it.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache
from typing import TYPE_CHECKING, Iterable, NamedTuple

import msgspec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from settings.environment import Settings

MS_PER_MINUTE = 60_000
MINUTES_PER_DAY = 1_440
_EPOCH = dt.date(1970, 1, 1)


class Cell(NamedTuple):  # a tuple: the API decodes thousands a second on its follower thread
    video_id: str
    day: dt.date
    minute_of_day: int  # 0..1439, UTC
    views: int
    write_timestamp: int  # microseconds, as written to Cassandra

    @property
    def minute(self) -> dt.datetime:
        start = dt.datetime.combine(self.day, dt.time(), tzinfo=dt.timezone.utc)
        return start + dt.timedelta(minutes=self.minute_of_day)


def encode(video_id: str, minute_ms: int, views: int, write_timestamp: int) -> tuple[bytes, bytes]:
    """A cell as the (key, value) of its record."""
    value = json.dumps({"views": views, "write_timestamp": write_timestamp}, separators=(",", ":"))
    return f"{video_id}@{minute_ms}".encode(), value.encode()


class _Value(msgspec.Struct):
    views: int
    write_timestamp: int


_VALUE = msgspec.json.Decoder(_Value)  # strict: a bool, a float or a string is not an int


@lru_cache(maxsize=64)
def _day(days: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=days)


def decode(key: bytes, value: bytes) -> Cell:
    """A record of the feed as a cell; ValueError when it is not one."""
    video_id, separator, minute_text = key.decode().rpartition("@")
    if not separator or not video_id or not minute_text.isdigit():
        raise ValueError(f"not a cell key: {key[:100]!r}")
    try:
        fields = _VALUE.decode(value)
    except msgspec.DecodeError:  # not JSON, or not the cell's fields
        raise ValueError(f"not a cell value: {value[:100]!r}") from None
    days, minute_of_day = divmod(int(minute_text) // MS_PER_MINUTE, MINUTES_PER_DAY)
    return Cell(video_id, _day(days), minute_of_day, fields.views, fields.write_timestamp)


def cell_records(counts: "DataFrame", write_timestamp: int) -> "DataFrame":
    """A DataFrame of (video_id, minute, views) as the feed's (key, value) records, built in
    the JVM (Spark's Kafka sink writes them), the same bytes ``encode`` gives."""
    from pyspark.sql import functions as F

    minute_ms = F.unix_millis("minute")
    value = F.to_json(F.struct(F.col("views").cast("long").alias("views"),
                               F.lit(write_timestamp).cast("long").alias("write_timestamp")))
    return counts.select(
        F.concat(F.col("video_id"), F.lit("@"), minute_ms.cast("string")).cast("binary").alias("key"),
        value.cast("binary").alias("value"),
    )


def publish_cells(counts: "DataFrame", settings: "Settings", write_timestamp: int) -> None:
    """Publish a DataFrame of (video_id, minute, views), written to the speed table with
    ``write_timestamp``, to the cell feed from the JVM (Spark's Kafka sink), one record per
    row. Each is acknowledged by every in-sync replica (the topic's min.insync.replicas),
    and sent without lingering to fill a larger request: a cell's time from the counter's
    write to an API answer is the freshness the API promises."""
    from storage.kafka_config import spark_options

    # No count through an Observation: inside foreachBatch its get() waited for good here
    # (Spark 4.2.0); the caller counted the rows it wrote from the same persisted DataFrame.
    (cell_records(counts, write_timestamp)
     .write.format("kafka")
     .options(**spark_options(settings))
     .option("topic", settings.cells_topic)
     .option("kafka.acks", "all")
     .option("kafka.linger.ms", "0")
     .save())


def send_cells(settings: "Settings", cells: Iterable[tuple[str, dt.datetime, int]], write_timestamp: int,
               *, producer=None) -> int:
    """Publish (video_id, aware UTC minute, views) cells written to the speed table with
    ``write_timestamp`` from Python (a writer outside the counter: tools, benches, tests);
    waits until every in-sync replica has them. Returns the number sent."""
    from confluent_kafka import Producer

    from storage.kafka_config import QUIET_LOGGER, client_config

    producer = producer or Producer(client_config(settings, **{"acks": "all", "linger.ms": 0,
                                                               "logger": QUIET_LOGGER}))
    failures: list[str] = []

    def delivered(error, _message) -> None:
        if error is not None:
            failures.append(error.str())

    sent = 0
    for video_id, minute, views in cells:
        key, value = encode(video_id, int(minute.timestamp() * 1000), views, write_timestamp)
        producer.produce(settings.cells_topic, value=value, key=key, on_delivery=delivered)
        producer.poll(0)
        sent += 1
    remaining = producer.flush(30)
    if remaining or failures:
        raise RuntimeError(f"cell feed: {remaining} cells not delivered; {failures[:1]}")
    return sent
