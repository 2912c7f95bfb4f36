"""ROC curves of a binary classifier's holdout scores, sampled on a fixed grid of false
positive rates so that two models' curves share one x axis (the comment's chart)."""

from __future__ import annotations

from typing import Any

GRID_POINTS = 21  # false positive rates 0, 0.05, ..., 1


def roc_on_grid(y_true: Any, score: Any, positive: Any, points: int = GRID_POINTS) -> dict[str, Any] | None:
    """``{"tpr": [...], "auc": float}``: the ROC curve's true positive rate at each of
    ``points`` evenly spaced false positive rates (the curve is piecewise linear through
    its vertices; on a vertical step, its top), and the exact area under the full
    curve. None when the holdout holds one class only."""
    import bisect

    import numpy as np
    from sklearn.metrics import auc, roc_curve

    y = np.asarray(y_true) == positive
    if y.all() or not y.any():
        return None
    fpr_arr, tpr_arr, _ = roc_curve(y, np.asarray(score, dtype=float))
    fpr, tpr = fpr_arr.tolist(), tpr_arr.tolist()  # fpr and tpr never decrease along the curve
    out = []
    for i in range(points):
        x = i / (points - 1)
        j = bisect.bisect_right(fpr, x)  # fpr[j-1] <= x < fpr[j]; fpr[0] is 0
        if fpr[j - 1] == x or j == len(fpr):
            out.append(tpr[j - 1])  # the last vertex at x: the top of a vertical step
        else:
            x0, y0, x1, y1 = fpr[j - 1], tpr[j - 1], fpr[j], tpr[j]
            out.append(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
    return {"tpr": out, "auc": float(auc(fpr_arr, tpr_arr))}


def roc_curves(frame: Any, target: str, labels: list[Any], models: list[tuple[str, Any, list[str]]]) -> dict[str, Any] | None:
    """Each model's ROC curve on ``frame`` (a binary holdout), as plain data:
    ``{"rows", "positive", "fpr", "lines": [{"side", "tpr", "auc"}]}``. ``models`` are
    ``(side, model, feature columns)``; a model without usable probabilities is left
    out. None for multiclass or regression, or when no model has a curve."""
    from mlgitops.train.evaluate import _aligned_proba, _plain

    if len(labels) != 2 or not len(frame):
        return None
    positive = labels[1]  # binary metrics score labels[-1] (data.positive_label puts it there)
    lines = []
    for side, model, features in models:
        if model is None or not hasattr(model, "predict_proba"):
            continue
        try:
            proba = _aligned_proba(model, frame[features], labels)
        except Exception:  # the model is the user's (or a deployed ONNX file); no curve is no gate
            continue
        curve = roc_on_grid(frame[target], proba[:, 1], positive)
        if curve is not None:
            lines.append({"side": side, **curve})
    if not lines:
        return None
    step = 1 / (GRID_POINTS - 1)
    return {"rows": len(frame), "positive": _plain(positive), "fpr": [round(i * step, 4) for i in range(GRID_POINTS)], "lines": lines}
