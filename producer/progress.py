"""Progress of ``viewcount produce`` on stderr: a tqdm bar rewritten in place on a terminal;
elsewhere (a log file, CI) the same numbers as one plain line every 10 s."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

LOG_EVERY_S = 10.0


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self._stream = stream or sys.stderr  # resolved now: sys.stderr may be replaced
        self._started = time.monotonic()
        self._logged = self._started
        self._bar = (tqdm(total=total, file=self._stream, unit=" events", unit_scale=True,
                          mininterval=0.25, dynamic_ncols=True, leave=False, desc="produced")
                     if self._stream.isatty() else None)

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def update(self, generated: int, delivered: int, force: bool = False) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(f"acked {delivered:,}", refresh=False)
            self._bar.update(generated - self._bar.n)  # redrawn at most every 0.25 s
            if force:
                self._bar.refresh()
            return
        now = time.monotonic()
        if force or now - self._logged >= LOG_EVERY_S:
            self._logged = now
            meter = tqdm.format_meter(generated, self.total, now - self._started, prefix="produced",
                                      unit=" events", unit_scale=True, postfix=f"acked {delivered:,}")
            self._write(meter + "\n")

    def clear(self) -> None:
        if self._bar is not None:
            self._bar.close()  # leave=False: the bar's line is erased
            self._bar = None

    def finish(self, line: str) -> None:
        self.clear()
        self._write(line + "\n")

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()
