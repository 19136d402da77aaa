"""The synthetic stream: deterministic, realistic, and labelled truthfully (checked by the oracle)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

import pytest

from counting.reasons import REASONS
from oracle import counts as oracle
from producer import catalog
from producer.arrivals import DayArrivals, LiveArrivals, day_start_ms
from producer.generator import DUPLICATE, RETRY_HORIZON_MS, VALID, Mix, ViewGenerator

DAY = date(2026, 11, 24)
DAY_MS = day_start_ms(DAY)


def generate(total: int, seed: int = 7, mix: Mix = Mix(), day: date = DAY):
    generator = ViewGenerator(mix, seed, DayArrivals(day, total, seed))
    records = []
    while chunk := generator.chunk(4_000):
        records.extend(chunk)
    return generator, records


@pytest.fixture(scope="module")
def sample():
    """A day with plenty of everything: 60k records, 5% re-sends, 5% late, 3% malformed."""
    return generate(60_000, mix=Mix(duplicates=0.05, late=0.05, malformed=0.03))


@pytest.fixture(scope="module")
def default_day():
    return generate(60_000)


def test_same_seed_same_records_and_timestamps():
    _, first = generate(8_000, seed=11)
    _, again = generate(8_000, seed=11)
    _, other = generate(8_000, seed=12)
    assert first == again
    assert [(r.key, r.value, r.timestamp_ms) for r in first] != [(r.key, r.value, r.timestamp_ms) for r in other]


def test_live_mode_is_deterministic_for_the_same_clock():
    def run():
        ticks = iter(range(DAY_MS, DAY_MS + 10**9, 7))
        generator = ViewGenerator(Mix(), 3, LiveArrivals(lambda: next(ticks)))
        return [generator.chunk(100) for _ in range(30)]
    assert run() == run()


def test_exactly_the_requested_records_over_the_day_in_time_order(default_day):
    _, records = default_day
    stamps = [record.timestamp_ms for record in records]
    assert len(records) == 60_000
    assert stamps == sorted(stamps)
    assert DAY_MS <= stamps[0] and stamps[-1] < DAY_MS + 86_400_000


def test_arrivals_follow_a_diurnal_curve_with_bursts(default_day):
    _, records = default_day
    per_hour = Counter((r.timestamp_ms - DAY_MS) // 3_600_000 for r in records)
    per_minute = sorted(Counter(r.timestamp_ms // 60_000 for r in records).values())
    assert per_hour[20] > 2 * per_hour[8]  # evening peak, morning trough (UTC)
    assert per_minute[-1] > 4 * per_minute[len(per_minute) // 2]  # burst minutes


def test_popularity_is_zipf(default_day):
    generator, records = default_day
    views = Counter(r.video for r in records if r.label == VALID)
    total = sum(views.values())
    top_share = views.most_common(1)[0][1] / total
    assert views.most_common(1)[0][0] == 0  # rank 0 is the hottest video
    assert top_share == pytest.approx(catalog.zipf_top_share(10_000, 1.1), abs=0.01)
    assert sum(n for _, n in views.most_common(100)) / total > 0.4  # 1% of videos, >40% of views


def test_a_viral_video_takes_the_share_it_is_given():
    mix = Mix(videos=1_000, hot_share=0.2)
    records = ViewGenerator(mix, 3, DayArrivals(date(2026, 11, 20), 20_000, 3)).chunk(20_000)
    views = Counter(r.video for r in records if r.label == VALID)
    total = sum(views.values())
    assert views.most_common(1)[0][0] == 0
    assert views[0] / total == pytest.approx(0.2, abs=0.01)
    assert views[1] / views[2] == pytest.approx(1.5 ** 1.1, rel=0.1)  # ranks 2 and 3 stay Zipf


def test_fractions_match_the_mix(default_day):
    _, records = default_day
    labels = Counter(r.label for r in records)
    valid = [r for r in records if r.label == VALID]
    malformed = len(records) - labels[VALID] - labels[DUPLICATE]
    assert labels[DUPLICATE] / len(records) == pytest.approx(0.02, abs=0.003)
    assert malformed / len(records) == pytest.approx(0.005, abs=0.0015)
    assert sum(r.late for r in valid) / len(valid) == pytest.approx(0.01, abs=0.002)


def test_every_reason_is_produced_in_equal_shares(sample):
    _, records = sample
    per_reason = Counter(r.label for r in records if r.label not in (VALID, DUPLICATE))
    assert set(per_reason) == set(REASONS)
    assert max(per_reason.values()) - min(per_reason.values()) <= 1


def test_a_few_malformed_records_still_cover_every_reason():
    _, records = generate(1_200, mix=Mix(malformed=0.05))
    assert {r.label for r in records} >= set(REASONS)


def test_the_oracle_agrees_with_every_label(sample):
    generator, records = sample
    for record in records:
        reason, event = oracle.classify(record.value, record.timestamp_ms)
        expected = None if record.label in (VALID, DUPLICATE) else record.label
        assert reason == expected, record
        if event:
            assert event.video_id == generator.video_ids[record.video] == record.key.decode()
            assert event.event_time_ms == record.event_time_ms


def test_resends_repeat_an_earlier_view_byte_for_byte_within_five_minutes(sample):
    _, records = sample
    first_sent = {}
    for record in records:
        if record.label == VALID:
            first_sent[record.value] = record.timestamp_ms
        elif record.label == DUPLICATE:
            delay = record.timestamp_ms - first_sent[record.value]
            assert 0 <= delay <= RETRY_HORIZON_MS + 60_000


def test_late_views_reach_hours_back_into_the_previous_day(sample):
    _, records = sample
    delays = [r.timestamp_ms - r.event_time_ms for r in records if r.label == VALID and r.late]
    assert min(delays) >= 120_000 and max(delays) > 4 * 3_600_000
    assert any(r.event_time_ms < DAY_MS for r in records if r.label == VALID and r.late)


def test_event_times_use_every_format(sample):
    _, records = sample
    texts = b"\n".join(r.value for r in records if r.label == VALID)
    patterns = (rb'"event_time": ?17[0-9]{11}[,}]', rb"T[0-9:]{8}Z", rb"T[0-9:]{8}\.[0-9]{3}Z",
                rb"\.[0-9]{6}Z", rb"\.[0-9]{9}Z", rb"t[0-9:.]{12}z", rb"-[0-9]{2} [0-9]{2}:",
                rb"\+05:30\"", rb"-08:00\"", rb'"user_id": ?null', rb'"video_id":"\\u00')
    for pattern in patterns:
        assert re.search(pattern, texts), pattern
