"""Data versioned with DVC: a real DVC repository (git + `dvc init`, a local remote
folder), two data versions on two branches, both pushed, the working tree's data file
and DVC's cache deleted. The PR that changes the .dvc file trains the candidate on the
new data and the baseline on the old, each read through DVC's API from the remote, and
the comment shows both versions. Under CI=true a missing dvc fails; elsewhere it skips."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


from tests.helpers import GitRepo, missing, mixed_frame

CONFIG = """\
version: 1
name: churn
data:
  path: data/churn.csv
  target: churn
training:
  estimator: sklearn.linear_model.LogisticRegression
  params:
    C: 1.0
    max_iter: 500
metrics: [accuracy, roc_auc]
gates:
  accuracy:
    min: 0.6
"""


def dvc(repo: GitRepo, *args: str) -> str:
    exe = Path(sys.executable).parent / "dvc"
    if not exe.is_file():
        message = "dvc is not installed (pip install -e '.[test]')"
        missing(message)
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    return subprocess.run([str(exe), *args], cwd=repo.path, check=True, capture_output=True, text=True, env=env).stdout


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_a_pr_that_changes_the_dvc_file_trains_each_side_on_its_own_version(cli, repo: GitRepo, tmp_path: Path) -> None:
    remote = tmp_path / "dvc-remote"
    dvc(repo, "init", "--quiet")
    dvc(repo, "config", "core.analytics", "false")
    dvc(repo, "remote", "add", "--default", "local", str(remote))
    data = repo.path / "data" / "churn.csv"
    data.parent.mkdir()
    mixed_frame(400, seed=0).to_csv(data, index=False)
    old_md5, old_sha = md5(data), hashlib.sha256(data.read_bytes()).hexdigest()
    dvc(repo, "add", "data/churn.csv")
    dvc(repo, "push")
    repo.gen({"mlops.yaml": CONFIG}).commit("churn model, data v1 in DVC")
    assert repo.git("ls-files", "data") == "data/.gitignore\ndata/churn.csv.dvc"  # git has the pointer only

    repo.branch("more-data")
    mixed_frame(600, seed=1).to_csv(data, index=False)
    new_md5, new_sha = md5(data), hashlib.sha256(data.read_bytes()).hexdigest()
    dvc(repo, "add", "data/churn.csv")
    dvc(repo, "push")
    repo.commit("data v2")
    # As on a fresh CI checkout: no data file, no DVC cache; only the remote has the data.
    data.unlink()
    shutil.rmtree(repo.path / ".dvc" / "cache", ignore_errors=True)

    result = cli("run", "--base", "main", "--json", cwd=repo.path)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    body = (repo.path / ".mlops" / "forge" / "branch-more-data" / "comment.md").read_text()
    assert f"- data `data/churn.csv` (DVC, `data/churn.csv.dvc`): md5 `{new_md5[:12]}` (base md5 `{old_md5[:12]}`)\n" in body
    assert report["data"]["dvc"] == {"pointer": "data/churn.csv.dvc", "md5": new_md5, "base_md5": old_md5}
    # The candidate trained and was scored on v2 (600 rows), the baseline trained on v1 (400 rows).
    assert report["data"]["train_rows"] + report["data"]["holdout_rows"] == 600
    assert report["data"]["sha256"] == new_sha and report["baseline"]["data_sha256"] == old_sha
    assert report["baseline"]["source"] == "trained"
    base_meta = json.loads((repo.path / ".mlops" / "cache" / "models" / report["baseline"]["key"] / "meta.json").read_text())
    assert base_meta["train_rows"] == 320 and base_meta["data_sha256"] == old_sha
    assert not data.exists()  # read through DVC's API: the working tree is left as it was

    # A rerun: the plan is answered from the .dvc pointers alone (DVC's md5), nothing retrained.
    again = cli("run", "--base", "main", "--json", cwd=repo.path)
    assert again.exit_code == 0 and json.loads(again.stdout)["reused"] is True


def test_the_pointer_is_a_dvc_file_or_a_dvc_lock_output() -> None:
    """Which file says a data path is tracked, read from a tree (no dvc needed)."""
    from mlgitops.data.dvc import Pointer, find

    files = {
        "data/a.csv.dvc": b"outs:\n- md5: aaaa\n  size: 8\n  hash: md5\n  path: a.csv\n",
        "dvc.lock": b"schema: '2.0'\nstages:\n  prepare:\n    cmd: python prep.py\n    outs:\n    - path: data/b.csv\n      hash: md5\n      md5: bbbb\n      size: 9\n    - path: data/features\n      md5: cccc.dir\n",
    }
    read = files.get
    assert find(read, "data/a.csv") == Pointer("aaaa", 8, "data/a.csv.dvc")
    assert find(read, "./data/b.csv") == Pointer("bbbb", 9, "dvc.lock")
    assert find(read, "data/features") is None  # a tracked directory is not a data file
    assert find(read, "data/c.csv") is None and find(read, "sklearn:iris") is None
