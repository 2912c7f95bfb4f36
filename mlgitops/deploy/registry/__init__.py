"""The model registry: content-addressed artifacts plus a version index with lineage.

Where the bytes live is a backend chosen by URL (``registry.url``; see
:mod:`.backends`): a folder (``registry.path``, default ``.mlops/registry``), object
storage (``s3://``, ``gs://``, ``az://``) or an OCI registry (``oci://ghcr.io/...``).
On every backend the layout is the same::

    objects/ab/abcdef...              artifact bytes, named by their sha256
    models/<name>/<N>.json            version N of <name>: artifacts, metrics, parity, lineage
    candidates/<name>/<model key>.json   what a pull request run trained and reviewed

Objects land under their own hash (a second writer of the same bytes is harmless);
a version record is published with the backend's create-if-absent, so two racing
deploys get two numbers and a killed one leaves no version (at most an unreferenced
object). Every read checks the hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgitops.errors import InputError

if TYPE_CHECKING:
    from mlgitops.deploy.registry.backends import Backend


class RegistryError(InputError):
    """A version or artifact is missing or does not match its recorded hash."""


@dataclass
class Artifact:
    sha256: str
    bytes: int
    format: str  # onnx | joblib


@dataclass
class Version:
    name: str
    version: int
    created_at: str
    artifacts: dict[str, Artifact]  # "onnx", "sklearn"
    metrics: dict[str, float | None]
    lineage: dict[str, Any]  # model_key, data_sha256, code_sha256, params, git_sha, pr, parent_version, ...
    parity: dict[str, Any] | None = None
    features: list[str] = field(default_factory=list)
    task: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Version":
        raw = dict(raw)
        raw["artifacts"] = {k: Artifact(**v) for k, v in raw["artifacts"].items()}
        return cls(**raw)

    @property
    def deployable(self) -> Artifact | None:
        """What serving runs: the ONNX artifact."""
        return self.artifacts.get("onnx")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Registry:
    """Versions, candidates and holds over a :class:`~.backends.Backend` (a folder by default)."""

    def __init__(self, where: "Path | Backend") -> None:
        from mlgitops.deploy.registry.backends import FolderBackend

        self.backend: Backend = FolderBackend(where) if isinstance(where, Path) else where
        self.url = self.backend.url

    @property
    def root(self) -> Path:
        """The folder of a folder registry (messages and `object_path` need one)."""
        from mlgitops.deploy.registry.backends import FolderBackend

        if isinstance(self.backend, FolderBackend):
            return self.backend.root
        raise AttributeError(f"the registry {self.url} is not a folder")

    # -- objects --------------------------------------------------------------
    def object_path(self, sha256: str) -> Path:
        return self.backend.blob_path(sha256)  # type: ignore[attr-defined]

    def object_uri(self, sha256: str) -> str:
        return self.backend.blob_uri(sha256)

    def put_object(self, data: bytes) -> str:
        digest = _sha256(data)
        if not self.backend.has_blob(digest):
            self.backend.put_blob(digest, data)
        return digest

    def read_object(self, sha256: str, what: str = "artifact") -> bytes:
        data = self.backend.get_blob(sha256)
        if data is None:
            raise RegistryError(f"registry {self.url}: {what} {sha256[:12]} is missing ({self.object_uri(sha256)})", hint="the registry was cleaned or is another machine's; rerun the deploy to register the model again")
        actual = _sha256(data)
        if actual != sha256:
            raise RegistryError(f"registry {self.url}: {what} {sha256[:12]} is corrupted: its content hashes to {actual[:12]}", hint=f"delete {self.object_uri(sha256)} and rerun the deploy to register the model again")
        return data

    # -- versions ---------------------------------------------------------------
    def _record(self, key: str) -> dict[str, Any] | None:
        raw = self.backend.read(key)
        if raw is None:
            return None
        try:
            out = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RegistryError(f"registry record {self.url}/{key} is unreadable: {exc}", hint="restore it from a backup or delete it (the artifacts stay)") from None
        if not isinstance(out, dict):
            raise RegistryError(f"registry record {self.url}/{key} is not a JSON object", hint="restore it from a backup or delete it (the artifacts stay)")
        return out

    def _numbers(self, name: str) -> list[int]:
        prefix = f"models/{name}/"
        out = []
        for key in self.backend.list(prefix):
            stem = key[len(prefix):].removesuffix(".json")
            if key.endswith(".json") and stem.isdigit():
                out.append(int(stem))
        return sorted(out)

    def versions(self, name: str) -> list[Version]:
        out = []
        for number in self._numbers(name):
            raw = self._record(f"models/{name}/{number}.json")
            if raw is None:
                continue
            try:
                out.append(Version.from_dict(raw))
            except (KeyError, TypeError) as exc:
                raise RegistryError(f"registry record {self.url}/models/{name}/{number}.json is unreadable: {exc}", hint="restore it from a backup or delete it (the artifacts stay)") from None
        return sorted(out, key=lambda v: v.version)

    def get(self, name: str, version: int) -> Version:
        raw = self._record(f"models/{name}/{version}.json")
        if raw is None:
            known = self._numbers(name)
            shown = ", ".join(map(str, known[-10:])) if known else "none"
            raise RegistryError(f"model {name!r} has no version {version} in the registry {self.url} (versions: {shown})", hint="`mlops status` lists what is deployed; pick a registered version")
        return Version.from_dict(raw)

    def find(self, name: str, model_key: str, onnx_sha256: str | None) -> Version | None:
        """The version already registered for these exact inputs and bytes (reruns reuse it)."""
        for v in reversed(self.versions(name)):
            onnx = v.artifacts.get("onnx")
            if v.lineage.get("model_key") == model_key and (onnx.sha256 if onnx else None) == onnx_sha256:
                return v
        return None

    def register(self, name: str, files: dict[str, tuple[bytes, str]], metrics: dict[str, float | None], lineage: dict[str, Any], parity: dict[str, Any] | None, features: list[str], task: str) -> Version:
        """Store ``files`` ({"onnx": (bytes, "onnx"), ...}) and publish the next version."""
        artifacts = {role: Artifact(self.put_object(data), len(data), fmt) for role, (data, fmt) in files.items()}
        number = 0
        for _attempt in range(100):  # bounded: each loss means another writer took a number
            number = max(number, max(self._numbers(name), default=0)) + 1
            record = Version(name, number, datetime.now(timezone.utc).isoformat(timespec="seconds"), artifacts, metrics, lineage, parity, features, task)
            data = json.dumps(record.to_dict(), indent=2, sort_keys=True, default=str).encode()
            if self.backend.create(f"models/{name}/{number}.json", data):  # refused if the number was taken
                return Version.from_dict(json.loads(data))  # as every later read sees it
        raise RegistryError(f"could not claim a version number for {name!r} in {self.url} after 100 tries")

    def load(self, record: Version, role: str = "onnx") -> bytes:
        artifact = record.artifacts.get(role)
        if artifact is None:
            raise RegistryError(f"{record.name} version {record.version} has no {role} artifact", hint="it was registered without ONNX (export.on_failure: warn); retrain with an exportable estimator")
        return self.read_object(artifact.sha256, f"{record.name} v{record.version} {role}")

    # -- candidates: what a pull request run trained, published for the merge to reuse
    def publish_candidate(self, name: str, model_key: str, files: dict[str, tuple[bytes, str]], info: dict[str, Any]) -> "Candidate":
        """Store the candidate's files and (re)write its record under its model key.
        The latest run for a key wins: it is the one whose comment the reviewers saw."""
        artifacts = {role: Artifact(self.put_object(data), len(data), fmt) for role, (data, fmt) in files.items()}
        record = Candidate(name, model_key, datetime.now(timezone.utc).isoformat(timespec="seconds"), artifacts, dict(info))
        existing = self.candidate(name, model_key)
        if existing is not None and {r: a.sha256 for r, a in existing.artifacts.items()} == {r: a.sha256 for r, a in artifacts.items()} and existing.info == record.info:
            return existing
        self.backend.write(_candidate_key(name, model_key), json.dumps(asdict(record), indent=2, sort_keys=True, default=str).encode())
        return record

    def candidate(self, name: str, model_key: str) -> "Candidate | None":
        raw = self._record(_candidate_key(name, model_key))
        if raw is None:
            return None
        try:
            raw["artifacts"] = {k: Artifact(**v) for k, v in raw["artifacts"].items()}
            return Candidate(**raw)
        except (KeyError, TypeError, AttributeError) as exc:
            raise RegistryError(f"candidate record {self.url}/{_candidate_key(name, model_key)} is unreadable: {exc}", hint="delete it; the next pull request run publishes it again") from None

    def candidates(self, name: str) -> list["Candidate"]:
        prefix = f"candidates/{name}/"
        out = []
        for key in self.backend.list(prefix):
            if key.endswith(".json"):
                found = self.candidate(name, key[len(prefix):].removesuffix(".json"))
                if found is not None:
                    out.append(found)
        return out

    def delete_candidate(self, name: str, model_key: str) -> None:
        self.backend.delete(_candidate_key(name, model_key))

    def names(self) -> list[str]:
        return sorted({k.split("/")[1] for area in ("models/", "candidates/") for k in self.backend.list(area) if k.count("/") >= 2})

    def gc(self, older_than_days: float, now: datetime | None = None) -> dict[str, int]:
        """Remove candidates older than ``older_than_days`` and the objects only they
        referenced. Registered versions and their objects are never removed; neither is
        an object nothing references yet (a deploy may be registering it right now)."""
        now = now or datetime.now(timezone.utc)
        live: set[str] = set()
        dead: set[str] = set()
        removed = kept = 0
        for name in self.names():
            for v in self.versions(name):
                live.update(a.sha256 for a in v.artifacts.values())
            for c in self.candidates(name):
                age = (now - datetime.fromisoformat(c.created_at)).total_seconds() / 86400
                if age > older_than_days:
                    self.delete_candidate(name, c.model_key)
                    dead.update(a.sha256 for a in c.artifacts.values())
                    removed += 1
                else:
                    kept += 1
                    live.update(a.sha256 for a in c.artifacts.values())
        for sha in sorted(dead - live):
            self.backend.delete_blob(sha)
        return {"candidates_removed": removed, "candidates_kept": kept, "objects_removed": len(dead - live)}


def _candidate_key(name: str, model_key: str) -> str:
    if not model_key or not all(c in "0123456789abcdef" for c in model_key):
        raise RegistryError(f"model key {model_key!r} is not a hex fingerprint")
    return f"candidates/{name}/{model_key}.json"


@dataclass
class Candidate:
    """A pull request run's model, by model key: its files and where it was reviewed
    (``info``: pr, head_sha, comment_url, export record, model meta, verdict)."""

    name: str
    model_key: str
    created_at: str
    artifacts: dict[str, Artifact]
    info: dict[str, Any]
