"""MLflow tracking and Model Registry (tracking.mlflow) against a real `mlflow server`
(SQLite backend, local artifact folder) started on 127.0.0.1 for the session: a PR
run logs one run per model with the comment's metrics and links them; a cached rerun
logs nothing; a server that is down is one line (and a failing gate only when
required); the deploy registers the ONNX bytes and the merged promotion moves the
alias; `mlops status` reports an alias moved by hand; the PR's code never sees MLflow
credentials. Under CI=true a server that does not start fails; elsewhere it skips."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import pytest

from tests.helpers import GitRepo, missing, mixed_frame
from tests.test_deploy import merge_local, pr_and_merge

START_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unavailable(message: str) -> None:
    missing(message)


@pytest.fixture(scope="session")
def mlflow_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    """`mlflow server` started on a free loopback port (not yet waited for: it boots
    while Prefect's test server does); its process group is stopped after the session."""
    exe = Path(sys.executable).parent / "mlflow"
    if not exe.is_file():
        _unavailable("the mlflow server is not installed (pip install -e '.[test]')")
    folder = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    env.pop("MLFLOW_TRACKING_URI", None)
    log = (folder / "server.log").open("wb")
    cmd = [str(exe), "server", "--backend-store-uri", f"sqlite:///{folder}/mlflow.db", "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=folder, start_new_session=True)
    try:
        yield proc, f"http://127.0.0.1:{port}", folder
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def mlflow_server(mlflow_process: tuple[subprocess.Popen, str, Path]) -> str:
    """The server's URL once it answers /health (bounded wait)."""
    proc, url, folder = mlflow_process
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            _unavailable(f"mlflow server exited with {proc.returncode}: {(folder / 'server.log').read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return url
        except OSError:
            pass
        if time.monotonic() > deadline:
            _unavailable(f"mlflow server did not answer /health within {START_TIMEOUT_S} s: {(folder / 'server.log').read_text(errors='replace')[-2000:]}")
        time.sleep(0.5)


@pytest.fixture
def tracked(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The process pointed at the server; an MlflowClient for the checks."""
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    return MlflowClient(mlflow_server)


TRAIN_SCRIPT = '''\
"""A training script that also records which variables it was given."""
import argparse, json, os

import joblib
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

parser = argparse.ArgumentParser()
parser.add_argument("--train", required=True)
parser.add_argument("--model", required=True)
parser.add_argument("--C", type=float, default=1.0)
parser.add_argument("--env-out", required=True)
args = parser.parse_args()
with open(args.env_out, "a") as out:
    out.write(json.dumps(sorted(os.environ)) + "\\n")
df = pd.read_csv(args.train)
X, y = df.drop(columns=["churn"]), df["churn"]
pre = ColumnTransformer([
    ("num", SimpleImputer(strategy="median"), ["age", "income"]),
    ("cat", Pipeline([("imp", SimpleImputer(strategy="most_frequent")), ("oh", OneHotEncoder(handle_unknown="ignore"))]), ["city", "plan"]),
])
joblib.dump(Pipeline([("pre", pre), ("clf", LogisticRegression(C=args.C, max_iter=1000))]).fit(X, y), args.model)
'''

PR_CONFIG = """\
version: 1
name: {name}
data:
  path: data/churn.csv
  target: churn
training:
  command: python train.py --train {{train}} --model {{model}} --C 0.01 --env-out {env_out}
metrics: [accuracy, f1, roc_auc]
gates:
  accuracy:
    min: 0.6
tracking:
  mlflow:
    experiment: {experiment}
    required: {required}
"""


def pr_repo(repo: GitRepo, tmp_path: Path, required: bool = False) -> tuple[GitRepo, str, Path]:
    """main holds a command-trained churn model with tracking.mlflow; branch `stronger`
    changes C. Returns the repo, the experiment's name and the file the training
    commands write their variable names to."""
    experiment = f"prs-{uuid.uuid4().hex[:8]}"
    env_out = tmp_path / "training-env.jsonl"
    repo.gen({"mlops.yaml": PR_CONFIG.format(name="churn", env_out=env_out, experiment=experiment, required=str(required).lower()), "train.py": TRAIN_SCRIPT})
    (repo.path / "data").mkdir()
    mixed_frame(400).to_csv(repo.path / "data" / "churn.csv", index=False)
    repo.commit("churn model")
    repo.branch("stronger").edit("mlops.yaml", "--C 0.01", "--C 1.0").commit("stronger")
    return repo, experiment, env_out


def run_pr(cli: Any, repo: GitRepo, tmp_path: Path, number: int = 12, *extra: str) -> Any:
    """`mlops run` for PR #number (stronger -> main), from a pull_request payload."""
    payload = {
        "action": "synchronize",
        "number": number,
        "pull_request": {"number": number, "base": {"ref": "main", "sha": repo.git("rev-parse", "main")}, "head": {"ref": "stronger", "sha": repo.git("rev-parse", "HEAD"), "repo": {"full_name": "o/r"}}},
        "repository": {"full_name": "o/r", "default_branch": "main"},
        "sender": {"login": "octocat"},
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    return cli("run", "--event-path", str(path), *extra, cwd=repo.path)


def num(value: float) -> str:
    from mlgitops.report.render import _num

    return _num(value)


def table(body: str) -> dict[str, tuple[str, str]]:
    """The comment's metric table: name -> (base cell, candidate cell)."""
    rows = re.findall(r"^\| (\w+) [↑↓] \| ([^|]+) \| ([^|]+) \|", body, flags=re.M)
    return {name: (base.strip(), cand.strip()) for name, base, cand in rows}


def test_a_pr_run_logs_its_models_and_a_cached_rerun_logs_nothing(mlflow_process, cli, repo: GitRepo, tracked: Any, mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, experiment, env_out = pr_repo(repo, tmp_path)
    # A credential of MLflow's in reach: the run trains and scores in the secret-less
    # child; this process logs to MLflow (the server ignores the token).
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "mlflow-token-not-for-prs")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ci-bot")
    result = run_pr(cli, repo, tmp_path)
    assert result.exit_code == 0, result.output
    body = (repo.path / ".mlops" / "forge" / "pr-12" / "comment.md").read_text()

    exp = tracked.get_experiment_by_name(experiment)
    runs = {r.data.tags["mlgitops.side"]: r for r in tracked.search_runs([exp.experiment_id])}
    assert sorted(runs) == ["baseline", "candidate"]
    cand, base = runs["candidate"], runs["baseline"]
    link = lambda r: f"{mlflow_server}/#/experiments/{exp.experiment_id}/runs/{r.info.run_id}"  # noqa: E731
    assert f"**MLflow** (experiment `{experiment}`): [candidate run]({link(cand)}), [baseline run]({link(base)})\n" in body

    # The holdout metrics are the comment's, for both models.
    shown = table(body)
    assert sorted(shown) == ["accuracy", "f1", "roc_auc"]
    for name, (base_cell, cand_cell) in shown.items():
        assert num(cand.data.metrics[name]) == cand_cell and num(base.data.metrics[name]) == base_cell, name
    head, main = repo.git("rev-parse", "HEAD"), repo.git("rev-parse", "main")
    assert {k: cand.data.tags[k] for k in ("mlgitops.git_sha", "mlgitops.pr", "mlgitops.model_name", "mlgitops.side")} == {"mlgitops.git_sha": head, "mlgitops.pr": "12", "mlgitops.model_name": "churn", "mlgitops.side": "candidate"}
    assert base.data.tags["mlgitops.git_sha"] == main
    data_sha = hashlib.sha256((repo.path / "data" / "churn.csv").read_bytes()).hexdigest()
    assert cand.data.tags["mlgitops.data_sha256"] == data_sha == base.data.tags["mlgitops.data_sha256"]
    assert cand.data.tags["mlgitops.model_key"] != base.data.tags["mlgitops.model_key"]
    assert "--C 1.0" in cand.data.params["trained_with"] and "--C 0.01" in base.data.params["trained_with"]

    # Artifacts: the very ONNX bytes the comment names, and the comment itself.
    onnx_sha = re.search(r"`model.onnx` sha256 `([0-9a-f]{12})`", body).group(1)
    onnx = Path(tracked.download_artifacts(cand.info.run_id, "model/model.onnx", str(tmp_path)))
    assert hashlib.sha256(onnx.read_bytes()).hexdigest().startswith(onnx_sha)
    logged = Path(tracked.download_artifacts(cand.info.run_id, "report/comment.md", str(tmp_path))).read_text()
    assert body.startswith(logged.rstrip("\n"))

    # The PR's training command never saw MLflow's variables (nor any credential).
    seen = [json.loads(line) for line in env_out.read_text().splitlines()]
    assert seen and all(not [n for n in names if n.startswith("MLFLOW_")] for names in seen), seen

    # Same inputs: the report is reused and nothing new is logged; the comment links the same runs.
    again = run_pr(cli, repo, tmp_path, 12, "--json")
    assert again.exit_code == 0, again.output
    tracking = json.loads(again.stdout)["tracking"]  # stdout stays pure JSON
    assert tracking["reused"] is True and [r["run_id"] for r in tracking["runs"]] == [cand.info.run_id, base.info.run_id]
    assert len(tracked.search_runs([exp.experiment_id])) == 2
    body2 = (repo.path / ".mlops" / "forge" / "pr-12" / "comment.md").read_text()
    assert "result reused without retraining" in body2
    assert f"**MLflow** (experiment `{experiment}`): [candidate run]({link(cand)}), [baseline run]({link(base)}) (logged by the earlier run with these same inputs)\n" in body2


def test_a_server_that_is_down_is_one_line_and_fails_the_gate_only_when_required(cli, repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()  # nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    repo, _, _ = pr_repo(repo, tmp_path)
    result = run_pr(cli, repo, tmp_path)
    assert result.exit_code == 0, result.output
    body = (repo.path / ".mlops" / "forge" / "pr-12" / "comment.md").read_text()
    line = f"**MLflow**: ⚠️ not logged: the MLflow tracking server http://127.0.0.1:{port} did not answer ([Errno 111] Connection refused) (the gate does not depend on it)\n"
    assert line in body and "### ✅ mlops gate passed" in body

    # required: true on the base ref: the same outage fails the gate (exit 1).
    repo.checkout("main").edit("mlops.yaml", "required: false", "required: true").commit("tracking is required")
    repo.checkout("stronger").git("merge", "--quiet", "main", "-m", "merge main")
    failed = run_pr(cli, repo, tmp_path)
    assert failed.exit_code == 1, failed.output
    body = (repo.path / ".mlops" / "forge" / "pr-12" / "comment.md").read_text()
    assert "### ❌ mlops gate failed" in body
    assert f"- ❌ `mlflow.tracking`: MLflow tracking is required (tracking.mlflow.required) and the run was not logged: the MLflow tracking server http://127.0.0.1:{port} did not answer ([Errno 111] Connection refused)\n" in body
    assert "(`tracking.mlflow.required`: the gate fails)" in body


DEPLOY_CONFIG = """\
version: 1
name: {name}
data:
  path: data/churn.csv
  target: churn
training:
  estimator: sklearn.linear_model.LogisticRegression
  params:
    C: 0.01
    max_iter: 500
metrics: [accuracy, roc_auc]
gates:
  accuracy:
    min: 0.6
deploy:
  environments:
    staging:
      manifest: deploy/staging.yaml
tracking:
  mlflow:
    experiment: {experiment}
"""


def pinned_sha(repo: GitRepo, env: str = "staging") -> str:
    import yaml

    return yaml.safe_load((repo.path / "deploy" / f"{env}.yaml").read_text())["model"]["sha256"]


def test_deploy_registers_the_bytes_and_the_merged_promotion_moves_the_alias(mlflow_process, cli, repo: GitRepo, tracked: Any) -> None:
    name = f"churn-{uuid.uuid4().hex[:8]}"
    repo.gen({"mlops.yaml": DEPLOY_CONFIG.format(name=name, experiment=f"deploys-{name}")})
    (repo.path / "data").mkdir()
    mixed_frame(500).to_csv(repo.path / "data" / "churn.csv", index=False)
    repo.commit("Add the churn model")
    sha1 = pr_and_merge(cli, repo, "feature/stronger", "C: 0.01", "C: 1.0", 7)

    deployed = cli("deploy", cwd=repo.path)
    assert deployed.exit_code == 0, deployed.output
    assert f"\n  MLflow: registered {name} version 1 (sha256 {sha1})\n" in deployed.output
    [version] = tracked.search_model_versions(f"name = '{name}'")
    full = version.tags["sha256"]
    assert full.startswith(sha1)
    source = Path(tracked.download_artifacts(version.run_id, "model/model.onnx", str(repo.path.parent)))
    assert hashlib.sha256(source.read_bytes()).hexdigest() == full

    merge_local(repo, "mlops/deploy-staging", 8)  # the promotion PR merges: a push to main
    assert pinned_sha(repo) == full
    pushed = cli("deploy", cwd=repo.path)
    assert pushed.exit_code == 0, pushed.output
    assert f"\n  MLflow: alias `staging` of {name} -> version 1 (sha256 {sha1}, pinned for staging)\n" in pushed.output
    assert tracked.get_model_version_by_alias(name, "staging").tags["sha256"] == pinned_sha(repo)
    status = cli("status", cwd=repo.path)
    assert "mlflow staging: alias `staging` -> version 1 (the pin)\n" in status.output

    # Someone moves the alias by hand in MLflow: `mlops status` says so, the next deploy moves it back.
    other = tracked.create_model_version(name, version.source, run_id=version.run_id, tags={"sha256": "f" * 64})
    tracked.set_registered_model_alias(name, "staging", other.version)
    status = cli("status", cwd=repo.path)
    assert status.exit_code == 0, status.output
    moved = f"alias `staging` was moved by hand: it points at version {other.version} (sha256 ffffffffffff), not the pin (sha256 {sha1}); git is the source of truth, the next deploy moves it back"
    assert f"mlflow staging: {moved}\n" in status.output
    as_json = json.loads(cli("status", "--json", cwd=repo.path).output)
    assert as_json["environments"][0]["mlflow"] == moved
    again = cli("deploy", cwd=repo.path)
    assert f"\n  MLflow: {name} version 1 already holds these bytes (sha256 {sha1})\n" in again.output
    assert f"\n  MLflow: alias `staging` of {name} -> version 1 (sha256 {sha1}, pinned for staging) (was version {other.version})\n" in again.output


def test_the_training_child_gets_no_mlflow_variable() -> None:
    """What a PR's code is started with: no MLFLOW_* variable, whatever this process
    holds; MLflow's credentials (and a tracking URI with a password) send the compute
    to the secret-less child."""
    from mlgitops.run import childenv, compute_child

    parent = {
        "PATH": "/usr/bin",
        "MLFLOW_TRACKING_URI": "https://ci:s3cret-pass@mlflow.example.invalid",
        "MLFLOW_TRACKING_USERNAME": "ci",
        "MLFLOW_TRACKING_PASSWORD": "s3cret-pass",
        "MLFLOW_TRACKING_TOKEN": "tok-123456",
        "MLFLOW_EXPERIMENT_NAME": "prs",
    }
    assert childenv.child_env([], {"MLOPS_SEED": "1"}, parent) == {"PATH": "/usr/bin", "MLOPS_SEED": "1"}
    config = SimpleNamespace(training=SimpleNamespace(env=[]), alerts=SimpleNamespace(webhook_env=None))
    cfg = SimpleNamespace(config=config)
    side = SimpleNamespace(cfg=cfg, trusted=config)
    plan = SimpleNamespace(candidate=side, baseline=SimpleNamespace(side=None, cfg=None))
    assert not [n for n in compute_child.environment(cfg, plan, None, parent) if n.startswith("MLFLOW_")]
    assert compute_child.credentials_in_reach(cfg, plan, None, parent) == ["MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_URI"]
    assert compute_child.credentials_in_reach(cfg, plan, None, {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}) == []
    assert childenv.redact("token tok-123456 and s3cret-pass", parent) == "token *** and ***"
