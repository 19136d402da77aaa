"""Proof that the archive holds every record a day's batch must read, from Cassandra alone.

The archiver records, per arrival hour, Kafka partition and archiver batch, the first and
last offset it wrote and how many records (``archive_hours``), and how far it has read
(``archive_progress``). Per Kafka partition, the batch of day D is complete when the
offsets of the window's hours, together with the last offset archived before the window
and the first archived after it, form one unbroken run:

- before: the window's first offset follows the last offset archived in an earlier hour
  (or is 0 when no earlier hour of the partition is found within ``LOOKAROUND_DAYS``);
- inside: every row holds ``last - first + 1`` records and each row starts where the
  previous one ended (no holes between batches or hours);
- after: the first offset archived in an hour after the cutoff follows the window's last
  one. When no later hour holds the partition yet, the archive must reach the topic's end
  offset instead: now is past the cutoff, so whatever arrives later arrives after it.

Offsets no reader receives (a transactional producer's markers and aborted records) are
skipped, not missing, where the archiver recorded them as such (``archive_skipped_offsets``):
the run goes on through them.

This relies on Kafka timestamps that do not go down within a partition (LogAppendTime
topics, or producers that stamp records with their send time, like ``viewcount produce``
run day after day): a record stamped earlier than one before it would show as a hole.
The rows prove the files only if the two agree, so ``file_gaps`` then compares them with
what the files of the window's hours hold (a file deleted with its row left in place).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from storage.archive import HourCompleteness, SkippedRange, skipped_within
from storage.errors import UserError

from counting.window import BatchWindow, Hour
from storage.settings import Settings

if TYPE_CHECKING:
    from cassandra.cluster import Session

    from storage.batch_results import BatchVersion

# How far before and after the window to look for a partition's neighbouring offsets.
LOOKAROUND_DAYS = 7
# A refusal names this many gaps on its one line, then says how many more there are.
GAPS_NAMED = 10


class ArchiveIncomplete(UserError):
    """The archive cannot be proven complete for the day; --allow-gaps accepts it."""

    exit_code = 4


@dataclass(frozen=True)
class PartitionSpan:
    """What the window's rows hold for one Kafka partition."""

    first: int
    last: int
    records: int


@dataclass
class Completeness:
    spans: dict[int, PartitionSpan] = field(default_factory=dict)  # partitions with rows in the window
    partitions: list[int] = field(default_factory=list)  # every partition checked
    hour_rows: int = 0
    gaps: list[str] = field(default_factory=list)
    rows: dict[int, list[HourCompleteness]] = field(default_factory=dict)  # the window's rows per partition

    @property
    def records(self) -> int:
        return sum(span.records for span in self.spans.values())

    def summary(self) -> str:
        offsets = ", ".join(f"p{p} {s.first}-{s.last}" for p, s in sorted(self.spans.items()))
        return (f"{len(self.partitions)} partitions, {self.records:,} archived records in "
                f"{self.hour_rows:,} hour rows (offsets {offsets or 'none'})")


def _label(row: HourCompleteness) -> str:
    return f"{row.arrival_date}T{row.arrival_hour:02d} batch {row.batch_id}"


def _hour(row: HourCompleteness) -> Hour:
    return row.arrival_date, row.arrival_hour


class _Rows:
    """archive_hours rows by date, read once each, with per-partition lookups."""

    def __init__(self, read_date: Callable[[dt.date], list[HourCompleteness]]):
        self._read_date = read_date
        self._by_date: dict[dt.date, list[HourCompleteness]] = {}

    def of(self, date: dt.date) -> list[HourCompleteness]:
        if date not in self._by_date:
            self._by_date[date] = self._read_date(date)
        return self._by_date[date]

    def last_before(self, partition: int, first_hour: Hour) -> int:
        """Last offset archived in an hour before ``first_hour``; -1 when none is found."""
        for days_back in range(LOOKAROUND_DAYS + 1):
            date = first_hour[0] - dt.timedelta(days=days_back)
            offsets = [row.last_offset for row in self.of(date)
                       if row.kafka_partition == partition and _hour(row) < first_hour]
            if offsets:
                return max(offsets)
        return -1

    def first_after(self, partition: int, last_hour: Hour) -> int | None:
        """First offset archived in an hour after ``last_hour``; None when none is found."""
        for days_on in range(LOOKAROUND_DAYS + 1):
            date = last_hour[0] + dt.timedelta(days=days_on)
            offsets = [row.first_offset for row in self.of(date)
                       if row.kafka_partition == partition and _hour(row) > last_hour]
            if offsets:
                return min(offsets)
        return None


# What the archiver recorded as skipped in a partition: ranges starting in [first, last].
ReadSkipped = Callable[[int, int, int], list[SkippedRange]]


def _none_skipped(partition: int, first: int, last: int) -> list[SkippedRange]:
    return []


class _Skipped:
    """One partition's skipped ranges, read only where the offsets do not run on."""

    def __init__(self, partition: int, read: ReadSkipped):
        self.partition, self.read = partition, read

    def past(self, expected: int, upto: int) -> int:
        """``expected`` moved past skipped offsets that start there, up to ``upto``: a hole
        made only of skipped offsets is a chain of ranges, each starting where the last ended."""
        for skipped in self.read(self.partition, expected, upto):
            if skipped.first_offset != expected:
                break
            expected = skipped.last_offset + 1
        return expected

    def within(self, first: int, last: int) -> int:
        return skipped_within(self.read(self.partition, first, last), first, last)


def _walk(partition: int, rows: list[HourCompleteness], expected: int,
          skipped: _Skipped) -> tuple[list[str], int]:
    """Gaps inside the window's rows of one partition, and the next offset expected."""
    gaps, previous = [], "the last hour archived before the window"
    for row in sorted(rows, key=lambda row: (row.first_offset, row.last_offset)):
        expected = skipped.past(expected, row.first_offset - 1)
        if row.first_offset > expected:
            gaps.append(f"partition {partition}: offsets {expected}-{row.first_offset - 1} missing "
                        f"(between {previous} and {_label(row)})")
        elif row.first_offset < expected:
            gaps.append(f"partition {partition}: offsets {row.first_offset}-{expected - 1} archived twice "
                        f"({_label(row)})")
        span = row.last_offset - row.first_offset + 1
        if row.records != span and row.records + skipped.within(row.first_offset, row.last_offset) != span:
            gaps.append(f"partition {partition}: {span - row.records} offsets "
                        f"missing inside {row.first_offset}-{row.last_offset} ({_label(row)})")
        expected, previous = max(expected, row.last_offset + 1), _label(row)
    return gaps, expected


def _end_gaps(partition: int, expected: int, first_after: int | None, committed: int | None,
              kafka_ends: Callable[[], dict[int, int]], skipped: _Skipped) -> list[str]:
    """Whether the archive goes on, unbroken, past the cutoff."""
    where = f"partition {partition}"
    if first_after is not None:
        expected = skipped.past(expected, first_after - 1)
        if first_after > expected:
            return [f"{where}: offsets {expected}-{first_after - 1} missing (before the first hour after the cutoff)"]
        if first_after < expected:
            return [f"{where}: offset {first_after} arrived after the cutoff but before offset {expected - 1} "
                    "of the window (timestamps out of offset order)"]
        return []
    if committed is not None:
        expected = skipped.past(expected, committed - 1)
    if committed is not None and committed > expected:
        return [f"{where}: offsets {expected}-{committed - 1} archived but in no archive hour"]
    end = kafka_ends().get(partition, 0)
    if end > expected:
        return [f"{where}: archived up to offset {expected - 1} but Kafka's end offset is {end}: "
                "the archiver has not reached the cutoff yet"]
    if end < expected:
        return [f"{where}: Kafka's end offset {end} is below the archived offset {expected - 1}"]
    return []


def check_completeness(
    window: BatchWindow,
    read_date: Callable[[dt.date], list[HourCompleteness]],
    committed: dict[int, int],
    kafka_ends: Callable[[], dict[int, int]],
    read_skipped: ReadSkipped = _none_skipped,
) -> Completeness:
    """Per partition, the window's offset spans and every gap in them, as readable lines.

    ``read_date`` returns a date's archive_hours rows; ``committed`` is the archiver's
    committed end offset per partition; ``kafka_ends`` (called only when needed) the
    topic's end offsets; ``read_skipped`` (called only where offsets do not run on) the
    ranges of a partition the archiver recorded as skipped.
    """
    rows, hours = _Rows(read_date), window.hours()
    in_window = defaultdict(list)
    for date in window.dates():
        for row in rows.of(date):
            if _hour(row) in hours:
                in_window[row.kafka_partition].append(row)
    result = Completeness(hour_rows=sum(len(partition_rows) for partition_rows in in_window.values()))
    result.partitions = sorted(set(committed) | set(in_window))
    for partition in result.partitions:
        partition_rows = in_window.get(partition, [])
        skipped = _Skipped(partition, read_skipped)
        gaps, expected = _walk(partition, partition_rows, rows.last_before(partition, hours[0]) + 1, skipped)
        gaps += _end_gaps(partition, expected, rows.first_after(partition, hours[-1]),
                          committed.get(partition), kafka_ends, skipped)
        result.gaps.extend(gaps)
        result.rows[partition] = partition_rows
        if partition_rows:
            result.spans[partition] = PartitionSpan(
                min(row.first_offset for row in partition_rows),
                max(row.last_offset for row in partition_rows),
                sum(row.records for row in partition_rows))
    return result


def arrived_after(completeness: Completeness, final: "BatchVersion") -> list[str]:
    """Records archived in the window's hours after the day's final (promoted) version
    read them: outside the offsets it read, per partition. A producer whose clock lags
    stamps a record into hours already counted and reconciled; counting it would change a
    final day, so it is named as a gap (refused unless --allow-gaps, and then the gate fails
    unless `viewcount reconcile --accept-gaps`), never taken in silently."""
    lines = []
    for partition, rows in sorted(completeness.rows.items()):
        first, last = final.input_offsets.get(partition, (None, None))

        def outside(row: HourCompleteness) -> int:
            """Records of the row outside [first, last] (a row straddling an end: its offsets there)."""
            if first is None or row.first_offset > last or row.last_offset < first:
                return row.records
            return min(row.records, max(row.last_offset - last, first - row.first_offset, 0))

        later = [row for row in rows if outside(row)]
        if later:
            records = sum(outside(row) for row in later)
            lines.append(f"partition {partition}: {records:,} records arrived in the window's hours after final "
                         f"version {final.version} read them (offsets {min(r.first_offset for r in later)}-"
                         f"{max(r.last_offset for r in later)}; a producer clock behind?)")
    return lines


def archive_completeness(session: "Session", settings: Settings, window: BatchWindow) -> Completeness:
    """``check_completeness`` of the views topic's archive, read from Cassandra and Kafka."""
    from storage.archive import read_committed_offsets, read_hours, skipped_reader
    from storage.topics import partition_offsets

    topic = settings.views_topic
    return check_completeness(
        window,
        lambda date: read_hours(session, topic, [date]),
        read_committed_offsets(session, topic),
        lambda: {p: end for p, (_, end) in partition_offsets(settings, topic).items()},
        skipped_reader(session, topic),
    )


def refusal(day: dt.date, gaps: list[str]) -> ArchiveIncomplete:
    """The one-line error for an archive with gaps."""
    named = "; ".join(gaps[:GAPS_NAMED])
    more = f"; and {len(gaps) - GAPS_NAMED} more" if len(gaps) > GAPS_NAMED else ""
    return ArchiveIncomplete(f"archive of {day} is incomplete: {named}{more} "
                             "(run the archiver to catch up, or pass --allow-gaps to count what is there)")


def file_gaps(spans: dict[int, PartitionSpan], read: dict[int, tuple[int, int, int]]) -> list[str]:
    """Where the archive files of the window's hours disagree with its archive_hours rows.

    ``read`` is (records, first offset, last offset) per Kafka partition as found in the
    files. Rows can only prove what the files hold if the two agree: a deleted or extra
    file shows here, not in ``check_completeness``.
    """
    gaps = []
    for partition in sorted(set(spans) | set(read)):
        span = spans.get(partition, PartitionSpan(-1, -1, 0))
        records, first, last = read.get(partition, (0, -1, -1))
        if (records, first, last) != (span.records, span.first, span.last):
            rows_say = f"{span.records} ({span.first}-{span.last})" if span.records else "none"
            files_hold = f"{records} ({first}-{last})" if records else "none"
            gaps.append(f"partition {partition}: the archive files hold {files_hold} records of the window's "
                        f"hours where archive_hours lists {rows_say}")
    return gaps
