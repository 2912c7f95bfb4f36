"""mlops.yaml: exact error texts a user sees, the schema, and the loader's contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlgitops.config.loader import json_schema, load_config
from mlgitops.errors import ConfigError
from tests.helpers import EXAMPLE, REPO_ROOT

BASE = """\
name: demo
data:
  path: sklearn:iris
  target: target
training:
  estimator: sklearn.linear_model.LogisticRegression
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "mlops.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def hint(tmp_path: Path, text: str) -> str | None:
    path = tmp_path / "mlops.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.hint


def test_example_config_is_valid() -> None:
    loaded = load_config(REPO_ROOT / "mlops.yaml")
    assert loaded.config.name == "breast-cancer"
    assert set(loaded.gated_metrics()) == {"accuracy", "f1", "log_loss"}
    assert loaded.where("gates", "f1", "max_drop") == "mlops.yaml:29:15"


def test_non_numeric_threshold(tmp_path: Path) -> None:
    text = BASE + "gates:\n  f1:\n    min: 0.9x\n"
    assert problems(tmp_path, text) == ["mlops.yaml:9:10: gates.f1.min: expected a number, got '0.9x'"]
    assert hint(tmp_path, text) == "write numbers without quotes, e.g. `min: 0.9`"


def test_quoted_number_is_not_silently_accepted(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + "gates:\n  accuracy: {min: '0.9'}\n") == [
        "mlops.yaml:8:19: gates.accuracy.min: expected a number, got '0.9'"
    ]


def test_misspelled_gate_key(tmp_path: Path) -> None:
    text = BASE + "gates:\n  f1:\n    mni: 0.9\n"
    assert problems(tmp_path, text) == ["mlops.yaml:9:5: gates.f1.mni: unknown key 'mni'; did you mean 'min'?"]


def test_misspelled_gate_metric(tmp_path: Path) -> None:
    text = BASE + "gates:\n  acuracy:\n    min: 0.9\n"
    assert problems(tmp_path, text) == ["mlops.yaml:8:3: gates.acuracy: unknown key 'acuracy'; did you mean 'accuracy'?"]
    assert hint(tmp_path, text) == (
        "gates are keyed by metric name (accuracy, precision, recall, f1, roc_auc, log_loss, mae, rmse, r2); "
        "each takes min, max, max_drop, max_drop_pct"
    )


def test_unknown_metric_in_list(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + "metrics: [accuracy, auc]\n") == [
        "mlops.yaml:7:21: metrics[1]: expected one of accuracy, precision, recall, f1, roc_auc, log_loss, mae, rmse, r2, got 'auc'"
    ]


def test_gate_threshold_out_of_range(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + "gates:\n  accuracy:\n    min: 90\n") == [
        "mlops.yaml:9:10: gates.accuracy.min: expected a number in [0, 1], got 90"
    ]


def test_gate_needs_a_rule_and_sane_bounds(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + "gates:\n  f1: {}\n  accuracy: {min: 0.9, max: 0.8}\n") == [
        "mlops.yaml:8:7: gates.f1: expected at least one of min, max, max_drop, max_drop_pct",
        "mlops.yaml:9:13: gates.accuracy: min (0.9) is greater than max (0.8); no model can pass",
    ]


def test_negative_drop(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + "gates:\n  rmse: {max_drop: -1}\n") == [
        "mlops.yaml:8:20: gates.rmse.max_drop: expected a number >= 0, got -1"
    ]


def test_malformed_yaml(tmp_path: Path) -> None:
    text = "data:\n  path: a.csv\n target: y\n"
    assert problems(tmp_path, text) == [
        "mlops.yaml:3:2: invalid YAML: expected <block end>, but found '<block mapping start>' (while parsing a block mapping)"
    ]
    assert hint(tmp_path, text) == "check the indentation and that every `key: value` has a space after the colon"


def test_missing_required_keys(tmp_path: Path) -> None:
    assert problems(tmp_path, "name: demo\ndata:\n  path: x.csv\n") == [
        "mlops.yaml:1:1: training: required key is missing",
        "mlops.yaml:3:3: data.target: required key is missing",
    ]


def test_duplicate_key(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + "gates:\n  f1: {min: 0.5}\ngates:\n  f1: {min: 0.1}\n") == [
        "mlops.yaml:9:1: gates: duplicate key (the earlier one would be ignored)"
    ]


def test_estimator_and_command_are_exclusive(tmp_path: Path) -> None:
    text = BASE + "  command: python train.py {train} {model}\n"
    assert problems(tmp_path, text) == ["mlops.yaml:6:3: training: expected exactly one of `estimator` or `command`"]


def test_command_placeholders(tmp_path: Path) -> None:
    text = BASE.replace("  estimator: sklearn.linear_model.LogisticRegression\n", "  command: python train.py --data {trian} --out {model}\n")
    assert problems(tmp_path, text) == [
        "mlops.yaml:6:12: training.command: unknown placeholder {trian}; expected one of {train}, {valid}, {model}, {params}, {target}",
        "mlops.yaml:6:12: training.command: the command must contain {train}, where the tool puts the training data CSV",
    ]


def test_task_and_metric_mismatch(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + "task: regression\ngates:\n  accuracy: {min: 0.5}\n") == [
        "mlops.yaml:9:13: gates.accuracy: accuracy is a classification metric, but the task is regression (set by `task:`)"
    ]


def test_unknown_top_level_key(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + "trainig: {}\n") == ["mlops.yaml:7:1: trainig: unknown key 'trainig'; did you mean 'training'?"]


def test_unknown_dataset_and_suffix(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE.replace("sklearn:iris", "sklearn:titanic")) == [
        "mlops.yaml:3:9: data.path: unknown bundled dataset 'sklearn:titanic'; expected one of sklearn:breast_cancer, sklearn:iris, sklearn:wine, sklearn:diabetes, sklearn:digits"
    ]
    assert problems(tmp_path, BASE.replace("sklearn:iris", "data.xlsx")) == [
        "mlops.yaml:3:9: data.path: cannot tell the format of 'data.xlsx' from its suffix; expected .csv or .parquet, or set data.format"
    ]


def test_empty_and_missing_files(tmp_path: Path) -> None:
    assert problems(tmp_path, "") == ["mlops.yaml:1:1: the file is empty"]
    assert problems(tmp_path, "- a\n- b\n") == ["mlops.yaml:1:1: expected a mapping of keys (data, training, ...), got list"]
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope" / "mlops.yaml")
    assert info.value.problems == ["mlops.yaml: file not found"]


def test_json_schema_matches_the_example() -> None:
    import jsonschema
    import yaml

    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load(EXAMPLE), schema)
    assert schema["properties"]["gates"]["$ref"].endswith("/Gates")
    assert schema["$defs"]["Gates"]["additionalProperties"] is False


def test_schema_command_prints_json(cli_noprefect, tmp_path: Path) -> None:
    result = cli_noprefect("schema", cwd=tmp_path)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["title"] == "mlops.yaml"


def test_yaml_merge_keys_and_exponent_hint(tmp_path: Path) -> None:
    text = BASE + "x-defaults: &d {min: 0.5}\ngates:\n  accuracy:\n    <<: *d\n"
    assert problems(tmp_path, text) == ["mlops.yaml:7:1: x-defaults: unknown key 'x-defaults'; expected one of version, name, task, data, training, metrics, gates, drift, export, registry, alerts, deploy, report, tracking under (top level)"]
    path = tmp_path / "mlops.yaml"
    path.write_text(BASE + "gates:\n  accuracy:\n    <<: {min: 0.5}\n")
    assert load_config(path).gated_metrics()["accuracy"].min == 0.5
    assert hint(tmp_path, BASE + "gates:\n  log_loss: {max: 1e-3}\n") == "YAML 1.1 reads exponents without a dot (1e-3) as text: write 0.001 or 1.0e-3"


def test_unbalanced_quote_in_command(tmp_path: Path) -> None:
    text = BASE.replace("  estimator: sklearn.linear_model.LogisticRegression\n", "  command: python train.py '{train} {model}\n")
    assert problems(tmp_path, text) == ["mlops.yaml:6:12: training.command: cannot split the command into words: No closing quotation"]


def test_drift_columns_as_a_mapping_of_limits(tmp_path: Path) -> None:
    features = BASE.replace("  target: target\n", "  target: target\n  features: [a, b]\n")
    path = tmp_path / "mlops.yaml"
    path.write_text(features + "drift:\n  columns:\n    a: {max_score: 0.2}\n    b: {min_p_value: 0.01, max_score: 0.1}\n  max_drifted_columns: 1\n")
    drift = load_config(path).config.drift
    assert list(drift.columns) == ["a", "b"] and drift.columns["b"].min_p_value == 0.01 and drift.max_drifted_columns == 1
    path.write_text(features + "drift:\n  columns: [a, b]\n")
    assert load_config(path).config.drift.columns == ["a", "b"]  # the list form still works
    assert problems(tmp_path, features + "drift:\n  columns:\n    a: {max_scor: 0.2}\n    c: {}\n") == [
        "mlops.yaml:10:9: drift.columns.a.max_scor: unknown key 'max_scor'; did you mean 'max_score'?",
    ]
    assert problems(tmp_path, features + "drift:\n  columns:\n    a: {max_score: -1}\n    c: {}\n  max_drifted_columns: 0.5\n") == [
        "mlops.yaml:10:20: drift.columns.a.max_score: expected a number >= 0, got -1",
        "mlops.yaml:12:24: drift.max_drifted_columns: expected a whole number, got 0.5",
    ]
    assert problems(tmp_path, features + "drift:\n  columns:\n    a: {min_p_value: 2}\n") == ["mlops.yaml:10:22: drift.columns.a.min_p_value: expected a number <= 1, got 2"]
    assert problems(tmp_path, features + "drift:\n  columns:\n    a: {}\n    c: {max_score: 1}\n") == ["mlops.yaml:11:8: drift.columns.c: 'c' is neither a feature (data.features) nor the target"]
    assert problems(tmp_path, features + "drift:\n  columns: {}\n") == ["mlops.yaml:9:12: drift.columns: an empty mapping compares nothing; list columns or drop the key (default: the features)"]
    assert problems(tmp_path, features + "drift:\n  columns: age\n") == [
        "mlops.yaml:9:12: drift.columns: expected a list of column names or a mapping of column names to limits ({max_score: ...}), got 'age'"
    ]
    assert problems(tmp_path, features + "drift:\n  columns:\n    a: 0.2\n") == ["mlops.yaml:10:8: drift.columns.a: expected a mapping of keys, got 0.2"]
