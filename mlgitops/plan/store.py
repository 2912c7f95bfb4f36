"""The `.mlops/` folder: model cache, run cache, forge files.

Writes during a run go to a staging folder outside `.mlops/` and are moved in by
:meth:`Store.commit` only when the run produced a report, so a failed or killed run
leaves nothing new under `.mlops/`. Each entry lands with one atomic rename.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from mlgitops.run.debris import owned_prefix, sweep
from mlgitops.plan.ledger import TrustLedger
from mlgitops.atomic import atomic_write  # noqa: F401 - re-exported: callers import it from here

MLOPS_DIR = ".mlops"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Store:
    """One run's view of `.mlops/`.

    ``trusted``: the run's code is the default branch's (a deploy on a push to it);
    such a run unpickles only pickles whose sha256 a trusted run recorded in the
    ledger (see :mod:`mlgitops.plan.ledger`), and records the ones it writes. An untrusted
    run (a pull request, a local branch, `/mlops retrain`) already runs the branch's
    code: it loads what it finds and never writes the ledger.
    """

    def __init__(self, root: Path, *, trusted: bool) -> None:
        self.root = root
        self.dir = root / MLOPS_DIR
        self.trusted = trusted
        sweep(root)  # temp folders a killed run left (staged entries, training CSVs, base checkouts)
        self.ledger = TrustLedger(self.dir)
        self._staging: Path | None = None
        self.replacing: set[str] = set()  # model keys whose cache entries this run may replace (a requested retrain)
        #: model keys with a cached pickle this trusted run would not unpickle (no trusted run recorded it)
        self.refused: set[str] = set()
        self._written: dict[str, str] = {}  # sha256 -> key of the pickles this run wrote

    @property
    def staging(self) -> Path:
        if self._staging is None:
            self._staging = Path(tempfile.mkdtemp(prefix=owned_prefix("stage")))
        return self._staging

    # -- models ---------------------------------------------------------------
    def _model_dirs(self, key: str) -> list[Path]:
        dirs = [self.dir / "cache" / "models" / key]
        if self._staging is not None:
            dirs.insert(0, self._staging / "cache" / "models" / key)
        return dirs

    def get_model(self, key: str) -> tuple[Any, dict[str, Any]] | None:
        """The cached model and its metadata, or None. A file whose hash changed is a
        miss; so is, for a trusted run, a pickle no trusted run recorded (the key goes
        to :attr:`refused`)."""
        import joblib

        for folder in self._model_dirs(key):
            meta_path, model_path = folder / "meta.json", folder / "model.joblib"
            if not (meta_path.is_file() and model_path.is_file()):
                continue
            try:
                meta = json.loads(meta_path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue  # a damaged entry is a miss; the retrained model replaces nothing
            digest = sha256_file(model_path)
            if not isinstance(meta, dict) or digest != meta.get("model_sha256"):
                continue
            if not self.may_unpickle(digest):
                self.refused.add(key)
                continue
            try:
                return joblib.load(model_path), meta
            except Exception:  # noqa: BLE001 - unreadable pickle (e.g. other sklearn): a miss
                continue
        return None

    def intact_pickle(self, key: str) -> tuple[Path, dict[str, Any]] | None:
        """The cached pickle of ``key`` whose bytes match its meta.json, and that meta;
        read as bytes only, never unpickled."""
        for folder in self._model_dirs(key):
            meta_path, model_path = folder / "meta.json", folder / "model.joblib"
            try:
                meta = json.loads(meta_path.read_text())
                digest = sha256_file(model_path)
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(meta, dict) and digest == meta.get("model_sha256"):
                return model_path, meta
        return None

    def may_unpickle(self, sha256: str) -> bool:
        """Whether this run may unpickle bytes with this hash: always for an untrusted
        run (it runs the branch's code anyway), else only what a trusted run wrote."""
        return not self.trusted or sha256 in self._written or self.ledger.trusts(sha256)

    def get_model_meta(self, key: str) -> dict[str, Any] | None:
        for folder in self._model_dirs(key):
            if (folder / "meta.json").is_file() and (folder / "model.joblib").is_file():
                try:
                    meta = json.loads((folder / "meta.json").read_text())
                except (json.JSONDecodeError, UnicodeDecodeError):
                    return None
                return meta if isinstance(meta, dict) else None
        return None

    def put_model(self, key: str, model: Any, meta: dict[str, Any]) -> dict[str, Any]:
        import joblib

        folder = self.staging / "cache" / "models" / key
        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, folder / "model.joblib")
        meta = dict(meta, key=key, model_sha256=sha256_file(folder / "model.joblib"))
        (folder / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        self._written[meta["model_sha256"]] = key
        return meta

    # -- ONNX exports (keyed by the model key: the bytes the PR reviewed are the ones deployed)
    def _onnx_dirs(self, key: str) -> list[Path]:
        dirs = [self.dir / "cache" / "onnx" / key]
        if self._staging is not None:
            dirs.insert(0, self._staging / "cache" / "onnx" / key)
        return dirs

    def get_onnx(self, key: str) -> tuple[bytes, dict[str, Any]] | None:
        """The exported ONNX bytes and their export record; a hash mismatch is a miss."""
        for folder in self._onnx_dirs(key):
            try:
                info = json.loads((folder / "export.json").read_text())
                data = (folder / "model.onnx").read_bytes()
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(info, dict) and hashlib.sha256(data).hexdigest() == info.get("sha256"):
                return data, info
        return None

    def put_onnx(self, key: str, data: bytes, info: dict[str, Any]) -> dict[str, Any]:
        folder = self.staging / "cache" / "onnx" / key
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.onnx").write_bytes(data)
        info = dict(info, sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
        (folder / "export.json").write_text(json.dumps(info, indent=2, sort_keys=True, default=str))
        return info

    # -- run reports -------------------------------------------------------------
    def run_path(self, run_key: str) -> Path:
        return self.dir / "cache" / "runs" / f"{run_key}.json"

    def get_run(self, run_key: str) -> dict[str, Any] | None:
        path = self.run_path(run_key)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return None

    def stage_run(self, run_key: str, report: dict[str, Any]) -> None:
        path = self.staging / "cache" / "runs" / f"{run_key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, sort_keys=True, default=str))

    # -- transaction ------------------------------------------------------------
    def commit(self) -> None:
        """Move every staged entry into `.mlops/` (one rename per entry)."""
        if self._staging is None:
            return
        for kind in ("cache/models", "cache/onnx", "cache/runs"):
            src_parent = self._staging / kind
            if not src_parent.is_dir():
                continue
            for entry in sorted(src_parent.iterdir()):
                final = self.dir / kind / entry.name
                final.parent.mkdir(parents=True, exist_ok=True)
                tmp = final.parent / f".{entry.name}.{uuid.uuid4().hex}.tmp"
                if entry.is_dir():
                    if final.exists() and entry.name not in self.replacing:
                        continue  # content-addressed: an entry already there is the same
                    shutil.copytree(entry, tmp)
                    old = final.parent / f".{entry.name}.{uuid.uuid4().hex}.old"
                    moved = False
                    try:
                        if final.exists():  # a requested retrain replaces the cached entry
                            os.replace(final, old)
                            moved = True
                        os.replace(tmp, final)
                    except OSError:
                        # Another run (e.g. a second webhook worker) put this key in place
                        # between our check and our rename: theirs is as good as ours.
                        shutil.rmtree(tmp, ignore_errors=True)
                        if moved and not final.exists():
                            os.replace(old, final)
                            moved = False
                    if moved:
                        shutil.rmtree(old, ignore_errors=True)
                    continue
                shutil.copy2(entry, tmp)
                os.replace(tmp, final)
        reports = self._staging / "reports"
        if reports.is_dir():  # per-PR reports replace the previous run's, file by file
            for src in sorted(p for p in reports.rglob("*") if p.is_file()):
                final = self.dir / src.relative_to(self._staging)
                final.parent.mkdir(parents=True, exist_ok=True)
                tmp = final.parent / f".{final.name}.{uuid.uuid4().hex}.tmp"
                shutil.copy2(src, tmp)
                os.replace(tmp, final)
        if self.trusted:
            # After the entries landed: a reader in between merely misses them. The
            # hashes are of the bytes this run dumped, wherever they ended up.
            self.ledger.record(self._written)
        self.discard()

    def discard(self) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
