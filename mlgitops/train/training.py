"""Train a model: a declarative estimator, or the user's own training command."""

from __future__ import annotations

import importlib
import json
import math
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlgitops.run.debris import owned_prefix
from mlgitops.run import childenv
from mlgitops.config.loader import HOLDOUT_PLACEHOLDER, PLACEHOLDERS, Config, LoadedConfig, _PLACEHOLDER_RE
from mlgitops.data.load import Dataset
from mlgitops.errors import TrainingError
from mlgitops.train.seeding import command_note, command_seed_env, seed_estimator

STDERR_TAIL_LINES = 15


@dataclass
class Trained:
    model: Any
    seconds: float
    description: str
    sweep: list[dict[str, Any]] | None = None  # every candidate of a sweep, best first
    params: dict[str, Any] | None = None  # the parameters used, when not training.params (a sweep's winner)
    estimator: str | None = None  # the estimator's import path, when not training.estimator (a sweep's winner)
    notes: list[str] | None = None  # how it was seeded, for the comment


def import_estimator(cfg: LoadedConfig, path: str | None = None, where: str | None = None) -> type:
    path = path or cfg.config.training.estimator
    assert path is not None
    module_name, _, attr = path.rpartition(".")
    where = where or cfg.where("training", "estimator")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TrainingError(f"{where}: training.estimator: cannot import module {module_name!r} ({exc})", hint="install the package that provides it, or fix the import path") from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise TrainingError(f"{where}: training.estimator: module {module_name!r} has no {attr!r}", hint="check the spelling, e.g. sklearn.ensemble.RandomForestClassifier")
    if not hasattr(cls, "fit"):
        raise TrainingError(f"{where}: training.estimator: {path} is not an estimator (it has no fit method)")
    return cls


def build_pipeline(cfg: LoadedConfig, dataset: Dataset, estimator_path: str | None = None, params: dict[str, Any] | None = None, seed: int | None = None, notes: list[str] | None = None) -> Any:
    """The estimator, behind imputation/encoding of mixed columns when preprocessing is
    auto; ``estimator_path``/``params`` override the config's (a sweep's candidate).
    With ``seed``, an estimator that takes ``random_state`` and was given none gets it
    (the note is appended to ``notes``)."""
    from sklearn.base import BaseEstimator

    path = estimator_path or cfg.config.training.estimator
    cls = import_estimator(cfg, path)
    params = dict(cfg.config.training.params if params is None else params)
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise TrainingError(f"{cfg.where('training', 'params')}: training.params: {cls.__name__} rejected the parameters: {exc}", hint=f"see the documentation of {path} for its parameter names") from None
    if seed is not None:
        note = seed_estimator(estimator, params, seed)
        if note is not None and notes is not None:
            notes.append(note)
    if cfg.config.training.preprocessing == "none" or not isinstance(estimator, BaseEstimator):
        return estimator
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    import pandas as pd

    X = dataset.X_train
    numeric = [c for c in dataset.features if pd.api.types.is_numeric_dtype(X[c])]
    categorical = [c for c in dataset.features if c not in numeric]
    parts = []
    if numeric:
        steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
        if not _tree_based(estimator):
            # Trees split on raw values and gain nothing from scaling; skipping it also
            # keeps the ONNX export exact: scikit-learn scales in float64 and then trees
            # compare in float32, while ONNX would scale in float32, so values lying on a
            # split threshold could fall on the other side (the parity gate saw this).
            steps.append(("scale", StandardScaler()))
        parts.append(("numeric", Pipeline(steps), numeric))
    if categorical:
        parts.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                        ("encode", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                categorical,
            )
        )
    pre = ColumnTransformer(parts, remainder="drop")
    return Pipeline([("preprocess", pre), ("model", estimator)])


def _tree_based(estimator: Any) -> bool:
    module = type(estimator).__module__
    return module.startswith(("sklearn.tree", "sklearn.ensemble", "xgboost", "lightgbm", "catboost"))


def fit_estimator(cfg: LoadedConfig, dataset: Dataset, estimator_path: str | None = None, params: dict[str, Any] | None = None, seed: int | None = None) -> Trained:
    path = estimator_path or cfg.config.training.estimator or ""
    notes: list[str] = []
    model = build_pipeline(cfg, dataset, path, params, seed, notes)
    X = dataset.X_train
    start = time.perf_counter()
    try:
        model.fit(X, dataset.y_train)
    except Exception as exc:  # the estimator is user-chosen; its failures are input errors
        raise TrainingError(
            f"{cfg.where('training', 'estimator')}: training: {path} failed to fit: {type(exc).__name__}: {exc}",
            hint="check training.params and the data types (set training.preprocessing: auto to impute and encode)",
        ) from None
    return Trained(model, time.perf_counter() - start, path, notes=notes)


def command_argv(command: str, values: dict[str, str]) -> list[str]:
    """Split the command and fill placeholders; `python` means this interpreter."""
    known = (*PLACEHOLDERS, HOLDOUT_PLACEHOLDER)

    def fill(token: str) -> str:
        return _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)] if m.group(1) in known and m.group(1) in values else m.group(0), token)

    argv = [fill(t) for t in shlex.split(command)]
    if argv and argv[0] in ("python", "python3"):
        # The tool and the user's script share one environment (the one mlops runs in),
        # even when that venv is not activated on PATH.
        argv[0] = sys.executable
    return argv


def seeded_split(frame: Any, target: str, task: str, size: float, seed: int) -> tuple[Any, Any]:
    """``frame`` split into (rest, a ``size`` share), seeded, stratified when it can be."""
    from sklearn.model_selection import train_test_split

    stratify = None
    counts = frame[target].value_counts()
    val_rows = math.ceil(size * len(frame))
    # scikit-learn stratifies only when every class has 2 rows and each side has room
    # for every class; otherwise a plain seeded split.
    if task == "classification" and counts.min() >= 2 and min(val_rows, len(frame) - val_rows) >= len(counts):
        stratify = frame[target]
    rest, part = train_test_split(frame, test_size=size, random_state=seed, stratify=stratify)
    return rest, part


def uses(command: str, placeholder: str) -> bool:
    return placeholder in _PLACEHOLDER_RE.findall(command)


def command_env(cfg: LoadedConfig, trusted: Config | None, extra: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The training command's environment and the ``training.env`` names withheld from it.

    ``trusted`` is the config whose ``training.env`` is in force (the base ref's on a
    pull request, see :func:`childenv.effective_names`); None: no trusted config.
    """
    names, withheld = childenv.effective_names(cfg.config.training.env, trusted.training.env if trusted is not None else None)
    return childenv.child_env(names, extra), withheld


def env_note(cfg: LoadedConfig, trusted: Config | None, withheld: list[str]) -> str:
    """Why a variable the config lists may be missing from the command's environment."""
    own = list(cfg.config.training.env)
    if trusted is not None and own != list(trusted.training.env):
        shown = ", ".join(trusted.training.env) or "none"
        return f"\nnote: training.env as changed here takes effect after merge; this run passed the base ref's list ({shown})"
    if withheld:
        return f"\nnote: training.env names {', '.join(withheld)}, withheld because they look like credentials and no trusted (base ref) config lists them"
    return ""


def run_command(cfg: LoadedConfig, dataset: Dataset, root: Path, trusted: Config | None = None, seed: int | None = None) -> Trained:
    """Run the user's training command on the training rows; load the joblib it writes.

    The command sees an allow-listed environment (:mod:`mlgitops.run.childenv`), never the
    holdout unless ``training.allow_holdout``; its output tail is redacted of secrets.
    With ``seed`` it also gets ``MLOPS_SEED`` and the seeding of :mod:`mlgitops.train.seeding`.
    """
    import joblib

    t = cfg.config.training
    assert t.command is not None
    where = cfg.where("training", "command")
    childenv.make_undumpable()  # a same-uid child could otherwise read /proc/<ppid>/environ
    with tempfile.TemporaryDirectory(prefix=owned_prefix("train")) as tmp:
        tmpdir = Path(tmp)
        values = {
            "train": str(tmpdir / "train.csv"),
            "model": str(tmpdir / "model.joblib"),
            "params": str(tmpdir / "params.json"),
            "target": dataset.target,
        }
        columns = [*dataset.features, dataset.target]
        train_rows = dataset.train[columns]
        if uses(t.command, "valid"):
            values["valid"] = str(tmpdir / "valid.csv")
            train_rows, valid_rows = seeded_split(train_rows, dataset.target, dataset.task, t.validation_size, cfg.config.data.holdout.seed)
            valid_rows.to_csv(values["valid"], index=False)
        train_rows.to_csv(values["train"], index=False)
        if t.allow_holdout and uses(t.command, HOLDOUT_PLACEHOLDER):  # config validation refuses it otherwise
            values[HOLDOUT_PLACEHOLDER] = str(tmpdir / "holdout.csv")
            dataset.holdout[columns].to_csv(values[HOLDOUT_PLACEHOLDER], index=False)
        Path(values["params"]).write_text(json.dumps(t.params, indent=2, default=str))
        argv = command_argv(t.command, values)
        extra = {"MLOPS_TARGET": dataset.target, "MLOPS_PARAMS": values["params"]}
        if seed is not None:
            extra |= command_seed_env(seed, tmpdir / "seed-hook")
        env, withheld = command_env(cfg, trusted, extra)
        start = time.perf_counter()
        try:
            proc = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=t.timeout, env=env)
        except FileNotFoundError:
            raise TrainingError(f"{where}: training.command: program {argv[0]!r} not found", hint="use a program on PATH, or a path relative to the repo root") from None
        except subprocess.TimeoutExpired:
            raise TrainingError(f"{where}: training.command: still running after {t.timeout:g} s and was stopped", hint="raise training.timeout, or train on less data") from None
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-STDERR_TAIL_LINES:])
            # The tail goes into the terminal, the PR comment and alerts: never a secret.
            alert_env = [cfg.config.alerts.webhook_env] if cfg.config.alerts.webhook_env else []
            tail = childenv.redact(tail, also=alert_env)
            raise TrainingError(
                f"{where}: training.command exited with status {proc.returncode}: {shlex.join(argv)}\n--- last lines of its output ---\n{tail}{env_note(cfg, trusted, withheld)}",
                hint="run the command by hand to debug it; {train} is a CSV with the feature columns and the target",
            )
        model_path = Path(values["model"])
        if not model_path.is_file():
            raise TrainingError(f"{where}: training.command finished but wrote no model at {{model}}", hint="save the fitted model with joblib.dump(model, args.model_output_path)")
        try:
            model = joblib.load(model_path)
        except Exception as exc:  # an unreadable pickle is the script's output, not our bug
            raise TrainingError(f"{where}: training.command wrote {{model}} but it cannot be loaded with joblib: {type(exc).__name__}: {exc}") from None
        if not hasattr(model, "predict"):
            raise TrainingError(f"{where}: training.command wrote a {type(model).__name__}, which has no predict method", hint="save the fitted estimator itself")
    return Trained(model, seconds, shlex.join(shlex.split(t.command)), notes=[command_note(seed)] if seed is not None else [])
