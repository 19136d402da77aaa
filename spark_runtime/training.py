"""The class-data archive's training run: ``python -m spark_runtime.training DRAFT``.

A local driver loads the classes the jobs load (the connectors, the counting rules' parsing,
a shuffle, Parquet, a stateful streaming query) and, at its clean exit, the JVM writes them
into ``DRAFT`` (``spark_runtime.class_data.ensure_class_archive`` starts this in a process
of its own and moves the draft into place).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from settings.environment import Settings
from spark_runtime.class_data import TRAINING_TIMEOUT_S


def train(draft: Path, settings: Settings) -> None:
    """Load the classes the jobs load: a session with the connectors, the counting rules'
    parsing over JSON records, a shuffle and an aggregation, Parquet written and read, and
    a stateful streaming query."""
    import datetime as dt

    from pyspark.sql import functions as F

    from counting.durations import DEFAULT_WATERMARK_DELAY
    from counting.events import parse_events
    from counting.views import count_views_per_minute
    from spark_runtime.session import build_session

    spark = build_session("viewcount-class-archive", settings,
                          extra_conf={"spark.driver.extraJavaOptions": f"-XX:ArchiveClassesAtExit={draft}"})
    moment = dt.datetime(2026, 1, 1, 1, tzinfo=dt.timezone.utc)  # each record arrives after its event
    values = [(f'{{"event_id":"{index:08x}-0000-4000-8000-000000000000","video_id":"video{index % 7:06d}",'
               f'"event_time":"2026-01-01T00:{index % 60:02d}:00Z"}}').encode() for index in range(200)]
    records = spark.createDataFrame(
        [("views", index % 3, index, moment, None, value) for index, value in enumerate(values)],
        "topic string, partition int, offset long, timestamp timestamp, key binary, value binary")
    counts = records.transform(parse_events()).transform(count_views_per_minute())
    streamed = []
    with tempfile.TemporaryDirectory() as folder:
        counts.write.parquet(f"{folder}/counts")
        total = spark.read.parquet(f"{folder}/counts").agg(F.sum("views")).first()[0]
        # The streaming jobs' classes too: a stateful query (RocksDB state, watermark) into
        # foreachBatch, over the records as files.
        records.write.parquet(f"{folder}/records")
        query = (spark.readStream.schema(records.schema).parquet(f"{folder}/records")
                 .transform(parse_events()).transform(count_views_per_minute(DEFAULT_WATERMARK_DELAY))
                 .writeStream.outputMode("update")
                 .foreachBatch(lambda batch, _: streamed.append(batch.agg(F.sum("views")).first()[0] or 0))
                 .option("checkpointLocation", f"{folder}/checkpoint").trigger(availableNow=True).start())
        query.awaitTermination()
    if total != len(values) or sum(streamed) != len(values):
        raise RuntimeError(f"training run counted {total} and {sum(streamed)} views of {len(values)} events")
    gateway = spark.sparkContext._gateway
    spark.stop()
    # The JVM writes the archive as it exits: close its stdin (it exits on EOF) and wait.
    gateway.shutdown()
    process = gateway.proc
    process.stdin.close()
    process.wait(timeout=TRAINING_TIMEOUT_S)


if __name__ == "__main__":
    train(Path(sys.argv[1]), Settings.from_env())
