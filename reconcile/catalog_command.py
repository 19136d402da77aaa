"""``viewcount catalog load FILE`` / ``viewcount catalog show VIDEO...``: the video catalog
billing reads.

The CSV has a header row with ``video_id``, ``billable`` and ``rate_per_1000`` (and the
optional ``currency`` and ``title``), one video per row::

    video_id,billable,rate_per_1000,currency,title
    rNxKq3Zb2aE,true,2.50,EUR,Launch trailer

``billable`` is true/false (also yes/no, 1/0); ``rate_per_1000`` is a decimal >= 0 with
at most 6 decimal places (money per 1,000 views); ``currency`` is the rate's ISO 4217
code (three capital letters). A row without a currency takes ``--currency``'s; with
neither, the file is refused: money is never summed across currencies. The whole
file is checked before anything is written: a bad row is reported with its line number
and nothing is loaded. Rows are upserted, so loading the same file again changes nothing.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

from counting.reasons import VIDEO_ID_PATTERN
from storage.catalog import CatalogEntry
from settings.errors import UserError
from settings.environment import Settings

REQUIRED = ("video_id", "billable", "rate_per_1000")
CURRENCY = re.compile(r"^[A-Z]{3}$")  # ISO 4217 alphabetic code
TRUE, FALSE = {"true", "yes", "1"}, {"false", "no", "0"}
MAX_RATE_PLACES = 6


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    load = actions.add_parser("load", help="upsert the videos of a CSV file into the catalog")
    load.add_argument("file", type=Path, metavar="FILE",
                      help="CSV: video_id,billable,rate_per_1000[,currency][,title]")
    load.add_argument("--currency", type=_currency_argument, metavar="CODE",
                      help="ISO 4217 currency of the rates of rows without a currency column value, e.g. EUR")
    show = actions.add_parser("show", help="print the catalog rows of some videos")
    show.add_argument("videos", nargs="+", metavar="VIDEO")


def _billable(text: str, line: int) -> bool:
    value = text.strip().lower()
    if value not in TRUE | FALSE:
        raise UserError(f"line {line}: billable {text!r} is not true or false")
    return value in TRUE


def _currency_argument(text: str) -> str:
    if not CURRENCY.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 4217 currency code (three capital letters)")
    return text


def _currency(text: str, default: str | None, line: int) -> str:
    value = text.strip()
    if not value and default is None:
        raise UserError(f"line {line}: no currency: add a currency column (ISO 4217, e.g. EUR) or pass --currency")
    if value and not CURRENCY.match(value):
        raise UserError(f"line {line}: currency {text!r} is not an ISO 4217 code (three capital letters)")
    return value or default


def _rate(text: str, line: int) -> Decimal:
    try:
        rate = Decimal(text.strip())
    except InvalidOperation:
        rate = None
    if rate is None or not rate.is_finite() or rate < 0 or -rate.as_tuple().exponent > MAX_RATE_PLACES:
        raise UserError(f"line {line}: rate_per_1000 {text!r} is not a decimal >= 0 with at most "
                        f"{MAX_RATE_PLACES} decimal places")
    return rate


def parse_catalog(text: str, currency: str | None = None) -> list[CatalogEntry]:
    """Every entry of a catalog CSV, or a UserError naming the first bad line; ``currency``
    for rows without one."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [name for name in REQUIRED if name not in (reader.fieldnames or [])]
    if missing:
        raise UserError(f"the CSV header lacks {', '.join(missing)} "
                        f"(expected {','.join(REQUIRED)}[,currency][,title])")
    entries, seen = [], {}
    for row in reader:
        line = reader.line_num
        video_id = (row["video_id"] or "").strip()
        if not re.fullmatch(VIDEO_ID_PATTERN[1:-1], video_id):
            raise UserError(f"line {line}: video_id {video_id!r} is not 1-64 characters of [A-Za-z0-9_-]")
        if video_id in seen:
            raise UserError(f"line {line}: video {video_id} is already on line {seen[video_id]}")
        seen[video_id] = line
        title = (row.get("title") or "").strip() or None
        entries.append(CatalogEntry(video_id, _billable(row["billable"] or "", line),
                                    _rate(row["rate_per_1000"] or "", line), title,
                                    _currency(row.get("currency") or "", currency, line)))
    return entries


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read {path}: {error}") from None


def run(args: argparse.Namespace) -> int:
    from storage.cassandra import connect
    from storage.catalog import read_entries, upsert_entries

    entries = parse_catalog(_read(args.file), args.currency) if args.action == "load" else []
    session = connect(Settings.from_env())
    try:
        if args.action == "load":
            written = upsert_entries(session, entries)
            billable = sum(entry.billable for entry in entries)
            print(f"catalog: loaded {written:,} videos ({billable:,} billable) from {args.file}")
            return 0
        found = read_entries(session, args.videos)
    finally:
        session.cluster.shutdown()
    for video in args.videos:
        entry = found.get(video)
        print(f"{video}: not in the catalog" if entry is None else
              f"{video}: {'billable' if entry.billable else 'not billable'}, rate {entry.rate_per_1000}"
              f"{' ' + entry.currency if entry.currency else ''} per 1,000"
              f"{', ' + entry.title if entry.title else ''}")
    return 0 if len(found) == len(set(args.videos)) else 1
