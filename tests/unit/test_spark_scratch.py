"""Spark scratch folders of killed drivers are removed by the next session, not kept forever."""

from __future__ import annotations

import os
import subprocess

from settings.environment import Settings
from spark_runtime.session import scratch_dir


def test_folders_of_dead_processes_go_and_live_ones_stay(tmp_path):
    settings = Settings.from_env().replaced(run_dir=tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()
    root = tmp_path / "spark-tmp"
    (root / str(dead.pid) / "userFiles-x").mkdir(parents=True)
    (root / str(dead.pid) / "userFiles-x" / "bundle.jar").write_bytes(b"0" * 1024)
    (root / "1").mkdir()  # init never dies
    (root / "notes").mkdir()  # not a process folder: left alone

    mine = scratch_dir(settings)

    assert mine == root / str(os.getpid()) and mine.is_dir()
    assert sorted(p.name for p in root.iterdir()) == sorted(["1", "notes", str(os.getpid())])
