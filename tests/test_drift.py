"""Drift of the PR's training data with Evidently: detected on a shifted column, not on
a resample; the full HTML report written; a drift gate; the deployed model's training
data as the reference, found through its lineage."""

from __future__ import annotations

import json

from tests.helpers import GitRepo, mixed_frame

CONFIG = """\
name: churn
data: {path: data/churn.csv, target: churn}
training: {estimator: sklearn.linear_model.LogisticRegression}
gates: {accuracy: {min: 0.5}}
drift:
  max_drifted_share: 0.2
"""


def make(repo: GitRepo) -> GitRepo:
    (repo.path / "data").mkdir()
    mixed_frame(1000, seed=0).to_csv(repo.path / "data" / "churn.csv", index=False)
    repo.gen({"mlops.yaml": CONFIG}).commit("churn")
    return repo


def test_a_resample_does_not_drift_and_a_shift_does(cli, repo: GitRepo) -> None:
    make(repo).branch("resampled")
    mixed_frame(1000, seed=3).to_csv(repo.path / "data" / "churn.csv", index=False)
    repo.commit("new sample of the same population")
    same = cli("run", "--base", "main", "--json", cwd=repo.path)
    assert same.exit_code == 0, same.output
    drift = json.loads(same.stdout)["drift"]
    assert drift["reference"] == "the training data of `main` (`data/churn.csv`)"
    assert (drift["drifted"], len(drift["columns"]), drift["sampled"]) == (0, 4, None)
    assert {c["column"]: c["method"] for c in drift["columns"]} == {"age": "K-S p_value", "income": "K-S p_value", "city": "chi-square p_value", "plan": "Z-test p_value"}

    repo.checkout("main").branch("shifted")
    frame = mixed_frame(1000, seed=3)
    frame["age"] = frame["age"] + 15
    frame.to_csv(repo.path / "data" / "churn.csv", index=False)
    repo.commit("older customers")
    shifted = cli("run", "--base", "main", "--json", cwd=repo.path)
    assert shifted.exit_code == 1
    report = json.loads(shifted.stdout)
    drift = report["drift"]
    assert [c["column"] for c in drift["columns"] if c["drifted"]] == ["age"]
    assert drift["evidently"] == {"count": 1.0, "share": 0.25}  # Evidently's own count agrees
    gate = [g for g in report["gates"] if g["metric"] == "drift"][0]
    assert gate["message"] == "drift: 1 of 4 columns drifted (25% > 20% allowed): age"
    html = repo.path / drift["html"]
    assert drift["html"] == ".mlops/reports/branch-shifted/drift.html" and html.stat().st_size > 10_000 and html.read_text().lstrip().lower().startswith("<!doctype html>")
    body = (repo.path / ".mlops" / "forge" / "branch-shifted" / "comment.md").read_text()
    assert "**Data drift** vs the training data of `main` (`data/churn.csv`): ⚠️ 1 of 4 columns drifted (25%), on all 1,000 reference and 1,000 current rows. Full Evidently report: `.mlops/reports/branch-shifted/drift.html`" in body
    assert "| `age` | K-S p_value |" in body and "| ⚠️ yes |" in body


def test_sampling_is_stated_and_a_missing_reference_file_is_named(cli, cli_noprefect, repo: GitRepo) -> None:
    make(repo).branch("sampled")
    repo.gen({"mlops.yaml": CONFIG.replace("  max_drifted_share: 0.2\n", "  sample: 300\n")}).commit()
    report = json.loads(cli("run", "--base", "main", "--json", cwd=repo.path).stdout)
    assert report["drift"]["sampled"] == 300 and report["drift"]["current_rows"] == 1000
    repo.gen({"mlops.yaml": CONFIG.replace("  max_drifted_share: 0.2\n", "  reference: data/last-month.csv\n")}).commit()
    missing = cli("run", "--base", "main", cwd=repo.path)
    assert missing.exit_code == 2
    assert "error: mlops.yaml:6:14: drift.reference: file 'data/last-month.csv' not found" in missing.output


def test_the_deployed_models_training_data_is_the_reference(cli, repo: GitRepo) -> None:
    from tests.test_deploy import CONFIG as DEPLOY_CONFIG, deploy_v1, make_repo

    deploy_v1(cli, make_repo(repo, DEPLOY_CONFIG + "drift: {}\n"))
    trained_at = repo.git("rev-parse", "HEAD^")[:7]  # the merge of PR 7: what v1 trained on

    repo.branch("new-data")
    frame = mixed_frame(500, seed=9)
    frame["income"] = frame["income"] * 3
    frame.to_csv(repo.path / "data" / "churn.csv", index=False)
    repo.commit("new data")
    report = json.loads(cli("run", "--base", "main", "--json", cwd=repo.path).stdout)
    assert report["drift"]["reference"] == f"the training data of the deployed model v1 (`data/churn.csv` at `{trained_at}`)"
    assert [c["column"] for c in report["drift"]["columns"] if c["drifted"]] == ["income"]


def test_columns_evidently_cannot_compare_are_reported_as_drift_not_a_crash() -> None:
    from mlgitops.drift import compute_drift

    reference = mixed_frame(400, seed=0).drop(columns="churn")
    current = mixed_frame(400, seed=1).drop(columns="churn")
    current["income"] = float("nan")  # production stopped sending it
    current["age"] = current["age"].astype(object)
    current.loc[0, "age"] = "n/a"  # a text value in a numeric column
    result, snapshot = compute_drift(reference, current, ["age", "income", "city", "plan", "tenure"], 0, 0, "ref")
    flagged = {c.column: c.method for c in result.columns if c.method.startswith(("missing", "empty", "type"))}
    assert flagged == {"tenure": "missing from the reference", "income": "empty (all missing) in the current data", "age": "type changed (numeric -> text)"}
    assert result.drifted >= 3 and len(result.columns) == 5 and snapshot is not None
