"""Reproducible verdicts (issue 14): seeds, training.repeats, gate tolerance, and the
warning when two trainings of identical inputs disagree."""

from __future__ import annotations

import json
import math
import shutil
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlgitops.config.loader import Gate, LoadedConfig, parse_config
from mlgitops.data.load import load_dataset
from mlgitops.errors import ConfigError
from mlgitops.plan.decide import SidePlan
from mlgitops.plan.store import Store
from mlgitops.report.render import render_comment
from mlgitops.run import steps
from mlgitops.train.evaluate import evaluate
from mlgitops.train.gates import check_gates
from mlgitops.train.select import train
from mlgitops.train.training import fit_estimator
from tests.helpers import GitRepo, mixed_frame
from tests.test_render import make_report

# The blog script of the issue: a RandomForest with no random_state, nothing of MLOPS_SEED.
UNSEEDED_SCRIPT = """\
import sys
import joblib
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
df = pd.read_csv(sys.argv[1])
pre = ColumnTransformer([
    ("num", SimpleImputer(strategy="median"), ["age", "income"]),
    ("cat", Pipeline([("imp", SimpleImputer(strategy="most_frequent")), ("oh", OneHotEncoder(handle_unknown="ignore"))]), ["city", "plan"]),
])
model = Pipeline([("pre", pre), ("rf", RandomForestClassifier(n_estimators=8, max_features=0.5))])
joblib.dump(model.fit(df.drop(columns=["churn"]), df["churn"]), sys.argv[2])
"""
# The same, seeded from MLOPS_SEED.
SEEDED_SCRIPT = UNSEEDED_SCRIPT.replace("import sys\n", "import os\nimport sys\n").replace("max_features=0.5)", "max_features=0.5, random_state=int(os.environ['MLOPS_SEED']))")
# Not reproducible by construction: every other run trains a worse model (a counter file
# outside the repository, which no fingerprint sees).
FLIPPING_SCRIPT = """\
import sys
from pathlib import Path
import joblib
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
counter = Path({counter!r})
n = int(counter.read_text()) if counter.exists() else 0
counter.write_text(str(n + 1))
df = pd.read_csv(sys.argv[1])
estimator = LogisticRegression(max_iter=500) if n % 2 == 0 else DummyClassifier(strategy="most_frequent")
model = Pipeline([("pre", ColumnTransformer([("num", SimpleImputer(strategy="median"), ["age", "income"])])), ("clf", estimator)])
joblib.dump(model.fit(df.drop(columns=["churn"]), df["churn"]), sys.argv[2])
"""
RF = "sklearn.ensemble.RandomForestClassifier"


def estimator_config(root: Path, params: str = "{n_estimators: 5, max_depth: 3}", extra: str = "", estimator: str = RF) -> LoadedConfig:
    text = f"name: churn\ndata: {{path: data/churn.csv, target: churn, holdout: {{seed: 7}}}}\ntraining:\n  estimator: {estimator}\n  params: {params}\n{extra}metrics: [accuracy, f1, roc_auc]\n"
    return parse_config(text, root / "mlops.yaml", "mlops.yaml")


def command_config(root: Path, script: str = "train.py", extra: str = "") -> LoadedConfig:
    text = f"name: churn\ndata: {{path: data/churn.csv, target: churn}}\ntraining:\n  command: python {script} {{train}} {{model}}\n{extra}metrics: [accuracy, f1, roc_auc]\n"
    return parse_config(text, root / "mlops.yaml", "mlops.yaml")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    root = tmp_path / "work"
    (root / "data").mkdir(parents=True)
    mixed_frame(200).to_csv(root / "data" / "churn.csv", index=False)
    (root / "train.py").write_text(UNSEEDED_SCRIPT)
    (root / "seeded.py").write_text(SEEDED_SCRIPT)
    return root


def side(cfg: LoadedConfig, key: str = "k" * 64) -> SidePlan:
    return SidePlan(cfg, key, "d" * 64, "data/churn.csv", "", [])


def final_estimator(model: Any) -> Any:
    return model.named_steps["model"] if hasattr(model, "named_steps") else model


# -- seeds ----------------------------------------------------------------------------
def test_an_estimator_without_random_state_gets_the_seed_and_the_comment_says_so(workdir: Path) -> None:
    cfg = estimator_config(workdir)
    trained = train(cfg, load_dataset(cfg, workdir), workdir)
    assert final_estimator(trained.model).random_state == 7
    assert trained.notes == ["RandomForestClassifier had no random_state: set to 7 from the seed (data.holdout.seed)"]


def test_a_given_random_state_is_kept_and_estimators_without_one_are_left_alone(workdir: Path) -> None:
    cfg = estimator_config(workdir, "{n_estimators: 5, random_state: 3}")
    trained = train(cfg, load_dataset(cfg, workdir), workdir)
    assert final_estimator(trained.model).random_state == 3 and trained.notes == []
    cfg = estimator_config(workdir, "{n_neighbors: 3}", estimator="sklearn.neighbors.KNeighborsClassifier")
    assert train(cfg, load_dataset(cfg, workdir), workdir).notes == []


def test_an_unseeded_estimator_trains_the_same_model_every_time(workdir: Path) -> None:
    cfg = estimator_config(workdir)
    data = load_dataset(cfg, workdir)
    probas = [train(cfg, data, workdir).model.predict_proba(data.holdout[data.features]).tobytes() for _ in range(3)]
    assert len(set(probas)) == 1


def test_every_sweep_candidate_is_seeded(workdir: Path, prefect_api: str) -> None:
    cfg = estimator_config(workdir, extra="  sweep: {grid: {max_depth: [2, 4]}, workers: 1}\n")
    data = load_dataset(cfg, workdir)
    first, second = train(cfg, data, workdir), train(cfg, data, workdir)
    assert final_estimator(first.model).random_state == 7
    assert first.notes == ["RandomForestClassifier had no random_state: set to 7 from the seed (data.holdout.seed)"]
    # The choice itself is reproducible: every candidate scored the same on both runs.
    assert [(r["params"], r["score"]) for r in first.sweep or []] == [(r["params"], r["score"]) for r in second.sweep or []]


DUMP_ENV = """\
import json, os, random, sys
import joblib, numpy
from sklearn.dummy import DummyClassifier
import pandas as pd
df = pd.read_csv(sys.argv[1])
json.dump({"env": dict(os.environ), "numpy": numpy.random.rand(), "random": random.random()}, open("dump.json", "w"))
joblib.dump(DummyClassifier().fit(df.drop(columns=["churn"]), df["churn"]), sys.argv[2])
"""


def test_a_training_command_gets_mlops_seed_and_pythonhashseed(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy
    import random

    (workdir / "dump.py").write_text(DUMP_ENV)
    # An existing sitecustomize on the user's PYTHONPATH still runs after the seeding one.
    other = workdir / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text("import os\nos.environ['THEIRS_RAN'] = 'yes'\n")
    monkeypatch.setenv("PYTHONPATH", str(other))
    cfg = command_config(workdir, "dump.py")
    trained = train(cfg, load_dataset(cfg, workdir), workdir, seed=11)
    dump = json.loads((workdir / "dump.json").read_text())
    env = dump["env"]
    assert (env["MLOPS_SEED"], env["PYTHONHASHSEED"], env["THEIRS_RAN"]) == ("11", "11", "yes")
    assert env["PYTHONPATH"].split(":")[1:] == [str(other)]
    numpy.random.seed(11)
    random.seed(11)
    assert (dump["numpy"], dump["random"]) == (numpy.random.rand(), random.random())
    assert trained.notes == ["The training command ran with MLOPS_SEED=11 and PYTHONHASHSEED=11; Python's random and NumPy's global generator started seeded from it"]


def test_fresh_runs_of_the_unseeded_blog_script_train_one_model(workdir: Path) -> None:
    """Acceptance (issue 14): identical inputs, one verdict in every fresh run. Three
    runs here (each starts Python and scikit-learn); the unseeded forest would differ
    on every one of them without the seeding."""
    cfg = command_config(workdir)
    data = load_dataset(cfg, workdir)
    runs = [train(cfg, data, workdir) for _ in range(3)]
    probas = {r.model.predict_proba(data.holdout[data.features]).tobytes() for r in runs}
    assert len(probas) == 1


def test_a_script_honouring_mlops_seed_gives_byte_identical_metrics_on_two_fresh_runs(workdir: Path) -> None:
    cfg = command_config(workdir, "seeded.py")
    data = load_dataset(cfg, workdir)
    metas = []
    for n in range(2):
        root = workdir.parent / f"fresh-{n}"
        root.mkdir()
        store = Store(root, trusted=False)
        outcome = steps.obtain_model(side(cfg), data, workdir, store)
        store.commit()
        metas.append(outcome.meta)
    assert json.dumps(metas[0]["metrics"]) == json.dumps(metas[1]["metrics"])
    # (The joblib bytes may differ: pickles of equal scikit-learn objects are not canonical.)
    assert "reproducibility" not in metas[0] and "reproducibility" not in metas[1]  # two fresh caches: nothing to compare


# -- a second training of the same inputs -------------------------------------------------
def test_a_retrain_that_moves_the_metrics_is_recorded_as_unstable(workdir: Path) -> None:
    (workdir / "flip.py").write_text(FLIPPING_SCRIPT.format(counter=str(workdir.parent / "counter")))
    cfg = command_config(workdir, "flip.py")
    data = load_dataset(cfg, workdir)
    store = Store(workdir, trusted=False)
    first = steps.obtain_model(side(cfg), data, workdir, store)
    store.commit()
    record = json.loads((workdir / ".mlops" / "cache" / "runs" / f"training-{'k' * 64}.json").read_text())
    assert record["metrics"] == first.meta["metrics"] and record["model_sha256"] == first.meta["model_sha256"] and record["seed"] == 42
    store = Store(workdir, trusted=False)
    again = steps.obtain_model(side(cfg), data, workdir, store, reuse=False)  # /mlops retrain
    repro = again.meta["reproducibility"]
    assert repro["same"] is False and repro["seed"] == 42 and repro["against"] == record["trained_at"]
    assert [m["metric"] for m in repro["moved"]] == [n for n in ("accuracy", "f1", "roc_auc") if first.meta["metrics"][n] != again.meta["metrics"][n]]
    assert repro["moved"][0]["before"] == first.meta["metrics"][repro["moved"][0]["metric"]]
    store.commit()
    # The record keeps the first training: a third one is compared with it again.
    assert json.loads((workdir / ".mlops" / "cache" / "runs" / f"training-{'k' * 64}.json").read_text()) == record


def test_a_reproducible_retrain_says_so_without_a_warning(workdir: Path) -> None:
    cfg = estimator_config(workdir)
    data = load_dataset(cfg, workdir)
    store = Store(workdir, trusted=False)
    steps.obtain_model(side(cfg), data, workdir, store)
    store.commit()
    again = steps.obtain_model(side(cfg), data, workdir, Store(workdir, trusted=False), reuse=False)
    assert again.meta["reproducibility"] == {"same": True, "moved": [], "against": again.meta["reproducibility"]["against"], "seed": 7}


def flipping_repo(repo: GitRepo, tmp: Path) -> GitRepo:
    config = "version: 1\nname: churn\ndata: {path: data/churn.csv, target: churn}\ntraining:\n  command: python flip.py {train} {model}\nmetrics: [accuracy, f1, roc_auc]\ngates:\n  accuracy: {min: 0.5}\nexport: {onnx: false}\n"
    repo.gen({"mlops.yaml": config, "flip.py": FLIPPING_SCRIPT.format(counter=str(tmp / "counter")), "data/churn.csv": mixed_frame(200).to_csv(index=False)})
    repo.commit("churn model")
    return repo


def test_the_comment_opens_with_the_warning_after_a_rerun_on_lost_cache(cli: Any, repo: GitRepo, tmp_path: Path) -> None:
    flipping_repo(repo, tmp_path).branch("feature").gen({"README.md": "x\n"}).commit("docs")
    first = cli("run", "--base", "main", "--json", cwd=repo.path)
    assert json.loads(first.stdout)["reproducibility"] is None
    # The cache is lost but for the record of the first training (e.g. an evicted entry).
    cache = repo.path / ".mlops" / "cache"
    for entry in [*cache.glob("models/*"), *cache.glob("runs/*")]:
        if not entry.name.startswith("training-"):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    again = cli("run", "--base", "main", "--json", cwd=repo.path)
    report = json.loads(again.stdout)
    assert report["reproducibility"]["same"] is False
    body = (repo.path / ".mlops" / "forge" / "branch-feature" / "comment.md").read_text()
    lines = body.splitlines()
    assert lines[0] == "<!-- mlgitops:pr-report name=churn -->" and lines[1].startswith("### ")
    assert lines[3].startswith("> ⚠️ **This verdict is unstable: training is not reproducible.** Training these same inputs (data, config, code, seed 42) again gave other metrics than on ")
    assert lines[3].endswith(
        "so a rerun can flip the gate. To fix it: set `random_state` in `training.params`, seed your training script from the `MLOPS_SEED` environment variable "
        '(e.g. `RandomForestClassifier(random_state=int(os.environ["MLOPS_SEED"]))`), or set `training.repeats` to gate on the mean of several seeds.'
    )
    assert body.index("This verdict is unstable") < body.index("| metric |")
    # Reused afterwards (same inputs): the warning stays.
    third = json.loads(cli("run", "--base", "main", "--json", cwd=repo.path).stdout)
    assert third["reused"] is True and third["reproducibility"]["same"] is False


# -- training.repeats -----------------------------------------------------------------------
def test_repeats_train_each_seed_gate_on_the_mean_and_record_the_spread(workdir: Path) -> None:
    cfg = estimator_config(workdir, extra="  repeats: 3\n")
    data = load_dataset(cfg, workdir)
    store = Store(workdir, trusted=False)
    outcome = steps.obtain_model(side(cfg), data, workdir, store)
    names = ["accuracy", "f1", "roc_auc"]
    single = estimator_config(workdir)
    expected = {n: [] for n in names}
    for seed in (7, 8, 9):
        model = fit_estimator(single, data, seed=seed).model
        scored = evaluate(model, data.holdout, data.features, data.target, data.task, data.labels, names).metrics
        for n in names:
            expected[n].append(scored[n])
    assert outcome.meta["repeats"] == {"seeds": [7, 8, 9], "metrics": expected}
    assert outcome.meta["metrics"] == {n: math.fsum(expected[n]) / 3 for n in names}
    assert outcome.evaluation is not None and outcome.evaluation.metrics == outcome.meta["metrics"]
    assert final_estimator(outcome.model).random_state == 7  # the first seed's model is the one kept
    assert len(set(expected["roc_auc"])) > 1  # the seeds do differ: a real spread
    spread = steps.repeat_spread(outcome.meta)
    assert spread == {
        "count": 3,
        "seeds": [7, 8, 9],
        "metrics": {n: {"mean": math.fsum(v) / 3, "min": min(v), "max": max(v), "std": statistics.stdev(v), "values": v} for n, v in expected.items()},
    }
    store.commit()
    # Cached: the same means, without training.
    cached = steps.obtain_model(side(cfg), data, workdir, Store(workdir, trusted=False))
    assert cached.cached and steps.evaluate_candidate(cached, data, names, cfg).metrics == outcome.meta["metrics"]
    # training.repeats is not in the cache key: another count trains again.
    fewer = steps.obtain_model(side(estimator_config(workdir, extra="  repeats: 2\n")), data, workdir, Store(workdir, trusted=False))
    assert not fewer.cached and fewer.meta["repeats"]["seeds"] == [7, 8]


def test_the_comment_shows_the_range_of_each_metric_over_the_seeds() -> None:
    report = make_report()
    f1 = [0.95, 0.9667, 0.9834]
    report = replace(report, repeats={"count": 3, "seeds": [7, 8, 9], "metrics": {"f1": {"mean": 0.9667, "min": 0.95, "max": 0.9834, "std": statistics.stdev(f1), "values": f1}}})
    body = render_comment(report)
    assert "| f1 ↑ | 0.9613 | 0.9667 (0.9500–0.9834) | +0.0054 (+0.6%) 🟢 | ✅ ≥ 0.9, ✅ drop ≤ 0.02 |" in body
    assert "| accuracy ↑ | 0.9510 | 0.9580 | " in body
    assert "Candidate metrics are the mean of 3 trainings with seeds 7–9 (`training.repeats`); the gates use the mean, (min–max) is the range over the seeds; standard deviation: f1 ±0.0167." in body


def test_repeats_are_bounded() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("data: {path: d.csv, target: y}\ntraining: {estimator: sklearn.linear_model.Ridge, repeats: 21}\n", Path("/tmp/mlops.yaml"), "mlops.yaml")
    assert str(err.value) == "mlops.yaml:2:60: training.repeats: expected a number <= 20, got 21"


# -- tolerance ----------------------------------------------------------------------------
def test_a_drop_within_the_tolerance_passes_and_just_beyond_fails() -> None:
    gate = {"f1": Gate(max_drop=0.02, tolerance=0.01)}
    within, = check_gates(gate, {"f1": 0.9201}, {"f1": 0.95})
    assert (within.passed, within.message, within.tolerance) == (True, "f1 worsened by 0.0299 (<= 0.02 allowed + 0.01 tolerance)", 0.01)
    beyond, = check_gates(gate, {"f1": 0.9199}, {"f1": 0.95})
    assert (beyond.passed, beyond.message) == (False, "f1 worsened by 0.0301 (> 0.02 allowed + 0.01 tolerance)")
    exact, = check_gates(gate, {"f1": 0.92}, {"f1": 0.95})
    assert exact.passed
    untolerated, = check_gates({"f1": Gate(max_drop=0.02)}, {"f1": 0.9201}, {"f1": 0.95})
    assert not untolerated.passed and untolerated.tolerance is None


def test_the_tolerance_of_a_percent_gate_is_in_metric_units() -> None:
    gate = {"log_loss": Gate(max_drop_pct=10, tolerance=0.02)}  # 0.02 of a 0.2 baseline: 10 more points
    within, = check_gates(gate, {"log_loss": 0.2399}, {"log_loss": 0.2})
    assert (within.passed, within.message) == (True, "log_loss worsened by 19.95% (<= 10% allowed + 0.02 tolerance (10.00%))")
    beyond, = check_gates(gate, {"log_loss": 0.2401}, {"log_loss": 0.2})
    assert (beyond.passed, beyond.message) == (False, "log_loss worsened by 20.05% (> 10% allowed + 0.02 tolerance (10.00%))")


def test_the_gate_cell_names_the_tolerance() -> None:
    report = make_report()
    gates = check_gates({"f1": Gate(min=0.9, max_drop=0.02, tolerance=0.01)}, {"f1": 0.9667}, {"f1": 0.9613})
    body = render_comment(replace(report, gates=gates))
    assert "| ✅ ≥ 0.9, ✅ drop ≤ 0.02 (+0.01 tolerance) |" in body


def test_a_tolerance_without_a_relative_rule_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("data: {path: d.csv, target: y}\ntraining: {estimator: sklearn.linear_model.Ridge}\ngates:\n  r2: {min: 0.5, tolerance: 0.01}\n", Path("/tmp/mlops.yaml"), "mlops.yaml")
    assert "gates.r2.tolerance: tolerance widens max_drop or max_drop_pct; set one of them" in str(err.value)


def test_the_unstable_warning_survives_a_custom_template(tmp_path: Path) -> None:
    (tmp_path / "pr_comment.md.j2").write_text("{{ marker }}\nshort: {{ report.summary }}\n")
    repro = {"same": False, "moved": [{"metric": "f1", "before": 0.9613, "now": 0.95}], "against": "2026-11-30T10:00:00+00:00", "seed": 7}
    body = render_comment(replace(make_report(), reproducibility=repro), template_dir=tmp_path)
    lines = body.splitlines()
    assert lines[0] == "<!-- mlgitops:pr-report name=breast-cancer -->"
    assert lines[1].startswith("> ⚠️ **This verdict is unstable: training is not reproducible.** Training these same inputs (data, config, code, seed 7) again gave other metrics than on 2026-11-30T10:00:00+00:00 (f1 0.9613 → 0.9500), so a rerun can flip the gate.")
    assert lines[3] == "short: All 5 gate checks passed"
