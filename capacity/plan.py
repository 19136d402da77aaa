"""``viewcount capacity``: cores, nodes, disk and Kafka partitions for a target load.

Derived from what was measured on the 2-core reference machine (docs/benchmarks.md), with
every assumption named; docs/capacity.md explains each figure and checks the model
against a measured run. The measured rates shared two cores with Kafka, Cassandra and
MinIO, so a core of a dedicated executor does at least as much: the figures err on the
side of more hardware.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass

from settings.errors import UserError

SECONDS_PER_DAY = 86_400
GB = 1_000_000_000
# CPU per API request of one worker at 1,000 requests/s: the "API CPU (all workers)" line of
# the 1000/s phase of bench/serving_latency.py (docs/capacity.md cites the run it is from).
API_CPU_MS_PER_REQUEST = 0.22


@dataclass(frozen=True)
class Measured:
    """Figures measured on the reference machine; docs/capacity.md cites each."""

    counter_events_per_s: float = 18_713  # catch-up net of start-up, JVM writer: the lower of two runs
    counter_cores: int = 2
    archiver_events_per_s: float = 56_766  # catch-up net of start-up
    archiver_cores: int = 2
    api_cpu_ms_per_request: float = API_CPU_MS_PER_REQUEST
    record_bytes: float = 187  # mean key + value of `viewcount produce` records
    archive_bytes_per_record: float = 98  # Parquet, the demo's day
    cells_per_view: float = 0.68  # distinct (video, minute) cells per counted view, the demo's day


@dataclass(frozen=True)
class Assumptions:
    """What was not measured here; docs/capacity.md says why each value."""

    headroom: float = 2.0  # run at half the measured rate: a backlog drains as fast as it grew
    kafka_record_overhead_bytes: float = 20
    kafka_replication: int = 3
    cassandra_replication: int = 3
    cell_bytes: float = 100  # a minute cell on disk, before compression
    cell_copies: int = 2  # the speed table and one batch version
    disk_per_node_gb: float = 1_000
    min_nodes: int = 3  # replication 3 wants three brokers and three Cassandra nodes
    min_partitions: int = 6


@dataclass(frozen=True)
class Plan:
    counter_cores: int
    archiver_cores: int
    api_cores: int
    kafka_partitions: int
    kafka_disk_gb: float
    kafka_brokers: int
    archive_gb_per_day: float
    cassandra_gb_per_day: float
    cassandra_gb_per_year: float
    cassandra_nodes: int
    # Cores at the measured rates without headroom: what the load alone takes.
    counter_cores_at_measured_rate: float
    archiver_cores_at_measured_rate: float
    api_cores_at_measured_rate: float


def plan(events_per_s: float, read_rps: float, retention_days: float, videos: int,
         measured: Measured = Measured(), assume: Assumptions = Assumptions()) -> Plan:
    """The hardware for ``events_per_s`` views, ``read_rps`` API requests, Kafka keeping
    ``retention_days`` of records, and a catalog of ``videos``."""
    counter = events_per_s / (measured.counter_events_per_s / measured.counter_cores)
    archiver = events_per_s / (measured.archiver_events_per_s / measured.archiver_cores)
    api = read_rps * measured.api_cpu_ms_per_request / 1000
    counter_cores = math.ceil(counter * assume.headroom)
    archiver_cores = math.ceil(archiver * assume.headroom)
    records_per_day = events_per_s * SECONDS_PER_DAY
    kafka_gb = (records_per_day * retention_days * (measured.record_bytes + assume.kafka_record_overhead_bytes)
                * assume.kafka_replication / GB)
    # A video has at most one cell per minute.
    cells_per_day = min(records_per_day * measured.cells_per_view, videos * 1_440)
    cassandra_gb_per_day = cells_per_day * assume.cell_bytes * assume.cell_copies * assume.cassandra_replication / GB
    return Plan(
        counter_cores=counter_cores,
        archiver_cores=archiver_cores,
        api_cores=math.ceil(api * assume.headroom),
        # A Kafka partition is read by one task per batch: every core of a job needs one.
        kafka_partitions=max(assume.min_partitions, counter_cores, archiver_cores),
        kafka_disk_gb=kafka_gb,
        kafka_brokers=max(assume.min_nodes, math.ceil(kafka_gb / assume.disk_per_node_gb)),
        archive_gb_per_day=records_per_day * measured.archive_bytes_per_record / GB,
        cassandra_gb_per_day=cassandra_gb_per_day,
        cassandra_gb_per_year=cassandra_gb_per_day * 365,
        cassandra_nodes=max(assume.min_nodes, math.ceil(cassandra_gb_per_day * 365 / assume.disk_per_node_gb)),
        counter_cores_at_measured_rate=counter,
        archiver_cores_at_measured_rate=archiver,
        api_cores_at_measured_rate=api,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events-per-second", type=float, required=True, metavar="N",
                        help="views produced per second, on average over the busiest hour")
    parser.add_argument("--read-rps", type=float, required=True, metavar="M", help="API requests per second")
    parser.add_argument("--retention-days", type=float, required=True, metavar="D",
                        help="days of records Kafka keeps (the speed layer's replay window)")
    parser.add_argument("--videos", type=int, default=1_000_000,
                        help="videos in the catalog (bounds the minute cells per day; default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="the plan as JSON, with the figures it used")


def run(args: argparse.Namespace) -> int:
    for name, value in (("--events-per-second", args.events_per_second), ("--read-rps", args.read_rps),
                        ("--retention-days", args.retention_days), ("--videos", args.videos)):
        if not math.isfinite(value) or value < 0:
            raise UserError(f"{name} must be a number of at least 0, got {value}")
    result = plan(args.events_per_second, args.read_rps, args.retention_days, args.videos)
    if args.json:
        print(json.dumps({"plan": asdict(result), "measured": asdict(Measured()),
                          "assumptions": asdict(Assumptions())}, indent=2))
        return 0
    print(f"for {args.events_per_second:,.0f} events/s, {args.read_rps:,.0f} requests/s, "
          f"{args.retention_days:g} days in Kafka, {args.videos:,} videos "
          f"(twice the measured rates' cores; docs/capacity.md):")
    rows = [
        ("counter cores", f"{result.counter_cores}", f"{result.counter_cores_at_measured_rate:.2f} at the measured rate"),
        ("archiver cores", f"{result.archiver_cores}", f"{result.archiver_cores_at_measured_rate:.2f} at the measured rate"),
        ("API cores (a worker each)", f"{result.api_cores}", f"{result.api_cores_at_measured_rate:.2f} at the measured rate"),
        ("Kafka partitions of views", f"{result.kafka_partitions}", "one per counter or archiver core, at least 6"),
        ("Kafka disk", f"{result.kafka_disk_gb:,.0f} GB", "the retention, replicated 3 times"),
        ("Kafka brokers", f"{result.kafka_brokers}", "at least 3; 1 TB of disk each"),
        ("archive on S3", f"{result.archive_gb_per_day:,.1f} GB a day", "Parquet"),
        ("Cassandra disk", f"{result.cassandra_gb_per_day:,.1f} GB a day, {result.cassandra_gb_per_year:,.0f} GB a year",
         "speed and batch cells, replicated 3 times, before compression"),
        ("Cassandra nodes", f"{result.cassandra_nodes}", "at least 3; a year of cells on 1 TB each"),
    ]
    width = max(len(row[0]) for row in rows)
    for what, figure, note in rows:
        print(f"  {what:<{width}}  {figure:>28}  ({note})")
    return 0
