"""Score a fitted model on a holdout frame: metrics and, for classifiers, the confusion matrix."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mlgitops.train.metrics import METRICS


@dataclass
class Evaluation:
    metrics: dict[str, float | None]
    unavailable: dict[str, str] = field(default_factory=dict)
    confusion: dict[str, Any] | None = None
    rows: int = 0


def _aligned_proba(model: Any, X: Any, labels: list[Any]) -> Any:
    import numpy as np

    proba = np.asarray(model.predict_proba(X), dtype=float)
    classes = list(getattr(model, "classes_", labels))
    out = np.zeros((proba.shape[0], len(labels)))
    for j, label in enumerate(classes):
        if label in labels:
            out[:, labels.index(label)] = proba[:, j]
    return out


def evaluate(model: Any, frame: Any, features: list[str], target: str, task: str, labels: list[Any], metric_names: list[str]) -> Evaluation:
    """Compute ``metric_names`` for ``model`` on ``frame`` (which holds features and target)."""
    X = frame[features]
    y = frame[target]
    pred = model.predict(X)
    proba = None
    unavailable: dict[str, str] = {}
    if task == "classification" and any(METRICS[m].needs_proba for m in metric_names):
        if hasattr(model, "predict_proba"):
            try:
                proba = _aligned_proba(model, X, labels)
            except (AttributeError, NotImplementedError) as exc:  # e.g. SVC(probability=False)
                unavailable.update({m: f"model has no usable predict_proba ({exc})" for m in metric_names if METRICS[m].needs_proba})
        else:
            unavailable.update({m: "model has no predict_proba" for m in metric_names if METRICS[m].needs_proba})
    values: dict[str, float | None] = {}
    for name in metric_names:
        spec = METRICS[name]
        if spec.task != task:
            unavailable[name] = f"{name} is a {spec.task} metric"
        if name in unavailable:
            values[name] = None
            continue
        try:
            value = float(spec.compute(y, pred, proba, labels))
        except ValueError as exc:  # e.g. roc_auc with one class in the holdout
            unavailable[name] = str(exc).splitlines()[0]
            values[name] = None
            continue
        values[name] = value if math.isfinite(value) else None
        if values[name] is None:
            unavailable[name] = "not a finite number"
    confusion = None
    if task == "classification":
        from sklearn.metrics import confusion_matrix

        matrix = confusion_matrix(y, pred, labels=labels)
        confusion = {"labels": [_plain(v) for v in labels], "matrix": matrix.tolist()}
    return Evaluation(values, unavailable, confusion, rows=len(frame))


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars, so reports serialise to JSON."""
    return value.item() if hasattr(value, "item") else value
