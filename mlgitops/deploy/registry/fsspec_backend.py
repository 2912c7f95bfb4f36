"""Object storage as a registry backend, through fsspec: ``s3://``, ``gs://``, ``az://``.

One code path for every store fsspec knows (s3fs, gcsfs, adlfs; ``memory://`` for
tests). Under the registry URL ``<scheme>://<bucket>/<prefix>``::

    <prefix>/objects/ab/<sha256>     blobs
    <prefix>/<key>                   records (models/<name>/<N>.json, candidates/...)

Version numbers are claimed with a conditional create (``pipe_file(mode="create")``:
S3 ``If-None-Match: *``, GCS ``ifGenerationMatch=0``), so two runners racing for
version N never both get it. A filesystem that cannot do that is refused rather than
trusted with a check-then-write.

Credentials come only from each SDK's own chain (``AWS_*`` variables, profiles, OIDC
web identity on GitHub Actions, ``GOOGLE_APPLICATION_CREDENTIALS``, ``AZURE_*``),
never from mlops.yaml; an S3-compatible store (MinIO, R2, moto) is reached with the
standard ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` variables, which botocore reads
itself.
"""

from __future__ import annotations

import inspect
import os
import re
import time
from contextlib import contextmanager
from typing import Any, Iterator
from urllib.parse import urlsplit

from mlgitops.deploy.registry.backends import BackendError, blob_key

#: scheme -> (the fsspec package it needs, the mlgitops extra that installs it)
_PACKAGES = {
    "s3": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"),
    "gcs": ("gcsfs", "gcs"),
    "az": ("adlfs", "azure"),
    "abfs": ("adlfs", "azure"),
    "memory": ("fsspec", None),
}

#: Filesystem packages whose own ``pipe_file(mode="create")`` is a server-side
#: conditional create. fsspec's generic fallback (exists, then write) is not atomic and
#: several third-party filesystems accept ``mode`` and ignore it, so only these count.
_CONDITIONAL_CREATE = {"s3fs", "gcsfs", "adlfs"}

#: Fail fast on a dead or unreachable endpoint: botocore's defaults (legacy retries,
#: 60 s connect timeout; s3fs lowers it to 5 s) take ~10 s even for a refused port.
#: AWS_MAX_ATTEMPTS / AWS_RETRY_MODE, when set, win over ours.
_S3_CONNECT_TIMEOUT = 2
_S3_RETRIES = {"max_attempts": 2, "mode": "standard"}  # 1 try + 2 retries

#: Environment values that must never reach a message (scrubbed if an SDK echoes them).
_SECRET_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_CLIENT_SECRET",
)

_SHA256 = re.compile(r"[0-9a-f]{64}")


def _scrub(text: str) -> str:
    for var in _SECRET_VARS:
        value = os.environ.get(var)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """exc, then its causes/contexts (s3fs translates botocore errors and chains them)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen and len(seen) < 10:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _error_code(exc: BaseException) -> str:
    """The service's error code (``NoSuchBucket``, ``PreconditionFailed``...), if any."""
    for e in _chain(exc):
        response = getattr(e, "response", None)
        if isinstance(response, dict):
            error = response.get("Error") or {}
            code = str(error.get("Code") or "")
            if not code:
                status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
                code = str(status or "")
            if code:
                return code
        code = getattr(e, "error_code", None)  # azure-core
        if code:
            return str(code)
    return ""


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for e in _chain(exc) for cls in type(e).__mro__}


def _no_bucket(exc: BaseException) -> bool:
    if _error_code(exc) in ("NoSuchBucket", "ContainerNotFound"):
        return True
    text = " ".join(str(e) for e in _chain(exc)).lower()
    return any(s in text for s in ("bucket does not exist", "container does not exist", "no such bucket"))


class FsspecBackend:
    """A registry under ``<scheme>://<bucket>/<prefix>`` on object storage."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _PACKAGES:
            raise BackendError(f"registry URL {url!r}: scheme {scheme!r} is not object storage (s3://, gs://, az://, abfs://, memory://)")
        if parts.password is not None:
            raise BackendError(f"registry URL {parts.scheme}://{parts.hostname or ''}{parts.path}: credentials do not belong in the URL", hint="remove them from mlops.yaml; the SDK finds them itself (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, OIDC on GitHub Actions, GOOGLE_APPLICATION_CREDENTIALS, AZURE_*)")
        if parts.query or parts.fragment:
            raise BackendError(f"registry URL {url!r}: a query or fragment is not supported", hint="use <scheme>://<bucket>/<prefix>; options come from the SDK's environment (e.g. AWS_ENDPOINT_URL_S3, AWS_REGION)")
        if scheme != "memory" and not parts.netloc:
            raise BackendError(f"registry URL {url!r} names no bucket", hint=f"e.g. registry: {{url: {scheme}://my-bucket/models}}")
        self.scheme = scheme
        self.url = url.rstrip("/")
        self.fs, root = self._open(self.url)
        self._root = root.rstrip("/")

    # -- setup ------------------------------------------------------------------
    def _open(self, url: str) -> tuple[Any, str]:
        package, extra = _PACKAGES[self.scheme]
        install = f"pip install 'mlgitops[{extra}]'" if extra else "pip install fsspec"
        try:
            import fsspec.core
        except ImportError:
            raise BackendError(f"registry {url}: object storage needs fsspec and {package}, which are not installed", hint=install) from None
        # Our own instance, without fsspec's listing cache: two runners race on the
        # same prefix, and a cached listing would hide the other one's version.
        options: dict[str, Any] = {"skip_instance_cache": True, "use_listings_cache": False}
        if self.scheme == "s3":
            config: dict[str, Any] = {"connect_timeout": _S3_CONNECT_TIMEOUT}
            if not (os.environ.get("AWS_MAX_ATTEMPTS") or os.environ.get("AWS_RETRY_MODE")):
                config["retries"] = dict(_S3_RETRIES)
            options["config_kwargs"] = config
        try:
            fs, path = fsspec.core.url_to_fs(url, **options)
        except ImportError:
            raise BackendError(f"registry {url}: the {self.scheme}:// backend needs the {package} package, which is not installed", hint=install) from None
        except ValueError as exc:
            if "protocol" in str(exc).lower():
                raise BackendError(f"registry {url}: fsspec knows no {self.scheme}:// filesystem", hint=install) from None
            raise
        return fs, path

    def _endpoint(self) -> str:
        """Where requests go, for messages (never with credentials)."""
        if self.scheme == "s3":
            client = getattr(self.fs, "_s3", None)
            endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
            endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            if endpoint:
                parts = urlsplit(endpoint)
                return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
            return "AWS S3"
        return {"gs": "Google Cloud Storage", "gcs": "Google Cloud Storage", "az": "Azure Blob Storage", "abfs": "Azure Blob Storage"}.get(self.scheme, self.scheme)

    def _bucket(self) -> str:
        return self._root.lstrip("/").split("/", 1)[0]

    def _credential_hint(self) -> str:
        if self.scheme == "s3":
            return "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or on GitHub Actions use aws-actions/configure-aws-credentials (OIDC); credentials never go in mlops.yaml"
        if self.scheme in ("gs", "gcs"):
            return "set GOOGLE_APPLICATION_CREDENTIALS or run `gcloud auth application-default login`, or on GitHub Actions use google-github-actions/auth; credentials never go in mlops.yaml"
        if self.scheme in ("az", "abfs"):
            return "set AZURE_STORAGE_ACCOUNT_NAME plus AZURE_STORAGE_CONNECTION_STRING, or sign in (az login / azure/login on GitHub Actions); credentials never go in mlops.yaml"
        return "check the store's credentials"

    # -- errors -----------------------------------------------------------------
    @contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        """Turn SDK failures into a BackendError naming the URL (and never a secret).
        FileNotFoundError (a missing key) and FileExistsError pass through."""
        where = f"{self.url}/{key}" if key else self.url
        try:
            yield
        except BackendError:
            raise
        except FileExistsError:
            raise
        except Exception as exc:
            names = _class_names(exc)
            code = _error_code(exc)
            detail = _scrub(str(exc).strip() or type(exc).__name__)
            if isinstance(exc, FileNotFoundError) and not _no_bucket(exc):
                raise
            if _no_bucket(exc):
                raise BackendError(f"registry {self.url}: the bucket {self._bucket()!r} does not exist at {self._endpoint()}", hint=f"create it, or fix registry.url in mlops.yaml (while {action} {where})") from None
            if names & {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError", "DefaultCredentialsError", "ClientAuthenticationError"}:
                raise BackendError(f"registry {self.url}: no usable credentials for {self._endpoint()} while {action} {where}: {detail}", hint=self._credential_hint()) from None
            if isinstance(exc, PermissionError) or code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "AuthorizationFailure", "AuthenticationFailed"):
                raise BackendError(f"registry {self.url}: access denied while {action} {where} ({self._endpoint()}): {detail}", hint=f"grant these credentials read/write on {self.url}/*; {self._credential_hint()}") from None
            if names & {"EndpointConnectionError", "ConnectTimeoutError", "ConnectionError", "ClientConnectorError", "ServerTimeoutError", "ServiceRequestError", "TimeoutError", "FSTimeoutError"} or isinstance(exc, (ConnectionError, TimeoutError)):
                raise BackendError(f"registry {self.url}: cannot reach {self._endpoint()} while {action} {where}: {detail}", hint="check the network and the endpoint (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL for S3-compatible stores)") from None
            if isinstance(exc, OSError) or any(type(e).__module__.split(".")[0] in ("botocore", "aiobotocore", "aiohttp", "google", "azure", "gcsfs", "adlfs", "s3fs") for e in _chain(exc)):
                raise BackendError(f"registry {self.url}: {action} {where} failed: {detail}", hint=f"check that {self.url} is reachable and writable with the current credentials") from None
            raise

    def _path(self, key: str) -> str:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts):
            raise BackendError(f"registry key {key!r} is not a plain relative path")
        return f"{self._root}/{key}"

    # -- conditional create --------------------------------------------------------
    def _check_conditional_create(self) -> None:
        from fsspec.implementations.memory import MemoryFileSystem

        if isinstance(self.fs, MemoryFileSystem):  # one process, "xb" on a dict
            return
        cls = type(self.fs)
        package = cls.__module__.split(".")[0]
        impl = getattr(cls, "_pipe_file", None) if getattr(self.fs, "async_impl", False) else getattr(cls, "pipe_file", None)
        impl_package = getattr(impl, "__module__", "").split(".")[0]
        try:
            has_mode = impl is not None and "mode" in inspect.signature(impl).parameters
        except (TypeError, ValueError):
            has_mode = False
        if package in _CONDITIONAL_CREATE and impl_package == package and has_mode:
            return
        version = getattr(__import__(package), "__version__", "?") if package else "?"
        name = f"{cls.__module__}.{cls.__qualname__}"
        extra = _PACKAGES.get(self.scheme, (None, None))[1]
        hint = f"upgrade it: pip install -U 'mlgitops[{extra}]'" if package in _CONDITIONAL_CREATE and extra else "use s3://, gs://, az:// (or a folder or oci:// registry)"
        raise BackendError(f"registry {self.url}: {name} ({package} {version}) cannot create a record only if it is absent, so version numbers could not be claimed safely", hint=hint)

    # -- Backend ----------------------------------------------------------------
    def put_blob(self, sha256: str, data: bytes) -> None:
        key = blob_key(sha256)
        with self._errors("uploading", key):
            self.fs.pipe_file(self._path(key), data)

    def get_blob(self, sha256: str) -> bytes | None:
        return self.read(blob_key(sha256))

    def has_blob(self, sha256: str) -> bool:
        key = blob_key(sha256)
        path = self._path(key)
        with self._errors("checking", key):
            if self.scheme == "s3" and hasattr(self.fs, "call_s3"):
                # One HEAD: s3fs's exists() follows a missing key with a LIST (is it a
                # "directory"?), which a blob never is; that LIST doubled the cost of
                # every push's "already there?" (bench/RESULTS-registry-s3.md).
                bucket, name, _ = self.fs.split_path(path)
                try:
                    self.fs.call_s3("head_object", Bucket=bucket, Key=name)
                    return True
                except FileNotFoundError:
                    return False
            return bool(self.fs.exists(path))

    def blob_uri(self, sha256: str) -> str:
        return f"{self.url}/{blob_key(sha256)}"

    @classmethod
    def for_blob_uri(cls, uri: str) -> "tuple[FsspecBackend, str]":
        """``s3://bucket/prefix/objects/ab/<sha256>`` -> (the backend of
        ``s3://bucket/prefix``, sha256); what ``mlops pull`` / ``serve`` read pins with."""
        root, sep, tail = uri.rpartition("/objects/")
        parts = tail.split("/")
        if not sep or "://" not in root or len(parts) != 2 or not _SHA256.fullmatch(parts[1]) or parts[0] != parts[1][:2]:
            raise BackendError(f"{uri!r} is not a registry object URI", hint="expected <registry url>/objects/<first 2 hex digits>/<sha256>, as `mlops deploy` writes into pins")
        return cls(root), parts[1]

    def create(self, key: str, data: bytes) -> bool:
        self._check_conditional_create()
        path = self._path(key)
        for attempt in range(5):  # bounded: S3 answers 409 while another conditional write is in flight
            try:
                with self._errors("creating", key):
                    try:
                        self.fs.pipe_file(path, data, mode="create")
                    except OSError as exc:
                        code = _error_code(exc)
                        if code in ("PreconditionFailed", "412"):
                            raise FileExistsError(path) from None
                        if code in ("ConditionalRequestConflict", "409") and attempt < 4:
                            time.sleep(0.2 * (attempt + 1))
                            continue
                        raise
                return True
            except FileExistsError:
                return False
        return False  # pragma: no cover (the loop returns or raises)

    def read(self, key: str) -> bytes | None:
        try:
            with self._errors("reading", key):
                return bytes(self.fs.cat_file(self._path(key)))
        except (FileNotFoundError, IsADirectoryError):
            return None

    def write(self, key: str, data: bytes) -> None:
        with self._errors("writing", key):
            self.fs.pipe_file(self._path(key), data)

    def list(self, prefix: str) -> list[str]:
        prefix = prefix.rstrip("/")
        base = self._path(prefix)
        try:
            with self._errors("listing", prefix + "/"):
                found = self.fs.find(base)
        except FileNotFoundError:
            return []
        root = self._root.strip("/")
        out = []
        for path in found:
            key = path.lstrip("/")
            if root:
                if not key.startswith(root + "/"):
                    continue
                key = key[len(root) + 1:]
            if key.startswith(prefix + "/") and not key.endswith("/") and not key.rsplit("/", 1)[-1].startswith("."):
                out.append(key)
        return sorted(out)

    def delete(self, key: str) -> None:
        try:
            with self._errors("deleting", key):
                self.fs.rm_file(self._path(key))
        except FileNotFoundError:
            pass

    def delete_blob(self, sha256: str) -> None:
        self.delete(blob_key(sha256))
