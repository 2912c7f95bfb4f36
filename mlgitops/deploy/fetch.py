"""Deploy targets fetch the pinned model by its pin: a file path, or a registry object
on any backend (``s3://.../objects/ab/<sha256>``, ``oci://HOST/REPO:sha256-<hex>``).

Remote objects go through a local content-addressed cache
(``$MLOPS_CACHE_DIR/objects/ab/<sha256>``, default ``$XDG_CACHE_HOME/mlgitops``, else
``~/.cache/mlgitops``), so a restart or a pod on the same node does not download the
model again, and a target keeps starting while the registry is down. The cache is
keyed by the *pinned* sha256 and every read re-hashes the entry: a corrupted or
tampered entry is deleted and fetched again, never served. Entries are written to a
temporary file and renamed, so a reader never sees half a model.

The pin is the trust anchor (it went through review in git); the registry, the network
and the cache are not, so the bytes are hashed after every read, wherever they came
from.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import urlsplit

from mlgitops.errors import InputError
from mlgitops.deploy.manifest import ManifestError, Pin, resolve_uri

HEX = frozenset("0123456789abcdef")


def cache_root() -> Path:
    """``$MLOPS_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlgitops``, else ``~/.cache/mlgitops``."""
    explicit = os.environ.get("MLOPS_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "mlgitops"


def cache_path(sha256: str, cache: Path | None = None) -> Path:
    return (cache if cache is not None else cache_root()) / "objects" / sha256[:2] / sha256


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_remote(uri: str) -> bool:
    """A URI read through a registry backend (anything with a scheme but file://)."""
    return "://" in uri and not uri.startswith("file://")


def fetch_pinned(pin: Pin, base: Path, where: str, cache: Path | None = None) -> bytes:
    """The pinned artifact's bytes, their sha256 checked against the pin.

    ``base``: the folder relative file paths are relative to (that of mlops.yaml);
    ``where``: the manifest as users know it (``deploy/staging.yaml``), for messages;
    ``cache``: the cache folder (default :func:`cache_root`). File paths are read
    directly (no cache); remote URIs through the cache.
    """
    data = fetch_remote(pin, where, cache)
    if data is not None:
        return data
    return verify_artifact(pin, base, where)


def fetch_remote(pin: Pin, where: str, cache: Path | None = None) -> bytes | None:
    """For a remote pin, its verified bytes (through the cache); None for a file path or
    file:// URI, which the caller reads itself. ``verify_artifact`` delegates
    here, so every reader of a pin (deploy, rollback, status, monitor, serve, pull)
    handles every backend the same way."""
    if not is_remote(pin.uri):
        return None
    if len(pin.sha256) != 64 or not set(pin.sha256) <= HEX:  # read_pin checked it; a hand-built Pin may not be
        raise ManifestError(f"{where}: model.sha256: expected 64 lowercase hex digits, got {pin.sha256!r}")
    entry = cache_path(pin.sha256, cache)
    cached = _read_cache(entry, pin.sha256)
    if cached is not None:
        return cached
    backend, blob_sha = _backend_for(pin.uri, where)
    try:
        data = backend.get_blob(blob_sha)
    except InputError as exc:  # BackendError: unreachable, refused, misconfigured
        raise InputError(f"{where}: model.uri: cannot fetch {pin.uri}: {exc.message}", hint=exc.hint or _UNREACHABLE_HINT) from None
    except OSError as exc:  # connection refused, DNS, timeouts, a full disk: environment, not a bug
        raise InputError(f"{where}: model.uri: cannot fetch {pin.uri}: {type(exc).__name__}: {exc}", hint=_UNREACHABLE_HINT) from None
    if data is None:
        raise ManifestError(f"{where}: model.uri: the pinned artifact {pin.uri} does not exist in the registry {backend.url}", hint="the registry was cleaned, or the pin names another registry; redeploy with `mlops rollback ENV --to VERSION`")
    digest = _sha256(data)
    if digest != pin.sha256:
        raise ManifestError(f"{where}: model.sha256: the artifact {pin.uri} hashes to {digest[:12]}, not the pinned {pin.sha256[:12]}; refusing to use it", hint="the registry object was changed or corrupted, or the pin was edited by hand; redeploy it with `mlops rollback ENV --to VERSION` or restore the registry")
    _write_cache(entry, data)
    return data


_UNREACHABLE_HINT = "check the registry's address and credentials from this machine (the SDK's usual environment variables or config); a model already in the local cache is served without the registry"


def _backend_for(uri: str, where: str) -> tuple[object, str]:
    from mlgitops.deploy.registry.urls import SCHEMES, backend_for_blob_uri

    try:
        found = backend_for_blob_uri(uri)
    except InputError as exc:  # a malformed URI, an SDK that is not installed
        raise InputError(f"{where}: model.uri: {exc.message if uri in exc.message else f'{uri}: {exc.message}'}", hint=exc.hint) from None
    except ImportError as exc:
        scheme = urlsplit(uri).scheme.lower()
        raise InputError(f"{where}: model.uri: {uri} needs a package that is not installed: {exc}", hint=f"install mlgitops with the extra for {scheme}:// (e.g. pip install 'mlgitops[{'oci' if scheme == 'oci' else 's3'}]')") from None
    if found is None:  # only for a scheme no backend knows: a known one's malformed URI raised above
        scheme = urlsplit(uri).scheme.lower()
        known = ", ".join(f"{s}://" for s in sorted(SCHEMES))
        raise ManifestError(f"{where}: model.uri: {uri} has an unknown scheme {scheme!r} (known: file paths, file://, {known})", hint="pins name registry objects (.../objects/ab/<sha256>, or oci://HOST/REPO:sha256-<hex>); promotion PRs write them")
    return found


def _read_cache(entry: Path, sha256: str) -> bytes | None:
    """The cached bytes when they still hash to ``sha256``; a bad entry is removed."""
    try:
        data = entry.read_bytes()
    except OSError:  # absent (the usual case), or unreadable: fetch it again
        return None
    if _sha256(data) == sha256:
        try:
            os.utime(entry)  # last used now: `mlops gc --local-cache` prunes by it
        except OSError:
            pass
        return data
    try:
        entry.unlink()  # corrupted or tampered with: never served, fetched again
    except OSError:
        pass
    return None


def _write_cache(entry: Path, data: bytes) -> None:
    """Best effort: a read-only or full disk costs a download next time, not the fetch."""
    from mlgitops.deploy.registry.backends import _atomic_write

    try:
        _atomic_write(entry, data)
    except OSError:
        pass


def verify_artifact(pin: Pin, base: Path, where: str) -> bytes:
    """The pinned artifact's bytes, refusing a missing file or a hash mismatch. A
    registry URI (s3://, oci://, ...) is fetched through the verified local cache."""
    remote = fetch_remote(pin, where)
    if remote is not None:
        return remote
    path = resolve_uri(pin.uri, base)
    if not path.is_file():
        raise ManifestError(f"{where}: model.uri: the pinned artifact {pin.uri} does not exist ({path})", hint="the registry folder must be readable here (registry.path in mlops.yaml)")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != pin.sha256:
        raise ManifestError(f"{where}: model.sha256: the artifact {pin.uri} hashes to {digest[:12]}, not the pinned {pin.sha256[:12]}; refusing to use it", hint="the file was changed or corrupted; redeploy it with `mlops rollback ENV --to VERSION` or restore the registry")
    return data
