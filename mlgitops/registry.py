"""The model registry: content-addressed artifacts plus a version index with lineage.

Layout under the registry folder (``registry.path``, default ``.mlops/registry``)::

    objects/ab/abcdef...      artifact bytes, named by their sha256
    models/<name>/<N>.json    version N of <name>: artifacts, metrics, parity, lineage

Writes are atomic: objects land by rename under their own hash (a second writer of
the same bytes is harmless), then the version record is published with a hard link
that fails if the number is taken, so two racing runs get two numbers and a killed
run leaves no version (at most an unreferenced object). Every read checks the hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import InputError


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
    def __init__(self, root: Path) -> None:
        self.root = root

    # -- objects --------------------------------------------------------------
    def object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256[:2] / sha256

    def put_object(self, data: bytes) -> str:
        digest = _sha256(data)
        final = self.object_path(digest)
        if final.is_file() and final.stat().st_size == len(data):
            return digest
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{digest[:12]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def read_object(self, sha256: str, what: str = "artifact") -> bytes:
        path = self.object_path(sha256)
        if not path.is_file():
            raise RegistryError(f"registry {self.root}: {what} {sha256[:12]} is missing ({path})", hint="the registry folder was cleaned or is another machine's; rerun the deploy to register the model again")
        data = path.read_bytes()
        actual = _sha256(data)
        if actual != sha256:
            raise RegistryError(f"registry {self.root}: {what} {sha256[:12]} is corrupted: its content hashes to {actual[:12]}", hint=f"delete {path} and rerun the deploy to register the model again")
        return data

    # -- versions ---------------------------------------------------------------
    def _model_dir(self, name: str) -> Path:
        return self.root / "models" / name

    def versions(self, name: str) -> list[Version]:
        folder = self._model_dir(name)
        if not folder.is_dir():
            return []
        out = []
        for path in folder.glob("*.json"):
            if not path.stem.isdigit():
                continue
            try:
                out.append(Version.from_dict(json.loads(path.read_text())))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise RegistryError(f"registry record {path} is unreadable: {exc}", hint="restore it from a backup or delete it (the artifacts stay)") from None
        return sorted(out, key=lambda v: v.version)

    def get(self, name: str, version: int) -> Version:
        path = self._model_dir(name) / f"{version}.json"
        if not path.is_file():
            known = [v.version for v in self.versions(name)]
            shown = ", ".join(map(str, known[-10:])) if known else "none"
            raise RegistryError(f"model {name!r} has no version {version} in the registry {self.root} (versions: {shown})", hint="`mlops status` lists what is deployed; pick a registered version")
        return Version.from_dict(json.loads(path.read_text()))

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
        folder = self._model_dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        for _attempt in range(100):  # bounded: each loss means another writer took a number
            number = max((v.version for v in self.versions(name)), default=0) + 1
            record = Version(name, number, datetime.now(timezone.utc).isoformat(timespec="seconds"), artifacts, metrics, lineage, parity, features, task)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".new.", suffix=".tmp")
            with os.fdopen(fd, "w") as fh:
                json.dump(record.to_dict(), fh, indent=2, sort_keys=True, default=str)
            try:
                os.link(tmp, folder / f"{number}.json")  # fails if the number was taken meanwhile
                return self.get(name, number)  # as every later read sees it (keys sorted)
            except FileExistsError:
                continue
            finally:
                Path(tmp).unlink(missing_ok=True)
        raise RegistryError(f"could not claim a version number for {name!r} in {self.root} after 100 tries")

    def load(self, record: Version, role: str = "onnx") -> bytes:
        artifact = record.artifacts.get(role)
        if artifact is None:
            raise RegistryError(f"{record.name} version {record.version} has no {role} artifact", hint="it was registered without ONNX (export.on_failure: warn); retrain with an exportable estimator")
        return self.read_object(artifact.sha256, f"{record.name} v{record.version} {role}")
