"""`viewcount capacity`: the plan follows from the measured figures and the assumptions."""

from __future__ import annotations

import json

import pytest

from viewcount.capacity import Assumptions, Measured, plan
from viewcount.cli import main


def test_the_measured_rate_takes_the_measured_cores_and_headroom_doubles_them():
    measured = Measured()
    at_rate = plan(measured.counter_events_per_s, 0, 1, 10_000)
    assert at_rate.counter_cores_at_measured_rate == pytest.approx(measured.counter_cores)
    assert at_rate.counter_cores == 2 * measured.counter_cores
    exact = plan(measured.counter_events_per_s, 0, 1, 10_000, assume=Assumptions(headroom=1.0))
    assert exact.counter_cores == measured.counter_cores


def test_the_measured_live_run_fits_the_reference_machine_without_headroom():
    """docs/benchmarks.md: at 10,000 events/s the counter, the archiver and the API at a
    probe a second kept up on the 2-core machine (lag bounded, back to 0 after)."""
    live = plan(10_000, 1, 1, 10_000)
    assert live.counter_cores_at_measured_rate + live.archiver_cores_at_measured_rate + \
        live.api_cores_at_measured_rate < 2


def test_partitions_follow_the_cores_and_disks_follow_the_bytes():
    big = plan(100_000, 10_000, 7, 1_000_000)
    assert big.kafka_partitions == max(big.counter_cores, big.archiver_cores) > 6
    per_record = Measured().record_bytes + Assumptions().kafka_record_overhead_bytes
    assert big.kafka_disk_gb == pytest.approx(100_000 * 86_400 * 7 * per_record * 3 / 1e9)
    assert big.kafka_brokers == -(-big.kafka_disk_gb // 1_000)
    small = plan(10, 1, 1, 100)
    assert (small.kafka_partitions, small.kafka_brokers, small.cassandra_nodes) == (6, 3, 3)
    # 100 videos have at most 144,000 minute cells a day, however many views they get.
    assert plan(10_000, 1, 1, 100).cassandra_gb_per_day == pytest.approx(144_000 * 100 * 2 * 3 / 1e9)


def test_the_cli_prints_a_plan_and_refuses_bad_numbers(capsys):
    assert main(["capacity", "--events-per-second", "10000", "--read-rps", "1000", "--retention-days", "7",
                 "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["plan"]["counter_cores"] == 3 and printed["measured"]["counter_events_per_s"] == 18_202
    assert main(["capacity", "--events-per-second", "-5", "--read-rps", "1", "--retention-days", "1"]) == 2
    assert "--events-per-second must be a number of at least 0" in capsys.readouterr().err
