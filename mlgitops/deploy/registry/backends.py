"""Where registry bytes live, chosen by URL: a folder, object storage, an OCI registry.

Every backend stores two kinds of things:

* **blobs**, named by the sha256 of their bytes (model files, ONNX, reports). Writing
  the same blob twice is harmless; a reader always re-hashes what it gets.
* **records**, small JSON documents under '/'-separated keys
  (``models/<name>/<N>.json``, ``candidates/<name>/<model key>.json``,
  ``holds/<name>/<env>.json``). :meth:`Backend.create` publishes a record only if its
  key is free, atomically, so two racing deploys can never both claim version N:

  - folder: a hard link, which fails when the name exists;
  - S3 (and GCS, Azure through fsspec): a conditional create (``If-None-Match: *``);
  - OCI: tags cannot be created conditionally, so a writer pushes a unique claim tag,
    lists the claims, and seals the key only when its claim is alone (see ``oci.py``).

The registry (``mlgitops.deploy.registry.Registry``) builds versions, candidates and holds on
these few operations, so each backend is small and every backend behaves the same.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

from mlgitops.errors import InputError


class BackendError(InputError):
    """A backend that cannot be reached, refuses us, or is misconfigured."""


class Backend(Protocol):
    url: str  # as shown to users (never carries credentials)

    def put_blob(self, sha256: str, data: bytes) -> None: ...

    def get_blob(self, sha256: str) -> bytes | None: ...

    def has_blob(self, sha256: str) -> bool: ...

    def blob_uri(self, sha256: str) -> str: ...

    def create(self, key: str, data: bytes) -> bool: ...

    def read(self, key: str) -> bytes | None: ...

    def write(self, key: str, data: bytes) -> None: ...

    def list(self, prefix: str) -> list[str]: ...

    def delete(self, key: str) -> None: ...

    def delete_blob(self, sha256: str) -> None: ...


def blob_key(sha256: str) -> str:
    return f"objects/{sha256[:2]}/{sha256}"


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:12]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FolderBackend:
    """A folder (local disk, a shared volume). Blobs under ``objects/ab/<sha256>``."""

    def __init__(self, root: Path, url: str | None = None) -> None:
        self.root = root
        self.url = url or str(root)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts):
            raise BackendError(f"registry key {key!r} is not a plain relative path")
        return self.root.joinpath(*parts)

    def blob_path(self, sha256: str) -> Path:
        return self._path(blob_key(sha256))

    def put_blob(self, sha256: str, data: bytes) -> None:
        final = self.blob_path(sha256)
        if final.is_file() and final.stat().st_size == len(data):
            return
        _atomic_write(final, data)

    def get_blob(self, sha256: str) -> bytes | None:
        try:
            return self.blob_path(sha256).read_bytes()
        except FileNotFoundError:
            return None

    def has_blob(self, sha256: str) -> bool:
        return self.blob_path(sha256).is_file()

    def blob_uri(self, sha256: str) -> str:
        return self.blob_path(sha256).resolve().as_uri()

    def create(self, key: str, data: bytes) -> bool:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".new.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, final)  # fails if the name was taken meanwhile
            except FileExistsError:
                return False
            return True
        finally:
            Path(tmp).unlink(missing_ok=True)

    def read(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write(self, key: str, data: bytes) -> None:
        _atomic_write(self._path(key), data)

    def list(self, prefix: str) -> list[str]:
        folder = self._path(prefix.rstrip("/"))
        if not folder.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_blob(self, sha256: str) -> None:
        self.blob_path(sha256).unlink(missing_ok=True)
