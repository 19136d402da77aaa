"""Proof that the archive holds every record a day's batch must read, from Cassandra alone.

The archiver records, per arrival hour, Kafka partition and archiver batch, the first and
last offset it wrote and how many records (``archive_hours``), and how far it has read
(``archive_progress``). Kafka timestamps need not grow with offsets: a producer retrying
through a failover, a transaction committed late or a clock behind appends records
stamped hours or days back, so one archiver batch can write records of several hours
whose offset ranges interleave. Per Kafka partition, the rows of one archiver batch whose
ranges overlap form a *piece*; the batch of day D is complete when:

- inside: every piece holding records of the window's hours fills its range (its rows'
  records, over every hour, add up to ``last - first + 1``);
- before: the first such piece follows the piece before it (or starts at offset 0);
- between and after: the pieces from it up to the first piece past the window's last one
  that holds a record of an hour after the cutoff follow each other without a hole. When
  no later hour holds the partition yet, the archive must reach the topic's stable end
  instead (now is past the cutoff), and no transaction may be open there: its records lie
  past the last stable offset and may be stamped in the window.

Records stamped in the window that arrive after that (after the batch read it) are found
by the nightly restatement (``batch_layer.restatement``), not here.

Offsets no reader receives (a transactional producer's markers and aborted records) are
skipped, not missing, where the archiver recorded them as such (``archive_skipped_offsets``):
the run goes on through them. The rows prove the files only if the two agree, so
``file_gaps`` then compares them with what the files of the window's hours hold (a file
deleted with its row left in place).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from storage.archive import HourCompleteness, SkippedRange, skipped_within
from settings.errors import UserError

from counting.window import BatchWindow, Hour
from settings.environment import Settings

if TYPE_CHECKING:
    from cassandra.cluster import Session

    from storage.batch_results import BatchVersion

# How far before and after the window to look for a partition's neighbouring offsets, at
# most: only where the rows of the days next to the window leave a hole (records stamped
# out of offset order, a quiet partition). It covers the restatement horizon's default
# (the broker refuses records stamped further back, storage.topics) with a day to spare.
LOOKAROUND_DAYS = 8
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
    # The gaps that waiting can close (the archiver behind the topic, an open transaction);
    # every other gap lies below what the archiver committed and stays.
    pending: list[str] = field(default_factory=list)
    rows: dict[int, list[HourCompleteness]] = field(default_factory=dict)  # the window's rows per partition

    @property
    def records(self) -> int:
        return sum(span.records for span in self.spans.values())

    @property
    def lasting(self) -> list[str]:
        """The gaps no wait will close."""
        return [gap for gap in self.gaps if gap not in self.pending]

    def summary(self) -> str:
        offsets = ", ".join(f"p{p} {s.first}-{s.last}" for p, s in sorted(self.spans.items()))
        return (f"{len(self.partitions)} partitions, {self.records:,} archived records in "
                f"{self.hour_rows:,} hour rows (offsets {offsets or 'none'})")


def _label(row: HourCompleteness) -> str:
    return f"{row.arrival_date}T{row.arrival_hour:02d} batch {row.batch_id}"


def _hour(row: HourCompleteness) -> Hour:
    return row.arrival_date, row.arrival_hour


class _Rows:
    """archive_hours rows by date, read once each."""

    def __init__(self, read_date: Callable[[dt.date], list[HourCompleteness]]):
        self._read_date = read_date
        self._by_date: dict[dt.date, list[HourCompleteness]] = {}

    def of(self, date: dt.date) -> list[HourCompleteness]:
        if date not in self._by_date:
            self._by_date[date] = self._read_date(date)
        return self._by_date[date]

    def around(self, window: BatchWindow, days: int) -> list[HourCompleteness]:
        """The rows of the window's dates and of ``days`` dates either side."""
        dates = window.dates()
        first, last = dates[0] - dt.timedelta(days=days), dates[-1] + dt.timedelta(days=days)
        return [row for n in range((last - first).days + 1) for row in self.of(first + dt.timedelta(days=n))]


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


@dataclass
class _Piece:
    """Offsets one archiver batch wrote for one partition, over every hour it wrote them
    to: its rows whose offset ranges overlap. A batch's records of two hours interleave in
    offsets when their producers' clocks disagree; together they must fill their range."""

    rows: list[HourCompleteness]
    first: int
    last: int
    records: int

    @property
    def label(self) -> str:
        return _label(min(self.rows, key=lambda row: row.first_offset))

    def holds(self, hours: set[Hour]) -> bool:
        return any(_hour(row) in hours for row in self.rows)

    def after(self, last_hour: Hour) -> bool:
        return any(_hour(row) > last_hour for row in self.rows)


def _pieces(rows: list[HourCompleteness]) -> list[_Piece]:
    by_batch: dict[int, list[HourCompleteness]] = defaultdict(list)
    for row in rows:
        by_batch[row.batch_id].append(row)
    pieces = []
    for batch_rows in by_batch.values():
        current: _Piece | None = None
        for row in sorted(batch_rows, key=lambda row: (row.first_offset, row.last_offset)):
            if current is not None and row.first_offset <= current.last:
                current.rows.append(row)
                current.last, current.records = max(current.last, row.last_offset), current.records + row.records
            else:
                current = _Piece([row], row.first_offset, row.last_offset, row.records)
                pieces.append(current)
    return sorted(pieces, key=lambda piece: (piece.first, piece.last))


@dataclass
class _Ends:
    """What Kafka says of the partitions' ends, asked only where the archive has no later hour."""

    stable: Callable[[], dict[int, int]]  # the last stable offsets, where readers of committed records stop
    log: Callable[[], dict[int, int]] | None = None  # the high watermarks

    def open_transaction(self, partition: int, stable: int) -> int | None:
        """The log's end when records of an open transaction lie past ``stable``."""
        if self.log is None:
            return None
        end = self.log().get(partition, stable)
        return end if end > stable else None


def _partition_gaps(partition: int, rows: list[HourCompleteness], window_hours: set[Hour], last_hour: Hour,
                    committed: int | None, ends: _Ends, skipped: _Skipped) -> tuple[list[str], list[str]]:
    """(gaps, the pending ones among them) of one partition, from its rows of every hour read.

    The window's records are proven archived when the pieces holding them, and every piece
    between them and the first piece after them that holds a record of a later hour, fill
    their ranges and follow each other without a hole (offsets recorded as skipped are no
    hole); the first of them must follow the piece before it (or start at offset 0). Where
    no later hour holds the partition yet, the archive must reach the topic's stable end.
    """
    pieces = _pieces(rows)
    in_window = [i for i, piece in enumerate(pieces) if piece.holds(window_hours)]
    later = [i for i, piece in enumerate(pieces) if piece.after(last_hour)]
    start = in_window[0] if in_window else (later[0] if later else len(pieces))
    last_in_window = in_window[-1] if in_window else start - 1
    where, gaps, pending = f"partition {partition}", [], []
    if start > 0:
        expected, previous = pieces[start - 1].last + 1, pieces[start - 1].label
    else:
        expected, previous = 0, "the last hour archived before the window"
    for i in range(start, len(pieces)):
        piece = pieces[i]
        closing = i > last_in_window and piece.after(last_hour)
        expected = skipped.past(expected, piece.first - 1)
        if piece.first > expected:
            between = "before the first hour after the cutoff" if closing else f"between {previous} and {piece.label}"
            gaps.append(f"{where}: offsets {expected}-{piece.first - 1} missing ({between})")
            if committed is None or piece.first > committed:  # a batch the archiver is still writing
                pending.append(gaps[-1])
        elif piece.first < expected:
            gaps.append(f"{where}: offsets {piece.first}-{expected - 1} archived twice ({piece.label})")
        span = piece.last - piece.first + 1
        if piece.holds(window_hours) and piece.records != span \
                and piece.records + skipped.within(piece.first, piece.last) != span:
            gaps.append(f"{where}: {span - piece.records} offsets missing inside {piece.first}-{piece.last} "
                        f"({piece.label})")
        expected, previous = max(expected, piece.last + 1), piece.label
        if closing:
            return gaps, pending
    if committed is not None:
        expected = skipped.past(expected, committed - 1)
    if committed is not None and committed > expected:
        gaps.append(f"{where}: offsets {expected}-{committed - 1} archived but in no archive hour")
        return gaps, pending
    end = ends.stable().get(partition, 0)
    if end > expected:
        line = (f"{where}: archived up to offset {expected - 1} but Kafka's end offset is {end}: "
                "the archiver has not reached the cutoff yet")
    elif end < expected:
        line = f"{where}: Kafka's end offset {end} is below the archived offset {expected - 1}"
    elif (log_end := ends.open_transaction(partition, end)) is not None:
        line = (f"{where}: a transaction open at offset {end} holds offsets {end}-{log_end - 1} back from "
                "readers: waiting for it to commit or abort (its records may be stamped in the window)")
    else:
        return gaps, pending
    gaps.append(line)
    if end > expected or log_end is not None:
        pending.append(line)
    return gaps, pending


def check_completeness(
    window: BatchWindow,
    read_date: Callable[[dt.date], list[HourCompleteness]],
    committed: dict[int, int],
    kafka_ends: Callable[[], dict[int, int]],
    read_skipped: ReadSkipped = _none_skipped,
    log_ends: Callable[[], dict[int, int]] | None = None,
) -> Completeness:
    """Per partition, the window's offset spans and every gap in them, as readable lines.

    ``read_date`` returns a date's archive_hours rows; ``committed`` is the archiver's
    committed end offset per partition; ``kafka_ends`` (called only when needed) the
    topic's stable end offsets and ``log_ends`` its high watermarks (an open transaction
    lies between); ``read_skipped`` (called only where offsets do not run on) the ranges
    of a partition the archiver recorded as skipped. The rows of the window's dates and
    the day either side are read first; where they leave a gap, those of
    ``LOOKAROUND_DAYS`` either side (the neighbours of a quiet partition, records stamped
    days before they were appended).
    """
    rows, hours = _Rows(read_date), window.hours()
    window_hours, ends = set(hours), _Ends(kafka_ends, log_ends)
    in_window = defaultdict(list)
    for date in window.dates():
        for row in rows.of(date):
            if _hour(row) in window_hours:
                in_window[row.kafka_partition].append(row)
    result = Completeness(hour_rows=sum(len(partition_rows) for partition_rows in in_window.values()))
    result.partitions = sorted(set(committed) | set(in_window))
    for days in (1, LOOKAROUND_DAYS):
        nearby = defaultdict(list)
        for row in rows.around(window, days):
            nearby[row.kafka_partition].append(row)
        result.gaps, result.pending = [], []
        for partition in result.partitions:
            gaps, pending = _partition_gaps(partition, nearby.get(partition, []), window_hours, hours[-1],
                                            committed.get(partition), ends, _Skipped(partition, read_skipped))
            result.gaps.extend(gaps)
            result.pending.extend(pending)
        if result.gaps == result.pending:
            break
    for partition in result.partitions:
        partition_rows = in_window.get(partition, [])
        result.rows[partition] = partition_rows
        if partition_rows:
            result.spans[partition] = PartitionSpan(
                min(row.first_offset for row in partition_rows),
                max(row.last_offset for row in partition_rows),
                sum(row.records for row in partition_rows))
    return result


def arrived_after(completeness: Completeness, final: "BatchVersion") -> list[str]:
    """Records archived in the window's hours after the day's final (promoted) version
    read them: outside the offsets it read, per partition, as readable lines. The nightly
    run restates a day that has any (``batch_layer.restatement``)."""
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
        lambda: {p: end for p, (_, end) in partition_offsets(settings, topic, committed=False).items()},
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
