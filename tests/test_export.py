"""ONNX export of every estimator the README lists, through the auto preprocessing on
mixed numeric / text columns with missing values, run in ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest

from mlgitops.deploy import onnx as export
from mlgitops.config.loader import parse_config
from mlgitops.train.training import build_pipeline
from tests.helpers import mixed_frame, regression_frame

REGRESSORS = ("Regressor", "LinearRegression", "Ridge", "Lasso", "ElasticNet")


def fitted(estimator: str, frame, target: str, params: str = "{}"):
    cfg = parse_config(f"data: {{path: d.csv, target: {target}}}\ntraining: {{estimator: {estimator}, params: {params}}}\n", Path("/nowhere/mlops.yaml"), "mlops.yaml")
    features = [c for c in frame.columns if c != target]
    model = build_pipeline(cfg, SimpleNamespace(X_train=frame[features], features=features))
    return model.fit(frame[features], frame[target]), features


@pytest.mark.parametrize("estimator", export.SUPPORTED)
def test_supported_estimator_converts_with_parity(estimator: str) -> None:
    regression = estimator.endswith(REGRESSORS)
    frame = regression_frame(300) if regression else mixed_frame(400)
    if regression:  # give the regression data a text column with gaps too
        frame["region"] = np.where(frame["x1"] > 0, "north", "south")
        frame.loc[::7, "region"] = np.nan
    target = "y" if regression else "churn"
    train, holdout = frame.iloc[:250], frame.iloc[250:]
    model, features = fitted(estimator, train, target)
    task = "regression" if regression else "classification"
    out = export.to_onnx(model, train, features, task, {"name": "m", "git_sha": "abc123"})
    session = export.OnnxModel(out.onnx)
    tolerance = 1e-3 * float(holdout[target].std()) if regression else 1e-3  # the defaults
    result = export.parity(model, session, holdout, features, task, 0.999, tolerance)
    assert result.passed, result
    if not regression:
        assert result.label_agreement == 1.0
    proto = onnx.load_model_from_string(out.onnx)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["mlgitops.name"] == "m" and meta["mlgitops.git_sha"] == "abc123" and meta["mlgitops.estimator"] == estimator


def test_column_names_that_are_not_identifiers_still_feed_the_graph() -> None:
    frame = mixed_frame(300).rename(columns={"age": "age (years)", "city": "home city"})
    model, features = fitted("sklearn.linear_model.LogisticRegression", frame, "churn")
    session = export.OnnxModel(export.to_onnx(model, frame, features, "classification").onnx)
    assert session.features == ["age (years)", "income", "home city", "plan"]
    assert export.parity(model, session, frame, features, "classification", 1.0, 1e-4).passed


def test_text_columns_without_preprocessing_are_named() -> None:
    frame = mixed_frame(100)
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier().fit(frame[["age", "income"]].fillna(0), frame["churn"])
    with pytest.raises(export.ExportError) as err:
        export.to_onnx(model, frame, ["age", "income", "city"], "classification")
    assert err.value.message == "sklearn.tree.DecisionTreeClassifier takes the text column(s) 'city' directly, which ONNX cannot express"


def test_parity_catches_a_conversion_that_silently_differs() -> None:
    """skl2onnx converts HistGradientBoosting's native categorical splits, but the graph
    predicts differently: exactly what the parity gate is for."""
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    cat, x = rng.integers(0, 30, 6000), rng.normal(size=6000)
    frame = pd.DataFrame({"cat": cat.astype(float), "x": x, "y": ((cat % 3 == 0) ^ (x > 0.3)).astype(int)})
    train, holdout = frame.iloc[:4000], frame.iloc[4000:]
    model = HistGradientBoostingClassifier(categorical_features=[0], random_state=0).fit(train[["cat", "x"]], train["y"])
    session = export.OnnxModel(export.to_onnx(model, train, ["cat", "x"], "classification").onnx)
    result = export.parity(model, session, holdout, ["cat", "x"], "classification", 0.999, 0.001)
    assert not result.passed and result.label_agreement < 0.9 and result.max_abs_diff > 0.5
