"""The PR loop end to end: real git repos, the real Prefect flow, the local forge."""

from __future__ import annotations

import json
from pathlib import Path


from tests.helpers import COMMAND_CONFIG, TRAIN_SCRIPT, GitRepo, mixed_frame, regression_frame


def comment(repo: GitRepo, key: str) -> str:
    return (repo.path / ".mlops" / "forge" / key / "comment.md").read_text()


def comments(repo: GitRepo, key: str) -> list[dict]:
    return json.loads((repo.path / ".mlops" / "forge" / key / "comments.json").read_text())


def status(repo: GitRepo) -> dict:
    sha = repo.git("rev-parse", "HEAD")
    return json.loads((repo.path / ".mlops" / "forge" / "statuses" / f"{sha}.json").read_text())["mlops/gate"]


def test_improving_pr_passes_and_rerun_updates_the_same_comment(cli, example_repo: GitRepo) -> None:
    repo = example_repo
    repo.branch("deeper").edit("mlops.yaml", "max_depth: 2", "max_depth: 6").commit("deeper trees")
    result = cli("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 0, result.output
    assert "PASS breast-cancer: All 5 gate checks passed" in result.stdout
    body = comment(repo, "branch-deeper")
    assert body.startswith("<!-- mlgitops:pr-report name=breast-cancer -->\n### ✅ mlops gate passed: `breast-cancer`")
    assert "- `training.params.max_depth`: `2` → `6`" in body
    assert "| f1 ↑ | 0.9613 | 0.9667 | +0.0053 (+0.6%) 🟢 | ✅ ≥ 0.9, ✅ drop ≤ 0.02 |" in body
    assert "what `main`'s own config, code and data produce; trained in this run" in body
    assert status(repo)["state"] == "success"

    # Same inputs: answered from the cache, the one comment is updated, not duplicated.
    again = cli("run", "--base", "main", cwd=repo.path)
    assert again.exit_code == 0
    assert len(comments(repo, "branch-deeper")) == 1
    assert "result reused without retraining" in comment(repo, "branch-deeper")

    # A commit that changes nothing the model depends on: still a cache hit, new sha reported.
    repo.gen({"README.md": "docs\n"}).commit("docs only")
    third = cli("run", "--base", "main", "--json", cwd=repo.path)
    report = json.loads(third.stdout)
    assert report["reused"] is True and report["event"]["head_sha"] == repo.git("rev-parse", "HEAD")
    assert len(comments(repo, "branch-deeper")) == 1


def test_pr_that_lowers_quality_fails_the_gate(cli, example_repo: GitRepo) -> None:
    repo = example_repo
    repo.branch("worse").edit("mlops.yaml", "n_estimators: 60", "n_estimators: 1").edit("mlops.yaml", "max_depth: 2", "max_depth: 1").commit("tiny model")
    result = cli("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 1, result.output
    body = comment(repo, "branch-worse")
    assert "### ❌ mlops gate failed: `breast-cancer`" in body
    assert "**Failing gates**" in body
    assert "- ❌ `f1.max_drop`: f1 worsened by" in body
    assert status(repo)["state"] == "failure"
    assert status(repo)["description"].startswith("mlops: ")


def test_candidate_reuses_cached_model_when_base_has_same_inputs(cli, example_repo: GitRepo) -> None:
    repo = example_repo
    repo.branch("gates-only").edit("mlops.yaml", "min: 0.90                   # absolute floor", "min: 0.85").commit("relax accuracy gate")
    result = cli("run", "--base", "main", "--json", cwd=repo.path)
    report = json.loads(result.stdout)
    # Identical data, params and code on both sides: trained once, reused once.
    assert {report["candidate"]["source"], report["baseline"]["source"]} == {"trained", "cache"}
    assert report["config_changes"] == [{"key": "gates.accuracy.min", "base": 0.9, "candidate": 0.85}]
    assert all(row["change"] == "same" for row in report["metrics"])


def test_argparse_training_script_on_mixed_data_with_nans(cli, repo: GitRepo) -> None:
    repo.gen({"mlops.yaml": COMMAND_CONFIG, "train.py": TRAIN_SCRIPT, "data/churn.csv": mixed_frame().to_csv(index=False)})
    repo.commit("churn model")
    repo.branch("stronger-reg").edit("mlops.yaml", "--C 1.0", "--C 0.001").commit("more regularisation")
    result = cli("run", "--base", "main", "--json", cwd=repo.path)
    report = json.loads(result.stdout)
    # C=0.001 over-regularises: the AUC falls more than the 0.05 allowed.
    assert result.exit_code == 1, [g for g in report["gates"] if not g["passed"]]
    assert [g["metric"] + "." + g["rule"] for g in report["gates"] if not g["passed"]] == ["roc_auc.max_drop"]
    assert report["candidate"]["code_files"] == ["train.py"]
    assert report["config_changes"] == [
        {"key": "training.command", "base": "python train.py --train_data_path {train} --model_output_path {model} --C 1.0", "candidate": "python train.py --train_data_path {train} --model_output_path {model} --C 0.001"}
    ]
    assert report["baseline"]["scored_on"] == "the candidate's holdout"
    assert report["data"]["holdout_rows"] == 80
    # Editing the script is a code change: the fingerprint moves and the model retrains.
    repo.edit("train.py", "max_iter=1000", "max_iter=500").commit("fewer iterations")
    second = json.loads(cli("run", "--base", "main", "--json", cwd=repo.path).stdout)
    assert second["candidate"]["source"] == "trained"
    assert second["candidate"]["code_sha256"] != report["candidate"]["code_sha256"]
    assert "training code (train.py)" in comment(repo, "branch-stronger-reg")


def test_declarative_pipeline_on_mixed_data_with_nans(cli, repo: GitRepo) -> None:
    repo.gen(
        {
            "data/churn.csv": mixed_frame().to_csv(index=False),
            "mlops.yaml": """\
                name: churn
                data: {path: data/churn.csv, target: churn, holdout: {size: 0.25, seed: 3}}
                training:
                  estimator: sklearn.linear_model.LogisticRegression
                  params: {C: 1.0, max_iter: 500}
                gates:
                  roc_auc: {min: 0.7}
                """,
        }
    )
    repo.commit("churn")
    repo.branch("gbm").edit("mlops.yaml", "sklearn.linear_model.LogisticRegression", "sklearn.ensemble.HistGradientBoostingClassifier").edit("mlops.yaml", "{C: 1.0, max_iter: 500}", "{max_iter: 50}").commit("gbm")
    result = cli("run", "--base", "main", "--json", cwd=repo.path)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["task"] == "classification"
    assert [row["name"] for row in report["metrics"]] == ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"]
    assert all(row["candidate"] is not None and row["base"] is not None for row in report["metrics"])
    keys = [c["key"] for c in report["config_changes"]]
    assert keys == ["training.estimator", "training.params.C", "training.params.max_iter"]


def test_regression_task(cli, repo: GitRepo) -> None:
    repo.gen(
        {
            "data/reg.csv": regression_frame().to_csv(index=False),
            "mlops.yaml": """\
                name: reg
                data: {path: data/reg.csv, target: y}
                training: {estimator: sklearn.linear_model.Ridge, params: {alpha: 1.0}}
                gates:
                  rmse: {max: 1.0, max_drop_pct: 5}
                  r2: {min: 0.9}
                report: {charts: false}
                """,
        }
    )
    repo.commit("reg")
    repo.branch("heavy-ridge").edit("mlops.yaml", "alpha: 1.0", "alpha: 500.0").commit("much stronger ridge")
    result = cli("run", "--base", "main", "--json", cwd=repo.path)
    report = json.loads(result.stdout)
    assert report["task"] == "regression" and report["task_reason"].startswith("inferred: target is numeric")
    rows = {r["name"]: r for r in report["metrics"]}
    assert set(rows) == {"mae", "rmse", "r2"}
    assert rows["rmse"]["higher_is_better"] is False and rows["rmse"]["change"] == "worse"
    assert result.exit_code == 1
    failed = [g["message"] for g in report["gates"] if not g["passed"]]
    assert any(m.startswith("rmse worsened by") and "% (> 5% allowed)" in m for m in failed)
    assert report["confusion"] is None
    assert report["charts"] is None  # report.charts: false


def test_baseline_that_cannot_score_the_new_columns_shows_recorded_metrics(cli, repo: GitRepo) -> None:
    frame = mixed_frame()
    repo.gen({"data/churn.csv": frame.to_csv(index=False), "mlops.yaml": "name: churn\ndata: {path: data/churn.csv, target: churn}\ntraining: {estimator: sklearn.linear_model.LogisticRegression}\n"})
    repo.commit("churn")
    repo.branch("rename").gen({"data/churn.csv": frame.rename(columns={"income": "salary"}).to_csv(index=False)}).commit("rename income")
    result = cli("run", "--base", "main", "--json", cwd=repo.path)
    report = json.loads(result.stdout)
    assert report["baseline"]["scored_on"] == "its own holdout (recorded)"
    assert "this PR removed or renamed column(s) the baseline needs ('income')" in report["notes"][0]
    assert report["metrics"][0]["base"] is not None
    assert "Baseline metrics are those recorded when it was trained" in comment(repo, "branch-rename")


def test_first_pr_adding_mlops_yaml_has_no_baseline(cli, repo: GitRepo) -> None:
    repo.gen({"README.md": "hi\n"}).commit("init")
    repo.branch("add-ml").gen({"mlops.yaml": "name: iris\ndata: {path: 'sklearn:iris', target: target}\ntraining: {estimator: sklearn.linear_model.LogisticRegression, params: {max_iter: 300}}\ngates:\n  accuracy: {min: 0.8, max_drop: 0.01}\n"}).commit("add ml")
    result = cli("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 0, result.output
    body = comment(repo, "branch-add-ml")
    assert "All 2 gate checks passed, 1 skipped (no baseline)" in body
    assert "`main` has no mlops.yaml yet: nothing to compare with" in body
    assert "| accuracy ↑ | n/a |" in body


def test_deployed_model_pinned_in_manifest_is_the_baseline(cli, example_repo: GitRepo, tmp_path: Path) -> None:
    import hashlib

    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    repo = example_repo
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    deployed = LogisticRegression(max_iter=50).fit(X.iloc[:, :5], y)  # a weak deployed model on 5 columns
    art = repo.path / "artifacts" / "model-v3.joblib"
    art.parent.mkdir()
    joblib.dump(deployed, art)
    digest = hashlib.sha256(art.read_bytes()).hexdigest()
    repo.gen({"deploy/staging.yaml": f"# staging\nmodel:\n  version: 2\n  uri: artifacts/model-v2.joblib\n  sha256: {'2b' * 32}\n  metrics: {{f1: 0.91, accuracy: 0.9}}\n"})
    repo.commit("deploy v2")
    repo.gen({"deploy/staging.yaml": f"# staging\nmodel:\n  version: 3\n  uri: artifacts/model-v3.joblib\n  sha256: {digest}\n  metrics: {{f1: 0.93}}\n"})
    repo.git("add", "deploy/staging.yaml")
    repo.commit("deploy v3")
    repo.branch("pr").edit("mlops.yaml", "max_depth: 2", "max_depth: 4").commit("pr")
    report = json.loads(cli("run", "--base", "main", "--json", cwd=repo.path).stdout)
    assert report["baseline"]["source"] == "manifest" and report["baseline"]["version"] == 3
    assert report["baseline"]["note"] == "deployed in staging (pinned in deploy/staging.yaml on `main`)"
    assert report["baseline"]["scored_on"] == "the candidate's holdout"
    # Charts (report.charts, on by default): the deployed versions from the manifest's
    # history, and both models' ROC curves on the same holdout rows.
    history = report["charts"]["history"]
    assert (history["env"], [v["label"] for v in history["versions"]], history["versions"][1]["metrics"]) == ("staging", ["v2", "v3"], {"f1": 0.93})
    roc = report["charts"]["roc"]
    assert [line["side"] for line in roc["lines"]] == ["baseline", "candidate"] and roc["rows"] == report["data"]["holdout_rows"]
    body = comment(repo, "branch-pr")
    assert '    x-axis ["v2", "v3", "candidate"]\n    y-axis "f1" ' in body
    assert '    x-axis ["v2", "candidate"]\n    y-axis "accuracy" ' in body  # v3 recorded no accuracy
    assert '    title "ROC: candidate (blue) AUC ' in body

    # A tampered artifact is refused and the base branch's model is trained instead.
    art.write_bytes(art.read_bytes() + b"x")
    report = json.loads(cli("run", "--base", "main", "--json", cwd=repo.path).stdout)
    assert report["baseline"]["source"] == "trained"
    assert "refusing it" in report["baseline"]["note"]


def test_event_payload_file(cli, example_repo: GitRepo, tmp_path: Path) -> None:
    repo = example_repo
    repo.branch("changes").edit("mlops.yaml", "max_depth: 2", "max_depth: 3").commit("pr")
    head = repo.git("rev-parse", "HEAD")
    payload = {
        "action": "synchronize",
        "number": 12,
        "pull_request": {"number": 12, "base": {"ref": "main", "sha": "0" * 40}, "head": {"ref": "changes", "sha": head, "repo": {"full_name": "o/r"}}},
        "repository": {"full_name": "o/r", "default_branch": "main"},
        "sender": {"login": "octocat"},
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    result = cli("run", "--event-path", str(path), cwd=repo.path)
    assert result.exit_code == 0, result.output
    assert (repo.path / ".mlops/forge/pr-12/comment.md").is_file()
    closed = dict(payload, action="closed")
    path.write_text(json.dumps(closed))
    result = cli("run", "--event-path", str(path), cwd=repo.path)
    assert result.exit_code == 0
    assert result.stdout == "nothing to do: PR #12 was closed without merging; the pull-request flow runs on opened, synchronize, reopened\n"


def test_parquet_data_separate_holdout_file_and_template_override(cli, repo: GitRepo) -> None:
    frame = mixed_frame(300, seed=4)
    (repo.path / "data").mkdir()
    frame.iloc[:220].to_parquet(repo.path / "data" / "train.parquet", index=False)
    frame.iloc[220:].to_parquet(repo.path / "data" / "holdout.parquet", index=False)
    repo.gen(
        {
            "mlops.yaml": """\
                name: churn
                data:
                  path: data/train.parquet
                  target: churn
                  features: [age, income, city, plan]
                  holdout: {path: data/holdout.parquet}
                training: {estimator: sklearn.linear_model.LogisticRegression, params: {C: 1.0}}
                gates: {accuracy: {min: 0.5}}
                report: {templates: ci/templates}
                """,
            "ci/templates/pr_comment.md.j2": "{{ marker }}\nverdict={{ report.verdict }} holdout={{ report.data.holdout_rows }} ({{ report.data.holdout_source }})\n",
        }
    )
    repo.commit("parquet")
    repo.branch("c").edit("mlops.yaml", "C: 1.0", "C: 0.5").commit("c")
    result = cli("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 0, result.output
    assert comment(repo, "branch-c") == "<!-- mlgitops:pr-report name=churn -->\nverdict=pass holdout=80 (file data/holdout.parquet)\n"
    validate = cli("validate", cwd=repo.path)
    assert "data: data/train.parquet -> 220 training + 80 holdout rows, 4 feature(s), target 'churn'" in validate.stdout


def test_uncommitted_changes_are_what_runs_and_the_report_says_so(cli, example_repo: GitRepo) -> None:
    repo = example_repo
    repo.branch("wip")
    repo.edit("mlops.yaml", "max_depth: 2", "max_depth: 3")  # not committed
    result = cli("run", "--base", "main", "--json", cwd=repo.path)
    report = json.loads(result.stdout)
    assert report["config_changes"] == [{"key": "training.params.max_depth", "base": 2, "candidate": 3}]
    assert "uncommitted changes in mlops.yaml are included in the candidate" in report["notes"]


def test_config_in_a_subfolder_resolves_paths_from_there(cli, repo: GitRepo) -> None:
    """mlops.yaml in ml/: data, code and the command's cwd are relative to ml/."""
    repo.gen(
        {
            "ml/mlops.yaml": COMMAND_CONFIG.replace("data/churn.csv", "data/churn.csv"),
            "ml/train.py": TRAIN_SCRIPT,
            "ml/data/churn.csv": mixed_frame(200).to_csv(index=False),
            "README.md": "project\n",
        }
    )
    repo.commit("ml in a subfolder")
    repo.branch("c").edit("ml/mlops.yaml", "--C 1.0", "--C 0.3").commit("c")
    result = cli("run", "--base", "main", "--config", "ml/mlops.yaml", "--json", cwd=repo.path)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["candidate"]["code_files"] == ["train.py"]
    assert report["baseline"]["source"] == "trained" and report["baseline"]["code_sha256"] == report["candidate"]["code_sha256"]
    assert report["baseline"]["scored_on"] == "the candidate's holdout"



def test_baseline_on_another_holdout_does_not_gate(cli, repo: GitRepo) -> None:
    frame = mixed_frame()
    repo.gen({"data/churn.csv": frame.to_csv(index=False), "mlops.yaml": "name: churn\ndata: {path: data/churn.csv, target: churn}\ntraining: {estimator: sklearn.linear_model.LogisticRegression}\ngates:\n  accuracy: {max_drop: 0.0}\n"})
    repo.commit("churn")
    repo.branch("rename").gen({"data/churn.csv": frame.rename(columns={"income": "salary"}).to_csv(index=False)}).commit("rename income")
    report = json.loads(cli("run", "--base", "main", "--json", cwd=repo.path).stdout)
    assert [(g["skipped"], g["message"]) for g in report["gates"] if g["metric"] != "onnx"] == [(True, "no baseline scored on this holdout: relative gate skipped")]


def test_a_broken_base_does_not_block_the_pr_that_fixes_it(cli, repo: GitRepo) -> None:
    broken = TRAIN_SCRIPT.replace("model.fit(X, y)", "raise SystemExit('main is broken')")
    repo.gen({"mlops.yaml": COMMAND_CONFIG, "train.py": broken, "data/churn.csv": mixed_frame(150).to_csv(index=False)}).commit("broken main")
    repo.branch("fix").gen({"train.py": TRAIN_SCRIPT}).commit("fix training")
    result = cli("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 0, result.output
    body = comment(repo, "branch-fix")
    assert "the baseline could not be produced, so relative gates are skipped: mlops.yaml@main:7:12: training.command exited with status 1" in body
    assert "⏭️ drop ≤ 0.05" in body


def test_data_change_warns_about_possible_leakage(cli, example_repo: GitRepo) -> None:
    repo = example_repo
    repo.branch("split").edit("mlops.yaml", "seed: 7", "seed: 8").commit("new split")
    report = json.loads(cli("run", "--base", "main", "--json", cwd=repo.path).stdout)
    overlap = [n for n in report["notes"] if "were in the baseline's training data" in n]
    assert len(overlap) == 1, report["notes"]
    import re

    found = re.fullmatch(r"(\d+) of (\d+) holdout rows \((\d+\.\d)%\) were in the baseline's training data \(matched by row contents; the random split moves rows when the data or the split changes\), so its scores may be optimistic; `data.holdout.split: hash` would exclude them\.", overlap[0])
    assert found, overlap[0]
    seen, total = int(found[1]), int(found[2])
    assert 0 < seen < total and found[3] == f"{100 * seen / total:.1f}"


def test_positive_label_decides_what_f1_scores(cli, repo: GitRepo) -> None:
    frame = mixed_frame(300)
    frame["churn"] = frame["churn"].map({1: "churn", 0: "stay"})  # "stay" sorts last
    repo.gen({"data/c.csv": frame.to_csv(index=False), "mlops.yaml": "name: c\ndata: {path: data/c.csv, target: churn}\ntraining: {estimator: sklearn.linear_model.LogisticRegression}\nmetrics: [f1]\n"})
    repo.commit("c")
    default = json.loads(cli("run", "--base", "main", "--json", cwd=repo.path).stdout)
    repo.edit("mlops.yaml", "target: churn}", "target: churn, positive_label: churn}").commit("positive")
    chosen = json.loads(cli("run", "--base", "main", "--json", cwd=repo.path).stdout)
    assert default["metrics"][0]["candidate"] != chosen["metrics"][0]["candidate"]
    assert chosen["confusion"]["labels"] == ["stay", "churn"]
    repo.edit("mlops.yaml", "positive_label: churn", "positive_label: gone").commit("typo")
    bad = cli("run", "--base", "main", cwd=repo.path)
    assert bad.exit_code == 2
    assert bad.stderr == "error: mlops.yaml:2:57: data.positive_label: 'gone' is not a class of 'churn' (classes: 'churn', 'stay')\n  hint: use one of the target's values\n"
    assert cli("validate", cwd=repo.path).stderr == bad.stderr
