"""Which backend a registry URL names: a folder path, ``file://``, ``s3://`` (and the
other fsspec schemes) or ``oci://``. Kept apart from ``backends.py`` so the optional
backends can import the base classes without a cycle."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable
from urllib.parse import urlsplit

from mlgitops.deploy.registry import Registry
from mlgitops.deploy.registry.backends import Backend, BackendError, FolderBackend

if TYPE_CHECKING:
    from mlgitops.config.loader import LoadedConfig


#: URL scheme -> factory(url, base folder). Optional backends import their SDK lazily,
#: so a folder registry needs none of them installed.
SCHEMES: dict[str, Callable[[str], Backend]] = {}


def _fsspec(url: str) -> Backend:
    from mlgitops.deploy.registry.fsspec_backend import FsspecBackend

    return FsspecBackend(url)


def _oci(url: str) -> Backend:
    from mlgitops.deploy.registry.oci import OciBackend

    return OciBackend(url)


for _scheme in ("s3", "gs", "gcs", "az", "abfs", "memory"):
    SCHEMES[_scheme] = _fsspec
SCHEMES["oci"] = _oci


def open_backend(url: str, base: Path) -> Backend:
    """The backend for ``url``: a ``scheme://`` URL, ``file://`` or a folder path
    (relative to ``base``, the folder of mlops.yaml)."""
    if url.startswith("file://"):
        return FolderBackend(Path(url.removeprefix("file://")), url)
    if "://" not in url:
        path = Path(url).expanduser()
        return FolderBackend(path if path.is_absolute() else base / path, url)
    scheme = urlsplit(url).scheme.lower()
    factory = SCHEMES.get(scheme)
    if factory is None:
        known = ", ".join(f"{s}://" for s in sorted(SCHEMES))
        raise BackendError(f"registry URL {url!r}: unknown scheme {scheme!r} (known: file paths, file://, {known})", hint="e.g. registry: {url: s3://my-bucket/models} or registry: {url: oci://ghcr.io/OWNER/REPO/models}")
    return factory(url)


def backend_for_blob_uri(uri: str) -> tuple[Backend, str] | None:
    """A pin's artifact URI as (backend, sha256) when it names a registry blob of a
    remote backend; None for plain file paths (read directly)."""
    if "://" not in uri or uri.startswith("file://"):
        return None
    scheme = urlsplit(uri).scheme.lower()
    if scheme == "oci":
        from mlgitops.deploy.registry.oci import OciBackend

        return OciBackend.for_blob_uri(uri)
    if scheme in SCHEMES:
        from mlgitops.deploy.registry.fsspec_backend import FsspecBackend

        return FsspecBackend.for_blob_uri(uri)
    return None


def registry_for(cfg: LoadedConfig) -> Registry:
    """The registry ``cfg`` names: ``registry.url`` (a backend by URL) or ``registry.path``."""
    spec = cfg.config.registry
    return Registry(open_backend(spec.url or spec.path, cfg.root))
