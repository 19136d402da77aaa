"""`viewcount batch` and `viewcount promote` refuse bad arguments on one line, exit 2,
before touching Spark or any server."""

from __future__ import annotations

import datetime as dt

import pytest

from viewcount.cli import main


def run(capsys, *args: str) -> tuple[int, str]:
    try:
        status = main(list(args))
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    return status, capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (("batch", "--date", "2026-13-01"), "'2026-13-01' is not a date YYYY-MM-DD"),
    (("batch", "--date", "yesterday"), "is not a date"),
    (("batch", "--date", "2026-11-20", "--grace", "5x"), "'5x' is not a duration"),
    (("batch", "--date", "2026-11-20", "--grace", "30h"), "grace 30h is longer than 24 hours"),
    (("batch",), "the following arguments are required: --date"),
    (("promote", "--date", "2026-11-20", "--version", "0"), "'0' is not a version number"),
])
def test_bad_arguments_are_one_line_and_exit_2(capsys, args, message):
    status, err = run(capsys, *args)

    assert status == 2
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("days_ago, grace", [(0, "1h"), (-3, "1h"), (1, "24h")])
def test_a_day_whose_cutoff_is_ahead_is_refused(capsys, days_ago, grace):
    day = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=days_ago)

    status, err = run(capsys, "batch", "--date", str(day), "--grace", grace)

    assert status == 2
    assert err.startswith(f"viewcount batch: error: day {day} is not over yet: ")
    assert len(err.strip().splitlines()) == 1
