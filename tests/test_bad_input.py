"""Bad input of every kind: a clear message, exit 2 (or 3 for our bugs), nothing new under .mlops/."""

from __future__ import annotations

import pytest

from tests.helpers import COMMAND_CONFIG, TRAIN_SCRIPT, GitRepo, mixed_frame

GOOD = "name: churn\ndata: {path: data/churn.csv, target: churn}\ntraining: {estimator: sklearn.linear_model.LogisticRegression}\n"


def pr(repo: GitRepo, files: dict[str, str | bytes]) -> GitRepo:
    """main has a working pipeline; the PR branch brings ``files``."""
    repo.gen({"mlops.yaml": GOOD, "data/churn.csv": mixed_frame(120).to_csv(index=False)}).commit("base")
    repo.branch("pr").gen(files).commit("pr")
    return repo


CASES = {
    "missing data file": (
        {"mlops.yaml": GOOD.replace("data/churn.csv", "data/nope.csv")},
        "mlops.yaml:2:14: data.path: file 'data/nope.csv' not found (looked for {root}/data/nope.csv)\n"
        "  hint: check the path (relative to the folder holding mlops.yaml), or commit / fetch the data first\n",
    ),
    "missing target column": (
        {"mlops.yaml": GOOD.replace("target: churn", "target: label")},
        "mlops.yaml:2:38: data.target: column 'label' not found in data/churn.csv (columns: age, income, city, plan, churn)\n"
        "  hint: set data.target to the column you want to predict\n",
    ),
    "empty data": (
        {"data/churn.csv": ""},
        "mlops.yaml:2:14: data.path: data/churn.csv is empty (0 bytes of data)\n"
        "  hint: point data.path at a file with a header row and data rows\n",
    ),
    "header only": (
        {"data/churn.csv": "age,income,city,plan,churn\n"},
        "mlops.yaml:2:14: data.path: data/churn.csv has a header but no rows\n"
        "  hint: add data rows, or point data.path at the right file\n",
    ),
    "malformed yaml": (
        {"mlops.yaml": "name: churn\ndata:\n  path: data/churn.csv\n target: churn\n"},
        "mlops.yaml:4:2: invalid YAML: expected <block end>, but found '<block mapping start>' (while parsing a block mapping)\n"
        "  hint: check the indentation and that every `key: value` has a space after the colon\n",
    ),
    "misspelled gate key": (
        {"mlops.yaml": GOOD + "gates:\n  f1: {min_f1: 0.5}\n"},
        "mlops.yaml:5:8: gates.f1.min_f1: unknown key 'min_f1'; did you mean 'min'?\n"
        "  hint: gates are keyed by metric name (accuracy, precision, recall, f1, roc_auc, log_loss, mae, rmse, r2); each takes min, max, max_drop, max_drop_pct\n",
    ),
    "non-numeric threshold": (
        {"mlops.yaml": GOOD + "gates:\n  f1: {min: high}\n"},
        "mlops.yaml:5:13: gates.f1.min: expected a number, got 'high'\n  hint: write numbers without quotes, e.g. `min: 0.9`\n",
    ),
    "unknown estimator": (
        {"mlops.yaml": GOOD.replace("LogisticRegression", "LogisticRegresion")},
        "mlops.yaml:3:23: training.estimator: module 'sklearn.linear_model' has no 'LogisticRegresion'\n"
        "  hint: check the spelling, e.g. sklearn.ensemble.RandomForestClassifier\n",
    ),
    "bad estimator parameter": (
        {"mlops.yaml": GOOD.replace("LogisticRegression}", "LogisticRegression, params: {Cee: 1}}")},
        "mlops.yaml:3:72: training.params: LogisticRegression rejected the parameters: LogisticRegression.__init__() got an unexpected keyword argument 'Cee'\n"
        "  hint: see the documentation of sklearn.linear_model.LogisticRegression for its parameter names\n",
    ),
    "not csv": (
        {"data/churn.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"},
        None,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_and_writes_nothing(cli, repo: GitRepo, case: str) -> None:
    files, expected = CASES[case]
    pr(repo, files)
    result = cli("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 2, result.output
    if expected is not None:
        assert result.stderr == "error: " + expected.format(root=repo.path)
    else:
        assert result.stderr.startswith("error: mlops.yaml:2:14: data.path: cannot read data/churn.csv as csv: ")
    assert result.stdout == ""
    assert repo.mlops_files() == []


def test_failing_training_command(cli, repo: GitRepo) -> None:
    script = TRAIN_SCRIPT.replace("model.fit(X, y)", "raise SystemExit('out of memory while fitting')")
    repo.gen({"mlops.yaml": COMMAND_CONFIG, "train.py": TRAIN_SCRIPT, "data/churn.csv": mixed_frame(120).to_csv(index=False)}).commit("base")
    repo.branch("pr").gen({"train.py": script}).commit("break training")
    result = cli("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: mlops.yaml:7:12: training.command exited with status 1: ")
    assert "--train_data_path /" in lines[0] and "--C 1.0" in lines[0]
    assert lines[1:3] == ["--- last lines of its output ---", "out of memory while fitting"]
    assert lines[-1] == "  hint: run the command by hand to debug it; {train} is a CSV with the feature columns and the target"
    assert repo.mlops_files() == []


def test_model_that_cannot_score_the_holdout_leaves_nothing_behind(cli, repo: GitRepo) -> None:
    """The candidate trains (and is staged), then fails on the holdout: the staged model is discarded."""
    naive = TRAIN_SCRIPT.replace("model.fit(X, y)", "model = LogisticRegression().fit(X[numeric].fillna(0), y)")
    repo.gen({"mlops.yaml": COMMAND_CONFIG, "train.py": TRAIN_SCRIPT, "data/churn.csv": mixed_frame(120).to_csv(index=False)}).commit("base")
    repo.branch("pr").gen({"train.py": naive}).commit("numeric-only model")
    result = cli("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: mlops.yaml:7:12: training: the trained model cannot score the holdout: ValueError: ")
    assert result.stderr.endswith("  hint: the model is called with the feature columns of the holdout; make it handle missing values and the same column types as {train}\n")
    assert repo.mlops_files() == []


def test_broken_template_is_exit_2_and_writes_nothing(cli, repo: GitRepo) -> None:
    """A broken template on the base ref (the templates a PR run uses) is exit 2 naming it."""
    repo.gen({"mlops.yaml": GOOD + "report: {templates: tpl}\n", "tpl/pr_comment.md.j2": "{{ marker }}\n{{ report.no_such_field }}\n", "data/churn.csv": mixed_frame(120).to_csv(index=False)}).commit("base")
    repo.branch("pr").gen({"README.md": "x"}).commit("pr")
    result = cli("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: mlops.yaml@main:4:21: report.templates: template pr_comment.md.j2 line 2 failed: ")
    assert "no_such_field" in result.stderr
    assert repo.mlops_files() == []


def test_checkout_that_is_not_the_payload_head(cli, repo: GitRepo, tmp_path) -> None:
    import json

    pr(repo, {"README.md": "x"})
    payload = {"action": "opened", "number": 3, "pull_request": {"number": 3, "base": {"ref": "main"}, "head": {"ref": "pr", "sha": "1" * 40}}}
    path = tmp_path / "e.json"
    path.write_text(json.dumps(payload))
    result = cli("run", "--event-path", str(path), cwd=repo.path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: the checkout (HEAD {repo.git('rev-parse', 'HEAD')[:7]}) is not PR #3's head 1111111 nor a merge of it\n")


def test_command_that_writes_no_model(cli, repo: GitRepo) -> None:
    repo.gen({"mlops.yaml": COMMAND_CONFIG, "train.py": TRAIN_SCRIPT.replace("joblib.dump(model, args.model_output_path)", "pass"), "data/churn.csv": mixed_frame(120).to_csv(index=False)}).commit("base")
    result = cli("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: mlops.yaml:7:12: training.command finished but wrote no model at {model}\n"
        "  hint: save the fitted model with joblib.dump(model, args.model_output_path)\n"
    )


def test_unknown_base_ref(cli, repo: GitRepo) -> None:
    pr(repo, {"README.md": "x"})
    result = cli("run", "--base", "develop", cwd=repo.path)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --base develop: no such branch or commit in ")


def test_bad_event_payload(cli, repo: GitRepo, tmp_path) -> None:
    pr(repo, {"README.md": "x"})
    bad = tmp_path / "event.json"
    bad.write_text('{"action": "opened", "pull_request": ')
    result = cli("run", "--event-path", str(bad), cwd=repo.path)
    assert result.exit_code == 2
    assert result.stderr == f"error: {bad}:1:38: event payload is not valid JSON: Expecting value\n"
    assert repo.mlops_files() == []


def test_internal_error_exits_3_with_a_log(cli, repo: GitRepo, monkeypatch, tmp_path) -> None:
    pr(repo, {"README.md": "x"})
    import mlgitops.run.compute

    def boom(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(mlgitops.run.compute, "run_flow", boom)
    monkeypatch.setattr("mlgitops.run.compute_child.wanted", lambda *a, **k: False)  # in-process even with a credential exported
    result = cli("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 3
    first, second, _third = result.stderr.splitlines()
    assert first == "internal error: RuntimeError: simulated bug"
    log = second.split(" is at ", 1)[1]
    text = open(log).read()
    assert "prefect: " in text and "scikit-learn: " in text and "RuntimeError: simulated bug" in text
    assert repo.mlops_files() == []


@pytest.mark.parametrize("case", [c for c in CASES if c != "bad estimator parameter"])
def test_validate_catches_the_same_problems_with_the_same_words(cli_noprefect, repo: GitRepo, case: str) -> None:
    files, expected = CASES[case]
    pr(repo, files)
    result = cli_noprefect("validate", cwd=repo.path)
    assert result.exit_code == 2, result.output
    if expected is not None:
        assert result.stderr == "error: " + expected.format(root=repo.path)
    else:
        assert result.stderr.startswith("error: mlops.yaml:2:14: data.path: cannot read data/churn.csv as csv: ")
    assert repo.mlops_files() == []
