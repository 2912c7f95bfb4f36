"""The export step of a run: ONNX bytes for a trained model (cached by its model key)
and the parity check on the holdout, as plain data for the report and the gate.

The ONNX file carries no registry version number on purpose: the bytes reviewed on
the pull request are the bytes the deploy registers and the manifest pins (their
sha256 is shown in both places). Its metadata holds the model's content version
(the model key), name, data and code fingerprints, the git sha it was trained from,
its metrics and features.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from mlgitops.config.loader import LoadedConfig
from mlgitops.data.load import Dataset
from mlgitops.train.gates import GateResult

ONNX_GATE = "onnx"


@dataclass
class ExportOutcome:
    status: str  # ok | parity_failed | failed | disabled
    message: str = ""
    sha256: str | None = None
    bytes: int | None = None
    estimator: str | None = None
    parity: dict[str, Any] | None = None
    cached: bool = False
    enforced: bool = True  # export.on_failure == "fail"
    onnx: bytes | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("onnx")
        return out


def tolerances(cfg: LoadedConfig, dataset: Dataset) -> tuple[float, float]:
    """(min label agreement, max difference) for this task."""
    tol = cfg.config.export.parity
    if dataset.task == "classification":
        return tol.min_label_agreement, tol.max_proba_diff
    if tol.max_prediction_diff is not None:
        return tol.min_label_agreement, tol.max_prediction_diff
    spread = float(dataset.holdout[dataset.target].std(ddof=0) or 0.0)
    return tol.min_label_agreement, max(1e-3 * spread, 1e-6)


def export_model(cfg: LoadedConfig, key: str, model: Any, meta: dict[str, Any], dataset: Dataset, store: Any, git_sha: str | None, reuse: bool = True) -> ExportOutcome:
    """Export (or reuse the cached export of) ``model`` and check parity on the holdout."""
    from mlgitops.deploy import onnx as export

    enforced = cfg.config.export.on_failure == "fail"
    if not cfg.config.export.onnx:
        return ExportOutcome("disabled", "ONNX export is off (export.onnx: false)", enforced=False)
    cached = store.get_onnx(key) if reuse else None  # a freshly trained model gets a fresh export
    if cached is not None:
        data, info = cached
        reused = True
    else:
        metadata = {
            "name": cfg.config.name,
            "version": key[:12],
            "model_key": key,
            "data_sha256": meta.get("data_sha256") or dataset.fingerprint,
            "code_sha256": meta.get("code_sha256"),
            "git_sha": git_sha or "",
            "trained_at": meta.get("created_at"),
            "metrics": meta.get("metrics") or {},
            "features": dataset.features,
            "target": dataset.target,
            "params": cfg.config.training.params,
        }
        try:
            exported = export.to_onnx(model, dataset.train, dataset.features, dataset.task, metadata)
        except export.ExportError as exc:
            return ExportOutcome("failed", exc.message + (f" (hint: {exc.hint})" if exc.hint else ""), estimator=export.estimator_name(model), enforced=enforced)
        data = exported.onnx
        info = store.put_onnx(key, data, {"estimator": exported.estimator, "opset": exported.opset, "inputs": exported.inputs})
        reused = False
    min_agree, max_diff = tolerances(cfg, dataset)
    if isinstance(model, export.OnnxModel):
        # A trusted run scoring the cached export itself (it never unpickles the pull
        # request's model): parity was measured, and recorded, by the run that exported
        # it; held to this config's tolerances.
        recorded = recorded_parity(info) if reuse else None
        if recorded is None:
            return ExportOutcome("failed", "the cached ONNX export has no parity record to reuse", info.get("sha256"), info.get("bytes"), info.get("estimator"), enforced=enforced)
        recorded.update(max_abs_diff_allowed=max_diff)
        if dataset.task == "classification":
            recorded["min_label_agreement"] = min_agree
        agreement = recorded.get("label_agreement")
        recorded["passed"] = recorded["max_abs_diff"] <= max_diff and (agreement is None or agreement >= min_agree)
        message = f"{describe(recorded, dataset.task)}, measured by the run that exported it; this run scored the ONNX model itself"
        return ExportOutcome("ok" if recorded["passed"] else "parity_failed", message, info["sha256"], info["bytes"], info.get("estimator"), recorded, True, enforced, data)
    try:
        session = export.OnnxModel(data)
        result = export.parity(model, session, dataset.holdout, dataset.features, dataset.task, min_agree, max_diff)
    except Exception as exc:  # onnxruntime rejects the graph or the inputs: the export failed
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ExportOutcome("failed", f"ONNX Runtime cannot run the exported {info.get('estimator')}: {first}", info.get("sha256"), info.get("bytes"), info.get("estimator"), enforced=enforced)
    if not reused:  # recorded with the export: a trusted run may reuse these bytes without the pickle
        info = store.put_onnx(key, data, dict(info, parity=result.to_dict()))
    status = "ok" if result.passed else "parity_failed"
    return ExportOutcome(status, describe(result, dataset.task), info["sha256"], info["bytes"], info.get("estimator"), result.to_dict(), reused, enforced, data)


def recorded_parity(info: dict[str, Any]) -> dict[str, Any] | None:
    """The parity record kept with a cached export (see :func:`export_model`), when it
    is well-formed; the cache may hold anything, so every field is checked."""
    parity = info.get("parity")

    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    if not (isinstance(parity, dict) and isinstance(parity.get("passed"), bool) and number(parity.get("max_abs_diff")) and isinstance(parity.get("rows"), int)):
        return None
    if parity.get("label_agreement") is not None and not number(parity["label_agreement"]):
        return None
    return dict(parity)


def describe(parity: Any, task: str) -> str:
    p = parity if isinstance(parity, dict) else parity.to_dict()
    if task == "classification":
        return (
            f"labels agree on {p['label_agreement']:.2%} of {p['rows']} holdout rows (min {p['min_label_agreement']:.2%}), "
            f"max |Δ probability| {p['max_abs_diff']:.2g} (max {p['max_abs_diff_allowed']:g})"
        )
    return f"max |Δ prediction| {p['max_abs_diff']:.3g} on {p['rows']} holdout rows (max {p['max_abs_diff_allowed']:.3g})"


def export_gate(outcome: ExportOutcome) -> GateResult | None:
    """The ONNX export as a gate row: fails the run only when export.on_failure is fail."""
    if outcome.status == "disabled":
        return None
    if outcome.status == "ok":
        return GateResult(ONNX_GATE, "parity", 0.0, outcome.parity["max_abs_diff"] if outcome.parity else None, True, False, f"ONNX parity: {outcome.message}")
    rule = "parity" if outcome.status == "parity_failed" else "export"
    text = f"ONNX parity failed: {outcome.message}" if rule == "parity" else outcome.message
    if not outcome.enforced:
        return GateResult(ONNX_GATE, rule, 0.0, None, True, True, f"{text} (export.on_failure: warn)")
    return GateResult(ONNX_GATE, rule, 0.0, None, False, False, text)
