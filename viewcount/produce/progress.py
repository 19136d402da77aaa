"""One progress line on stderr, rewritten in place on a terminal (a line every 10 s otherwise)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self._stream = stream or sys.stderr  # resolved now: sys.stderr may be replaced
        self._in_place = self._stream.isatty()
        self._every_s = 0.25 if self._in_place else 10.0
        self._started = time.monotonic()
        self._shown = self._started

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def update(self, generated: int, delivered: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._shown < self._every_s:
            return
        self._shown = now
        rate = generated / max(now - self._started, 1e-9)
        eta = (self.total - generated) / rate if rate else 0.0
        line = (f"produced {generated:,}/{self.total:,} ({100 * generated / max(self.total, 1):.0f}%), "
                f"acked {delivered:,}, {rate:,.0f} events/s, ETA {_duration(eta)}")
        if self._in_place:
            self._stream.write(f"\r\x1b[K{line}")
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def clear(self) -> None:
        if self._in_place:
            self._stream.write("\r\x1b[K")
            self._stream.flush()

    def finish(self, line: str) -> None:
        self.clear()
        self._stream.write(line + "\n")
        self._stream.flush()
