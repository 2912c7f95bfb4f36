"""Sweeps: candidates trained at once (Prefect's thread pool, or Dask through
prefect-dask on a LocalCluster), the best by a validation split reported and gated."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.helpers import EXAMPLE, GitRepo

SWEEP = """\
  preprocessing: auto
  sweep:
    grid:
      max_depth: [1, 3]
      n_estimators: [5, 40]
    candidates:
      - params: {max_depth: -4}               # RandomForest refuses it: reported, not fatal
      - estimator: sklearn.linear_model.LogisticRegression
        params: {}
    metric: roc_auc
    runner: RUNNER
    workers: 2
"""


def with_sweep(runner: str) -> str:
    text = EXAMPLE.replace("  preprocessing: auto           # impute (+ scale, except for trees) numeric, impute + one-hot text columns\n", SWEEP.replace("RUNNER", runner))
    assert "sweep:" in text
    return text.replace("    n_estimators: 60\n    max_depth: 2\n    random_state: 0\n", "    n_estimators: 60\n    max_depth: 2\n    random_state: 0\n    n_jobs: 1\n")


def run_sweep_pr(cli: Any, repo: GitRepo, runner: str) -> tuple[Any, dict, str]:
    repo.branch("sweep").gen({"mlops.yaml": with_sweep(runner)}).commit("sweep the forest")
    result = cli("run", "--base", "main", "--json", cwd=repo.path)
    assert result.exit_code == 0, result.output  # the sweep's winner passes the example's gates
    report = json.loads(result.stdout)
    comment = (repo.path / ".mlops" / "forge" / "branch-sweep" / "comment.md").read_text()
    return result, report, comment


def check_sweep(report: dict, comment: str, runner: str) -> None:
    rows = report["sweep"]
    assert len(rows) == 6 and [r["candidate"] for r in rows if r["chosen"]] == [rows[0]["candidate"]]
    scored = [r for r in rows if r["score"] is not None]
    assert [r["score"] for r in scored] == sorted((r["score"] for r in scored), reverse=True)  # best first (roc_auc: higher)
    (bad,) = [r for r in rows if r["params"] == {"max_depth": -4}]
    assert bad["score"] is None and "max_depth" in bad["error"] and bad["candidate"] == 5
    assert {r["metric"] for r in rows} == {"roc_auc"}
    best = rows[0]
    assert report["candidate"]["trained_with"].endswith(f"(best of 6 by roc_auc on a 20% validation split, {runner} x2)")
    assert "**Sweep**: 6 candidates compared by `roc_auc` on a validation split of the training rows" in comment
    assert re.search(rf"\| {best['candidate']} \| `\w+` \| .* \| {best['score']:.4f} \| [0-9.]+ \| ✅ chosen \|", comment), comment
    assert "| 5 | `RandomForestClassifier` | `max_depth=-4` | `n_estimators=60`, `random_state=0`, `n_jobs=1` | — |" in comment
    # another estimator takes nothing from training.params (they were written for the forest)
    (logistic,) = [r for r in rows if r["estimator"].endswith("LogisticRegression")]
    assert logistic["inherited"] == {} and logistic["error"] is None and logistic["score"] is not None
    assert re.search(r"\| 6 \| `LogisticRegression` \| `estimator=sklearn.linear_model.LogisticRegression` \| — \| [0-9.]{6} \|", comment), comment
    grid = [r for r in rows if r["candidate"] <= 4]
    assert all(r["inherited"] == {"random_state": 0, "n_jobs": 1} for r in grid), grid


def test_a_thread_pool_sweep_picks_the_best_and_caches_it(cli: Any, example_repo: GitRepo) -> None:
    result, report, comment = run_sweep_pr(cli, example_repo, "threads")
    check_sweep(report, comment, "threads")
    again = cli("run", "--base", "main", "--json", cwd=example_repo.path)
    assert json.loads(again.stdout)["reused"] is True  # an unchanged sweep reruns nothing
    # A different worker count decides nothing: same cache key, nothing retrained.
    example_repo.gen({"mlops.yaml": with_sweep("threads").replace("workers: 2", "workers: 1")}).commit("one worker")
    third = json.loads(cli("run", "--base", "main", "--json", cwd=example_repo.path).stdout)
    assert third["candidate"]["source"] == "cache"


def test_a_dask_sweep_on_a_local_cluster(prefect_api: str, example_repo: GitRepo) -> None:
    """As a user runs it (its own process): the sweep's result, and none of Dask's INFO
    lines (cluster, workers, a dashboard address) in the output."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = example_repo
    repo.branch("sweep").gen({"mlops.yaml": with_sweep("dask")}).commit("sweep the forest")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "GITHUB_", "DASK_"))} | {"PREFECT_API_URL": prefect_api}
    proc = subprocess.run([str(Path(sys.executable).with_name("mlops")), "run", "--base", "main", "--json"], cwd=repo.path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # the same sweep as run_sweep_pr: its winner passes
    report = json.loads(proc.stdout)
    check_sweep(report, (repo.path / ".mlops" / "forge" / "branch-sweep" / "comment.md").read_text(), "dask")
    assert "distributed." not in proc.stderr and "dashboard" not in proc.stderr.lower() and ":8787" not in proc.stderr, proc.stderr[-3000:]
    assert report["export"]["status"] == "ok"  # the winner is an ordinary pipeline: exported and checked


@pytest.mark.parametrize(
    ("training", "message"),
    [
        ("  command: python train.py {train} {model}\n  sweep: {grid: {a: [1]}}\n", "mlops.yaml:{line}:10: training.sweep: a sweep needs `training.estimator`; a training command cannot be varied"),
        ("  estimator: sklearn.linear_model.LogisticRegression\n  sweep: {metric: roc_auc}\n", "mlops.yaml:{line}:10: training.sweep: expected `grid` and/or `candidates`"),
        ("  estimator: sklearn.linear_model.LogisticRegression\n  sweep: {grid: {C: [1, 2, 3], tol: [1, 2]}, max_candidates: 5}\n", "mlops.yaml:{line}:10: training.sweep: 6 candidates is more than max_candidates (5)"),
        ("  estimator: sklearn.linear_model.LogisticRegression\n  sweep: {grid: {C: [1]}, address: 'tcp://127.0.0.1:8786'}\n", "training.sweep.address: a Dask scheduler address needs `runner: dask`"),
        ("  estimator: sklearn.linear_model.LogisticRegression\n  sweep: {grid: {C: [1]}, runner: spark}\n", "training.sweep.runner"),
    ],
)
def test_bad_sweeps_are_named(cli_noprefect: Any, tmp_path: Any, training: str, message: str) -> None:
    text = f"version: 1\ndata:\n  path: sklearn:breast_cancer\n  target: target\ntraining:\n{training}"
    (tmp_path / "mlops.yaml").write_text(text)
    result = cli_noprefect("validate", cwd=tmp_path)
    assert result.exit_code == 2
    line = text.splitlines().index("  sweep: " + training.split("sweep: ", 1)[1].strip()) + 1 if "sweep: " in training else 0
    assert message.format(line=line) in result.output, result.output


def test_validation_split_on_few_rows_of_many_classes(tmp_path: Any) -> None:
    """Stratifying 40 rows of 10 classes into a 4-row validation split is impossible:
    the split is then plain (seeded), not a crash."""
    import pandas as pd

    from mlgitops.config.loader import load_config
    from mlgitops.data.load import Dataset
    from mlgitops.train.sweep import validation_split

    (tmp_path / "mlops.yaml").write_text("version: 1\ndata: {path: d.csv, target: y}\ntraining:\n  estimator: sklearn.tree.DecisionTreeClassifier\n  sweep: {grid: {max_depth: [1, 2]}, validation_size: 0.1}\n")
    cfg = load_config(tmp_path / "mlops.yaml")
    frame = pd.DataFrame({"x": range(40), "y": [i % 10 for i in range(40)]})
    dataset = Dataset(frame, frame.head(0), "y", ["x"], "classification", "", "sha", None, list(range(10)))
    part, val = validation_split(cfg, dataset)
    assert (len(part.train), len(val)) == (36, 4)


def test_a_sweep_candidates_package_is_in_the_cache_key(tmp_path: Any) -> None:
    from mlgitops.config.loader import load_config
    from mlgitops.plan.fingerprint import _versions

    (tmp_path / "mlops.yaml").write_text("version: 1\ndata: {path: d.csv, target: y}\ntraining:\n  estimator: sklearn.tree.DecisionTreeClassifier\n  sweep: {candidates: [{estimator: joblib.Memory}]}\n")
    assert "joblib" in _versions(load_config(tmp_path / "mlops.yaml").config)


def test_a_local_dask_cluster_opens_no_dashboard_and_nothing_on_8787(tmp_path: Any) -> None:
    """The cluster the sweep's task runner starts: no dashboard, and the scheduler's HTTP
    server (Dask always starts one) on a free loopback port, never 8787 (the webhook
    service's default) nor every interface."""
    from distributed import LocalCluster

    from mlgitops.config.loader import load_config
    from mlgitops.train.sweep import task_runner

    (tmp_path / "mlops.yaml").write_text(with_sweep("dask"))
    runner = task_runner(load_config(tmp_path / "mlops.yaml"))
    with LocalCluster(**{**runner.cluster_kwargs, "n_workers": 0}) as cluster:  # the scheduler is what listens
        sockets = [s.getsockname() for s in cluster.scheduler.http_server._sockets.values()]
        assert sockets and all(host == "127.0.0.1" and port != 8787 for host, port, *_ in sockets), sockets
        import urllib.error
        import urllib.request

        host, port = sockets[0][:2]
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://{host}:{port}/status", timeout=10)  # the dashboard's page
        assert missing.value.code == 404
