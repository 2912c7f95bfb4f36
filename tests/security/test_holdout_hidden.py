"""Attack: the training command reads the holdout its own gates are scored on.

`{holdout}` handed the PR's code the holdout CSV, so it could fit the scored rows.
Now it is a config error unless `training.allow_holdout: true`, and then the comment
says so; `{valid}` gives validation rows carved from the training rows.
"""

from __future__ import annotations

import json
import math
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from mlgitops.config.loader import parse_config
from mlgitops.data.load import load_dataset
from mlgitops.errors import ConfigError
from mlgitops.report.render import render_comment
from mlgitops.train.training import run_command
from tests.helpers import mixed_frame
from tests.test_render import make_report

CONFIG = """\
    data: {path: data/churn.csv, target: churn}
    training:
      command: python train.py {train} {model} %s
    """
# Records what it was given: the files next to {train}, and the rows of each CSV.
TRAIN = """\
import json, os, sys
import joblib, pandas as pd
from sklearn.dummy import DummyClassifier
train = pd.read_csv(sys.argv[1])
extra = {a: pd.read_csv(a)["row"].tolist() for a in sys.argv[3:]}
json.dump({"files": sorted(os.listdir(os.path.dirname(sys.argv[1]))), "train": train["row"].tolist(), "extra": list(extra.values())}, open("seen.json", "w"))
joblib.dump(DummyClassifier().fit(train[["age"]], train["churn"]), sys.argv[2])
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    frame = mixed_frame(100)
    frame.insert(0, "row", range(len(frame)))  # to tell the rows apart
    frame.to_csv(tmp_path / "data" / "churn.csv", index=False)
    (tmp_path / "train.py").write_text(TRAIN)
    return tmp_path


def test_holdout_placeholder_is_a_config_error(tmp_path: Path) -> None:
    text = textwrap.dedent(CONFIG % "{holdout}")
    with pytest.raises(ConfigError) as err:
        parse_config(text, tmp_path / "mlops.yaml", "mlops.yaml")
    assert err.value.exit_code == 2
    assert err.value.problems == [
        "mlops.yaml:3:12: training.command: {holdout} would hand the training code the rows its gates are scored on; use {valid} "
        "(a seeded share of the training rows, training.validation_size) instead, or set training.allow_holdout: true to accept it (the PR comment will then say so)"
    ]


def test_valid_is_carved_from_the_training_rows_and_the_holdout_is_not_handed_over(root: Path) -> None:
    cfg = parse_config(textwrap.dedent(CONFIG % "{valid}"), root / "mlops.yaml", "mlops.yaml")
    dataset = load_dataset(cfg, root)
    run_command(cfg, dataset, root)
    seen = json.loads((root / "seen.json").read_text())
    train, (valid,) = set(seen["train"]), [set(v) for v in seen["extra"]]
    assert seen["files"] == ["params.json", "train.csv", "valid.csv"]  # no holdout.csv
    assert len(valid) == math.ceil(0.2 * len(dataset.train))  # training.validation_size
    assert train | valid == set(dataset.train["row"]) and not train & valid
    assert not (train | valid) & set(dataset.holdout["row"])


def test_opted_in_holdout_is_announced_at_the_top_of_the_comment(root: Path) -> None:
    text = textwrap.dedent(CONFIG % "{holdout}") + "  allow_holdout: true\n"
    cfg = parse_config(text, root / "mlops.yaml", "mlops.yaml")
    dataset = load_dataset(cfg, root)
    trained = run_command(cfg, dataset, root)
    seen = json.loads((root / "seen.json").read_text())
    assert set(seen["extra"][0]) == set(dataset.holdout["row"])  # it did get the holdout
    report = make_report()
    report.candidate = replace(report.candidate, trained_with=trained.description)
    body = render_comment(report)
    assert body.splitlines()[:5] == [
        "<!-- mlgitops:pr-report name=breast-cancer -->",
        "### ✅ mlops gate passed: `breast-cancer`",
        "",
        "> ⚠️ **The training code read the holdout.** `training.command` uses `{holdout}` (`training.allow_holdout: true`), so the rows these gates score were visible to the pull request's code: the scores may be optimistic.",
        "",
    ]
