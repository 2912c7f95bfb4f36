"""ONNX export with skl2onnx, an ONNX Runtime wrapper, and the parity check between them.

The exported graph takes one input per feature column, named after the column and
shaped ``[None, 1]`` (float for numeric columns, string for the others), so a
serving client sends a row as ``{"column": value, ...}`` just as it would to the
fitted pipeline. A model that does not start with a ColumnTransformer takes one
float tensor ``input`` holding every feature, in order.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from mlgitops.errors import InputError

TARGET_OPSET = 18  # onnxruntime >= 1.16 runs it; skl2onnx 1.18+ converts to it
ML_OPSET = 3  # ai.onnx.ml 3: tree ensembles keep their thresholds in double
META_PREFIX = "mlgitops."
MISSING_TEXT = ""  # what a missing categorical becomes in the ONNX graph (see _string_imputers)

#: Estimators whose ONNX export the test suite proves, through the auto preprocessing
#: (mixed numeric / categorical columns with missing values) and with parity, and that
#: bench/bench_onnx.py measures >= 10x faster than scikit-learn on one row. Others are
#: tried too. KNeighborsClassifier converts and passes parity but is left out: ONNX
#: computes neighbours by brute force, slower than scikit-learn's tree search.
SUPPORTED = (
    "sklearn.linear_model.LogisticRegression",
    "sklearn.linear_model.LinearRegression",
    "sklearn.linear_model.Ridge",
    "sklearn.linear_model.Lasso",
    "sklearn.linear_model.ElasticNet",
    "sklearn.tree.DecisionTreeClassifier",
    "sklearn.tree.DecisionTreeRegressor",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.ensemble.RandomForestRegressor",
    "sklearn.ensemble.ExtraTreesClassifier",
    "sklearn.ensemble.ExtraTreesRegressor",
    "sklearn.ensemble.GradientBoostingClassifier",
    "sklearn.ensemble.GradientBoostingRegressor",
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.ensemble.HistGradientBoostingRegressor",
    "sklearn.neural_network.MLPClassifier",
    "sklearn.svm.SVC",
)


class ExportError(InputError):
    """The fitted model cannot be converted to ONNX; the message names the estimator."""


@dataclass
class Parity:
    """How closely ONNX Runtime reproduces the fitted model on the holdout."""

    rows: int
    label_agreement: float | None  # classification: share of rows with the same label
    max_abs_diff: float  # largest |probability| (classification) or |prediction| difference
    min_label_agreement: float | None
    max_abs_diff_allowed: float
    passed: bool
    worst_row: int | None = None  # holdout row index of the largest difference

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Exported:
    onnx: bytes
    inputs: list[dict[str, str]]  # [{"name": graph input, "column": feature column ("" = all, one tensor), "type": "float" | "string"}]
    estimator: str
    opset: int = TARGET_OPSET
    metadata: dict[str, str] = field(default_factory=dict)


def estimator_name(model: Any) -> str:
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    return f"{type(final).__module__.split('._')[0]}.{type(final).__name__}"


def _column_transformer(model: Any) -> Any:
    from sklearn.compose import ColumnTransformer

    first = model.steps[0][1] if hasattr(model, "steps") else model
    return first if isinstance(first, ColumnTransformer) else None


def _numeric(frame: Any, column: str) -> bool:
    import pandas as pd

    dtype = frame[column].dtype
    return bool(pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))


def _string_imputers(model: Any) -> Any:
    """A copy of ``model`` whose categorical imputers treat "" as missing.

    Training imputes NaN in text columns (pandas' missing value); skl2onnx can only
    convert an imputer whose missing value is a string ("The converter is
    implemented when the missing values are string"). The ONNX graph therefore
    receives "" for a missing text value (see :func:`feeds`) and imputes that; the
    fitted statistics are unchanged, and the parity check proves the two agree.
    """
    from sklearn.impute import SimpleImputer

    patched = copy.deepcopy(model)
    stack = [patched]
    while stack:
        node = stack.pop()
        if isinstance(node, SimpleImputer):
            stats = getattr(node, "statistics_", None)
            is_text = stats is not None and getattr(stats, "dtype", None) is not None and stats.dtype.kind in "OUS"
            if is_text and isinstance(node.missing_values, float) and math.isnan(node.missing_values):
                node.missing_values = MISSING_TEXT
            continue
        for attr in ("steps", "transformers_"):
            for item in getattr(node, attr, None) or []:
                stack.append(item[1])
    return patched


def input_spec(model: Any, frame: Any, features: list[str]) -> list[dict[str, str]]:
    if _column_transformer(model) is not None:
        return [{"name": c, "column": c, "type": "float" if _numeric(frame, c) else "string"} for c in features]
    text = [c for c in features if not _numeric(frame, c)]
    if text:
        raise ExportError(
            f"{estimator_name(model)} takes the text column(s) {', '.join(map(repr, text[:5]))} directly, which ONNX cannot express",
            hint="use training.preprocessing: auto (it encodes text columns inside the exported graph), or encode them in your pipeline with a ColumnTransformer",
        )
    return [{"name": "input", "column": "", "type": "float"}]


def to_onnx(model: Any, frame: Any, features: list[str], task: str, metadata: dict[str, Any] | None = None) -> Exported:
    """Convert a fitted scikit-learn model (a pipeline or an estimator) to ONNX."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    name = estimator_name(model)
    inputs = input_spec(model, frame, features)
    if inputs[0]["name"] == "input" and len(inputs) == 1 and _column_transformer(model) is None:
        initial = [("input", FloatTensorType([None, len(features)]))]
    else:
        initial = [(i["name"], FloatTensorType([None, 1]) if i["type"] == "float" else StringTensorType([None, 1])) for i in inputs]
    patched = _string_imputers(model)
    final = patched.steps[-1][1] if hasattr(patched, "steps") else patched
    options = {id(final): {"zipmap": False}} if task == "classification" and hasattr(final, "classes_") else None
    try:
        onx = convert_sklearn(patched, initial_types=initial, target_opset={"": TARGET_OPSET, "ai.onnx.ml": ML_OPSET}, options=options)
    except Exception as exc:  # skl2onnx raises many types; each is "cannot convert this model"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if type(exc).__name__ in ("MissingShapeCalculator", "MissingConverter"):
            first = f"skl2onnx has no converter for {name.rsplit('.', 1)[-1]}"
        else:
            first = f"{type(exc).__name__}: {first}"
        raise ExportError(
            f"cannot export {name} to ONNX: {first}",
            hint="pick an estimator skl2onnx converts (docs/deploy.md lists the ones tested), or set export.on_failure: warn to deploy without ONNX parity",
        ) from None
    # skl2onnx turns column names into identifiers ("mean radius" -> "mean_radius"),
    # in order: keep both, so clients keep sending the column names they know.
    graph_names = [i.name for i in onx.graph.input]
    if len(graph_names) == len(inputs):
        inputs = [dict(spec, column=spec.get("column", spec["name"]), name=graph) for spec, graph in zip(inputs, graph_names)]
    meta = {f"{META_PREFIX}{k}": v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str) for k, v in (metadata or {}).items()}
    meta[f"{META_PREFIX}inputs"] = json.dumps(inputs)
    meta[f"{META_PREFIX}task"] = task
    meta[f"{META_PREFIX}estimator"] = name
    if hasattr(final, "classes_"):
        meta[f"{META_PREFIX}classes"] = json.dumps([_plain(c) for c in final.classes_])
    for key, value in sorted(meta.items()):
        prop = onx.metadata_props.add()
        prop.key, prop.value = key, value
    onx.producer_name = "mlgitops"
    onx.doc_string = f"{metadata.get('name', 'model') if metadata else 'model'}: {name} exported by mlgitops"
    version = (metadata or {}).get("version")
    if isinstance(version, int):
        onx.model_version = version
    return Exported(onx.SerializeToString(), inputs, name, TARGET_OPSET, meta)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def feeds(inputs: list[dict[str, str]], frame: Any) -> dict[str, Any]:
    """The ONNX Runtime inputs for ``frame``: float32 columns, text with "" for missing."""
    import numpy as np
    import pandas as pd

    if len(inputs) == 1 and not inputs[0].get("column", inputs[0]["name"]):
        return {inputs[0]["name"]: frame.to_numpy(dtype=np.float32)}
    out: dict[str, Any] = {}
    for spec in inputs:
        values = frame[spec.get("column", spec["name"])].to_numpy()
        if spec["type"] == "float":
            out[spec["name"]] = np.asarray(values, dtype=np.float32).reshape(-1, 1)
        else:
            text = values.astype(object)
            text[pd.isna(text)] = MISSING_TEXT
            if text.size and not all(isinstance(v, str) for v in text):
                text = np.asarray([str(v) for v in text], dtype=object)
            out[spec["name"]] = text.reshape(-1, 1)
    return out


def feeds_from_records(inputs: list[dict[str, str]], rows: list[dict[str, Any]], features: list[str] | None = None) -> dict[str, Any]:
    """The ONNX Runtime inputs for JSON rows, without building a DataFrame (the serving
    path: pandas would cost more than the model). A value that is not a number in a
    numeric column raises ValueError."""
    import numpy as np

    out: dict[str, Any] = {}
    if len(inputs) == 1 and not inputs[0].get("column", inputs[0]["name"]):
        # one float tensor of every feature, in training order (no ColumnTransformer)
        assert features is not None
        return {inputs[0]["name"]: np.asarray([[_number(row.get(c), c) for c in features] for row in rows], dtype=np.float32).reshape(len(rows), len(features))}
    for spec in inputs:
        column = spec.get("column", spec["name"])
        if spec["type"] == "float":
            out[spec["name"]] = np.asarray([[_number(row.get(column), column)] for row in rows], dtype=np.float32)
        else:
            out[spec["name"]] = np.asarray([[_text(row.get(column))] for row in rows], dtype=object)
    return out


def _number(value: Any, column: str) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"column {column!r} is numeric, got {value!r}") from None


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING_TEXT
    return value if isinstance(value, str) else str(value)


class OnnxModel:
    """An ONNX Runtime session with the fitted model's face: ``predict``,
    ``predict_proba`` and ``classes_``, taking a DataFrame of the feature columns."""

    def __init__(self, onnx: bytes) -> None:
        import onnx as onnx_lib
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        # One inference thread: the server answers many small requests concurrently,
        # and per-request thread pools would fight over the same cores.
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(onnx, sess_options=options, providers=["CPUExecutionProvider"])
        proto = onnx_lib.load_model_from_string(onnx)
        self.metadata = {p.key.removeprefix(META_PREFIX): p.value for p in proto.metadata_props if p.key.startswith(META_PREFIX)}
        self.inputs: list[dict[str, str]] = json.loads(self.metadata.get("inputs") or "[]") or [{"name": i.name, "type": "float"} for i in self.session.get_inputs()]
        self.task = self.metadata.get("task", "classification")
        classes = self.metadata.get("classes")
        self.classes_ = json.loads(classes) if classes else None
        names = [o.name for o in self.session.get_outputs()]
        self._label, self._proba = names[0], (names[1] if len(names) > 1 else None)
        self.features = [i.get("column", i["name"]) for i in self.inputs] if self.inputs and self.inputs[0].get("column", "x") else json.loads(self.metadata.get("features") or "[]")

    def _run(self, inputs: dict[str, Any]) -> tuple[Any, Any]:
        outputs = self.session.run(None, inputs)
        return outputs[0], (outputs[1] if len(outputs) > 1 else None)

    def run(self, frame: Any) -> tuple[Any, Any]:
        return self._run(feeds(self.inputs, frame))

    def run_records(self, rows: list[dict[str, Any]]) -> tuple[Any, Any]:
        """Score JSON rows ({column: value}) directly: the serving path."""
        return self._run(feeds_from_records(self.inputs, rows, self.features))

    def labels(self, raw: Any) -> list[Any]:
        """ONNX label output -> the model's own class values (JSON-ready)."""
        import numpy as np

        flat = np.asarray(raw).reshape(-1)
        if self.classes_ is None:
            return [float(v) for v in flat]
        lookup = {_label_key(c): c for c in self.classes_}
        return [lookup.get(_label_key(v), _plain(v)) for v in flat]

    def predict(self, frame: Any) -> Any:
        import numpy as np

        label, _ = self.run(frame)
        return np.asarray(self.labels(label))

    def predict_proba(self, frame: Any) -> Any:
        import numpy as np

        _, proba = self.run(frame)
        if proba is None:
            raise AttributeError("this ONNX model has no probability output")
        proba = np.asarray(proba, dtype=float)
        # float32 rows sum to 1 +- 1e-7; metrics such as log_loss expect exact sums.
        sums = proba.sum(axis=1, keepdims=True)
        return np.divide(proba, sums, out=proba.copy(), where=sums > 0)


def _label_key(value: Any) -> str:
    """Compare labels across numpy/ONNX types: 1, 1.0, np.int64(1) and "1" are one label."""
    value = _plain(value)
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parity(model: Any, onnx_model: OnnxModel, frame: Any, features: list[str], task: str, min_label_agreement: float, max_abs_diff: float) -> Parity:
    """ONNX Runtime vs the fitted model on ``frame`` (the holdout)."""
    import numpy as np

    X = frame[features]
    rows = len(X)
    agreement = None
    if task == "classification":
        ours = [_label_key(v) for v in model.predict(X)]
        theirs = [_label_key(v) for v in onnx_model.predict(X)]
        agreement = sum(a == b for a, b in zip(ours, theirs)) / rows if rows else 1.0
        diff = np.zeros(rows)
        if hasattr(model, "predict_proba") and onnx_model._proba is not None:
            try:
                expected = np.asarray(model.predict_proba(X), dtype=float)
            except (AttributeError, NotImplementedError):
                expected = None
            if expected is not None:
                got = onnx_model.predict_proba(X)
                if got.shape == expected.shape:
                    diff = np.abs(got - expected).max(axis=1)
                else:
                    diff = np.full(rows, np.inf)
    else:
        expected = np.asarray(model.predict(X), dtype=float).reshape(rows)
        got = np.asarray(onnx_model.predict(X), dtype=float).reshape(rows)
        diff = np.abs(got - expected)
    diff = np.where(np.isnan(diff), np.inf, diff)
    worst = int(np.argmax(diff)) if rows else None
    max_diff = float(diff.max()) if rows else 0.0
    ok = max_diff <= max_abs_diff and (agreement is None or agreement >= min_label_agreement)
    return Parity(rows, agreement, max_diff, min_label_agreement if task == "classification" else None, max_abs_diff, ok, int(frame.index[worst]) if worst is not None else None)
