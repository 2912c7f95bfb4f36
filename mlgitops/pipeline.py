"""The steps of the PR run as plain functions; `flows/` wraps each in a Prefect task."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from .data import Dataset, load_dataset
from .evaluate import Evaluation, evaluate
from .plan import BaselinePlan, SidePlan
from .store import Store
from .training import train


@dataclass
class ModelOutcome:
    model: Any
    meta: dict[str, Any]
    cached: bool


@contextlib.contextmanager
def base_worktree(root: Path, sha: str, data_paths: list[str]) -> Iterator[Path]:
    """A detached checkout of ``sha`` in a temp dir; data kept out of git is linked in."""
    tmp = Path(tempfile.mkdtemp(prefix="mlops-base-"))
    target = tmp / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(target), sha], cwd=root, check=True, capture_output=True)
    try:
        for rel in data_paths:
            if rel.startswith("sklearn:") or Path(rel).is_absolute():
                continue
            if not (target / rel).exists() and (root / rel).exists():
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                (target / rel).symlink_to(root / rel)
        yield target
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(target)], cwd=root, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def obtain_model(side: SidePlan, dataset: Dataset, train_root: Path, store: Store) -> ModelOutcome:
    """The cached model for ``side.key``, or a freshly trained one (then cached)."""
    hit = store.get_model(side.key)
    if hit is not None:
        model, meta = hit
        return ModelOutcome(model, meta, True)
    trained = train(side.cfg, dataset, train_root)
    own = evaluate(trained.model, dataset.holdout, dataset.features, dataset.target, dataset.task, dataset.labels, side.cfg.metric_names(dataset.task))
    meta = {
        "name": side.cfg.config.name,
        "task": dataset.task,
        "target": dataset.target,
        "features": dataset.features,
        "labels": [l.item() if hasattr(l, "item") else l for l in dataset.labels],
        "metrics": own.metrics,
        "holdout_rows": own.rows,
        "train_rows": len(dataset.train),
        "train_seconds": round(trained.seconds, 3),
        "trained_with": trained.description,
        "data_sha256": dataset.fingerprint,
        "code_sha256": side.code_sha,
        "code_files": side.code_files,
        "params": side.cfg.config.training.params,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    meta = store.put_model(side.key, trained.model, meta)
    return ModelOutcome(trained.model, meta, False)


def load_candidate_data(side: SidePlan, root: Path) -> Dataset:
    return load_dataset(side.cfg, root)


def train_baseline(plan: BaselinePlan, root: Path, sha: str, store: Store) -> ModelOutcome:
    assert plan.side is not None
    cached = store.get_model(plan.side.key)
    if cached is not None:
        return ModelOutcome(cached[0], cached[1], True)
    data = plan.side.cfg.config.data
    with base_worktree(root, sha, [data.path, *([data.holdout.path] if data.holdout.path else [])]) as tree:
        dataset = load_dataset(plan.side.cfg, tree)
        return obtain_model(plan.side, dataset, tree, store)


def load_pinned(plan: BaselinePlan) -> ModelOutcome:
    import joblib

    assert plan.artifact is not None
    model = joblib.load(plan.artifact)
    info = plan.manifest
    meta = {
        "features": info.get("features") or [str(c) for c in getattr(model, "feature_names_in_", [])],
        "metrics": info.get("metrics") or {},
        "version": info.get("version"),
        "sha256": info.get("sha256"),
        "target": None,
    }
    return ModelOutcome(model, meta, False)


def score_baseline(outcome: ModelOutcome, dataset: Dataset, metric_names: list[str]) -> tuple[Evaluation | None, str]:
    """Score the baseline on the candidate's holdout, or say why it cannot."""
    meta = outcome.meta
    features = list(meta.get("features") or [])
    if meta.get("task") and meta["task"] != dataset.task:
        return None, f"the baseline is a {meta['task']} model and the candidate a {dataset.task} model"
    if meta.get("target") and meta["target"] != dataset.target:
        return None, f"the baseline predicts {meta['target']!r}, the candidate {dataset.target!r}"
    if not features:
        return None, "the baseline does not record its feature columns"
    missing = [f for f in features if f not in dataset.holdout.columns]
    if missing:
        shown = ", ".join(map(repr, missing[:5])) + (" ..." if len(missing) > 5 else "")
        return None, f"this PR removed or renamed column(s) the baseline needs ({shown}), so it cannot score the new holdout"
    try:
        return evaluate(outcome.model, dataset.holdout, features, dataset.target, dataset.task, dataset.labels, metric_names), ""
    except Exception as exc:  # a model from another config may reject the new data's types
        return None, f"the baseline could not score the candidate's holdout: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start
