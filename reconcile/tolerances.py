"""How far a cell may diverge and still be within tolerance; no Spark, so the command line
can check its flags before anything starts.

A cell is within tolerance when |speed - batch| <= abs + rel x batch. Billable videos
default to exact (0, 0), non-billable ones to 10 views and 1%. A flag wins over the
environment variable VIEWCOUNT_RECONCILE_<NAME> (e.g. VIEWCOUNT_RECONCILE_NONBILLABLE_ABS),
which wins over the default.

Billable tolerances looser than exact are an override of the billing gate: the summary's
gate lists them (``billable_tolerances_loosened``), the report shows them first, and a
promotion of a version that passed with them is recorded like an unreconciled one.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass

from storage.reconciliations import EXACT_BILLABLE, billable_loosened
from settings.environment import ReconcileKnobs

DEFAULTS = {**EXACT_BILLABLE, "nonbillable_abs": 10.0, "nonbillable_rel": 0.01}


@dataclass(frozen=True)
class Tolerances:
    billable_abs: float = DEFAULTS["billable_abs"]
    billable_rel: float = DEFAULTS["billable_rel"]
    nonbillable_abs: float = DEFAULTS["nonbillable_abs"]
    nonbillable_rel: float = DEFAULTS["nonbillable_rel"]

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in DEFAULTS}

    def billable_loosened(self) -> dict[str, float]:
        """The billable tolerances looser than exact (name -> value; {} when exact)."""
        return billable_loosened(self.as_dict())  # storage's: the promotion reads it back there


def non_negative_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number >= 0")
    return value


def add_tolerance_arguments(parser: argparse.ArgumentParser) -> None:
    for name, default in DEFAULTS.items():
        kind, measure = name.split("_")
        allowed = "views" if measure == "abs" else "times the batch count (0.01 = 1%%)"
        parser.add_argument(f"--{kind}-{measure}-tolerance", dest=name, type=non_negative_number, metavar="X",
                            help=f"a {kind} cell diverging by at most abs + rel x batch is within tolerance; "
                                 f"{measure}: X {allowed} (env VIEWCOUNT_RECONCILE_{name.upper()}; "
                                 f"default {default:g})")


def tolerances_from(given: Mapping[str, float | None], environment: ReconcileKnobs) -> Tolerances:
    """The values given (flags; None or absent: not given), then VIEWCOUNT_RECONCILE_<NAME>
    (``environment``, read at the edge), then the defaults."""
    return Tolerances(**{
        name: next(value for value in (given.get(name), getattr(environment, name), default) if value is not None)
        for name, default in DEFAULTS.items()
    })
