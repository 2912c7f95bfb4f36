"""A run killed outright (SIGKILL, an abort in native code) cannot clean up after
itself; the next run removes the temp folders it left: staged cache entries, the
training CSVs (the data), the base ref's checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from mlgitops.run.debris import owned_prefix, sweep
from mlgitops.plan.store import Store


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_next_run_removes_what_a_killed_run_left(tmp_path: Path) -> None:
    dead = _dead_pid()
    tmp = Path(tempfile.gettempdir())
    left = [Path(tempfile.mkdtemp(prefix=f"mlops-{kind}-{dead}-")) for kind in ("stage", "train", "base", "ref")]
    (left[1] / "train.csv").write_text("secret,rows\n")
    live = Path(tempfile.mkdtemp(prefix=f"mlops-stage-{os.getppid()}-"))  # a run still going: kept
    mine = Path(tempfile.mkdtemp(prefix=owned_prefix("train")))  # this process's own: kept
    near = Path(tempfile.mkdtemp(prefix=f"mlops-stages-{dead}-"))  # not one of ours: kept
    try:
        repo = tmp_path / "repo"
        repo.mkdir()
        subprocess.run(["git", "init", "--quiet", str(repo)], check=True)
        Store(repo, trusted=False)  # every run builds its store first
        assert [p.exists() for p in left] == [False] * 4
        assert live.exists() and mine.exists() and near.exists()
        assert sweep(repo, tmp) == []  # nothing more to remove
    finally:
        for p in (live, mine, near, *left):
            subprocess.run(["rm", "-rf", str(p)])
