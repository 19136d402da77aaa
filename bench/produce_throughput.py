"""``viewcount produce`` against Kafka's own ProducerPerformance, side by side.

Both send the same number of records, of the same average size (key + value), with the
same producer settings (acks=all, idempotence, linger.ms, batch.size, lz4), each to a fresh
topic of 6 partitions on the broker from ``VIEWCOUNT_KAFKA_BOOTSTRAP``. Ours generates
realistic JSON with duplicates, late and malformed records and tallies the oracle as it
goes; ProducerPerformance sends one pre-made random payload over and over. Each must have
sent the records asked and its topic hold them all (exit status 1 otherwise). ``make
test`` runs it at 2,000 records (tests/integration/test_bench_smoke.py).

    .venv/bin/python bench/produce_throughput.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.artifacts import KAFKA  # noqa: E402
from settings.environment import Settings  # noqa: E402
from producer.kafka_sink import PRODUCER_SETTINGS, TUNING  # noqa: E402

PARTITIONS = 6
# The records/sec figure of ProducerPerformance's final line.
FINAL_LINE = re.compile(r"^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)", re.MULTILINE)


def java_props(bootstrap: str) -> list[str]:
    queue_bytes = 1024 * 1_048_576  # librdkafka's queue.buffering.max.kbytes default, 1 GiB
    props = {**TUNING, "bootstrap.servers": bootstrap, "buffer.memory": queue_bytes}
    return [f"{name}={str(value).lower() if isinstance(value, bool) else value}" for name, value in props.items()]


def run_ours(topic: str, events: int, oracle_dir: Path) -> dict:
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
    command = [sys.executable, "-m", "viewcount.cli", "produce", "--events", str(events), "--seed", "1",
               "--day", yesterday, "--topic", topic, "--oracle", str(oracle_dir)]
    started = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True)
    wall = time.monotonic() - started
    summary = json.loads((oracle_dir / "summary.json").read_text())
    record_bytes = (summary["key_bytes"] + summary["value_bytes"]) / summary["records_sent"]
    return {"command": command, "events_per_second": summary["events_per_second"],
            "wall_seconds": wall, "record_bytes": record_bytes, "records": summary["records_sent"]}


def records_in(bootstrap: str, topic: str) -> int:
    """Records the broker holds in a fresh topic: the sum of its partitions' end offsets."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-produce-check-{time.time_ns()}"})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, number), timeout=30)[1]
                   for number in range(PARTITIONS))
    finally:
        consumer.close()


def run_producer_performance(topic: str, events: int, record_bytes: int, bootstrap: str) -> dict:
    classpath = KAFKA.classpath(Settings.from_env().cache_dir)
    command = ["java", "-cp", classpath, "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
               "--num-records", str(events), "--record-size", str(record_bytes), "--throughput", "-1",
               "--producer-props", *java_props(bootstrap)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    finals = FINAL_LINE.findall(result.stdout)
    if result.returncode != 0 or not finals:
        sys.exit(f"ProducerPerformance failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    sent, per_second, megabytes = finals[-1]
    return {"command": command, "events_per_second": float(per_second), "records": int(sent),
            "mb_per_second": float(megabytes)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    bootstrap = Settings.from_env().kafka_bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    stamp = int(time.time())
    ours_topic, theirs_topic = f"bench-produce-{stamp}", f"bench-producer-performance-{stamp}"
    for future in admin.create_topics([NewTopic(t, num_partitions=PARTITIONS)
                                       for t in (ours_topic, theirs_topic)]).values():
        future.result()
    try:
        with tempfile.TemporaryDirectory() as oracle_dir:
            ours = run_ours(ours_topic, args.events, Path(oracle_dir))
        theirs = run_producer_performance(theirs_topic, args.events, round(ours["record_bytes"]), bootstrap)
        held = {"ours": records_in(bootstrap, ours_topic), "theirs": records_in(bootstrap, theirs_topic)}
    finally:
        for future in admin.delete_topics([ours_topic, theirs_topic]).values():
            future.result()
    settings = " ".join(f"{name}={value}" for name, value in PRODUCER_SETTINGS.items())
    print(f"\nbroker {bootstrap}; {args.events:,} records of {ours['record_bytes']:.0f} B on average "
          f"(key + value); settings: {settings}")
    print(f"viewcount produce      {ours['events_per_second']:>10,.0f} events/s "
          f"(whole command incl. start-up and oracle: {args.events / ours['wall_seconds']:,.0f} events/s)")
    print(f"ProducerPerformance    {theirs['events_per_second']:>10,.0f} events/s ({theirs['mb_per_second']} MB/s)")
    print(f"ratio ours/theirs      {ours['events_per_second'] / theirs['events_per_second']:>10.2f}")
    print("ProducerPerformance command: " + " ".join(theirs["command"]))
    agree = ours["records"] == held["ours"] == theirs["records"] == held["theirs"] == args.events
    print(f"records: viewcount produce sent {ours['records']:,}, its topic holds {held['ours']:,}; "
          f"ProducerPerformance sent {theirs['records']:,}, its topic holds {held['theirs']:,}; "
          f"asked {args.events:,}: {'agree' if agree else 'DISAGREE'}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
