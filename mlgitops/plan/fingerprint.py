"""Content fingerprints, computed without pandas, scikit-learn or Prefect.

They decide cache hits before anything heavy is imported, so a rerun with nothing
changed costs well under a second (the bench records it).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import shlex
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

from mlgitops.config.loader import Config

KEY_VERSION = 3  # 2: tree models no longer scale numeric columns; 3: training.repeats, seeding, sweep candidates of another estimator inherit no params


class Tree(Protocol):
    label: str

    def read_sha256(self, rel: str) -> str | None: ...

    def files_under(self, rel: str) -> list[str]: ...


@dataclass(frozen=True)
class SourceFingerprint:
    sha256: str | None  # None: the file is not in this tree
    where: str  # "sklearn", the tree label, or "working tree (not committed at base)"


def data_fingerprint(path: str, tree: Tree, fallback: Tree | None = None) -> SourceFingerprint:
    """sha256 of the data file's bytes (of DVC's md5 when it is tracked by DVC); bundled datasets hash their name and version."""
    if path.startswith("sklearn:"):
        digest = hashlib.sha256(f"{path}@scikit-learn=={version('scikit-learn')}".encode()).hexdigest()
        return SourceFingerprint(digest, "sklearn")
    if path.startswith("/"):
        from pathlib import Path

        from mlgitops.gitrepo import HASHES

        return SourceFingerprint(HASHES.sha256(Path(path)) if Path(path).is_file() else None, "absolute path")
    from mlgitops.data.dvc import in_tree

    pointer = in_tree(tree, path)
    if pointer is not None:  # tracked by DVC: its md5, from the pointer in this tree (the data may not be here)
        return SourceFingerprint(hashlib.sha256(f"dvc-md5:{pointer.md5}".encode()).hexdigest(), f"{tree.label} (DVC md5 {pointer.short()})")
    digest = tree.read_sha256(path)
    if digest is None and fallback is not None:
        # Data kept out of git (large files, .gitignore'd): the base uses the same file.
        digest = fallback.read_sha256(path)
        return SourceFingerprint(digest, f"{fallback.label} (not committed at {tree.label})")
    return SourceFingerprint(digest, tree.label)


def code_files(cfg: Config, tree: Tree) -> list[str]:
    """Files whose content counts as the training code."""
    files: set[str] = set()
    for entry in cfg.training.code:
        files.update(tree.files_under(entry))
    if cfg.training.command:
        for token in shlex.split(cfg.training.command):
            if "{" in token or token.startswith("-"):
                continue
            if token.endswith((".py", ".R", ".r", ".sh", ".ipynb", ".jl")):
                files.update(tree.files_under(posixpath.normpath(token)))
    return sorted(files)


def code_fingerprint(cfg: Config, tree: Tree) -> tuple[str, list[str]]:
    files = code_files(cfg, tree)
    digest = hashlib.sha256()
    for rel in files:
        digest.update(f"{rel}\0{tree.read_sha256(rel)}\n".encode())
    return digest.hexdigest(), files


def training_spec(cfg: Config) -> dict[str, Any]:
    t = cfg.training
    spec: dict[str, Any] = {"params": t.params, "repeats": t.repeats}
    if t.estimator:
        spec.update(estimator=t.estimator, preprocessing=t.preprocessing)
        if t.sweep is not None:  # what decides the winner; not how many workers train it
            spec["sweep"] = t.sweep.model_dump(mode="json", include={"grid", "candidates", "metric", "validation_size"})
    else:
        spec.update(command=t.command)
        if "{valid}" in (t.command or ""):  # which training rows the command gets
            spec["validation_size"] = t.validation_size
    return spec


def model_key(cfg: Config, data_sha: str | None, holdout_sha: str | None, code_sha: str) -> str:
    """Cache key of a trained model: same inputs -> same model, no retraining."""
    payload = {
        "v": KEY_VERSION,
        "data": data_sha,
        "holdout": cfg.data.holdout.model_dump(mode="json") | {"file": holdout_sha},
        "target": cfg.data.target,
        "features": cfg.data.features,
        "format": cfg.data.format,
        "task": cfg.task,
        "training": training_spec(cfg),
        "code": code_sha,
        "versions": _versions(cfg),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _versions(cfg: Config) -> dict[str, str]:
    """Libraries whose upgrade can change the trained model."""
    import platform

    names = {"scikit-learn", "numpy", "pandas"}
    estimators = [cfg.training.estimator] + ([c.estimator for c in cfg.training.sweep.candidates] if cfg.training.sweep else [])
    for path in estimators:
        if path:
            names.add(path.split(".", 1)[0].replace("sklearn", "scikit-learn"))
    out = {"python": platform.python_version()}
    for name in sorted(names):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "?"
    return out


def combine(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
