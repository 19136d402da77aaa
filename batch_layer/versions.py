"""Which version of day D a run writes: a new one, or the one it would write again.

A version is identified by its input fingerprint: the arrival window and cutoff, the
archive offsets read per Kafka partition, the gaps accepted, and the counting rules (a
hash of the ``counting`` modules' source and of this layer's recompute). Two runs with
the same fingerprint compute the same rows, so a rerun rewrites its version instead of
adding one; any change of input or rules gives the next number.
"""

from __future__ import annotations

import hashlib
import inspect
import json

from storage.batch_results import COMPLETE, BatchVersion

from batch_layer.completeness import Completeness
from counting.window import BatchWindow


def rules_version() -> str:
    """A hash of the source of every module that decides what counts."""
    import counting.event_time
    import counting.events
    import counting.reasons
    import counting.views

    from batch_layer import recompute

    digest = hashlib.sha256()
    for module in (counting.reasons, counting.event_time, counting.events, counting.views, recompute):
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
