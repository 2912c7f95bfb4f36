"""An OCI registry (ghcr.io, Docker Hub, Harbor, the CNCF distribution registry) as a
registry backend: ``oci://HOST[:PORT]/REPO/PATH``.

Everything lives in **one repository**, ``REPO/PATH`` (``oci://ghcr.io/acme/shop/models``
is the repository ``acme/shop/models`` on ``ghcr.io``; it must be lowercase, OCI's
repository grammar). Inside it:

* **blobs** are OCI blobs: the bytes are pushed as a blob, so its digest is
  ``sha256:<hex>``, our sha256 (content addressed natively; the registry refuses an
  upload whose bytes do not match the digest). A small artifact manifest
  (``artifactType: application/vnd.mlgitops.blob.v1``, one layer: the blob, titled
  ``<hex>``) is tagged ``sha256-<hex>``, so the registry never garbage-collects the blob
  and ``oras pull HOST/REPO:sha256-<hex>`` fetches it. :meth:`OciBackend.blob_uri` is
  ``oci://HOST/REPO:sha256-<hex>`` (that same reference, with the scheme that says how
  to read it); :meth:`OciBackend.for_blob_uri` parses it back. ``get_blob`` fetches
  ``/v2/REPO/blobs/sha256:<hex>`` directly (one round trip; the Registry re-hashes it).
* **records** (``models/churn/3.json``...) are artifacts
  (``application/vnd.mlgitops.record.v1+json``) whose single layer is the JSON, also
  embedded in the layer descriptor's ``data`` field (OCI image-spec 1.1) so a read is one
  manifest GET. The manifest carries the key (annotation ``io.mlgitops.key``), so two
  keys with equal JSON never share a manifest (deleting one never untags the other).
  Each key has one tag, its **seal**: the key with ``/`` written ``__`` and ``_`` written
  ``_u`` (``models/churn/3.json`` -> ``models__churn__3.json``). Letters (either case),
  digits, ``.`` and ``-`` stay as they are. This is a prefix code, so decoding is
  unambiguous and the encoding injective; ``_`` followed by anything else never comes
  out of it, which leaves ``_c`` (a claim, below) and ``_h`` (a hashed key) free. A key
  whose seal would be longer than 110 characters (room for a claim suffix within OCI's
  128) or would not start with ``[A-Za-z0-9_]`` is tagged ``_h<first 40 hex of its
  sha256>``; its key is read back from the annotation. Blob tags (``sha256-<hex>``) hold
  no ``_``; keys always have a ``/`` (hence ``__``), so blobs and records never meet.
  ``list(prefix)`` reads the tags list (following ``Link`` pagination) and decodes.
  ``write`` re-tags the seal (an overwrite), ``delete`` deletes the seal's manifest and
  the key's claims, by digest (the API deletes manifests; every tag on one goes with it;
  the distribution registry needs ``storage.delete.enabled: true``).

**create (atomic create-if-absent) with mutable tags.** A writer of key K:

1. lists the tags and returns False if K's seal or any claim of K is there (the key
   is taken or burnt: claiming it again would only burn it again);
2. pushes its record under a *claim* tag ``<seal>_c<16 random hex>`` (unique: nobody
   else ever pushes that tag);
3. lists the repository's tags: if K's seal is there, or any claim of K other than its
   own, it lost: it returns False and leaves its claim (the key is burnt: no later
   writer can win it; the Registry takes the next number);
4. otherwise it pushes the seal (the same manifest under K's seal tag) and returns True.

Tied writers (each sees the other's claim) both lose and would move on to the next
number together; a loser pauses a random 0-10 ms, doubling with each loss in a row (at
most 0.5 s), which breaks the symmetry.

Readers (``read``, ``list``) see only seals. *At most one writer wins*, given
read-after-write consistent tag listing (a listing started after a tag push returned
includes that tag; the distribution registry's filesystem storage is): take two
winners A and B. Each pushed its claim before listing. If B's claim push had returned
before A's listing started, A's listing shows B's claim and A loses. Otherwise B's push
returned after A's listing started, hence after A's own claim push returned, and B
listed later still: B's listing shows A's claim and B loses. Either way one of them
lost. A claim is never removed by a writer, so a latecomer sees the winner's claim too.
If our own claim is missing from the listing, the registry is not read-after-write
consistent and ``create`` raises instead of guessing. A writer killed between 2 and 4
leaves the key burnt (never half-published). ``delete`` racing ``create`` on the same
key is outside the guarantee (the Registry never deletes versions).

**Credentials** never come from mlops.yaml (an ``oci://user:pass@...`` URL is refused):

* ``ghcr.io`` with ``GITHUB_TOKEN`` set: user ``GITHUB_ACTOR`` (else ``x-access-token``)
  and that token;
* else ``MLOPS_OCI_USERNAME`` / ``MLOPS_OCI_PASSWORD`` when both are set (only for the
  host in ``MLOPS_OCI_HOST``, when that is set);
* else oras' docker-config auth (``~/.docker/config.json``: ``auths``, ``credHelpers``,
  ``credsStore`` for this host).

They go only to this registry's host: as HTTP Basic when the registry asks for Basic,
or to a Bearer token endpoint (``realm``) on the same host; a realm on another host
gets an anonymous token request (so Docker Hub, whose realm is auth.docker.io, is
read-only here). An upload ``Location`` or a tags ``Link`` on another host gets the
request without credentials, and requests drops ``Authorization`` on a redirect to
another host (blob downloads from ghcr.io redirect to a CDN). Plain HTTP only for
127.0.0.1, localhost and ::1, or with ``MLOPS_OCI_INSECURE=1``; otherwise HTTPS with
certificate checks. Messages never carry a secret (each is scrubbed).

**Why not oras' ``Registry.push``/``pull``.** We use oras-py for its credential
discovery (docker config and credential helpers), its Bearer token exchange
(``TokenAuth.request_token``), and its manifest skeleton and JSON schema. Requests go through our own small ``_request`` over a requests session
because oras' ``push``/``pull`` take file paths (a 50 MB model would go bytes -> temp
file -> bytes), its ``do_request`` retries every failure five times with 3**n-second
sleeps (an unreachable registry takes two minutes to report), answers only Bearer
challenges (a Basic-auth registry fails), sets no timeouts, and raises bare
``ValueError``s; none of which lets us say what went wrong and what to do.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import secrets
import time
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from mlgitops.deploy.registry.backends import BackendError

try:  # the `oci` extra
    import jsonschema
    import oras.auth
    import oras.auth.utils
    import oras.container
    import oras.oci
    import oras.schemas
except ImportError as _exc:  # pragma: no cover - exercised by installs without the extra
    _IMPORT_ERROR: ImportError | None = _exc
else:
    _IMPORT_ERROR = None

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_CONFIG = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2}  # the blob b"{}"
BLOB_TYPE = "application/vnd.mlgitops.blob.v1"
RECORD_TYPE = "application/vnd.mlgitops.record.v1+json"
KEY_ANNOTATION = "io.mlgitops.key"
TITLE = "org.opencontainers.image.title"

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
#: connect, read (a 1 GB model at 10 MB/s is 100 s; the read timeout is per socket read)
TIMEOUT = (10, 120)
#: tries of a request that failed transiently (connection refused/reset, 429, 5xx)
ATTEMPTS = 3
MAX_PAGES = 10_000  # tag-list pages (a bound on the loop; 1000 tags a page)
EMBED_MAX = 64 * 1024  # records up to this size also travel inside their manifest

_REPO = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*")
_SEGMENT = re.compile(r"[A-Za-z0-9_.-]+")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_HEX = re.compile(r"[0-9a-f]{64}")
_CLAIM = re.compile(r"[0-9a-f]{16}")
_SEAL_MAX = 110  # 128 - len("_c" + 16 hex)

_WRITE_HINT = "the token may not write packages: give the job `packages: write` (GitHub Actions: `permissions: packages: write`), or check MLOPS_OCI_USERNAME/MLOPS_OCI_PASSWORD or `docker login`"


# -- key <-> tag ----------------------------------------------------------------------
def _check_key(key: str) -> None:
    parts = key.split("/")
    if len(parts) < 2 or any(p in ("", ".", "..") or not _SEGMENT.fullmatch(p) for p in parts):
        raise BackendError(f"registry key {key!r} is not a relative path of [A-Za-z0-9_.-] names with at least one '/'")


def encode_key(key: str) -> str:
    """The seal tag of ``key`` (see the module docstring)."""
    _check_key(key)
    tag = "".join("__" if c == "/" else "_u" if c == "_" else c for c in key)
    if len(tag) > _SEAL_MAX or not _TAG.fullmatch(tag):
        return "_h" + hashlib.sha256(key.encode()).hexdigest()[:40]
    return tag


def decode_tag(tag: str) -> tuple[str | None, str | None] | None:
    """``(key, claim)`` of one of our tags: key None for a hashed seal (read it from the
    manifest), claim None for a seal; None for a tag we did not write (blobs, others)."""
    if tag.startswith("_h"):
        head, sep, claim = tag[2:].partition("_c")
        if not re.fullmatch(r"[0-9a-f]{40}", head) or (sep and not _CLAIM.fullmatch(claim)):
            return None
        return None, (claim if sep else None)
    out: list[str] = []
    i = 0
    while i < len(tag):
        c = tag[i]
        if c != "_":
            out.append(c)
            i += 1
            continue
        code = tag[i + 1 : i + 2]
        if code == "_":
            out.append("/")
        elif code == "u":
            out.append("_")
        elif code == "c":
            claim = tag[i + 2 :]
            if not _CLAIM.fullmatch(claim):
                return None
            key = "".join(out)
            return (key, claim) if _is_key(key) and encode_key(key) == tag[:i] else None
        else:
            return None
        i += 2
    key = "".join(out)
    return (key, None) if _is_key(key) and encode_key(key) == tag else None


def _is_key(key: str) -> bool:
    try:
        _check_key(key)
    except BackendError:
        return False
    return True


# -- transport ------------------------------------------------------------------------
class _Session(requests.Session):
    """A requests session with a default timeout, also used by oras' token exchange
    (``TokenAuth.request_token`` passes none) so nothing can hang forever."""

    def request(self, method, url, **kwargs):  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = TIMEOUT
        return super().request(method, url, **kwargs)


class _Unavailable(BackendError):
    """Transient failures outlasted our retries (unreachable, 429, 5xx)."""


class OciBackend:
    """A registry in one OCI repository (see the module docstring for the layout)."""

    def __init__(self, url: str) -> None:
        if _IMPORT_ERROR is not None:
            raise BackendError(f"registry URL {url!r} needs oras-py ({_IMPORT_ERROR})", hint="pip install 'mlgitops[oci]'")
        parts = urlsplit(url)
        where = f"registry URL {url!r}"
        example = "e.g. registry: {url: oci://ghcr.io/OWNER/REPO/models}"
        if parts.scheme.lower() != "oci":
            raise BackendError(f"{where} is not oci://HOST/REPOSITORY", hint=example)
        if "@" in parts.netloc:
            raise BackendError(f"registry URL oci://...@{parts.netloc.rpartition('@')[2]}{parts.path}: credentials do not belong in mlops.yaml", hint="remove them from the URL; set MLOPS_OCI_USERNAME/MLOPS_OCI_PASSWORD (or GITHUB_TOKEN for ghcr.io, or `docker login`) in the environment instead")
        try:
            host, _port = parts.hostname, parts.port  # parts.port raises on a non-number
        except ValueError:
            raise BackendError(f"{where}: the port is not a number", hint=example) from None
        if not host:
            raise BackendError(f"{where} has no host", hint=example)
        if parts.query or parts.fragment:
            raise BackendError(f"{where}: an OCI registry URL has no ?query or #fragment", hint=example)
        repo = parts.path.strip("/")
        if not repo:
            raise BackendError(f"{where} names no repository (oci://HOST/REPOSITORY)", hint=example)
        if ":" in repo or "@" in repo:
            raise BackendError(f"{where}: give the repository only, no :tag or @digest", hint=example)
        if not _REPO.fullmatch(repo) or len(repo) > 255:
            raise BackendError(f"{where}: {repo!r} is not an OCI repository name (lowercase letters, digits, '.', '_', '-' between them, '/'-separated)", hint=f"e.g. oci://{parts.netloc}/{repo.lower()}" if repo.lower() != repo else example)
        self.host = host.lower()
        self.netloc = parts.netloc.lower()
        self.repo = repo
        self.url = f"oci://{self.netloc}/{repo}"
        self.plain_http = self.host in LOOPBACK or os.environ.get("MLOPS_OCI_INSECURE") == "1"
        self.base = f"{'http' if self.plain_http else 'https'}://{self.netloc}"
        self.session = _Session()
        # Registries sometimes set cookies (Harbor takes them as a browser: CSRF); oras ignores them too
        self.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self._auth = oras.auth.get_auth_backend("token", self.session, self.plain_http)
        self._authorization: str | None = None
        self._secrets: list[str] = []
        self._creds_source: str | None = None
        self._creds_loaded = False
        self._config_pushed = False
        self._losses = 0  # create() lost in a row (its backoff)

    def __repr__(self) -> str:
        return f"OciBackend({self.url!r})"

    @classmethod
    def for_blob_uri(cls, uri: str) -> tuple["OciBackend", str]:
        """``oci://HOST/REPO:sha256-<hex>`` (what :meth:`blob_uri` gives) as (backend, sha256)."""
        parts = urlsplit(uri)
        m = re.fullmatch(r"/(.+):sha256-([0-9a-f]{64})", parts.path)
        if parts.scheme.lower() != "oci" or not m or parts.query or parts.fragment:
            raise BackendError(f"artifact URI {uri!r} is not oci://HOST/REPOSITORY:sha256-<64 lowercase hex>", hint="copy the uri from the promotion PR's manifest, or `mlops status`")
        return cls(f"oci://{parts.netloc}/{m.group(1)}"), m.group(2)

    # -- credentials ---------------------------------------------------------------
    def _load_credentials(self) -> None:
        """Who we are, for this host only (see the module docstring). Lazily: an
        anonymous registry never needs a credential."""
        if self._creds_loaded:
            return
        self._creds_loaded = True
        token = os.environ.get("GITHUB_TOKEN")
        user, password = os.environ.get("MLOPS_OCI_USERNAME"), os.environ.get("MLOPS_OCI_PASSWORD")
        pinned = (os.environ.get("MLOPS_OCI_HOST") or "").lower()
        if self.host == "ghcr.io" and token:
            self._auth.set_basic_auth(os.environ.get("GITHUB_ACTOR") or "x-access-token", token)
            self._creds_source = "GITHUB_TOKEN"
            self._secrets.append(token)
        elif user and password and (not pinned or pinned in (self.host, self.netloc)):
            self._auth.set_basic_auth(user, password)
            self._creds_source = "MLOPS_OCI_USERNAME/MLOPS_OCI_PASSWORD"
            self._secrets.append(password)
        else:
            try:  # oras: ~/.docker/config.json auths, credHelpers, credsStore for this host
                container = oras.container.Container(self.repo, registry=self.netloc)
                container.registry = self.netloc  # (its parser would take a dotted first path segment for a host)
                self._auth.load_configs(container)
            except Exception as exc:  # a broken docker config must not hide the real answer
                self._creds_source = f"~/.docker/config.json (unreadable: {type(exc).__name__})"
            else:
                if getattr(self._auth, "_basic_auth", None):
                    self._creds_source = "~/.docker/config.json"
        basic = getattr(self._auth, "_basic_auth", None)
        if basic:
            self._secrets.append(basic)

    def _answer(self, challenge: str) -> str | None:
        """An Authorization header answering a 401's WWW-Authenticate, or None."""
        self._load_credentials()
        basic = getattr(self._auth, "_basic_auth", None)
        scheme = challenge.strip().split(" ", 1)[0].lower()
        if scheme == "basic":
            return f"Basic {basic}" if basic else None
        if scheme != "bearer":
            return None
        h = oras.auth.utils.parse_auth_header(challenge)
        if not h.realm:
            return None
        realm = urlsplit(h.realm)
        same_host = (realm.hostname or "").lower() == self.host and (realm.scheme == "https" or self.plain_http)
        try:
            if basic and same_host:
                token = self._auth.request_token(h)  # oras: GET realm with Basic, service, scope
            else:  # never our credentials to another host: an anonymous token, if it gives one
                token = self._auth.request_anonymous_token(h)
        except requests.RequestException:
            return None
        if not token or not isinstance(token, str):  # (older oras-py returned other shapes)
            return None
        self._secrets.append(token)
        return f"Bearer {token}"

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    # -- requests --------------------------------------------------------------------
    def _url(self, tail: str) -> str:
        return f"{self.base}/v2/{self.repo}/{tail}"

    def _request(self, method: str, url: str, doing: str, *, ok: tuple[int, ...] = (200, 201, 202), allow: tuple[int, ...] = (), attempts: int = ATTEMPTS, **kwargs: Any) -> requests.Response:
        """One registry call: authenticates on a 401, retries transient failures a
        bounded number of times, and turns every failure into a BackendError that says
        what we were doing and what to do."""
        # An upload Location or a tags Link may name another host (a storage front):
        # it gets the request, never our credentials.
        ours = urlsplit(url).netloc.lower() == self.netloc
        headers = dict(kwargs.pop("headers", None) or {})
        last: str = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(0.25 * 3 ** (attempt - 1))
            try:
                resp = self._send(method, url, headers, **kwargs) if ours else self.session.request(method, url, headers=headers, **kwargs)
            except requests.exceptions.SSLError as exc:
                raise BackendError(f"cannot talk TLS to the OCI registry {self.netloc} while {doing}: {self._scrub(str(exc))[:300]}", hint="a plain-HTTP registry off this machine needs MLOPS_OCI_INSECURE=1; else check its certificate (REQUESTS_CA_BUNDLE)") from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = self._scrub(_reason(exc))
                continue
            if resp.status_code in ok or resp.status_code in allow:
                return resp
            if resp.status_code in (429, 500, 502, 503, 504):
                last = f"HTTP {resp.status_code}{_errors(resp, self._scrub)}"
                continue
            self._fail(resp, doing)
        if last.startswith("HTTP"):
            raise _Unavailable(f"OCI registry {self.netloc} answered {last} while {doing} ({attempts} tries)", hint="the registry is having trouble; retry later")
        raise _Unavailable(f"cannot reach the OCI registry {self.netloc} while {doing}: {last}", hint=f"check registry.url ({self.url}) in mlops.yaml and that the registry is up; plain HTTP is used only for 127.0.0.1/localhost/::1 or with MLOPS_OCI_INSECURE=1")

    def _send(self, method: str, url: str, headers: dict[str, str], **kwargs: Any) -> requests.Response:
        sent = dict(headers)
        if self._authorization:
            sent["Authorization"] = self._authorization
        resp = self.session.request(method, url, headers=sent, **kwargs)
        # One new credential per 401 (a Bearer token's scope grows from pull to push)
        if resp.status_code == 401:
            answer = self._answer(resp.headers.get("WWW-Authenticate", ""))
            if answer and answer != self._authorization:
                self._authorization = answer
                resp.close()
                resp = self.session.request(method, url, headers={**headers, "Authorization": answer}, **kwargs)
        return resp

    def _fail(self, resp: requests.Response, doing: str) -> None:
        code = resp.status_code
        detail = _errors(resp, self._scrub)
        who = f" as {self._creds_source}" if self._creds_source else " anonymously"
        if code == 401:
            raise BackendError(f"OCI registry {self.netloc} refused us{who} while {doing} (401 unauthorized{detail})", hint=("no credentials found: " if not self._creds_source else "") + "set GITHUB_TOKEN (ghcr.io), MLOPS_OCI_USERNAME/MLOPS_OCI_PASSWORD, or `docker login " + self.netloc + "`; " + _WRITE_HINT)
        if code == 403:
            raise BackendError(f"OCI registry {self.netloc} denied{who} {doing} (403 forbidden{detail})", hint=_WRITE_HINT)
        if code == 404:
            raise BackendError(f"OCI registry {self.netloc} has no repository {self.repo!r} (404 while {doing}{detail})", hint=f"check registry.url ({self.url}): on ghcr.io it is oci://ghcr.io/OWNER/NAME..., OWNER being your user or organisation")
        if code == 405:
            raise BackendError(f"OCI registry {self.netloc} does not allow {doing} (405{detail})", hint="deleting needs deletes enabled on the registry (distribution: storage.delete.enabled: true)")
        raise BackendError(f"OCI registry {self.netloc} answered HTTP {code} while {doing}{detail}", hint="check registry.url and the registry's logs")

    # -- building blocks ---------------------------------------------------------------
    def _head_manifest(self, ref: str, doing: str) -> str | None:
        """The digest of the manifest at ``ref``, or None."""
        resp = self._request("HEAD", self._url(f"manifests/{ref}"), doing, allow=(404,), headers={"Accept": MANIFEST})
        if resp.status_code == 404:
            return None
        return resp.headers.get("Docker-Content-Digest") or "unknown"

    def _get_manifest(self, ref: str, doing: str) -> dict[str, Any] | None:
        resp = self._request("GET", self._url(f"manifests/{ref}"), doing, allow=(404,), headers={"Accept": MANIFEST})
        if resp.status_code == 404:
            return None
        try:
            out = resp.json()
        except ValueError:
            out = None
        if not isinstance(out, dict):
            raise BackendError(f"OCI registry {self.netloc}: {self.repo}:{ref} is not a JSON manifest", hint=f"delete that tag; it was not written by mlops ({self.url})")
        return out

    def _has_blob(self, digest: str) -> bool:
        return self._request("HEAD", self._url(f"blobs/{digest}"), f"checking blob {digest[:19]}", allow=(404,)).status_code == 200

    def _upload(self, digest: str, data: bytes, doing: str) -> None:
        """POST an upload session, PUT the bytes (monolithic). Retried as a pair: a
        failed PUT may have spent its session."""
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(0.25 * 3 ** (attempt - 1))
            resp = self._request("POST", self._url("blobs/uploads/"), doing, headers={"Content-Length": "0"})
            location = resp.headers.get("Location")
            if not location:
                raise BackendError(f"OCI registry {self.netloc} started no upload (no Location header) while {doing}", hint="is registry.url an OCI registry?")
            session_url = urljoin(self.base + "/", location)
            sep = "&" if "?" in session_url else "?"
            try:
                self._request("PUT", f"{session_url}{sep}digest={digest}", doing, attempts=1, data=data, headers={"Content-Type": "application/octet-stream"})
                return
            except _Unavailable:
                if attempt == ATTEMPTS - 1:
                    raise

    def _ensure_config(self) -> None:
        if self._config_pushed:
            return
        if not self._has_blob(EMPTY_CONFIG["digest"]):
            self._upload(EMPTY_CONFIG["digest"], b"{}", "pushing the empty config blob")
        self._config_pushed = True

    def _manifest(self, artifact_type: str, layer: dict[str, Any], annotations: dict[str, str]) -> bytes:
        manifest = oras.oci.NewManifest()
        manifest.update(artifactType=artifact_type, config=dict(EMPTY_CONFIG), layers=[layer], annotations=annotations)
        jsonschema.validate(manifest, schema=oras.schemas.manifest)
        return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()

    def _put_manifest(self, tag: str, body: bytes, doing: str) -> None:
        self._request("PUT", self._url(f"manifests/{tag}"), doing, data=body, headers={"Content-Type": MANIFEST})

    def _delete_manifest(self, ref: str, doing: str) -> None:
        digest = self._head_manifest(ref, doing)
        if digest is None:
            return
        if digest == "unknown":
            digest = "sha256:" + hashlib.sha256(self._request("GET", self._url(f"manifests/{ref}"), doing, headers={"Accept": MANIFEST}).content).hexdigest()
        # by digest (the API deletes manifests, not tags); this removes every tag on it
        self._request("DELETE", self._url(f"manifests/{digest}"), doing, allow=(404,))

    def _tags(self, doing: str) -> list[str]:
        """Every tag of the repository, following ``Link: <...>; rel="next"`` pages."""
        url = self._url("tags/list?n=1000")
        tags: list[str] = []
        for _page in range(MAX_PAGES):
            resp = self._request("GET", url, doing, allow=(404,))
            if resp.status_code == 404:
                if "NAME_UNKNOWN" in resp.text:  # nothing pushed yet: the repository is empty
                    return []
                self._fail(resp, doing)
            try:
                page = resp.json().get("tags") or []
            except (ValueError, AttributeError):
                raise BackendError(f"OCI registry {self.netloc} answered the tags list of {self.repo} with something that is not JSON", hint="is registry.url an OCI registry?") from None
            tags.extend(t for t in page if isinstance(t, str))
            following = resp.links.get("next", {}).get("url")
            if not following:
                return tags
            url = urljoin(url, following)
        raise BackendError(f"OCI registry {self.netloc}: the tags list of {self.repo} has more than {MAX_PAGES} pages")

    def _record_manifest(self, key: str, data: bytes) -> bytes:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        layer: dict[str, Any] = {"mediaType": "application/json", "digest": digest, "size": len(data), "annotations": {TITLE: key.rsplit("/", 1)[-1]}}
        if len(data) <= EMBED_MAX:
            layer["data"] = base64.b64encode(data).decode()
        self._ensure_config()
        self._upload(digest, data, f"pushing record {key}")  # registries require every layer to exist
        return self._manifest(RECORD_TYPE, layer, {KEY_ANNOTATION: key})

    # -- blobs ---------------------------------------------------------------------------
    def _blob_tag(self, sha256: str) -> str:
        if not _HEX.fullmatch(sha256):
            raise BackendError(f"{sha256!r} is not a sha256 (64 lowercase hex digits)")
        return f"sha256-{sha256}"

    def put_blob(self, sha256: str, data: bytes) -> None:
        tag = self._blob_tag(sha256)
        digest = f"sha256:{sha256}"
        if not self._has_blob(digest):  # the registry checks the bytes against the digest
            self._upload(digest, data, f"pushing blob {sha256[:12]} ({len(data)} bytes)")
        self._ensure_config()
        layer = {"mediaType": "application/octet-stream", "digest": digest, "size": len(data), "annotations": {TITLE: sha256}}
        self._put_manifest(tag, self._manifest(BLOB_TYPE, layer, {}), f"tagging blob {sha256[:12]}")

    def get_blob(self, sha256: str) -> bytes | None:
        self._blob_tag(sha256)
        doing = f"pulling blob {sha256[:12]}"
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(0.25 * 3 ** (attempt - 1))
            with self._request("GET", self._url(f"blobs/sha256:{sha256}"), doing, allow=(404,), stream=True) as resp:
                if resp.status_code == 404:
                    return None
                try:
                    # one read of the whole body: twice as fast as resp.content's 10 KB chunks
                    return resp.raw.read(decode_content=True)
                except (urllib3.exceptions.HTTPError, OSError) as exc:  # cut short: urllib3 checks Content-Length
                    reason = self._scrub(_reason(exc))
        raise _Unavailable(f"the connection to the OCI registry {self.netloc} broke while {doing} ({reason}, {ATTEMPTS} tries)", hint="retry; if it persists, check the network and the registry's logs")

    def has_blob(self, sha256: str) -> bool:
        return self._head_manifest(self._blob_tag(sha256), f"checking blob {sha256[:12]}") is not None

    def blob_uri(self, sha256: str) -> str:
        return f"{self.url}:{self._blob_tag(sha256)}"

    def delete_blob(self, sha256: str) -> None:
        self._delete_manifest(self._blob_tag(sha256), f"deleting blob {sha256[:12]}")
        # The blob itself, so a gc'd object reads as missing (a registry that cannot
        # delete blobs, e.g. ghcr.io, garbage-collects the untagged blob itself).
        self._request("DELETE", self._url(f"blobs/sha256:{sha256}"), f"deleting blob {sha256[:12]}", allow=(400, 404, 405))

    # -- records -------------------------------------------------------------------------
    def read(self, key: str) -> bytes | None:
        manifest = self._get_manifest(encode_key(key), f"reading {key}")
        if manifest is None:
            return None
        return self._record_data(key, manifest)

    def _record_data(self, key: str, manifest: dict[str, Any]) -> bytes:
        where = f"{self.url}:{encode_key(key)}"
        layers = manifest.get("layers") or []
        if (manifest.get("annotations") or {}).get(KEY_ANNOTATION) != key or len(layers) != 1 or not isinstance(layers[0], dict):
            raise BackendError(f"registry record {key}: {where} holds an artifact mlops did not write for that key", hint=f"delete that tag (`oras manifest delete {where.removeprefix('oci://')}`) or point registry.url at a repository of its own")
        layer = layers[0]
        digest = str(layer.get("digest", ""))
        if "data" in layer:
            try:
                data = base64.b64decode(layer["data"], validate=True)
            except (ValueError, TypeError):
                data = b""
        else:
            resp = self._request("GET", self._url(f"blobs/{digest}"), f"reading {key}", allow=(404,))
            if resp.status_code == 404:
                raise BackendError(f"registry record {key}: its blob {digest[:19]} is missing from {self.url}", hint="restore it from a backup or delete the record")
            data = resp.content
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise BackendError(f"registry record {key} at {where} is corrupted: its content does not match its digest {digest[:19]}", hint="delete the tag and rewrite the record")
        return data

    def write(self, key: str, data: bytes) -> None:
        tag = encode_key(key)
        self._put_manifest(tag, self._record_manifest(key, data), f"writing {key}")

    def create(self, key: str, data: bytes) -> bool:
        seal = encode_key(key)
        doing = f"creating {key}"
        if any(t == seal or t.startswith(seal + "_c") for t in self._tags(doing)):
            return False  # taken, or burnt by an earlier race: no need to burn it again
        body = self._record_manifest(key, data)
        claim = f"{seal}_c{secrets.token_hex(8)}"
        self._put_manifest(claim, body, doing)
        tags = self._tags(doing)
        if claim not in tags:
            raise BackendError(f"OCI registry {self.netloc} does not list the tag {claim} we just pushed: its tag listing is not read-after-write consistent, so {key} cannot be created safely", hint="use a registry with consistent tag listing (the CNCF distribution registry, ghcr.io), or a folder/S3 registry")
        if seal in tags:
            return False
        if any(t.startswith(seal + "_c") and t != claim for t in tags):
            # Lost, or a tie (nobody wins): our claim stays and the key is burnt. Tied
            # writers would all move on to the next key together and tie again; a
            # random pause, growing with each loss in a row, breaks the symmetry.
            self._losses += 1
            time.sleep(random.uniform(0, min(0.01 * 2 ** (self._losses - 1), 0.5)))
            return False
        self._put_manifest(seal, body, doing)
        self._losses = 0
        return True

    def list(self, prefix: str) -> list[str]:
        want = prefix.strip("/") + "/" if prefix.strip("/") else ""
        out = []
        for tag in self._tags(f"listing {prefix}"):
            decoded = decode_tag(tag)
            if decoded is None or decoded[1] is not None:
                continue  # not ours, or a claim (readers see sealed keys only)
            key = decoded[0]
            if key is None:  # a hashed long key: its name is in the manifest
                manifest = self._get_manifest(tag, f"listing {prefix}")
                key = str(((manifest or {}).get("annotations") or {}).get(KEY_ANNOTATION, ""))
                if not _is_key(key) or encode_key(key) != tag:
                    continue
            if key.startswith(want):
                out.append(key)
        return sorted(out)

    def delete(self, key: str) -> None:
        """The key's seal and its claims (so the key can be created again)."""
        seal = encode_key(key)
        doing = f"deleting {key}"
        self._delete_manifest(seal, doing)
        for tag in self._tags(doing):
            if tag.startswith(seal + "_c"):
                self._delete_manifest(tag, doing)


def _reason(exc: BaseException) -> str:
    """A short reason for a connection failure (requests' messages nest pools and objects)."""
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "Temporary failure in name resolution", "No route to host", "Network is unreachable", "timed out", "Connection reset", "Remote end closed connection", "nodename nor servname"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__


def _errors(resp: requests.Response, scrub: Any) -> str:
    """The registry's own error codes and messages (OCI ``{"errors": [...]}``), short."""
    try:
        errors = resp.json().get("errors") or []
        text = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors if isinstance(e, dict))
    except (ValueError, AttributeError):
        text = ""
    return f": {scrub(text)[:300]}" if text else ""
