"""A one-class target, or a class too small to split, is exit 2 from `validate` and
`run`, before training (issue 11). ONNX Runtime aborted the whole process on a
one-class model (a C++ assertion, exit 134): no message, no log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import GitRepo, mixed_frame

BIN = Path(sys.executable).parent
CONFIG = "name: churn\ndata: {path: data/churn.csv, target: churn}\ntraining: {estimator: sklearn.tree.DecisionTreeClassifier}\n"
ONE_CLASS = (
    "error: mlops.yaml:2:38: data.target: 'churn' has a single class, 1, in all 120 rows; a classifier needs at least two\n"
    "  hint: check that data.target names the column to predict and that the data holds every class (or set task: regression for a numeric target)\n"
)


def one_class(repo: GitRepo) -> GitRepo:
    frame = mixed_frame(120).assign(churn=1)
    repo.gen({"mlops.yaml": CONFIG, "data/churn.csv": frame.to_csv(index=False)}).commit("one class")
    return repo


def test_one_class_is_exit_2_from_validate(cli_noprefect, repo: GitRepo) -> None:
    result = cli_noprefect("validate", cwd=one_class(repo).path)
    assert (result.exit_code, result.stderr) == (2, ONE_CLASS)


def test_one_class_is_exit_2_from_run_before_training(prefect_api: str, repo: GitRepo) -> None:
    """A real process: before the fix it died of SIGABRT inside ONNX Runtime (134)."""
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    proc = subprocess.run([str(BIN / "mlops"), "run", "--base", "main"], cwd=one_class(repo).path, env=env, capture_output=True, text=True, timeout=300)
    assert (proc.returncode, proc.stderr) == (2, ONE_CLASS)
    assert repo.mlops_files() == []


def frame_with(counts: dict[str, int]) -> pd.DataFrame:
    rows = sum(counts.values())
    frame = mixed_frame(rows).drop(columns="churn")
    return frame.assign(churn=[label for label, n in counts.items() for _ in range(n)])


SPLITS = {
    "a class of one row": (
        {"no": 80, "yes": 39, "maybe": 1},
        "error: mlops.yaml:2:38: data.target: 1 class(es) of 'churn' have a single row, too few for a stratified holdout split (rows per class: 'no': 80, 'yes': 39, 'maybe': 1)\n"
        "  hint: add rows of those classes or drop them, or set data.holdout.stratify: false\n",
    ),
    "fewer holdout rows than classes": (
        {c: 2 for c in "abcdef"},
        "error: mlops.yaml:2:7: data.holdout.size: a stratified split of 12 rows into 9 training and 3 holdout rows cannot hold each of the 6 classes of 'churn' on both sides "
        "(rows per class: 'a': 2, 'b': 2, 'c': 2, 'd': 2, 'e': 2, 'f': 2)\n"
        "  hint: use more rows, or a holdout.size that leaves at least 6 rows on each side\n",
    ),
}


@pytest.mark.parametrize("case", list(SPLITS))
def test_a_class_too_small_to_split_is_exit_2_from_validate(cli_noprefect, repo: GitRepo, case: str) -> None:
    counts, expected = SPLITS[case]
    repo.gen({"mlops.yaml": CONFIG, "data/churn.csv": frame_with(counts).to_csv(index=False)})
    result = cli_noprefect("validate", cwd=repo.path)
    assert (result.exit_code, result.stderr) == (2, expected)


def test_two_rows_per_class_split_in_half_is_fine(cli_noprefect, repo: GitRepo) -> None:
    """The near miss: every class keeps a row on each side."""
    config = CONFIG.replace("target: churn}", "target: churn, holdout: {size: 0.5}}")
    repo.gen({"mlops.yaml": config, "data/churn.csv": frame_with({c: 2 for c in "abcdef"}).to_csv(index=False)})
    result = cli_noprefect("validate", cwd=repo.path)
    assert result.exit_code == 0, result.output
