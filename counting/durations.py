"""The one way a duration is written: hours, minutes and seconds, like '1h', '90m', '1h30m',
'10m' or '0s'. The batch's grace (``counting.window``) and the speed layer's watermark
delay (here, with its default) both take it.

Plain Python, no Spark: the command line checks its arguments with it before starting
anything, and the producer's truth table reads the default delay. A bad text raises
ValueError; the command line turns that into its usage error.
"""

from __future__ import annotations

import datetime as dt
import re

DURATION_TEXT = re.compile(r"^(?:[0-9]+[hms])+$")
DURATION_PART = re.compile(r"([0-9]+)([hms])")
UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}
# How far behind the newest event time the speed layer still counts (DESIGN: 10 minutes).
DEFAULT_WATERMARK_DELAY = dt.timedelta(minutes=10)
# A minute bucket's length: dedupe state then outlives every event that could still land
# in the same minute (``counting.views.count_views_per_minute``).
MIN_WATERMARK_DELAY = dt.timedelta(minutes=1)


def parse_duration(text: str) -> dt.timedelta:
    """A duration like '1h', '90m', '1h30m' or '0s'."""
    if not DURATION_TEXT.match(text.strip()):
        raise ValueError(f"{text!r} is not a duration like '1h', '90m' or '1h30m'")
    return dt.timedelta(seconds=sum(int(amount) * UNIT_SECONDS[unit] for amount, unit in DURATION_PART.findall(text)))


def duration_text(duration: dt.timedelta) -> str:
    """The duration as ``parse_duration`` reads it: '1h30m', '10m', '0s'."""
    minutes, seconds = divmod(int(duration.total_seconds()), 60)
    hours, minutes = divmod(minutes, 60)
    text = "".join(f"{amount}{unit}" for amount, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if amount)
    return text or "0s"


def spark_interval(duration: dt.timedelta) -> str:
    """The duration as Spark's interval text (``withWatermark``): '10 minutes', '90 seconds'."""
    seconds = int(duration.total_seconds())
    return f"{seconds // 60} minutes" if seconds % 60 == 0 else f"{seconds} seconds"


def parse_watermark_delay(text: str) -> dt.timedelta:
    """A watermark delay like '10m' or '90s', at least ``MIN_WATERMARK_DELAY``."""
    delay = parse_duration(text)
    if delay < MIN_WATERMARK_DELAY:
        raise ValueError("the watermark delay must be at least 1 minute (a minute bucket's length)")
    return delay
