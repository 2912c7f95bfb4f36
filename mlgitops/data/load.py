"""Load the configured table, check it, fingerprint it and split off the holdout."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgitops.data import rules
from mlgitops.config.loader import LoadedConfig
from mlgitops.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

MAX_CLASSES_FOR_INFERENCE = 20


@dataclass
class Dataset:
    train: "pd.DataFrame"
    holdout: "pd.DataFrame"
    target: str
    features: list[str]
    task: str
    task_reason: str
    fingerprint: str
    holdout_fingerprint: str | None
    labels: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def X_train(self) -> "pd.DataFrame":
        return self.train[self.features]

    @property
    def y_train(self) -> "pd.Series":
        return self.train[self.target]


def _read_table(source: str, fmt: str | None, root: Path, cfg: LoadedConfig, key: tuple[str, ...]) -> tuple["pd.DataFrame", str]:
    """Return the frame and the sha256 of its content."""
    import pandas as pd

    if source.startswith("sklearn:"):
        import sklearn.datasets as ds

        name = source.split(":", 1)[1]
        bunch = getattr(ds, f"load_{name}")(as_frame=True)
        frame = bunch.frame
        content = frame.to_csv(index=False).encode()
        return frame, hashlib.sha256(content).hexdigest()
    path = rules.data_file(cfg, key, source, root)
    from mlgitops.data.dvc import read_tracked

    raw = read_tracked(path, f"{cfg.where(*key)}: {'.'.join(key)} {source!r}")  # DVC-tracked: the version its pointer names
    if raw is None:
        if not path.is_file():
            raise rules.missing_file(cfg, key, source, path)
        raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    kind = fmt or ("parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv")
    if not raw.strip():
        raise rules.empty_file(cfg, key, source)
    try:
        if kind == "parquet":
            import io

            frame = pd.read_parquet(io.BytesIO(raw))
        else:
            import io

            frame = pd.read_csv(io.BytesIO(raw))
    except pd.errors.EmptyDataError:
        raise rules.unreadable(cfg, key, source, kind, "no columns", hint="the first line must be a header row") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise rules.unreadable(cfg, key, source, kind, rules.reason(exc)) from None
    if len(frame) == 0:
        raise rules.no_rows(cfg, key, source)
    return missing_as_nan(frame), digest


def missing_as_nan(frame: "pd.DataFrame") -> "pd.DataFrame":
    """One missing value in text columns: NaN. Parquet (and JSON) give None, which
    scikit-learn's imputers do not count as missing (None != NaN), so a model trained
    on Parquet would learn "None" as a category; the ONNX parity check caught this."""
    import numpy as np

    for column in frame.columns:
        values = frame[column]
        if values.dtype == object and values.isna().any():
            frame[column] = values.where(values.notna(), np.nan)
    return frame


def infer_task(y: "pd.Series") -> tuple[str, str]:
    import pandas as pd

    values = y.dropna()
    distinct = values.nunique()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "classification", f"target is {values.dtype} with {distinct} classes"
    integral = bool((values == values.round()).all())
    if integral and distinct <= MAX_CLASSES_FOR_INFERENCE:
        return "classification", f"target has {distinct} distinct whole-number values"
    return "regression", f"target is numeric with {distinct} distinct values"


def _counts(frame: "pd.DataFrame", target: str) -> dict[Any, int]:
    return {label: int(n) for label, n in frame[target].value_counts().items()}


def _check_classes(cfg: LoadedConfig, frame: "pd.DataFrame", stratify: bool) -> None:
    problem = rules.class_problem(cfg, _counts(frame, cfg.config.data.target), stratify)
    if problem is not None:
        raise problem


def _positive_last(labels: list[Any], positive: Any, cfg: LoadedConfig) -> list[Any]:
    """Binary metrics score labels[-1]: put the configured positive class there."""
    match = [label for label in labels if label == positive or str(label) == str(positive)]
    if not match:
        raise rules.positive_label_error(cfg, positive, labels)
    if len(labels) != 2:
        raise DataError(f"{cfg.where('data', 'positive_label')}: data.positive_label: the target has {len(labels)} classes; a positive label only applies to binary classification", hint="remove data.positive_label (multiclass metrics are macro-averaged)")
    return [label for label in labels if label is not match[0]] + [match[0]]


def _hash_split(cfg: LoadedConfig, frame: "pd.DataFrame", task: str) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """data.holdout.split: hash: each row by its key value or its contents (holdout.py)."""
    from mlgitops.data.holdout import holdout_mask, split_ids

    data = cfg.config.data
    h = data.holdout
    if h.key is not None:
        if h.key not in frame.columns:
            lowered = {str(c).lower(): str(c) for c in frame.columns}  # "ID" for "id" too
            close = [lowered[c] for c in difflib.get_close_matches(h.key.lower(), list(lowered), n=1)]
            raise DataError(
                f"{cfg.where('data', 'holdout', 'key')}: data.holdout.key: no column {h.key!r} in {data.path}" + (f"; did you mean {close[0]!r}?" if close else ""),
                hint="name a column that identifies rows (an id), or remove data.holdout.key to hash each row's contents",
            )
        missing = int(frame[h.key].isna().sum())
        if missing:
            raise DataError(
                f"{cfg.where('data', 'holdout', 'key')}: data.holdout.key: column {h.key!r} has {missing} row(s) with no value",
                hint="every row needs a key to be assigned; fill them, or remove data.holdout.key to hash each row's contents",
            )
    if task == "classification":
        _check_classes(cfg, frame, stratify=False)
    mask = holdout_mask(split_ids(frame, h.key), h.size, h.seed)
    train, holdout = frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)
    if len(train) == 0 or len(holdout) == 0:
        side = "holdout" if len(holdout) == 0 else "training"
        raise DataError(
            f"{cfg.where('data', 'holdout')}: data.holdout: the hash split of {len(frame)} rows left no {side} rows",
            hint="use a larger dataset, another holdout.size, or another holdout.seed",
        )
    if task == "classification" and train[data.target].nunique() < 2:
        raise DataError(
            f"{cfg.where('data', 'holdout')}: data.holdout: the hash split left the training rows a single class of {data.target!r} "
            f"(rows per class in the data: {rules.counts_text(_counts(frame, data.target))})",
            hint="add rows of the rare classes, or change data.holdout.seed",
        )
    return train, holdout


def load_dataset(cfg: LoadedConfig, root: Path | None = None) -> Dataset:
    """Read, check and split the data of ``cfg`` (files relative to ``root``)."""
    from sklearn.model_selection import train_test_split

    root = root or cfg.root
    data = cfg.config.data
    frame, fingerprint = _read_table(data.path, data.format, root, cfg, ("data", "path"))
    frame.columns = [str(c) for c in frame.columns]
    features = rules.feature_columns(cfg, list(frame.columns), data.path)
    notes: list[str] = []
    missing_target = int(frame[data.target].isna().sum())
    if missing_target:
        frame = frame[frame[data.target].notna()].reset_index(drop=True)
        notes.append(f"dropped {missing_target} row(s) with no {data.target!r} value")
    if len(frame) < 2:
        raise rules.too_few_rows(cfg, data.path, len(frame))
    if cfg.config.task:
        task, reason = cfg.config.task, "set in mlops.yaml"
    else:
        task, reason = infer_task(frame[data.target])
        reason = f"inferred: {reason}"
    holdout_cfg = data.holdout
    holdout_fp = None
    if holdout_cfg.path:
        holdout, holdout_fp = _read_table(holdout_cfg.path, data.format, root, cfg, ("data", "holdout", "path"))
        holdout.columns = [str(c) for c in holdout.columns]
        absent = [c for c in [*features, data.target] if c not in holdout.columns]
        if absent:
            raise DataError(f"{cfg.where('data', 'holdout', 'path')}: data.holdout.path: column(s) {', '.join(map(repr, absent))} missing from {holdout_cfg.path}")
        holdout = holdout[holdout[data.target].notna()].reset_index(drop=True)
        if len(holdout) == 0:
            raise DataError(f"{cfg.where('data', 'holdout', 'path')}: data.holdout.path: {holdout_cfg.path} has no rows with a {data.target!r} value", hint="the holdout needs labelled rows to score the models")
        train = frame
        if task == "classification":
            _check_classes(cfg, frame, stratify=False)
    elif holdout_cfg.kind == "hash":
        train, holdout = _hash_split(cfg, frame, task)
    else:
        stratify = None
        want = holdout_cfg.stratify if holdout_cfg.stratify is not None else task == "classification"
        if task == "classification":
            _check_classes(cfg, frame, stratify=want)
            stratify = frame[data.target] if want else None
        elif want:  # a regression target stratified on request: only where it can be
            counts = frame[data.target].value_counts()
            if (counts < 2).any():
                notes.append("split not stratified: some classes have a single row")
            else:
                stratify = frame[data.target]
        try:
            train, holdout = train_test_split(frame, test_size=holdout_cfg.size, random_state=holdout_cfg.seed, stratify=stratify)
        except ValueError as exc:
            raise DataError(f"{cfg.where('data', 'holdout')}: data.holdout: cannot split {len(frame)} rows: {exc}", hint="use a larger dataset or a different holdout.size") from None
        train, holdout = train.reset_index(drop=True), holdout.reset_index(drop=True)
        if task == "classification" and train[data.target].nunique() < 2:
            # Unstratified, the split can leave the training rows a single class.
            raise DataError(
                f"{cfg.where('data', 'holdout')}: data.holdout: the unstratified split left the training rows a single class of {data.target!r} "
                f"(rows per class in the data: {rules.counts_text(_counts(frame, data.target))})",
                hint="set data.holdout.stratify: true (or remove it), or add rows of the rare classes",
            )
    labels: list[Any] = []
    if task == "classification":
        labels = sorted(set(train[data.target]).union(holdout[data.target]), key=lambda v: (str(type(v)), v))
        if data.positive_label is not None:
            labels = _positive_last(labels, data.positive_label, cfg)
    return Dataset(train, holdout, data.target, features, task, reason, fingerprint, holdout_fp, labels, notes)
