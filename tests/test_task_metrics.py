"""A gate or reported metric that does not apply to the task is a config error with a
position, from `mlops validate` and from `mlops run` before any training (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgitops.config.loader import load_config
from mlgitops.errors import ConfigError
from tests.helpers import GitRepo, mixed_frame, regression_frame

CLASSIFIER = "name: churn\ndata: {path: data/churn.csv, target: churn}\ntraining: {estimator: sklearn.linear_model.LogisticRegression}\n"
REGRESSOR = "name: price\ndata: {path: data/price.csv, target: y}\ntraining: {estimator: sklearn.linear_model.Ridge}\n"
CLASS_HINT = "  hint: metrics that fit a classification task: accuracy, precision, recall, f1, roc_auc, log_loss; if the target is really a regression target, set `task: regression`\n"
REG_HINT = "  hint: metrics that fit a regression task: mae, rmse, r2; if the target is really a classification target, set `task: classification`\n"

RMSE_ON_CLASSIFIER = (
    {"mlops.yaml": CLASSIFIER + "metrics: [accuracy, r2]\ngates:\n  f1: {min: 0.1}\n  rmse: {max: 0.5}\n", "data/churn.csv": mixed_frame(120).to_csv(index=False)},
    "error: mlops.yaml:4:21: metrics[1]: r2 is a regression metric, but the task is classification (inferred from the target column 'churn')\n"
    "error: mlops.yaml:7:9: gates.rmse: rmse is a regression metric, but the task is classification (inferred from the target column 'churn')\n" + CLASS_HINT,
)
AUC_ON_REGRESSOR = (
    {"mlops.yaml": REGRESSOR + "gates:\n  roc_auc: {min: 0.8}\n  r2: {min: 0.5}\n  log_loss: {max: 1}\n", "data/price.csv": regression_frame(120).to_csv(index=False)},
    "error: mlops.yaml:5:12: gates.roc_auc: roc_auc is a classification metric, but the task is regression (inferred from the target column 'y')\n"
    "error: mlops.yaml:7:13: gates.log_loss: log_loss is a classification metric, but the task is regression (inferred from the target column 'y')\n" + REG_HINT,
)
CASES = {"rmse on a classifier": RMSE_ON_CLASSIFIER, "roc_auc on a regressor": AUC_ON_REGRESSOR}


@pytest.mark.parametrize("case", list(CASES))
def test_validate_names_the_metric_the_task_and_why(cli_noprefect, repo: GitRepo, case: str) -> None:
    files, expected = CASES[case]
    repo.gen(files).commit("pipeline")
    result = cli_noprefect("validate", cwd=repo.path)
    assert result.exit_code == 2, result.output
    assert result.stderr == expected
    assert result.stdout == ""


@pytest.mark.parametrize("case", list(CASES))
def test_run_refuses_before_training_with_the_same_words(cli, repo: GitRepo, case: str) -> None:
    files, expected = CASES[case]
    good = {"mlops.yaml": files["mlops.yaml"].split("metrics:")[0].split("gates:")[0], **{k: v for k, v in files.items() if k != "mlops.yaml"}}
    repo.gen(good).commit("base")
    repo.branch("pr").gen(files).commit("gate a metric of the other task")
    result = cli("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 2, result.output
    assert result.stderr == expected  # not "rmse could not be computed for the candidate" after training
    assert result.stdout == ""
    assert repo.mlops_files() == []  # nothing trained, nothing cached


def test_metrics_that_fit_pass_validate(cli_noprefect, repo: GitRepo) -> None:
    files = {"mlops.yaml": REGRESSOR + "metrics: [mae]\ngates:\n  rmse: {max: 5}\n  r2: {min: 0.5}\n", "data/price.csv": regression_frame(120).to_csv(index=False)}
    repo.gen(files).commit("pipeline")
    result = cli_noprefect("validate", cwd=repo.path)
    assert result.exit_code == 0, result.output
    assert "  task: regression (inferred: target is numeric with 120 distinct values)\n  training: estimator sklearn.linear_model.Ridge\n  gates: rmse, r2\n" in result.stdout


def test_explicit_task_is_checked_when_the_file_loads(tmp_path: Path) -> None:
    (tmp_path / "mlops.yaml").write_text("task: regression\n" + CLASSIFIER + "gates:\n  accuracy: {min: 0.5}\n  mae: {max: 1}\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "mlops.yaml")
    assert err.value.problems == ["mlops.yaml:6:13: gates.accuracy: accuracy is a classification metric, but the task is regression (set by `task:`)"]
    assert err.value.hint == "metrics that fit a regression task: mae, rmse, r2; or change `task:` to classification"


def test_sweep_metric_of_the_other_task(tmp_path: Path) -> None:
    text = CLASSIFIER.replace("LogisticRegression}", "LogisticRegression, sweep: {grid: {C: [0.1, 1]}, metric: mae}}")
    (tmp_path / "mlops.yaml").write_text(text)
    loaded = load_config(tmp_path / "mlops.yaml")  # the task is not known before the data is read
    with pytest.raises(ConfigError) as err:
        loaded.metric_names("classification")
    assert err.value.problems == ["mlops.yaml:3:101: training.sweep.metric: mae is a regression metric, but the task is classification (inferred from the target column 'churn')"]
    assert loaded.metric_names("regression") == ["mae", "rmse", "r2"]
