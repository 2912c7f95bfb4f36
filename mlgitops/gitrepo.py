"""Thin helpers over the `git` command line (the real git, never a re-implementation)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import posixpath
import subprocess
from pathlib import Path

from mlgitops.errors import GitError


def git(root: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed in {root}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip()


def repo_root(start: Path) -> Path:
    proc = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=start, capture_output=True, text=True)
    if proc.returncode != 0:
        raise GitError(f"{start} is not inside a git repository", hint="run `git init` and commit your project, or pass --repo PATH")
    return Path(proc.stdout.strip())


def resolve(root: Path, ref: str) -> str | None:
    """Commit sha of ``ref`` (also tries ``origin/<ref>``), or None."""
    for candidate in (ref, f"origin/{ref}"):
        proc = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"], cwd=root, capture_output=True, text=True)
        if proc.returncode == 0:
            return proc.stdout.strip()
    return None


def current_branch(root: Path) -> str | None:
    out = git(root, "rev-parse", "--abbrev-ref", "HEAD", check=False)
    return None if out in ("", "HEAD") else out


class HashCache:
    """sha256 of large files keyed by (path, size, mtime, inode), like DVC's state db:
    a rerun with nothing changed does not re-read a 150 MB CSV."""

    MIN_SIZE = 1 << 20

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.entries: dict[str, list] = {}
        self.dirty = False
        if path is not None and path.is_file():
            try:
                loaded = json.loads(path.read_text())
                self.entries = loaded if isinstance(loaded, dict) else {}
            except (json.JSONDecodeError, OSError):
                self.entries = {}

    def sha256(self, path: Path) -> str:
        st = path.stat()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        key = str(path.resolve())
        hit = self.entries.get(key)
        if st.st_size >= self.MIN_SIZE and isinstance(hit, list) and hit[:3] == stamp:
            return str(hit[3])
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        if st.st_size >= self.MIN_SIZE:
            self.entries[key] = [*stamp, digest.hexdigest()]
            self.dirty = True
        return digest.hexdigest()

    def save(self) -> None:
        if self.path is not None and self.dirty:
            from mlgitops.plan.store import atomic_write

            atomic_write(self.path, json.dumps(self.entries))
            self.dirty = False


#: The cache WorkTree uses; the runner points it at `.mlops/cache/hashes.json`.
HASHES = HashCache()


class WorkTree:
    """Files as they are on disk (the candidate side)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = "working tree"

    def read_sha256(self, rel: str) -> str | None:
        path = self.root / rel
        if not path.is_file():
            return None
        return HASHES.sha256(path)

    def read_bytes(self, rel: str) -> bytes | None:
        path = self.root / rel
        return path.read_bytes() if path.is_file() else None

    def files_under(self, rel: str) -> list[str]:
        """Files git would track under ``rel``: tracked or new, never ignored ones,
        so a stray .egg-info or notebook checkpoint does not change the code sha."""
        rel = posixpath.normpath(rel)
        path = self.root / rel
        if not path.exists():
            return []
        proc = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", rel], cwd=self.root, capture_output=True, text=True)
        if proc.returncode != 0:  # not a git repo: plain listing
            if path.is_file():
                return [rel]
            return sorted(p.relative_to(self.root).as_posix() for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        return sorted(p for p in proc.stdout.split("\0") if p and (self.root / p).is_file())


class GitTree:
    """Files as committed at ``sha`` (the base side), read without a checkout."""

    def __init__(self, root: Path, sha: str) -> None:
        self.root = root
        self.sha = sha
        self.label = sha[:7]
        self._listing: dict[str, str] | None = None

    def _files(self) -> dict[str, str]:
        if self._listing is None:
            out = git(self.root, "ls-tree", "-r", "-z", self.sha)
            self._listing = {}
            for entry in filter(None, out.split("\0")):
                meta, path = entry.split("\t", 1)
                _mode, kind, obj = meta.split()
                if kind == "blob":
                    self._listing[path] = obj
        return self._listing

    def read_bytes(self, rel: str) -> bytes | None:
        obj = self._files().get(rel)
        if obj is None:
            return None
        return subprocess.run(["git", "cat-file", "blob", obj], cwd=self.root, capture_output=True, check=True).stdout

    def read_sha256(self, rel: str, copy_to: Path | None = None) -> str | None:
        """The file's sha256, streamed (never whole in memory); ``copy_to`` also
        writes its bytes there."""
        obj = self._files().get(rel)
        if obj is None:
            return None
        digest = hashlib.sha256()
        with subprocess.Popen(["git", "cat-file", "blob", obj], cwd=self.root, stdout=subprocess.PIPE) as proc, (open(copy_to, "wb") if copy_to else contextlib.nullcontext()) as out:
            assert proc.stdout is not None
            for chunk in iter(lambda: proc.stdout.read(1 << 20), b""):
                digest.update(chunk)
                if out is not None:
                    out.write(chunk)
        return digest.hexdigest()

    def files_under(self, rel: str) -> list[str]:
        rel = posixpath.normpath(rel)
        files = self._files()
        if rel in files:
            return [rel]
        prefix = rel + "/"
        return sorted(p for p in files if p.startswith(prefix) and "__pycache__" not in p)


class Prefixed:
    """A tree seen from a sub-folder (where mlops.yaml lives): paths relative to it."""

    def __init__(self, tree: GitTree, prefix: str) -> None:
        self.tree = tree
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.label = tree.label

    def read_sha256(self, rel: str) -> str | None:
        return self.tree.read_sha256(self.prefix + rel)

    def read_bytes(self, rel: str) -> bytes | None:
        return self.tree.read_bytes(self.prefix + rel)

    def files_under(self, rel: str) -> list[str]:
        return [p[len(self.prefix):] for p in self.tree.files_under(self.prefix + rel)]
