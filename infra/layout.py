"""The node count a run folder's data was written by, and the refusal to start another.

A single-node stack keeps Kafka's and Cassandra's data in ``kafka/data`` and
``cassandra/data``; a stack of N nodes in ``kafka-1/data`` ... ``kafka-N/data`` and
``cassandra-1/data`` ... ``cassandra-N/data``. MinIO's archive (``minio/data``) and the
streaming jobs' checkpoints (``checkpoints/``) are one folder in every layout and name
Kafka offsets of the cluster that wrote them. Another node count beside such data would
start empty servers next to old checkpoints and an old archive, or join nodes without
streaming to a ring whose tokens were spread for another count: ``stack up`` refuses it.
"""

from __future__ import annotations

import re
from pathlib import Path

from settings.errors import UserError
from settings.environment import Settings, stack_layout

NODE_HOME = re.compile(r"^(kafka|cassandra)(?:-([1-9]))?$")  # infra.servers names them so
SHARED_DATA = ("minio/data", "checkpoints")  # written by any layout, read by the next one


def _holds_data(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def _node_order(name: str) -> tuple[int, str]:
    return (0 if name.startswith("kafka") else 1, name)


def written_layouts(run_dir: Path) -> dict[int, list[str]]:
    """Node count -> the node folders of ``run_dir`` holding data a stack of that many
    nodes wrote; empty when no node has written anything (a fresh or wiped run folder)."""
    single, numbered = [], {}
    for home in run_dir.iterdir() if run_dir.is_dir() else ():
        match = NODE_HOME.match(home.name)
        if match is None or not _holds_data(home / "data"):
            continue
        if match[2] is None:
            single.append(home.name)
        else:
            numbered[home.name] = int(match[2])
    layouts = {1: sorted(single, key=_node_order)} if single else {}
    if numbered:
        # A start that failed half-way wrote some nodes only; stack.env has the count it was for.
        planned = int(stack_layout(run_dir).get("VIEWCOUNT_STACK_NODES", "0") or 0)
        layouts[max(*numbered.values(), planned)] = sorted(numbered, key=_node_order)
    return layouts


def require_same_layout(settings: Settings, nodes: int) -> None:
    """A one-line UserError, before anything starts, when the run folder holds data that
    another node count than ``nodes`` wrote."""
    run_dir = settings.run_dir
    layouts = written_layouts(run_dir)
    if not layouts or set(layouts) == {nodes}:
        return
    held = " and ".join(f"a {count}-node stack ({', '.join(f'{name}/data' for name in names)})"
                        for count, names in sorted(layouts.items()))
    wipe = [run_dir / name for names in layouts.values() for name in names]
    wipe += [run_dir / shared for shared in SHARED_DATA if (run_dir / shared).exists()]
    back = f"go back with `viewcount stack up --nodes {next(iter(layouts))}`, or " if len(layouts) == 1 else ""
    raise UserError(
        f"{run_dir} holds data written by {held}, which {nodes} node(s) would start beside without "
        f"reading it; {back}wipe it: `viewcount stack down`, then remove {', '.join(map(str, wipe))} "
        f"(or use another VIEWCOUNT_HOME)"
    )
