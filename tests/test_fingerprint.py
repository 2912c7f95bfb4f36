"""Fingerprints decide cache hits: they must move when content moves."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mlgitops.gitrepo import GitTree, HashCache, WorkTree
from tests.helpers import GitRepo


def test_hash_cache_reuses_and_notices_changes(tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    big.write_bytes(b"a" * (2 << 20))
    cache = HashCache(tmp_path / "hashes.json")
    first = cache.sha256(big)
    assert first == hashlib.sha256(big.read_bytes()).hexdigest()
    cache.save()
    reloaded = HashCache(tmp_path / "hashes.json")
    assert reloaded.sha256(big) == first and not reloaded.dirty
    big.write_bytes(b"b" * (2 << 20))  # same size, new content and mtime
    assert reloaded.sha256(big) == hashlib.sha256(big.read_bytes()).hexdigest() != first
    (tmp_path / "hashes.json").write_text("{not json")
    assert HashCache(tmp_path / "hashes.json").entries == {}


def test_worktree_code_files_ignore_what_git_ignores(repo: GitRepo) -> None:
    repo.gen({"src/model.py": "x = 1\n", "src/util.py": "y = 2\n", ".gitignore": ".mlops/\n*.egg-info/\n"})
    repo.commit("code")
    repo.gen({"src/pkg.egg-info/PKG-INFO": "junk\n", "src/new.py": "z = 3\n"})
    assert WorkTree(repo.path).files_under("src") == ["src/model.py", "src/new.py", "src/util.py"]
    assert WorkTree(repo.path).files_under("./src/model.py") == ["src/model.py"]
    tree = GitTree(repo.path, repo.git("rev-parse", "HEAD"))
    assert tree.files_under("src/") == ["src/model.py", "src/util.py"]
    assert tree.read_sha256("src/model.py") == hashlib.sha256(b"x = 1\n").hexdigest()
    assert tree.read_sha256("nope.py") is None
