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
    from mlgitops.data.drift import compute_drift

    reference = mixed_frame(400, seed=0).drop(columns="churn")
    current = mixed_frame(400, seed=1).drop(columns="churn")
    current["income"] = float("nan")  # production stopped sending it
    current["age"] = current["age"].astype(object)
    current.loc[0, "age"] = "n/a"  # a text value in a numeric column
    result, snapshot = compute_drift(reference, current, ["age", "income", "city", "plan", "tenure"], 0, 0, "ref")
    flagged = {c.column: c.method for c in result.columns if c.method.startswith(("missing", "empty", "type"))}
    assert flagged == {"tenure": "missing from the reference", "income": "empty (all missing) in the current data", "age": "type changed (numeric -> text)"}
    assert result.drifted >= 3 and len(result.columns) == 5 and snapshot is not None


def drift_spec(tmp_path, drift_yaml: str):
    from mlgitops.config.loader import load_config

    (tmp_path / "mlops.yaml").write_text("name: churn\ndata: {path: data/churn.csv, target: churn}\ntraining: {estimator: sklearn.linear_model.LogisticRegression}\ndrift:\n" + drift_yaml)
    return load_config(tmp_path / "mlops.yaml").config.drift


def shifted_pair(rows: int):
    reference = mixed_frame(rows, seed=0).drop(columns="churn")
    current = mixed_frame(rows, seed=1).drop(columns="churn")
    current["age"] = current["age"] + 15  # older customers
    return reference, current


def test_per_column_limits_and_the_drifted_count_name_the_limit_and_the_margin(tmp_path) -> None:
    """Above 1,000 rows Evidently measures distances (higher = drift): max_score holds them."""
    from mlgitops.data.drift import compute_drift, drift_gates

    spec = drift_spec(tmp_path, "  columns:\n    age: {max_score: 0.2}\n    income: {max_score: 0.05}\n    city: {}\n    plan: {min_p_value: 0.01}\n  max_drifted_columns: 0\n  max_drifted_share: 0.5\n")
    result, _ = compute_drift(*shifted_pair(1200), list(spec.columns), 0, 0, "ref")
    assert [(c.column, c.method, c.drifted) for c in result.columns] == [
        ("age", "Wasserstein distance (normed)", True),
        ("income", "Wasserstein distance (normed)", False),
        ("city", "Jensen-Shannon distance", False),
        ("plan", "Jensen-Shannon distance", False),
    ]
    gates = drift_gates(result, spec)
    assert [(g.metric, g.rule, g.threshold, g.passed, g.skipped, g.message) for g in gates] == [
        ("drift", "max_drifted_share", 0.5, True, False, "drift: 1 of 4 columns drifted (25% <= 50% allowed): age"),
        ("drift", "max", 0, False, False, "drift: 1 drifted column(s) > max_drifted_columns 0, 1 too many: age"),
        ("drift", "max", 0.2, False, False, "drift: column 'age': Wasserstein distance (normed) 1.242 > max_score 0.2 (over by 1.042)"),
        ("drift", "max", 0.05, True, False, "drift: column 'income': Wasserstein distance (normed) 0.04553 <= max_score 0.05"),
        ("drift", "min", 0.01, False, False, "drift: column 'plan' was measured with Jensen-Shannon distance (a distance, higher means drift), so its min_p_value cannot be checked: set max_score for it (a column may have both)"),
    ]
    # A hair under the measured distance fails: the comparison is exact, not rounded.
    near = drift_spec(tmp_path, "  columns:\n    income: {max_score: 0.0455}\n")
    assert [(g.passed, g.message) for g in drift_gates(result, near)] == [(False, "drift: column 'income': Wasserstein distance (normed) 0.04553 > max_score 0.0455 (over by 2.664e-05)")]


def test_p_value_columns_are_held_to_min_p_value(tmp_path) -> None:
    """Below 1,000 rows Evidently tests (p-values, lower = drift): min_p_value holds them."""
    from mlgitops.data.drift import compute_drift, drift_gates

    spec = drift_spec(tmp_path, "  columns:\n    age: {max_score: 0.2, min_p_value: 0.01}\n    income: {max_score: 0.2}\n    city: {min_p_value: 0.01}\n    tenure: {min_p_value: 0.01}\n  max_drifted_columns: 3\n")
    reference, current = shifted_pair(300)
    result, _ = compute_drift(reference, current, list(spec.columns), 0, 0, "ref")
    assert [(g.rule, g.passed, g.message) for g in drift_gates(result, spec)] == [
        ("max", True, "drift: 3 drifted column(s) <= max_drifted_columns 3: tenure, age, city"),
        ("min", False, "drift: column 'age': K-S p_value 1.027e-25 < min_p_value 0.01 (under by 0.01)"),
        ("max", False, "drift: column 'income' was measured with K-S p_value (a p-value, lower means drift), so its max_score cannot be checked: set min_p_value for it (a column may have both)"),
        # Evidently calls city drifted at its own 0.05; the column's own limit is looser
        ("min", True, "drift: column 'city': chi-square p_value 0.03622 >= min_p_value 0.01"),
        ("min", False, "drift: column 'tenure' is missing from the reference: it has no score to hold to its min_p_value 0.01"),
    ]


def test_without_a_reference_every_limit_is_skipped_and_the_list_form_has_no_column_limits(tmp_path) -> None:
    from mlgitops.data.drift import drift_gates

    spec = drift_spec(tmp_path, "  columns:\n    age: {max_score: 0.2}\n  max_drifted_columns: 1\n")
    assert [(g.rule, g.passed, g.skipped, g.message) for g in drift_gates(None, spec)] == [
        ("max", True, True, "drift: no reference to compare with: max_drifted_columns skipped"),
        ("max", True, True, "drift: column 'age': no reference to compare with: max_score skipped"),
    ]
    listed = drift_spec(tmp_path, "  columns: [age, income]\n  max_drifted_share: 0.3\n")
    assert listed.columns == ["age", "income"]
    assert [g.rule for g in drift_gates(None, listed)] == ["max_drifted_share"]
    assert drift_gates(None, drift_spec(tmp_path, "  columns: [age]\n")) == []


def test_the_comment_says_which_drift_limit_failed_and_by_how_much(tmp_path) -> None:
    from mlgitops.data.drift import compute_drift, drift_gates
    from mlgitops.report.render import render_comment
    from mlgitops.report.model import summarize
    from tests.test_render import make_report

    spec = drift_spec(tmp_path, "  columns:\n    age: {max_score: 0.2}\n  max_drifted_columns: 0\n")
    result, _ = compute_drift(*shifted_pair(1200), list(spec.columns), 0, 0, "ref")
    report = make_report()
    report.gates = report.gates + drift_gates(result, spec)
    report.drift = result.to_dict()
    report.verdict, report.summary = summarize(report.gates)
    body = render_comment(report)
    assert "2 of 7 gate checks failed: drift: 1 drifted column(s) > max_drifted_columns 0, 1 too many: age (+1 more)" in body
    assert "**Failing gates**\n- ❌ `drift.max`: drift: 1 drifted column(s) > max_drifted_columns 0, 1 too many: age\n- ❌ `drift.max`: drift: column 'age': Wasserstein distance (normed) 1.242 > max_score 0.2 (over by 1.042)\n" in body
    assert "| `age` | Wasserstein distance (normed) | 1.242 | 0.1 | ⚠️ yes |" in body


def test_run_fails_on_a_column_limit_and_says_so(cli, repo: GitRepo) -> None:
    make(repo).branch("shifted")
    frame = mixed_frame(1000, seed=3)
    frame["age"] = frame["age"] + 15
    frame.to_csv(repo.path / "data" / "churn.csv", index=False)
    repo.gen({"mlops.yaml": CONFIG.replace("  max_drifted_share: 0.2\n", "  columns:\n    age: {min_p_value: 0.01}\n    income: {min_p_value: 0.01}\n  max_drifted_columns: 0\n")})
    repo.commit("older customers")
    shifted = cli("run", "--base", "main", "--json", cwd=repo.path)
    assert shifted.exit_code == 1, shifted.output
    report = json.loads(shifted.stdout)
    failed = [g["message"] for g in report["gates"] if not g["passed"]]
    assert failed[0] == "drift: 1 drifted column(s) > max_drifted_columns 0, 1 too many: age"
    assert failed[1].startswith("drift: column 'age': K-S p_value ") and failed[1].endswith(" < min_p_value 0.01 (under by 0.01)")
    assert len(failed) == 2
    body = (repo.path / ".mlops" / "forge" / "branch-shifted" / "comment.md").read_text()
    assert "- ❌ `drift.max`: drift: 1 drifted column(s) > max_drifted_columns 0, 1 too many: age\n- ❌ `drift.min`: drift: column 'age': K-S p_value" in body
