"""Which version a batch run writes, and which one a promotion may serve."""

from __future__ import annotations

import datetime as dt

import pytest

from batch_layer.completeness import Completeness, PartitionSpan
from batch_layer.promotion import chosen_version
from batch_layer.versions import input_fingerprint, next_version, reusable_version, rules_version
from counting.window import BatchWindow
from storage.batch_results import COMPLETE, RUNNING, BatchVersion
from settings.errors import UserError

D = dt.date(2026, 11, 25)


def version(number: int, status: str = COMPLETE, fingerprint: str = "a") -> BatchVersion:
    return BatchVersion(D, number, status, fingerprint)


def fingerprint(grace_minutes=60, spans=None, gaps=()):
    completeness = Completeness(spans=spans or {0: PartitionSpan(0, 99, 100)}, gaps=list(gaps))
    return input_fingerprint(BatchWindow(D, dt.timedelta(minutes=grace_minutes)), completeness, "rules")


def test_the_fingerprint_changes_with_cutoff_offsets_gaps_and_rules_only():
    same = fingerprint()

    assert fingerprint() == same
    assert fingerprint(grace_minutes=90) != same
    assert fingerprint(spans={0: PartitionSpan(0, 100, 101)}) != same
    assert fingerprint(gaps=["partition 0: offsets 5-6 missing"]) != same
    completeness = Completeness(spans={0: PartitionSpan(0, 99, 100)})
    assert input_fingerprint(BatchWindow(D), completeness, "other rules") != same


def test_rules_version_is_stable_within_a_process():
    assert rules_version() == rules_version() and len(rules_version()) == 16


def test_the_rules_version_covers_every_rule_file():
    """Every file of counting/ (the day rule, the window, the parse, the dedupe) and the
    batch's recompute: a change to any of them makes the next batch a new version."""
    from pathlib import Path

    import counting
    from batch_layer.versions import rule_modules

    covered = {Path(module.__file__).resolve() for module in rule_modules()}
    files = {path.resolve() for path in Path(counting.__file__).parent.glob("*.py") if path.name != "__init__.py"}
    assert files <= covered
    assert {"day.py", "window.py", "events.py", "views.py", "recompute.py"} <= {path.name for path in covered}


def test_a_rerun_rewrites_the_complete_version_with_the_same_input():
    existing = [version(3, fingerprint="b"), version(2, fingerprint="a"), version(1, fingerprint="a")]

    assert reusable_version(existing, "a").version == 2
    assert reusable_version(existing, "c") is None
    assert next_version(existing) == 4 and next_version([]) == 1


def test_a_run_that_stopped_part_way_is_rewritten_only_when_no_complete_one_matches():
    assert reusable_version([version(1, RUNNING)], "a").version == 1
    assert reusable_version([version(2, RUNNING), version(1)], "a").version == 1


def test_promotion_takes_the_newest_complete_version_by_default():
    assert chosen_version(D, [version(3, RUNNING), version(2), version(1)], None) == 2
    assert chosen_version(D, [version(3, RUNNING), version(2), version(1)], 1) == 1


@pytest.mark.parametrize("versions, requested, message", [
    ([], None, "day 2026-11-25 has no batch version: run `viewcount batch --date 2026-11-25` first"),
    ([version(1, RUNNING)], None, "day 2026-11-25 has no complete batch version (versions: 1 (running))"),
    ([version(1)], 2, "day 2026-11-25 has no version 2 (versions: 1 (complete))"),
    ([version(2, RUNNING), version(1)], 2,
     "version 2 of 2026-11-25 is not complete, it cannot be served (versions: 1 (complete), 2 (running))"),
])
def test_promotion_refuses_what_cannot_be_served(versions, requested, message):
    with pytest.raises(UserError) as error:
        chosen_version(D, versions, requested)

    assert str(error.value) == message
