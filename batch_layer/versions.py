"""Which version of day D a run writes: a new one, or the one it would write again.

A version is identified by its input fingerprint: the arrival window and cutoff, the
archive offsets read per Kafka partition, the gaps accepted, and the counting rules (a
hash of every ``counting`` module's source and of this layer's recompute). Two runs with
the same fingerprint compute the same rows, so a rerun rewrites its version instead of
adding one; any change of input or rules gives the next number.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import pkgutil
from types import ModuleType

from storage.batch_results import COMPLETE, BatchVersion

from batch_layer.completeness import Completeness
from counting.window import BatchWindow


def rule_modules() -> list[ModuleType]:
    """Every module that decides what counts: each module of ``counting`` (found, not
    listed, so a new rule file is covered the day it is added) and this layer's recompute."""
    import counting

    from batch_layer import recompute

    names = sorted(module.name for module in pkgutil.iter_modules(counting.__path__))
    return [importlib.import_module(f"counting.{name}") for name in names] + [recompute]


def rules_version() -> str:
    """A hash of the source of every module that decides what counts (``rule_modules``)."""
    digest = hashlib.sha256()
    for module in rule_modules():
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()[:16]


def input_fingerprint(window: BatchWindow, completeness: Completeness, rules: str) -> str:
    described = {
        "day": window.day.isoformat(),
        "start": window.start.isoformat(),
        "cutoff": window.cutoff.isoformat(),
        "rules": rules,
        "offsets": {str(p): [s.first, s.last, s.records] for p, s in sorted(completeness.spans.items())},
        "gaps": sorted(completeness.gaps),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def reusable_version(existing: list[BatchVersion], fingerprint: str) -> BatchVersion | None:
    """The version a rerun with this fingerprint rewrites: the newest complete one with the
    same input, else one with the same input that stopped part way (its rows, once
    rewritten, are the same). None: the run needs a new version."""
    same = sorted((v for v in existing if v.input_fingerprint == fingerprint), key=lambda v: v.version)
    complete = [v for v in same if v.status == COMPLETE]
    return (complete or same or [None])[-1]


def next_version(existing: list[BatchVersion]) -> int:
    return max((v.version for v in existing), default=0) + 1
