"""Data versioned with DVC: ``data.path`` tracked by a ``<path>.dvc`` file beside it or
as an output in a ``dvc.lock`` (its folder or a parent's).

* Fingerprint: DVC's own md5, read from the pointer in the tree (the working tree for
  the candidate, the base commit for the baseline), so a plan never needs the data.
* Candidate: the version the working tree's pointer names (the PR head), read from the
  file on disk when its md5 matches, else through DVC's API (its cache, else its
  remote) at the head commit.
* Baseline: the version the base commit's pointer names, fetched through DVC's API with
  ``rev=<base sha>`` into the base worktree (never the working tree's file, which is the
  PR's data).

``dvc`` is imported only when a pointer is found (the ``dvc`` extra)."""

from __future__ import annotations

import hashlib
import os
import posixpath
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlgitops.errors import DataError

INSTALL_HINT = "pip install 'mlgitops[dvc]'"


@dataclass(frozen=True)
class Pointer:
    """One DVC-tracked file: its md5 (DVC's hash) and the file that says so."""

    md5: str
    size: int | None
    source: str  # the .dvc file or dvc.lock, relative to the tree it was read from

    def short(self) -> str:
        return self.md5[:12]


def _yaml(raw: bytes | None) -> Any:
    if raw is None:
        return None
    import yaml

    try:
        return yaml.safe_load(raw.decode("utf-8", "replace"))
    except yaml.YAMLError:
        return None


def _out(outs: Any, name: str) -> tuple[str, int | None] | None:
    for out in outs if isinstance(outs, list) else []:
        if isinstance(out, dict) and posixpath.normpath(str(out.get("path", ""))) == name and isinstance(out.get("md5"), str) and not out["md5"].endswith(".dir"):
            size = out.get("size")
            return out["md5"], size if isinstance(size, int) else None
    return None


def find(read: Any, rel: str) -> Pointer | None:
    """The pointer of ``rel`` in a tree read by ``read(rel) -> bytes | None``: the
    ``<rel>.dvc`` file, else a ``dvc.lock`` output in its folder or a parent's."""
    if rel.startswith("sklearn:") or posixpath.isabs(rel):
        return None
    rel = posixpath.normpath(rel)
    folder, name = posixpath.split(rel)
    doc = _yaml(read(f"{rel}.dvc"))
    found = _out(doc.get("outs"), name) if isinstance(doc, dict) else None
    if found:
        return Pointer(found[0], found[1], f"{rel}.dvc")
    parts = folder.split("/") if folder else []
    for depth in range(len(parts), -1, -1):
        here = "/".join(parts[:depth])
        lock = _yaml(read(posixpath.join(here, "dvc.lock") if here else "dvc.lock"))
        if not isinstance(lock, dict) or not isinstance(lock.get("stages"), dict):
            continue
        inner = posixpath.relpath(rel, here) if here else rel
        for stage in lock["stages"].values():
            found = _out(stage.get("outs") if isinstance(stage, dict) else None, inner)
            if found:
                return Pointer(found[0], found[1], posixpath.join(here, "dvc.lock") if here else "dvc.lock")
    return None


def in_tree(tree: Any, rel: str) -> Pointer | None:
    """:func:`find` over a :mod:`mlgitops.gitrepo` tree (WorkTree, GitTree, Prefixed)."""
    return find(tree.read_bytes, rel)


def on_disk(path: Path) -> tuple[Pointer, Path, str] | None:
    """The pointer of a file on disk, the git work tree it is in and its path there."""
    top = _toplevel(path.parent)
    if top is None:
        return None
    try:
        rel = (path.parent.resolve() / path.name).relative_to(top.resolve()).as_posix()
    except ValueError:
        return None

    def read(name: str) -> bytes | None:
        p = top / name
        return p.read_bytes() if p.is_file() else None

    pointer = find(read, rel)
    return (pointer, top, rel) if pointer else None


def md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_tracked(path: Path, shown: str) -> bytes | None:
    """The bytes of ``path`` at the version its DVC pointer names, or None when it is not
    tracked by DVC. On disk when the file there has that md5; else through DVC's API at
    the work tree's HEAD (when the pointer is committed as it is), else at the workspace."""
    found = on_disk(path)
    if found is None:
        return None
    pointer, top, rel = found
    if path.is_file() and md5_file(path) == pointer.md5:
        return path.read_bytes()
    head = _git(top, "rev-parse", "HEAD")
    committed = find(lambda name: _show(top, head, name), rel) if head else None
    rev = head if committed == pointer else None
    return fetch(top, rel, rev, pointer, shown)


def fetch(repo: Path, rel: str, rev: str | None, pointer: Pointer, shown: str) -> bytes:
    """``rel`` at ``rev`` through DVC's API (its cache, else its remote), md5 checked."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    try:
        import dvc.api
    except ImportError:
        raise DataError(f"{shown} is tracked by DVC ({pointer.source}, md5 {pointer.short()}) but the dvc package is not installed", hint=INSTALL_HINT) from None
    at = f" at {rev[:7]}" if rev else ""
    try:
        with dvc.api.open(rel, repo=str(repo), rev=rev, mode="rb") as fh:
            raw = fh.read()
    except Exception as exc:  # noqa: BLE001 - DVC raises many kinds (no remote, missing object, auth)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{shown}{at}: DVC could not read md5 {pointer.short()} ({pointer.source}): {first}", hint="`dvc push` the data to the remote in .dvc/config, or `dvc pull` it here") from None
    digest = hashlib.md5(raw, usedforsecurity=False).hexdigest()
    if digest != pointer.md5:
        raise DataError(f"{shown}{at}: DVC returned data with md5 {digest[:12]}, not the {pointer.short()} that {pointer.source} names", hint="`dvc add` the file again (the working tree's copy differs from its .dvc) or `dvc checkout` it")
    return raw


def materialize(root: Path, sha: str, rel: str, target: Path) -> bool:
    """Write ``rel`` (repo-relative) as tracked by DVC at commit ``sha`` to ``target``;
    False when it is not DVC-tracked there."""
    from mlgitops.gitrepo import GitTree

    pointer = in_tree(GitTree(root, sha), rel)
    if pointer is None:
        return False
    if target.is_file() and not target.is_symlink() and md5_file(target) == pointer.md5:
        return True
    raw = fetch(root, rel, sha, pointer, f"data file {rel!r}")
    if target.is_symlink() or target.exists():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(raw)
    return True


def versions(cfg: Any, root: Path, config_rel: str, base_sha: str | None) -> dict[str, Any]:
    """For the report's ``data``: ``{"dvc": {"pointer", "md5", "base_md5"}}`` when the
    candidate's data is tracked by DVC, else ``{}``."""
    from mlgitops.gitrepo import GitTree, Prefixed, WorkTree

    path = cfg.config.data.path
    pointer = in_tree(WorkTree(cfg.root), path)
    if pointer is None:
        return {}
    base = None
    if base_sha is not None:
        config_dir = posixpath.dirname(config_rel)
        base = in_tree(Prefixed(GitTree(root, base_sha), config_dir), path)
    return {"dvc": {"pointer": pointer.source, "md5": pointer.md5, "base_md5": base.md5 if base else None}}


def _toplevel(folder: Path) -> Path | None:
    out = _git(folder, "rev-parse", "--show-toplevel")
    return Path(out) if out else None


def _git(cwd: Path, *args: str) -> str | None:
    if not cwd.is_dir():
        return None
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def _show(top: Path, sha: str, name: str) -> bytes | None:
    proc = subprocess.run(["git", "show", f"{sha}:{name}"], cwd=top, capture_output=True)
    return proc.stdout if proc.returncode == 0 else None
