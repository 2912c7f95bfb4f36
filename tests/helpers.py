"""Shared test helpers: git repositories in temp dirs, built like DVC's tmp_dir.gen()."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
# GitHub's published material (webhook examples, the OpenAPI cut, PyGithub's recorded
# exchanges), vendored with its licences: tests/github/README.md.
GITHUB_MATERIAL = Path(__file__).resolve().parent / "github"
EXAMPLE = (REPO_ROOT / "mlops.yaml").read_text()


class GitRepo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", "--initial-branch=main")
        self.git("config", "user.name", "Test User")
        self.git("config", "user.email", "test@example.invalid")
        (path / ".gitignore").write_text(".mlops/\n")

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.path, check=True, capture_output=True, text=True).stdout.strip()

    def gen(self, files: dict[str, str | bytes]) -> "GitRepo":
        for rel, content in files.items():
            target = self.path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(textwrap.dedent(content))
        return self

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def branch(self, name: str) -> "GitRepo":
        self.git("checkout", "--quiet", "-b", name)
        return self

    def checkout(self, name: str) -> "GitRepo":
        self.git("checkout", "--quiet", name)
        return self

    def edit(self, rel: str, old: str, new: str) -> "GitRepo":
        target = self.path / rel
        text = target.read_text()
        assert old in text, f"{old!r} not in {rel}"
        target.write_text(text.replace(old, new, 1))
        return self

    def mlops_files(self) -> list[str]:
        root = self.path / ".mlops"
        return sorted(p.relative_to(self.path).as_posix() for p in root.rglob("*")) if root.exists() else []


def mixed_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Numeric and categorical columns with missing values; a learnable binary target."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, n).round(1)
    income = rng.lognormal(10, 0.5, n).round(0)
    city = rng.choice(["paris", "lyon", "nice", "lille"], n)
    plan = rng.choice(["basic", "pro"], n)
    score = 0.05 * (age - 40) + (plan == "pro") * 1.5 + (city == "nice") * 1.0 - 0.5 + rng.normal(0, 0.7, n)
    frame = pd.DataFrame({"age": age, "income": income, "city": city, "plan": plan, "churn": (score > 0).astype(int)})
    frame.loc[rng.random(n) < 0.1, "age"] = np.nan
    frame.loc[rng.random(n) < 0.1, "city"] = np.nan
    frame.loc[rng.random(n) < 0.05, "income"] = np.nan
    return frame


def regression_frame(n: int = 300, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame({"x1": x1, "x2": x2, "y": 3 * x1 - 2 * x2 + rng.normal(0, 0.3, n)})


TRAIN_SCRIPT = '''\
"""An ordinary argparse training script, as users write them (not aware of mlops)."""
import argparse

import joblib
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

parser = argparse.ArgumentParser()
parser.add_argument("--train_data_path", required=True)
parser.add_argument("--model_output_path", required=True)
parser.add_argument("--C", type=float, default=1.0)
args = parser.parse_args()

df = pd.read_csv(args.train_data_path)
X, y = df.drop(columns=["churn"]), df["churn"]
numeric = ["age", "income"]
categorical = ["city", "plan"]
pre = ColumnTransformer([
    ("num", SimpleImputer(strategy="median"), numeric),
    ("cat", Pipeline([("imp", SimpleImputer(strategy="most_frequent")), ("oh", OneHotEncoder(handle_unknown="ignore"))]), categorical),
])
model = Pipeline([("pre", pre), ("clf", LogisticRegression(C=args.C, max_iter=1000))])
model.fit(X, y)
joblib.dump(model, args.model_output_path)
'''

COMMAND_CONFIG = """\
version: 1
name: churn
data:
  path: data/churn.csv
  target: churn
training:
  command: python train.py --train_data_path {train} --model_output_path {model} --C 1.0
metrics: [accuracy, f1, roc_auc]
gates:
  accuracy:
    min: 0.6
  roc_auc:
    max_drop: 0.05
"""


def missing(message: str) -> NoReturn:
    """A tool or service a test needs is absent: a failure under CI=true (CI installs
    everything, so absence there is a broken set-up), a skip on a developer's machine."""
    import pytest

    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def chromium() -> str:
    """Debian's headless Chromium (.ci/run installs it), for the Prefect UI and Mermaid tests."""
    import shutil

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        missing("chromium is not installed: apt-get install chromium (.ci/run does)")
    return found
