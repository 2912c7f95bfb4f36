"""The steps of the PR run as plain functions; `flows/` wraps each in a Prefect task."""

from __future__ import annotations

import contextlib
import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from mlgitops.run.debris import owned_prefix
from mlgitops.data import dvc
from mlgitops.data.load import Dataset, load_dataset
from mlgitops.errors import InputError, TrainingError
from mlgitops.train.evaluate import Evaluation, evaluate
from mlgitops.plan.decide import BaselinePlan, RunPlan, SidePlan
from mlgitops.plan.store import MLOPS_DIR, Store
from mlgitops.train.seeding import base_seed
from mlgitops.train.select import train_repeats


@dataclass
class ModelOutcome:
    model: Any
    meta: dict[str, Any]
    cached: bool
    #: the evaluation on the holdout it was trained with, when trained in this run
    evaluation: Evaluation | None = None
    #: ``model`` is the cached ONNX export (an OnnxModel): a trusted run does not unpickle the cached pickle
    onnx_only: bool = False
    #: the rows it was trained on, when they were loaded in this run (a baseline's holdout overlap)
    trained_on: Any = None


@contextlib.contextmanager
def base_worktree(root: Path, sha: str, config_dir: Path, data_paths: list[str]) -> Iterator[Path]:
    """A detached checkout of ``sha`` in a temp dir; data kept out of git is linked in
    (data tracked by DVC is fetched at ``sha`` instead)."""
    tmp = Path(tempfile.mkdtemp(prefix=owned_prefix("base")))
    target = tmp / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(target), sha], cwd=root, check=True, capture_output=True)
    try:
        for rel in data_paths:
            if rel.startswith("sklearn:") or Path(rel).is_absolute():
                continue
            link, source = target / config_dir / rel, root / config_dir / rel
            if dvc.materialize(root, sha, (config_dir / rel).as_posix(), link):
                continue  # tracked by DVC: the version the base commit names, never the working tree's
            if not link.exists() and source.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(source)
        yield target
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(target)], cwd=root, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def obtain_model(side: SidePlan, dataset: Dataset, train_root: Path, store: Store, reuse: bool = True) -> ModelOutcome:
    """The cached model for ``side.key``, or a freshly trained one (then cached).

    A trusted run never unpickles a pickle no trusted run recorded (e.g. the pull
    request's): it reuses that model's parity-checked ONNX export instead, which is
    data, scored through ONNX Runtime like the deployed model; without one it trains
    and its own model replaces the cached one.

    Under ``training.repeats`` the model is trained once per seed and its recorded
    metrics are their means (``meta["repeats"]`` holds each seed's); the first seed's
    model is the one kept. A cached model trained another number of times is a miss.
    Every training is compared with the first one recorded for the key
    (:func:`check_reproducible`).
    """
    repeats = side.cfg.config.training.repeats
    hit = store.get_model(side.key) if reuse else None
    if hit is not None:
        model, meta = hit
        if repeat_count(meta) == repeats:
            return ModelOutcome(model, meta, True)
        store.replacing.add(side.key)  # training.repeats changed (it is not in the key): train again
    elif side.key in store.refused:
        onnx = cached_onnx_model(side.key, store)
        if onnx is not None and repeat_count(onnx.meta) == repeats:
            return onnx
        store.replacing.add(side.key)
    earlier = store.get_model_meta(side.key)  # a retrain, a damaged entry: what it replaces
    names = side.cfg.metric_names(dataset.task)
    trainings = train_repeats(side.cfg, dataset, train_root, side.trusted)
    trained = trainings[0]
    evals = [evaluate_candidate(ModelOutcome(t.model, {}, False), dataset, names, side.cfg) for t in trainings]
    own = evals[0] if len(evals) == 1 else mean_evaluation(evals)
    seed = base_seed(side.cfg)
    meta = {
        "name": side.cfg.config.name,
        "task": dataset.task,
        "target": dataset.target,
        "features": dataset.features,
        "labels": [l.item() if hasattr(l, "item") else l for l in dataset.labels],
        "metrics": own.metrics,
        "holdout_rows": own.rows,
        "train_rows": len(dataset.train),
        "train_seconds": round(sum(t.seconds for t in trainings), 3),
        "trained_with": trained.description,
        "data_sha256": dataset.fingerprint,
        "code_sha256": side.code_sha,
        "code_files": side.code_files,
        "params": trained.params if trained.params is not None else side.cfg.config.training.params,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "seeding": list(trained.notes or []),
    }
    if len(trainings) > 1:
        meta["repeats"] = {"seeds": [seed + i for i in range(len(trainings))], "metrics": {n: [e.metrics.get(n) for e in evals] for n in names}}
    if trained.sweep is not None:
        meta["sweep"] = trained.sweep
    repro = check_reproducible(store, side.key, seed, evals[0].metrics, earlier, names)
    if repro is not None:
        meta["reproducibility"] = repro
    meta = store.put_model(side.key, trained.model, meta)
    record_first_training(store, side.key, seed, evals[0].metrics, meta)
    return ModelOutcome(trained.model, meta, False, own)


def repeat_count(meta: dict[str, Any]) -> int:
    repeats = meta.get("repeats")
    return len(repeats.get("seeds") or [None]) if isinstance(repeats, dict) else 1


def mean_evaluation(evals: list[Evaluation]) -> Evaluation:
    """The repeats' evaluations as one: each metric's mean (None when any seed has none),
    the first seed's confusion matrix."""
    first = evals[0]
    metrics: dict[str, float | None] = {}
    unavailable = dict(first.unavailable)
    for name in first.metrics:
        values = [e.metrics.get(name) for e in evals]
        if any(v is None for v in values):
            metrics[name] = None
            unavailable.setdefault(name, next((e.unavailable[name] for e in evals if name in e.unavailable), "not computed for every seed"))
        else:
            metrics[name] = math.fsum(values) / len(values)  # type: ignore[arg-type]
    return Evaluation(metrics, unavailable, first.confusion, first.rows)


def repeat_spread(meta: dict[str, Any]) -> dict[str, Any] | None:
    """Per metric: mean, min, max and sample standard deviation over the seeds."""
    import statistics

    repeats = meta.get("repeats")
    if not isinstance(repeats, dict) or len(repeats.get("seeds") or []) < 2:
        return None
    out: dict[str, Any] = {}
    for name, values in (repeats.get("metrics") or {}).items():
        if not values or any(not isinstance(v, (int, float)) for v in values):
            out[name] = None
            continue
        out[name] = {"mean": math.fsum(values) / len(values), "min": min(values), "max": max(values), "std": statistics.stdev(values), "values": list(values)}
    return {"count": len(repeats["seeds"]), "seeds": list(repeats["seeds"]), "metrics": out}


# The first training of each model key is recorded in the run cache as
# `.mlops/cache/runs/training-<key>.json` (Store's run entries are plain files that
# outlive the model entry): what a later training of the same inputs is compared with.
RECORD_PREFIX = "training-"


def first_seed_metrics(meta: dict[str, Any]) -> dict[str, Any]:
    repeats = meta.get("repeats")
    if isinstance(repeats, dict) and isinstance(repeats.get("metrics"), dict):
        return {n: (v[0] if isinstance(v, list) and v else None) for n, v in repeats["metrics"].items()}
    return meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}


def check_reproducible(store: Store, key: str, seed: int, metrics: dict[str, float | None], earlier: dict[str, Any] | None, names: list[str]) -> dict[str, Any] | None:
    """Compare this training (its first seed) with an earlier training of the very same
    inputs and seed: the first recorded for the key, else the cached model it replaces.
    None when there is none; else whether the metrics are the same and which moved.
    Repeats are never compared with each other: they differ by their seed."""
    record = store.get_run(RECORD_PREFIX + key)
    if isinstance(record, dict) and record.get("seed") == seed and isinstance(record.get("metrics"), dict):
        old, when = record["metrics"], record.get("trained_at")
    elif earlier is not None and earlier.get("seed", seed) == seed:
        old, when = first_seed_metrics(earlier), earlier.get("created_at")
    else:
        return None
    moved = []
    for n in names:
        a, b = old.get(n), metrics.get(n)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a != b:
            moved.append({"metric": n, "before": float(a), "now": float(b)})
    return {"same": not moved, "moved": moved, "against": when, "seed": seed}


def record_first_training(store: Store, key: str, seed: int, metrics: dict[str, float | None], meta: dict[str, Any]) -> None:
    """Stage the record of the first training of ``key`` (never overwritten)."""
    if store.get_run(RECORD_PREFIX + key) is not None:
        return
    store.stage_run(RECORD_PREFIX + key, {"key": key, "seed": seed, "metrics": metrics, "model_sha256": meta.get("model_sha256"), "trained_at": meta.get("created_at")})


def recorded_repeat_metrics(plan: RunPlan, outcome: ModelOutcome, names: list[str]) -> dict[str, float | None] | None:
    """A trained baseline's mean over its repeats, when they were scored on exactly the
    candidate's holdout (same data bytes, same data settings, a split holdout); else None."""
    side = plan.baseline.side
    spread = repeat_spread(outcome.meta)
    if side is None or spread is None or outcome.meta.get("data_sha256") is None:
        return None
    data, own = side.cfg.config.data, plan.candidate.cfg.config.data
    if side.data_sha != plan.candidate.data_sha or data != own or data.holdout.path is not None:
        return None
    if any(spread["metrics"].get(n) is None for n in names):
        return None
    return {n: spread["metrics"][n]["mean"] for n in names}


def cached_onnx_model(key: str, store: Store) -> ModelOutcome | None:
    """The cached model of ``key`` as its ONNX export, without unpickling anything:
    only when its pickle is intact (its bytes are registered beside the ONNX, never
    loaded) and the run that exported it recorded a passing parity check."""
    from mlgitops.deploy.onnx import OnnxModel
    from mlgitops.deploy.export_step import recorded_parity

    exported = store.get_onnx(key)
    pickle = store.intact_pickle(key)
    if exported is None or pickle is None or pickle[1].get("key", key) != key:
        return None
    data, info = exported
    meta = pickle[1]
    parity = recorded_parity(info)
    if parity is None or parity["passed"] is not True:
        return None  # an export from before parity was recorded, or one that disagreed
    try:
        model = OnnxModel(data)
    except Exception:  # noqa: BLE001 - ONNX Runtime refuses the graph: train instead
        return None
    return ModelOutcome(model, meta, True, onnx_only=True)


def contract_checks(cfg: Any, dataset: Dataset) -> list[Any]:
    """The data contract on the rows of the data file (both sides of a split)."""
    import pandas as pd

    from mlgitops.data.contract import check_contract

    frame = dataset.train if cfg.config.data.holdout.path else pd.concat([dataset.train, dataset.holdout])
    return check_contract(cfg, frame)


def data_drift(plan: RunPlan, dataset: Dataset, store: Store) -> dict[str, Any]:
    """Drift of the candidate's training data against the reference, as report data;
    the full Evidently HTML report is staged under `.mlops/reports/<pr>/drift.html`."""
    import pandas as pd

    from mlgitops.data.drift import compute_drift, reference_data

    cfg = plan.candidate.cfg
    spec = cfg.config.drift
    assert spec is not None
    reference, what = reference_data(cfg, plan)
    if reference is None:
        return {"unavailable": what}
    current = dataset.train if cfg.config.data.holdout.path else pd.concat([dataset.train, dataset.holdout])
    columns = list(spec.columns or dataset.features)
    result, snapshot = compute_drift(reference, current, columns, spec.sample, spec.seed, what)
    if snapshot is not None:
        rel = f"reports/{plan.event.pr_key}/drift.html"
        target = store.staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(target))
        result.html = f"{MLOPS_DIR}/{rel}"
    return result.to_dict()


def load_candidate_data(side: SidePlan) -> Dataset:
    return load_dataset(side.cfg, side.cfg.root)


def train_baseline(plan: BaselinePlan, root: Path, config_rel: str, sha: str, store: Store, candidate: SidePlan | None = None, candidate_data: Dataset | None = None) -> ModelOutcome:
    """The base ref's model: cached, or trained in a worktree of the base commit.

    When the base reads the very same data the same way, the candidate's loaded
    dataset is reused instead of parsing the file again (a large CSV costs seconds).
    """
    assert plan.side is not None
    cached = store.get_model(plan.side.key)
    if cached is not None:
        return ModelOutcome(cached[0], cached[1], True)
    data = plan.side.cfg.config.data
    same_data = (
        candidate is not None
        and candidate_data is not None
        and candidate.data_sha == plan.side.data_sha
        and candidate.cfg.config.data == data
        and (candidate.cfg.config.task or None) == (plan.side.cfg.config.task or None)
    )
    config_dir = Path(config_rel).parent
    if same_data and candidate_data is not None and plan.side.cfg.config.training.estimator:
        # Same bytes, declarative estimator: nothing of the base checkout is needed.
        return obtain_model(plan.side, candidate_data, root / config_dir, store)
    with base_worktree(root, sha, config_dir, [data.path, *([data.holdout.path] if data.holdout.path else [])]) as tree:
        dataset = candidate_data if same_data and candidate_data is not None else load_dataset(plan.side.cfg, tree / config_dir)
        outcome = obtain_model(plan.side, dataset, tree / config_dir, store)
        outcome.trained_on = dataset.train
        return outcome


def load_pinned(plan: BaselinePlan, store: Store) -> ModelOutcome:
    """The deployed model: its ONNX run through ONNX Runtime (exactly what serves), or a
    joblib pin (a pickle: a trusted run loads only one a trusted run wrote)."""
    import joblib

    assert plan.artifact is not None
    info = plan.manifest
    task = None
    if info.get("format", "onnx") != "onnx" and not store.may_unpickle(str(info.get("sha256"))):
        raise InputError(
            f"the pinned artifact {info.get('uri')} is a pickle (format {info.get('format')}) that no trusted run wrote, and this run never unpickles those",
            hint="pin the model's ONNX artifact (a deploy's promotion PR does)",
        )
    try:
        if info.get("format", "onnx") == "onnx":
            from mlgitops.deploy.onnx import OnnxModel

            model = OnnxModel(plan.artifact.read_bytes())
            features = model.features
            task = model.task
        else:
            model = joblib.load(plan.artifact)
            features = info.get("features")
    except Exception as exc:  # a pinned file that is not a loadable model is bad input
        raise InputError(f"the pinned artifact {plan.manifest.get('uri')} cannot be loaded: {type(exc).__name__}: {exc}") from None
    meta = {
        "task": task,
        "features": [str(f) for f in features] if isinstance(features, list) and features else [str(c) for c in getattr(model, "feature_names_in_", [])],
        "metrics": info.get("metrics") if isinstance(info.get("metrics"), dict) else {},
        "version": info.get("version"),
        "sha256": info.get("sha256"),
        "target": None,
    }
    return ModelOutcome(model, meta, False)


def obtain_baseline(plan: RunPlan, store: Store, candidate_data: Dataset | None = None) -> tuple[ModelOutcome | None, str]:
    """The baseline model, or None and why. A broken base never blocks the PR that fixes it."""
    base = plan.baseline
    try:
        if base.kind == "manifest":
            return load_pinned(base, store), ""
        if base.kind == "train":
            assert plan.event.base_sha is not None
            return train_baseline(base, plan.root, plan.config_rel, plan.event.base_sha, store, plan.candidate, candidate_data), ""
    except InputError as exc:
        first = exc.message.splitlines()[0]
        return None, f"the baseline could not be produced, so relative gates are skipped: {first}"
    return None, ""


def recorded_metrics(meta: dict[str, Any], names: list[str]) -> dict[str, float | None]:
    """Metrics stored with a model (or in a manifest), keeping only numbers we know."""
    raw = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    out: dict[str, float | None] = {}
    for name in names:
        value = raw.get(name)
        out[name] = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None
    return out


def holdout_overlap(plan: RunPlan, outcome: ModelOutcome, dataset: Dataset) -> tuple[Any, str]:
    """Which of the candidate's holdout rows the base ref's model trained on (a
    :class:`~mlgitops.data.holdout.Overlap`), by row identity; (None, "") when it used
    the same data the same way (then it trained on none), (None, why) when its
    training rows cannot be had. A cached baseline's rows are read from the base ref."""
    side = plan.baseline.side
    if side is None or plan.baseline.kind != "train":
        return None, ""
    cand = plan.candidate.cfg.config
    same_data = outcome.meta.get("data_sha256") is None or side.data_sha == plan.candidate.data_sha
    if same_data and side.cfg.config.data == cand.data and (side.cfg.config.task or None) == (cand.task or None):
        return None, ""
    from mlgitops.data.holdout import overlap

    trained_on = outcome.trained_on
    if trained_on is None:
        if plan.event.base_sha is None:
            return None, "the base ref's commit is unknown"
        data = side.cfg.config.data
        config_dir = Path(plan.config_rel).parent
        try:
            with base_worktree(plan.root, plan.event.base_sha, config_dir, [data.path, *([data.holdout.path] if data.holdout.path else [])]) as tree:
                trained_on = load_dataset(side.cfg, tree / config_dir).train
        except (InputError, subprocess.CalledProcessError, OSError) as exc:
            first = exc.message.splitlines()[0] if isinstance(exc, InputError) else type(exc).__name__
            return None, f"the base ref's data could not be read: {first}"
    return overlap(dataset.holdout, trained_on, cand.data.holdout.key), ""


def overlap_note(plan: RunPlan, found: Any, why: str) -> str | None:
    """The comment's words for :func:`holdout_overlap`: the exact count and share."""
    if found is None:
        if not why:
            return None
        return f"The baseline was trained on other data, and which rows of this holdout it trained on cannot be told ({why}); its scores may be optimistic."
    excluded = plan.candidate.cfg.config.data.holdout.kind == "hash" and found.count > 0
    if excluded:
        rest = found.total - found.count
        then = f"both models are compared on the other {rest} row(s)" if rest else "no row is left to compare them on, so relative gates are skipped"
        return f"{found.share_text()} were in the baseline's training data and are excluded (matched by {found.by}): {then}."
    if found.count == 0:
        return f"{found.share_text()} were in the baseline's training data (matched by {found.by}): it is scored on rows it never saw."
    return (
        f"{found.share_text()} were in the baseline's training data (matched by {found.by}; the random split moves rows when the data "
        "or the split changes), so its scores may be optimistic; `data.holdout.split: hash` would exclude them."
    )


def holdout_source(holdout: Any) -> str:
    """How the holdout was chosen, for the comment's details."""
    if holdout.path:
        return f"file {holdout.path}"
    if holdout.kind == "hash":
        by = f"key {holdout.key!r}" if holdout.key else "row contents"
        return f"a {holdout.size:.0%} hash split by {by}, seed {holdout.seed}"
    return f"a {holdout.size:.0%} split, seed {holdout.seed}"


def without_rows(dataset: Dataset, drop: Any) -> Dataset:
    """``dataset`` with the holdout rows flagged in ``drop`` left out."""
    from dataclasses import replace

    return replace(dataset, holdout=dataset.holdout[~drop].reset_index(drop=True))


def evaluate_candidate(outcome: ModelOutcome, dataset: Dataset, metric_names: list[str], cfg: Any) -> Evaluation:
    if outcome.evaluation is not None and list(outcome.evaluation.metrics) == metric_names:
        return outcome.evaluation  # trained on this dataset just now: scored already
    try:
        scored = evaluate(outcome.model, dataset.holdout, dataset.features, dataset.target, dataset.task, dataset.labels, metric_names)
    except Exception as exc:  # the model is the user's; its failure to predict is input
        where = cfg.where("training", "command" if cfg.config.training.command else "estimator")
        raise TrainingError(
            f"{where}: training: the trained model cannot score the holdout: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            hint="the model is called with the feature columns of the holdout; make it handle missing values and the same column types as {train}",
        ) from None
    spread = repeat_spread(outcome.meta) if outcome.cached else None
    if spread is not None and all(spread["metrics"].get(n) is not None for n in metric_names):
        # A cached model of training.repeats: its key pins this holdout, so the means
        # recorded over its seeds are what this run would compute.
        scored.metrics = {n: spread["metrics"][n]["mean"] for n in metric_names}
    return scored


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


def retrain_note(why: str, previous: dict[str, Any] | None, fresh: dict[str, Any], names: list[str]) -> str:
    """What a requested retrain found: the same metrics (training is reproducible) or
    which metrics moved against the model it replaces."""
    if previous is None:
        return f"Retrained from scratch ({why}); no earlier model of these inputs was cached."
    old, new = previous.get("metrics") or {}, fresh.get("metrics") or {}
    moved = [f"{n} {old.get(n):.4g} → {new.get(n):.4g}" for n in names if isinstance(old.get(n), (int, float)) and isinstance(new.get(n), (int, float)) and old.get(n) != new.get(n)]
    if not moved:
        return f"Retrained from scratch ({why}): same metrics as the cached model of these inputs, so training is reproducible; the new model replaces it."
    return f"Retrained from scratch ({why}): metrics moved against the cached model of these inputs ({'; '.join(moved)}), so training is not reproducible; the new model replaces it."

