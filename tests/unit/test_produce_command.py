"""``viewcount produce`` as a user meets it: options, one-line errors, no stack traces."""

from __future__ import annotations

import pytest

from viewcount import cli
from producer import kafka_sink
from tests.support.ports import free_port


def run_cli(argv, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--events", "ten"], "argument --events: 'ten' is not a positive whole number"),
    (["--events", "0"], "argument --events: 0 is not a positive whole number"),
    (["--events", "5", "--day", "2026-02-30"], "argument --day: '2026-02-30' is not a date YYYY-MM-DD (from 1970-01-01 on)"),
    (["--events", "5", "--day", "20261125"], "argument --day: '20261125' is not a date YYYY-MM-DD (from 1970-01-01 on)"),
    (["--events", "5", "--late", "1.5"], "argument --late: 1.5 is not a fraction between 0 and 1"),
    (["--events", "5", "--rate", "-3"], "argument --rate: -3 is not a positive rate"),
    (["--events", "5", "--zipf", "nan"], "argument --zipf: nan is not an exponent between 0.01 and 10"),
    ([], "the following arguments are required: --events"),
])
def test_bad_options_exit_2_with_one_line(argv, message, capsys):
    code, err = run_cli(["produce", *argv], capsys)
    assert code == 2
    assert err == f"viewcount produce: error: {message}\n"


def test_fractions_that_do_not_add_up_are_refused(capsys):
    code, err = run_cli(["produce", "--events", "5", "--duplicates", "0.6", "--malformed", "0.6"], capsys)
    assert (code, err) == (2, "viewcount produce: error: --duplicates plus --malformed must not exceed 1\n")


def test_unreachable_kafka_says_to_start_the_stack(capsys, monkeypatch, tmp_path):
    port = free_port()
    monkeypatch.setenv("VIEWCOUNT_KAFKA_BOOTSTRAP", f"127.0.0.1:{port}")
    monkeypatch.setattr(kafka_sink, "CONNECT_TIMEOUT_S", 1)
    code, err = run_cli(["produce", "--events", "5", "--oracle", str(tmp_path / "o")], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "Kafka is not reachable" in err and "viewcount stack up" in err
    assert not (tmp_path / "o").exists()
