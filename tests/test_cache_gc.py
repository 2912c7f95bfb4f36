"""`mlops gc --local-cache`: the machine's cache of fetched models pruned by last use
(a cache hit counts as a use), and old Prefect database templates; nothing else."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from mlgitops.deploy import fetch
from mlgitops.deploy.cache_gc import prune
from mlgitops.service.prefect_db import template_key

DAY = 86400.0


def cached(root: Path, data: bytes, age_days: float) -> Path:
    sha = hashlib.sha256(data).hexdigest()
    entry = fetch.cache_path(sha, root)
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_bytes(data)
    then = time.time() - age_days * DAY
    os.utime(entry, (then, then))
    return entry


def test_old_entries_and_other_releases_templates_go_the_rest_stays(tmp_path: Path, cli_noprefect, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "cache"
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(root))
    old = cached(root, b"o" * 2_000_000, 31)
    recent = cached(root, b"r" * 1000, 29)
    stray = root / "objects" / old.parent.name / f"{old.name}.tmp123"  # a write in progress: not an entry
    stray.write_bytes(b"partial")
    os.utime(stray, (0, 0))
    (root / "prefect-db").mkdir()
    (root / "prefect-db" / "prefect-3.4.0-0123456789abcdef.db").write_bytes(b"x" * 500_000)
    current = root / "prefect-db" / f"{template_key()}.db"
    current.write_bytes(b"y" * 10)
    (root / "clones").mkdir()  # another part of the cache (the worker's clones): never touched
    (root / "clones" / "keep").write_text("k")

    result = cli_noprefect("gc", "--local-cache", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert result.output == f"removed 1 cached models unused for 30 days (kept 1) and 1 old Prefect database templates from {root}: 2.5 MB freed\n"
    assert not old.exists() and recent.exists() and stray.exists() and current.exists() and (root / "clones" / "keep").exists()
    assert sorted(p.name for p in (root / "prefect-db").iterdir()) == [current.name]

    again = cli_noprefect("gc", "--local-cache", "--older-than", "0", "--json", cwd=tmp_path)
    assert json.loads(again.output) == {"cache": str(root), "older_than_days": 0.0, "objects_removed": 1, "objects_kept": 0, "templates_removed": 0, "bytes_freed": 1000}
    assert not recent.exists()


def test_the_age_limit_is_inclusive_to_the_second(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    at = cached(tmp_path, b"at the limit", 0)
    past = cached(tmp_path, b"one second past", 0)
    os.utime(at, (now - 7 * DAY, now - 7 * DAY))
    os.utime(past, (now - 7 * DAY - 1, now - 7 * DAY - 1))
    assert prune(tmp_path, 7, now=now) == {"cache": str(tmp_path), "older_than_days": 7, "objects_removed": 1, "objects_kept": 1, "templates_removed": 0, "bytes_freed": len(b"one second past")}
    assert at.exists() and not past.exists()


def test_a_cache_hit_counts_as_a_use(tmp_path: Path) -> None:
    entry = cached(tmp_path, b"served model", 90)
    before = time.time()
    assert fetch._read_cache(entry, entry.name) == b"served model"
    assert entry.stat().st_mtime >= before - 1  # refreshed: a model in use is not pruned
    assert prune(tmp_path, 30)["objects_removed"] == 0


def test_local_cache_reads_no_repository(tmp_path: Path, cli_noprefect) -> None:
    result = cli_noprefect("gc", "--local-cache", "--config", "mlops.yaml", cwd=tmp_path)
    assert result.exit_code == 2
    assert result.output == "error: --local-cache prunes this machine's cache and reads no repository: drop --config/--repo\n  hint: mlops gc --local-cache [--older-than DAYS]\n"
