"""`mlops monitor`: recent data against the deployed model's training data (lineage),
live metrics when labelled, one issue opened then updated, a retraining PR."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import GitRepo, mixed_frame
from tests.github_standin import StandIn
from tests.test_chatops import deployed_on_github, github  # noqa: F401  (fixture)
from tests.test_deploy import deployed  # noqa: F401  (fixture: staging runs v1)


def recent(repo: GitRepo, name: str, shift: bool, labels: bool = True) -> Path:
    frame = mixed_frame(500, seed=11)
    if shift:
        frame["age"] = frame["age"] + 20
        frame["income"] = frame["income"] * 3
    if not labels:
        frame = frame.drop(columns="churn")
    path = repo.path.parent / name  # production data lives outside the repo
    frame.to_csv(path, index=False)
    return path


def test_recent_data_like_the_training_data_is_within_thresholds(cli, deployed: GitRepo) -> None:  # noqa: F811
    path = recent(deployed, "same.csv", shift=False)
    result = cli("monitor", "--current", str(path), "--json", cwd=deployed.path)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["drift"]["reference"].startswith("the training data of the deployed model v1 (`data/churn.csv` at `")
    assert out["drift"]["drifted"] == 0 and out["issue"] is None
    assert set(out["metrics"]) == {"accuracy", "f1", "roc_auc", "log_loss"} and out["metrics"]["accuracy"] > 0.6
    assert not (deployed.path / ".mlops" / "forge" / "issues.json").exists()


def test_drift_opens_one_issue_updates_it_and_proposes_retraining(cli, deployed: GitRepo) -> None:  # noqa: F811
    path = recent(deployed, "november.csv", shift=True, labels=False)
    first = cli("monitor", "--current", str(path), cwd=deployed.path)
    assert first.exit_code == 1
    assert first.output.startswith("churn in staging: 1 check(s) over threshold; opened issue #1")
    issue = (deployed.path / ".mlops" / "forge" / "issues" / "1.md").read_text()
    assert "drift: 2 of 4 columns drifted (50% > 30% allowed): age, income" in issue
    assert "| `age` | K-S p_value |" in issue

    refused = cli("monitor", "--current", str(path), "--retrain-pr", cwd=deployed.path)
    assert refused.exit_code == 2 and "--retrain-pr needs the target column 'churn' with values, to train on" in refused.output
    path = recent(deployed, "november.csv", shift=True, labels=True)  # the labels arrived
    again = cli("monitor", "--current", str(path), "--retrain-pr", cwd=deployed.path)
    assert again.exit_code == 1 and "updated issue #1; retraining PR #2" in again.output
    issues = json.loads((deployed.path / ".mlops" / "forge" / "issues.json").read_text())
    assert [(i["number"], i["updates"]) for i in issues] == [(1, 1)]
    diff = deployed.git("diff", "main", "mlops/retrain-churn")
    changed = [l for l in diff.splitlines() if l.startswith(("+", "-")) and not l.startswith(("+++", "---"))]
    assert "-  path: data/churn.csv" in changed and "+  path: data/snapshots/november.csv" in changed
    assert deployed.git("diff", "--name-only", "main", "mlops/retrain-churn").splitlines() == ["data/snapshots/november.csv", "mlops.yaml"]
    config_diff = deployed.git("diff", "main", "mlops/retrain-churn", "--", "mlops.yaml").splitlines()
    assert [l for l in config_diff if l.startswith(("+", "-")) and not l.startswith(("+++", "---"))] == ["-  path: data/churn.csv", "+  path: data/snapshots/november.csv"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "error: --current {p}: file not found"),
        ("", "error: --current {p}: the file is empty"),
        ("age,income\n1,2\n", "error: --current {p}: lacks the column(s) the deployed model needs: 'city', 'plan'"),
        ("age,income,city,plan\n", "error: --current {p}: the file has a header but no rows"),
    ],
)
def test_bad_current_data_exits_2(cli_noprefect, deployed: GitRepo, content: str | None, message: str) -> None:  # noqa: F811
    path = deployed.path.parent / "bad.csv"
    if content is not None:
        path.write_text(content)
    result = cli_noprefect("monitor", "--current", str(path), cwd=deployed.path)
    assert result.exit_code == 2
    assert result.output.startswith(message.format(p=path))


def test_on_github_the_monitor_opens_one_issue_and_updates_it(cli, repo: GitRepo, github: StandIn) -> None:  # noqa: F811
    remote = deployed_on_github(cli, repo, github)
    path = recent(repo, "november.csv", shift=True, labels=False)
    first = cli("monitor", "--current", str(path), "--forge", "github", cwd=repo.path)
    assert first.exit_code == 1, first.output
    (issue,) = remote.issues.values()
    assert first.output.startswith(f"churn in staging: 1 check(s) over threshold; opened issue #{issue['number']}")
    assert issue["labels"] == ["mlops"] and issue["author"] == github.identity and issue["title"].startswith("churn in staging: drift: 2 of 4 columns drifted")
    assert issue["body"].startswith("<!-- mlgitops:monitor name=churn env=staging -->\n") and "| `age` | K-S p_value |" in issue["body"]
    again = cli("monitor", "--current", str(path), "--forge", "github", cwd=repo.path)
    assert again.exit_code == 1 and f"updated issue #{issue['number']}" in again.output
    assert len(remote.issues) == 1 and github.calls("PATCH", rf"/issues/{issue['number']}$")
    remote.issues[issue["number"]]["state"] = "closed"  # someone closed it: the next drift opens a new one
    third = cli("monitor", "--current", str(path), "--forge", "github", cwd=repo.path)
    assert third.exit_code == 1 and "opened issue #" in third.output and len(remote.issues) == 2



def test_the_deployable_monitor_flow_runs_mlops_monitor(deployed: GitRepo) -> None:  # noqa: F811
    """flows/entry.py's mlops-monitor (what the prefect.yaml deployment runs), called as
    a plain function: its final state carries the command's exit code."""
    from mlgitops.flows.entry import monitor

    path = recent(deployed, "december.csv", shift=True, labels=False)
    state = monitor.fn(str(path), repo=str(deployed.path), forge="local")
    assert state.is_completed() and state.message.startswith("mlops exit 1: ")
    assert json.loads((deployed.path / ".mlops" / "forge" / "issues.json").read_text())[0]["state"] == "open"
    missing = monitor.fn(str(deployed.path / "nope.csv"), repo=str(deployed.path), forge="local")
    assert missing.is_failed() and missing.message.startswith("mlops exit 2: ")
    neither = monitor.fn(str(path), forge="local")
    assert neither.is_failed() and neither.message == "mlops exit 2: error: give the monitor flow clone_url (the repository's URL; the worker clones it) or repo (a folder on the worker), not both"
    outside = monitor.fn(str(path), clone_url=str(deployed.path), config="../mlops.yaml", forge="local")
    assert outside.is_failed() and outside.message == "mlops exit 2: error: config '../mlops.yaml': give mlops.yaml's path inside the repository (e.g. models/churn/mlops.yaml)"
