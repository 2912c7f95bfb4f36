"""Temp folders a run owns, named by its pid, and the sweep that removes the ones a
killed run left behind (issue 11: no debris after any crash).

A `finally` block cannot run under SIGKILL or an abort in native code, so every temp
folder holding a run's data (staged cache entries, the training CSVs, the base ref's
checkout) carries its owner's pid in its name; the next run removes those whose owner
is gone. tempfile offers no owner-aware cleanup, hence this small module.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

OWNED = re.compile(r"^mlops-(stage|train|base|ref)-(\d+)-")


def owned_prefix(kind: str) -> str:
    """The mkdtemp prefix of a folder this process owns, e.g. ``mlops-stage-4242-``."""
    return f"mlops-{kind}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive, and not ours to judge
    return True


def sweep(root: Path | None = None, tmp: Path | None = None) -> list[Path]:
    """Remove this user's owned temp folders whose process is gone; when ``root`` (a git
    repository) is given, also forget worktrees whose folder was removed."""
    base = tmp or Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = OWNED.match(entry.name)
        if not match or int(match[2]) == os.getpid() or _alive(int(match[2])):
            continue
        try:
            if entry.is_symlink() or not entry.is_dir() or entry.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    if removed and root is not None:
        subprocess.run(["git", "worktree", "prune"], cwd=root, capture_output=True)
    return removed
