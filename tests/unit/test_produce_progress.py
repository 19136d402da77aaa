"""``viewcount produce``'s progress: a tqdm bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from producer.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_progress_is_a_plain_line_now_and_then():
    stream = io.StringIO()
    progress = Progress(1000, stream)
    progress.update(10, 5)  # less than 10 s after the start: nothing yet
    assert stream.getvalue() == ""

    progress.update(500, 400, force=True)
    line = stream.getvalue()
    assert line.endswith("\n") and "\r" not in line and "\x1b" not in line
    assert "produced" in line and "500/1.00k" in line and "acked 400" in line
    progress.finish("sent 1,000 records")
    assert stream.getvalue() == line + "sent 1,000 records\n"


def test_on_a_terminal_progress_is_a_bar_rewritten_in_place_and_erased():
    stream = Terminal()
    progress = Progress(1000, stream)
    progress.update(500, 400, force=True)
    progress.update(1000, 1000, force=True)
    assert "\r" in stream.getvalue() and "acked" in stream.getvalue()
    progress.finish("sent 1,000 records")
    assert stream.getvalue().endswith("sent 1,000 records\n")
