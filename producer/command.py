"""``viewcount produce``: synthetic view events into Kafka, and the oracle of what was sent."""

from __future__ import annotations

import argparse
import random
import time
from datetime import datetime, timezone
from pathlib import Path

from counting.window import parse_day
from settings.errors import UserError, argument_type

CHUNK = 5_000
DEFAULTS = {"videos": 10_000, "zipf": 1.1, "duplicates": 0.02, "late": 0.01, "malformed": 0.005,
            "hot_share": None}


def _bounded(kind: type, low: float, high: float, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not {what}")
        return value
    return parse


_fraction = _bounded(float, 0.0, 1.0, "a fraction between 0 and 1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=_bounded(int, 1, 10**10, "a positive whole number"), required=True,
                        metavar="N", help="Kafka records to send, re-sends and malformed ones included")
    parser.add_argument("--rate", type=_bounded(float, 0.001, 1e9, "a positive rate"), metavar="R",
                        help="at most R records per second (default: as fast as Kafka takes them)")
    parser.add_argument("--seed", type=_bounded(int, 0, 2**63 - 1, "a non-negative whole number"),
                        metavar="S", help="same seed and options, same records (default: random, printed)")
    parser.add_argument("--day", type=argument_type(parse_day), metavar="YYYY-MM-DD",
                        help="spread arrivals (Kafka timestamps) over this past UTC day "
                             "(default: arrivals are now)")
    parser.add_argument("--videos", type=_bounded(int, 1, 10_000_000, "a video count from 1 to 10 million"),
                        default=DEFAULTS["videos"], metavar="V", help="catalog size (default: %(default)s)")
    parser.add_argument("--zipf", type=_bounded(float, 0.01, 10.0, "an exponent between 0.01 and 10"),
                        default=DEFAULTS["zipf"], metavar="S", help="Zipf popularity exponent (default: %(default)s)")
    parser.add_argument("--hot-share", type=_bounded(float, 0.0, 0.99, "a share between 0 and 0.99"),
                        default=DEFAULTS["hot_share"], metavar="F",
                        help="the hottest video takes this share of all views, a viral video "
                             "(default: its Zipf share)")
    parser.add_argument("--duplicates", type=_fraction, default=DEFAULTS["duplicates"], metavar="F",
                        help="share of records that re-send an earlier view (default: %(default)s)")
    parser.add_argument("--late", type=_fraction, default=DEFAULTS["late"], metavar="F",
                        help="share of views arriving 2 min to 8 h after their event_time (default: %(default)s)")
    parser.add_argument("--malformed", type=_fraction, default=DEFAULTS["malformed"], metavar="F",
                        help="share of records breaking a counting rule, every reason in turn "
                             "(default: %(default)s)")
    parser.add_argument("--topic", metavar="T", help="Kafka topic (default: VIEWCOUNT_VIEWS_TOPIC or 'views')")
    parser.add_argument("--partitions", type=_bounded(int, 1, 10_000, "a partition count"), default=6,
                        metavar="P", help="partitions if the topic has to be created (with the retention and "
                                          "limits `viewcount stack up` gives its topics; default: %(default)s)")
    parser.add_argument("--oracle", type=Path, metavar="DIR",
                        help="where counts.parquet and summary.json go (default: <run dir>/oracle/latest)")


def _arrivals(args: argparse.Namespace, seed: int):
    from producer.arrivals import DayArrivals, LiveArrivals

    return DayArrivals(args.day, args.events, seed) if args.day else LiveArrivals()


def _check_day_accepted(args: argparse.Namespace, kafka: dict, topic: str) -> None:
    """Kafka refuses timestamps too far from now; say so before sending a single record."""
    from producer.arrivals import MS_PER_MINUTE, MINUTES_PER_DAY, day_start_ms
    from producer.kafka_sink import timestamp_window_ms

    before_ms, after_ms, retention_ms = timestamp_window_ms(kafka, topic)
    now_ms = time.time_ns() // 1_000_000
    first_ms = day_start_ms(args.day)
    last_ms = first_ms + MINUTES_PER_DAY * MS_PER_MINUTE - 1
    if last_ms > now_ms + after_ms:
        raise UserError(f"--day {args.day} is not over yet: topic {topic!r} refuses record timestamps more "
                        f"than {after_ms // 1000} s ahead (message.timestamp.after.max.ms); pick a past day")
    if first_ms < now_ms - before_ms:
        raise UserError(f"--day {args.day} is too far back: topic {topic!r} refuses record timestamps more "
                        f"than {before_ms // 1000} s old (message.timestamp.before.max.ms)")
    if retention_ms >= 0 and first_ms < now_ms - retention_ms:
        # Kafka would take the records and delete them at once, by their timestamps.
        raise UserError(f"--day {args.day} is too far back: topic {topic!r} deletes records more than "
                        f"{retention_ms // 86_400_000} days old (retention.ms={retention_ms}); pick a later day "
                        "or a topic that keeps them")


def _arguments_record(args: argparse.Namespace, seed: int) -> dict:
    names = ("events", "rate", "day", "videos", "zipf", "hot_share", "duplicates", "late", "malformed", "topic",
             "partitions")
    record = {name: getattr(args, name) for name in names}
    record["day"] = args.day.isoformat() if args.day else None
    return {**record, "seed": seed}


def run(args: argparse.Namespace) -> int:
    from storage.kafka_config import client_config
    from settings.environment import Settings
    from storage.topics import topic_config
    from producer import kafka_sink
    from producer.generator import Mix, ViewGenerator
    from producer.progress import Progress
    from producer.truth import GroundTruth, write_oracle

    if args.duplicates + args.malformed > 1:
        raise UserError("--duplicates plus --malformed must not exceed 1")
    settings = Settings.from_env()
    topic = args.topic or settings.views_topic
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    oracle_dir = args.oracle or settings.run_dir / "oracle" / "latest"
    bootstrap, kafka = settings.kafka_bootstrap, client_config(settings)

    partitions = kafka_sink.prepare_topic(kafka, topic, args.partitions, topic_config(settings, topic))
    if args.day:
        _check_day_accepted(args, kafka, topic)
    offsets_before = kafka_sink.end_offsets(kafka, topic, partitions)
    mix = Mix(**{name: getattr(args, name) for name in DEFAULTS})
    generator = ViewGenerator(mix, seed, _arrivals(args, seed))
    truth = GroundTruth(generator.video_ids)
    sink = kafka_sink.KafkaSink(kafka, topic)
    progress = Progress(args.events)
    started_at = datetime.now(timezone.utc)
    chunk = CHUNK if args.rate is None else max(1, min(CHUNK, int(args.rate / 20)))
    try:
        while truth.records < args.events:
            records = generator.chunk(min(chunk, args.events - truth.records))
            if not records:
                break
            truth.add(records)
            sink.send(records)
            if args.rate:
                time.sleep(max(0.0, truth.records / args.rate - progress.elapsed()))
            progress.update(truth.records, sink.delivered)
        sink.flush(lambda: progress.update(truth.records, sink.delivered))
    except UserError as error:
        progress.clear()
        raise UserError(f"{error}; the oracle was not written") from error
    elapsed = progress.elapsed()
    rate = truth.records / max(elapsed, 1e-9)
    summary = write_oracle(oracle_dir, truth, {
        "seed": seed, "arguments": _arguments_record(args, seed), "topic": topic,
        "bootstrap": bootstrap, "partitions": partitions, "mode": "day" if args.day else "live",
        "offsets_before": offsets_before,
        "offsets_after": kafka_sink.end_offsets(kafka, topic, partitions),
        "started_at": started_at.isoformat(timespec="seconds"),
        "elapsed_seconds": round(elapsed, 3), "events_per_second": round(rate),
    })
    progress.finish(
        f"sent {summary['records_sent']:,} records to {topic!r} in {elapsed:.1f} s ({rate:,.0f} events/s): "
        f"{summary['distinct_events']:,} views, {summary['duplicates']:,} re-sends, "
        f"{summary['invalid_records']:,} malformed, {summary['late']['events']:,} late; "
        f"seed {seed}; oracle in {oracle_dir}")
    return 0
