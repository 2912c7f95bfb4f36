"""Nothing is unpickled from the cache by a trusted run unless a trusted run recorded
its sha256 (issue 11, item 7).

The attack: whoever writes `.mlops/cache/models/KEY/` (a pull request's job whose
cache a later job restores; a delivery of the webhook service, which shares one
`.mlops/`) plants a pickle and a meta.json with its matching sha256. The deploy on a
push to the default branch, holding a write token, then reuses "the PR's model".

These call the deploy's own steps (obtain_model, export_model, load_pinned, Store)
directly, without Prefect; tests/test_deploy.py runs the same attack end to end.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import GitRepo, mixed_frame

CONFIG = """\
version: 1
name: churn
data:
  path: data/churn.csv
  target: churn
training:
  estimator: sklearn.linear_model.LogisticRegression
  params:
    max_iter: 300
metrics: [accuracy, roc_auc]
gates:
  accuracy:
    min: 0.5
"""


class Planted:
    """Unpickling this writes a marker file: the stand-in for any code an attacker runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "unpickled"))


class Setup:
    """A repo, its config, the candidate's plan and data, and a PR run's cache entries."""

    def __init__(self, repo: GitRepo) -> None:
        from mlgitops.config.loader import load_config
        from mlgitops.data.load import load_dataset
        from mlgitops.plan.decide import plan_candidate

        repo.gen({"mlops.yaml": CONFIG, "data/churn.csv": mixed_frame(160).to_csv(index=False)}).commit("model")
        self.root = repo.path
        self.cfg = load_config(repo.path / "mlops.yaml", display="mlops.yaml")
        self.side = plan_candidate(self.cfg, repo.path)
        self.dataset = load_dataset(self.cfg, self.cfg.root)
        self.marker = repo.path.parent / "marker"
        self.entry = repo.path / ".mlops" / "cache" / "models" / self.side.key

    def pr_run(self) -> None:
        """What a pull-request run leaves: its model and its parity-checked ONNX export."""
        from mlgitops.deploy.export_step import export_model
        from mlgitops.run.steps import obtain_model
        from mlgitops.plan.store import Store

        store = Store(self.root, trusted=False)
        outcome = obtain_model(self.side, self.dataset, self.root, store)
        assert export_model(self.cfg, self.side.key, outcome.model, outcome.meta, self.dataset, store, None, reuse=False).status == "ok"
        store.commit()

    def plant(self) -> bytes:
        """Replace the cached pickle with one that runs code, meta.json kept consistent."""
        data = pickle.dumps(Planted(self.marker), protocol=4)
        (self.entry / "model.joblib").write_bytes(data)
        meta = json.loads((self.entry / "meta.json").read_text())
        meta["model_sha256"] = hashlib.sha256(data).hexdigest()
        (self.entry / "meta.json").write_text(json.dumps(meta))
        return data


@pytest.fixture
def setup(repo: GitRepo) -> Setup:
    return Setup(repo)


def ledger(root: Path) -> Path:
    return root / ".mlops" / "trusted" / "pickles.json"


def test_the_deploy_scores_the_prs_onnx_and_never_unpickles_a_planted_pickle(setup: Setup) -> None:
    from mlgitops.deploy.onnx import OnnxModel
    from mlgitops.deploy.export_step import export_model
    from mlgitops.run.steps import evaluate_candidate, obtain_model
    from mlgitops.plan.store import Store

    setup.pr_run()
    planted = setup.plant()
    store = Store(setup.root, trusted=True)  # what run_deploy builds
    assert store.get_model(setup.side.key) is None and store.refused == {setup.side.key}

    outcome = obtain_model(setup.side, setup.dataset, setup.root, store)
    assert not setup.marker.exists()
    assert outcome.cached and outcome.onnx_only and isinstance(outcome.model, OnnxModel)
    scores = evaluate_candidate(outcome, setup.dataset, ["accuracy", "roc_auc"], setup.cfg)
    assert all(isinstance(v, float) for v in scores.metrics.values()) and scores.rows == len(setup.dataset.holdout)
    exported = export_model(setup.cfg, setup.side.key, outcome.model, outcome.meta, setup.dataset, store, None, reuse=True)
    assert exported.status == "ok" and exported.message.endswith(", measured by the run that exported it; this run scored the ONNX model itself")
    assert (setup.entry / "model.joblib").read_bytes() == planted  # left as it was: registered as bytes
    assert not setup.marker.exists() and not ledger(setup.root).exists()

    # An untrusted run still loads what it finds (it runs the branch's code anyway):
    # the planted pickle is real.
    Store(setup.root, trusted=False).get_model(setup.side.key)
    assert setup.marker.read_text() == "unpickled"


def test_without_an_export_the_deploy_trains_replaces_the_pickle_and_records_it(setup: Setup) -> None:
    import shutil

    from mlgitops.deploy.promote import model_origin
    from mlgitops.run.steps import obtain_model
    from mlgitops.plan.store import Store

    setup.pr_run()
    setup.plant()
    shutil.rmtree(setup.root / ".mlops" / "cache" / "onnx")
    store = Store(setup.root, trusted=True)
    outcome = obtain_model(setup.side, setup.dataset, setup.root, store)
    assert not outcome.cached and not outcome.onnx_only and not setup.marker.exists()
    assert model_origin(outcome.cached, setup.side.key in store.refused) == "trained now: the cached model was written by a pull-request run, and a trusted run never unpickles those"
    store.commit()

    # The trusted run's own model replaced the planted one, and the ledger names it.
    meta = json.loads((setup.entry / "meta.json").read_text())
    assert hashlib.sha256((setup.entry / "model.joblib").read_bytes()).hexdigest() == meta["model_sha256"]
    recorded = json.loads(ledger(setup.root).read_text())["pickles"]
    assert list(recorded) == [meta["model_sha256"]] and recorded[meta["model_sha256"]]["key"] == setup.side.key

    # The next trusted run reuses it: the recorded pickle is loaded, not retrained.
    again = Store(setup.root, trusted=True)
    reused = obtain_model(setup.side, setup.dataset, setup.root, again)
    assert reused.cached and not reused.onnx_only and again.refused == set()
    assert type(reused.model).__name__ == "Pipeline" and reused.meta["model_sha256"] == meta["model_sha256"]


def test_a_pinned_pickle_no_trusted_run_wrote_is_not_loaded_by_the_deploy(setup: Setup) -> None:
    from mlgitops.errors import InputError
    from mlgitops.run.steps import load_pinned
    from mlgitops.plan.decide import BaselinePlan
    from mlgitops.plan.store import Store

    artifact = setup.root / "artifacts" / "model.joblib"
    artifact.parent.mkdir()
    artifact.write_bytes(pickle.dumps(Planted(setup.marker), protocol=4))
    sha = hashlib.sha256(artifact.read_bytes()).hexdigest()
    base = BaselinePlan("manifest", manifest={"uri": "artifacts/model.joblib", "sha256": sha, "format": "joblib"}, artifact=artifact)
    with pytest.raises(InputError) as refused:
        load_pinned(base, Store(setup.root, trusted=True))
    assert refused.value.message == "the pinned artifact artifacts/model.joblib is a pickle (format joblib) that no trusted run wrote, and this run never unpickles those"
    assert not setup.marker.exists()


def test_a_damaged_ledger_is_empty_and_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    from mlgitops.plan.ledger import TrustLedger

    book = TrustLedger(tmp_path / ".mlops")
    path = ledger(tmp_path)
    path.parent.mkdir(parents=True)
    for damage in (b"\x00\xff{not json", b"[1, 2]", b'{"pickles": "x"}', b'{"pickles": {"../../etc": {}, "ABC": 1}}'):
        path.write_bytes(damage)
        assert book.entries() == {} and not book.trusts("0" * 64)

    shas = [hashlib.sha256(f"{w}-{i}".encode()).hexdigest() for w in range(8) for i in range(5)]
    writers = [threading.Thread(target=lambda w=w: [book.record({shas[w * 5 + i]: f"key{w}"}) for i in range(5)]) for w in range(8)]
    for t in writers:
        t.start()
    for t in writers:
        t.join(timeout=30)
    assert sorted(json.loads(path.read_text())["pickles"]) == sorted(shas)
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_a_pull_request_run_never_writes_the_ledger_and_the_deploy_is_trusted(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlgitops.run import runner
    from mlgitops.deploy.promote import run_deploy
    from mlgitops.events.payloads import Event
    from mlgitops.forges.local import LocalForge

    setup.pr_run()
    assert (setup.entry / "model.joblib").is_file() and not (setup.root / ".mlops" / "trusted").exists()

    seen: list[bool] = []

    class Stop(Exception):
        pass

    def compute_report(cfg: Any, plan: Any, store: Any, forge: Any = None, context: Any = None) -> Any:
        seen.append(store.trusted)
        raise Stop

    monkeypatch.setattr(runner, "compute_report", compute_report)
    for kind in ("pull_request", "local"):
        with pytest.raises(Stop):
            runner.run_pull_request(setup.cfg, setup.root, "mlops.yaml", Event(kind=kind, pr_number=3, head_ref="feature"), LocalForge(setup.root))
    with pytest.raises(Stop):
        runner.run_pull_request(setup.cfg, setup.root, "mlops.yaml", Event(kind="pull_request", pr_number=3), LocalForge(setup.root), retrain="`/mlops retrain` by @mallory")
    with pytest.raises(Stop):
        run_deploy(setup.cfg, setup.root, "mlops.yaml", Event(kind="push", head_ref="main"), {}, {})
    assert seen == [False, False, False, True]
