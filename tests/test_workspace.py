"""Many models in one repository (issue 14, item 6): mlops-workspace.yaml lists the
models' mlops.yaml files; a PR runs the models whose fingerprint changed, one status
context per model plus the aggregate `mlops/gate`, one sticky comment per model, one
promotion PR per model and environment. Real git repos, the real flow, the local forge."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.helpers import GitRepo, mixed_frame, regression_frame

CHURN = """\
name: churn
data: {path: data.csv, target: churn}
training:
  estimator: sklearn.linear_model.LogisticRegression
  params: {C: 1.0, max_iter: 200}
metrics: [accuracy, roc_auc]
gates:
  accuracy: {min: 0.6}
deploy:
  environments:
    staging: {manifest: deploy/staging.yaml}
"""

PRICES = """\
name: prices
data: {path: data.csv, target: y}
training:
  estimator: sklearn.linear_model.Ridge
  params: {alpha: 1.0}
metrics: [rmse, r2]
gates:
  r2: {min: 0.5}
deploy:
  environments:
    staging: {manifest: deploy/staging.yaml}
"""


def make_workspace(repo: GitRepo) -> GitRepo:
    repo.gen(
        {
            "mlops-workspace.yaml": "models:\n  - models/*/mlops.yaml\n",
            "models/churn/mlops.yaml": CHURN,
            "models/churn/data.csv": mixed_frame(200).to_csv(index=False),
            "models/prices/mlops.yaml": PRICES,
            "models/prices/data.csv": regression_frame(150).to_csv(index=False),
        }
    )
    repo.commit("two models")
    return repo


def statuses(repo: GitRepo) -> dict:
    sha = repo.git("rev-parse", "HEAD")
    return json.loads((repo.path / ".mlops" / "forge" / "statuses" / f"{sha}.json").read_text())


def comments(repo: GitRepo, key: str) -> list[dict]:
    return json.loads((repo.path / ".mlops" / "forge" / key / "comments.json").read_text())


def trained(repo: GitRepo) -> set[str]:
    """Model keys with a cached model (a model trained by some run)."""
    folder = repo.path / ".mlops" / "cache" / "models"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


# -- the workspace file -----------------------------------------------------------------
def test_validate_checks_every_model(cli_noprefect, repo: GitRepo) -> None:
    make_workspace(repo)
    result = cli_noprefect("validate", cwd=repo.path)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "mlops-workspace.yaml: OK (2 model(s): churn, prices)"
    assert "models/churn/mlops.yaml: OK" in lines and "models/prices/mlops.yaml: OK" in lines
    # --config still validates the one file it names
    one = cli_noprefect("validate", "--config", "models/prices/mlops.yaml", cwd=repo.path)
    assert one.exit_code == 0 and one.output.startswith("models/prices/mlops.yaml: OK")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("models:\n  - models/*/mlops.yaml\n  - forecasting/*/mlops.yaml\n", "error: mlops-workspace.yaml:3:5: models[1]: 'forecasting/*/mlops.yaml' matches no file"),
        ("models:\n  - models/churn/mlops.yaml\n  - models/gone/mlops.yaml\n", "error: mlops-workspace.yaml:3:5: models[1]: 'models/gone/mlops.yaml' does not exist"),
        ("models:\n  - ../other/mlops.yaml\n", "error: mlops-workspace.yaml:2:5: models[0]: '../other/mlops.yaml' leaves the repository root ('..'); models live inside the repository"),
        ("model:\n  - models/*/mlops.yaml\n", "error: mlops-workspace.yaml:1:1: unknown key 'model'; did you mean 'models'?\nerror: mlops-workspace.yaml:1:1: models: required key is missing"),
        ("models: []\n", "error: mlops-workspace.yaml:1:9: models: expected a non-empty list of mlops.yaml paths or globs, got []"),
        ("models:\n  - [a, b\n", "error: mlops-workspace.yaml:3:1: invalid YAML:"),
    ],
)
def test_workspace_file_errors_have_positions(cli_noprefect, repo: GitRepo, text: str, error: str) -> None:
    make_workspace(repo)
    (repo.path / "mlops-workspace.yaml").write_text(text)
    for command in (["validate"], ["run", "--base", "main"], ["deploy"], ["status"]):
        result = cli_noprefect(*command, cwd=repo.path)
        assert result.exit_code == 2, result.output
        assert result.output.startswith(error), result.output


def test_duplicate_names_are_refused_with_both_positions(cli_noprefect, repo: GitRepo) -> None:
    make_workspace(repo)
    repo.edit("models/prices/mlops.yaml", "name: prices", "name: churn")
    for command in (["validate"], ["run", "--base", "main"], ["deploy"], ["status"], ["promote", "staging", "production", "--config", "models/churn/mlops.yaml"]):
        result = cli_noprefect(*command, cwd=repo.path)
        assert result.exit_code == 2, (command, result.output)
        assert result.output.startswith(
            "error: models/prices/mlops.yaml:1:7: name: 'churn' is also the name of models/churn/mlops.yaml:1:7;"
            " each model in a workspace needs its own name (status contexts, comments and promotion branches are per name)\n"
        ), result.output


def test_a_one_model_command_without_config_says_to_name_the_model(cli_noprefect, repo: GitRepo) -> None:
    make_workspace(repo)
    for command in (["gc"], ["promote", "staging", "production"]):
        result = cli_noprefect(*command, cwd=repo.path)
        assert result.exit_code == 2, result.output
    assert cli_noprefect("gc", cwd=repo.path).output == "error: mlops.yaml: file not found\n  hint: this repository lists its models in mlops-workspace.yaml: name one with --config, e.g. --config models/NAME/mlops.yaml\n"
    assert cli_noprefect("promote", "staging", "production", cwd=repo.path).output.startswith("error: this repository has several models (mlops-workspace.yaml): name one with --config\n")


def test_a_member_config_error_is_reported_in_its_own_file(cli_noprefect, repo: GitRepo) -> None:
    make_workspace(repo)
    repo.edit("models/churn/mlops.yaml", "gates:", "gatez:")
    result = cli_noprefect("validate", cwd=repo.path)
    assert result.exit_code == 2
    assert result.output.startswith("error: models/churn/mlops.yaml:7:1: gatez: unknown key 'gatez'; did you mean 'gates'?")


# -- pull requests ----------------------------------------------------------------------
def test_a_pr_that_changes_no_model_trains_nothing_and_passes(cli_noprefect, repo: GitRepo) -> None:
    make_workspace(repo)
    repo.branch("docs").gen({"README.md": "docs\n", "models/churn/NOTES.md": "not an input\n"}).commit("docs only")
    result = cli_noprefect("run", "--base", "main", cwd=repo.path)  # no Prefect: nothing to train
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "PASS workspace: all 2 models pass (2 unchanged)"
    assert {k: v["state"] for k, v in statuses(repo).items()} == {"mlops/gate/churn": "success", "mlops/gate/prices": "success", "mlops/gate": "success"}
    assert statuses(repo)["mlops/gate"]["description"] == "mlops: all 2 models pass (2 unchanged)"
    assert trained(repo) == set() and not (repo.path / ".mlops" / "forge" / "branch-docs").exists()  # no model, no comment


def test_the_aggregate_names_the_failing_models() -> None:
    from mlgitops.run.workspace import ModelRun, aggregate, worst

    runs = [ModelRun("a", "a/mlops.yaml", "error", 2, ""), ModelRun("b", "b/mlops.yaml", "failed", 1, ""), ModelRun("c", "c/mlops.yaml", "passed", 0, "")]
    assert aggregate(runs) == (False, "2 of 3 models failed: a (error), b")
    assert worst([r.exit_code for r in runs]) == 2 and worst([0, 1, 0]) == 1 and worst([3, 2]) == 3 and worst([]) == 0
    assert aggregate(runs[2:]) == (True, "the 1 model passes (1 passed)") and aggregate(runs[1:2]) == (False, "1 of 1 model failed: b")


def test_a_pr_touching_one_model_runs_that_model_only(cli, repo: GitRepo) -> None:
    make_workspace(repo)
    repo.branch("churn-data").gen({"models/churn/data.csv": mixed_frame(220, seed=5).to_csv(index=False)}).commit("more churn rows")
    result = cli("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 0, result.output
    assert "── churn (models/churn/mlops.yaml) ──\nPASS churn: " in result.output
    prices = statuses(repo)["mlops/gate/prices"]
    assert prices["state"] == "success"
    key = prices["description"].split("model key ")[1][:12]
    assert prices["description"] == f"mlops: unchanged since `main` (model key {key}, same models/prices/mlops.yaml)"
    assert f"UNCHANGED prices: unchanged since `main` (model key {key}, same models/prices/mlops.yaml); not trained" in result.output
    assert not any(k.startswith(key) for k in trained(repo))  # prices was not trained, neither side
    assert len(trained(repo)) == 2  # churn's candidate and its baseline
    churn = statuses(repo)["mlops/gate/churn"]
    assert churn["state"] == "success" and churn["description"].startswith("mlops: All ")
    assert statuses(repo)["mlops/gate"] == {**statuses(repo)["mlops/gate"], "state": "success", "description": "mlops: all 2 models pass (1 passed, 1 unchanged)"}
    assert result.output.splitlines()[-2:] == ["PASS workspace: all 2 models pass (1 passed, 1 unchanged)", "comments: .mlops/forge/branch-churn-data/comments.json (one per model)"]
    bodies = [c["body"] for c in comments(repo, "branch-churn-data")]
    assert len(bodies) == 1 and bodies[0].startswith("<!-- mlgitops:pr-report name=churn -->\n### ✅ mlops gate passed: `churn`")

    # A failing gate in one model fails the aggregate and the run (exit 1); the other stays unchanged.
    repo.edit("models/churn/mlops.yaml", "accuracy: {min: 0.6}", "accuracy: {min: 0.99}").commit("impossible gate")
    failed = cli("run", "--base", "main", "--json", cwd=repo.path)
    assert failed.exit_code == 1, failed.output
    doc = json.loads(failed.stdout)
    assert [(m["name"], m["state"], m["exit_code"]) for m in doc["models"]] == [("churn", "failed", 1), ("prices", "unchanged", 0)]
    assert doc["verdict"] == "fail" and doc["summary"] == "1 of 2 models failed: churn"
    assert doc["models"][0]["report"]["candidate"]["source"] == "cache"  # same inputs: not retrained for a gate change
    assert statuses(repo)["mlops/gate"]["state"] == "failure"
    assert statuses(repo)["mlops/gate"]["description"] == "mlops: 1 of 2 models failed: churn"
    assert statuses(repo)["mlops/gate/churn"]["state"] == "failure"
    assert statuses(repo)["mlops/gate/prices"]["state"] == "success"
    bodies = [c["body"] for c in comments(repo, "branch-churn-data")]
    assert len(bodies) == 1 and "### ❌ mlops gate failed: `churn`" in bodies[0]  # the same sticky comment, updated

    # One model by name: the same report (reused), under its own context; the aggregate is not touched.
    before = statuses(repo)["mlops/gate"]
    one = cli("run", "--base", "main", "--config", "models/churn/mlops.yaml", cwd=repo.path)
    assert one.exit_code == 1 and "result reused without retraining" in comments(repo, "branch-churn-data")[0]["body"]
    assert statuses(repo)["mlops/gate"] == before and statuses(repo)["mlops/gate/churn"]["state"] == "failure"
    assert len(comments(repo, "branch-churn-data")) == 1


# -- merge, deploy, status ------------------------------------------------------------
def test_both_models_changed_run_in_parallel_then_merge_opens_one_promotion_pr_each(cli, repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    make_workspace(repo)
    monkeypatch.setenv("MLOPS_WORKSPACE_JOBS", "2")  # a pool of two processes, even on one core
    repo.branch("both").edit("models/churn/mlops.yaml", "C: 1.0", "C: 0.5").edit("models/prices/mlops.yaml", "alpha: 1.0", "alpha: 2.0").commit("tune both")
    result = cli("run", "--base", "main", "--json", cwd=repo.path)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [(m["name"], m["state"], m["report"]["candidate"]["source"]) for m in doc["models"]] == [("churn", "passed", "trained"), ("prices", "passed", "trained")]
    assert {k: v["state"] for k, v in statuses(repo).items()} == {"mlops/gate/churn": "success", "mlops/gate/prices": "success", "mlops/gate": "success"}
    assert statuses(repo)["mlops/gate"]["description"] == "mlops: all 2 models pass (2 passed)"
    markers = sorted(c["body"].splitlines()[0] for c in comments(repo, "branch-both"))
    assert markers == ["<!-- mlgitops:pr-report name=churn -->", "<!-- mlgitops:pr-report name=prices -->"]

    repo.checkout("main")
    repo.git("merge", "--no-ff", "--quiet", "both", "-m", "Merge pull request #7 from team/both")
    deployed = cli("deploy", cwd=repo.path)
    assert deployed.exit_code == 0, deployed.output
    lines = deployed.output.splitlines()
    assert lines[0].startswith("churn: registered churn v1; opened PR #1: Deploy churn v1 (")
    assert any(line.startswith("prices: registered prices v1; opened PR #2: Deploy prices v1 (") for line in lines)
    assert lines[-1] == "workspace deploy: 2 models done"
    pulls = json.loads((repo.path / ".mlops" / "forge" / "pulls.json").read_text())
    assert [(p["number"], p["head"], p["state"]) for p in pulls] == [(1, "mlops/deploy/churn/staging", "open"), (2, "mlops/deploy/prices/staging", "open")]
    assert repo.git("diff", "--name-only", "main", "mlops/deploy/prices/staging") == "models/prices/deploy/staging.yaml"
    assert "mlops/deploy-staging" not in repo.git("branch", "--list")

    status = json.loads(cli("status", "--json", cwd=repo.path).output)
    assert [(m["name"], m["config"], [(e["environment"], [p["number"] for p in e["pending"]]) for e in m["environments"]]) for m in status["models"]] == [
        ("churn", "models/churn/mlops.yaml", [("staging", [1])]),
        ("prices", "models/prices/mlops.yaml", [("staging", [2])]),
    ]
    table = cli("status", cwd=repo.path).output
    assert "churn: deployments" in table and "prices: deployments" in table
    # The promotion of one model merged: the next deploy leaves it alone and keeps the other's PR.
    repo.git("merge", "--quiet", "mlops/deploy/churn/staging")
    again = cli("deploy", cwd=repo.path)
    assert again.exit_code == 0, again.output
    assert "churn: staging already runs churn v1" in again.output and "prices: reusing registered prices v1; updated PR #2" in again.output, again.output  # rebased on the new main


# -- mlops init --workspace -------------------------------------------------------------
def test_init_workspace_writes_the_workspace_a_first_model_and_the_workflow(tmp_path: Path, cli_noprefect) -> None:
    import subprocess
    import sys

    import yaml

    sha = "0123456789abcdef0123456789abcdef01234567"
    here = tmp_path / "shop"
    here.mkdir()
    result = cli_noprefect("init", "--workspace", "--action-ref", f"acme/mlgitops/actions/pull-request@{sha}", cwd=here)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "wrote mlops-workspace.yaml",
        "wrote models/shop/mlops.yaml",
        "wrote .github/workflows/mlops.yml",
        "next: add a folder with an mlops.yaml per model under models/, mlops validate, commit, open a pull request; then require the `mlops/gate` check (every model's aggregate) on your default branch",
    ]
    assert yaml.safe_load((here / "mlops-workspace.yaml").read_text()) == {"models": ["models/*/mlops.yaml"]}
    workflow = here / ".github" / "workflows" / "mlops.yml"
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(workflow)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    doc = yaml.safe_load(workflow.read_text())
    # Every job hands the workspace file to its action (each model runs), but the manual
    # promotion job: it promotes the one model its `model-config` input names.
    assert {name: job["steps"][1]["with"] for name, job in doc["jobs"].items()} == {
        **{name: {"config": "mlops-workspace.yaml"} for name in ("gate", "deploy", "chatops")},
        "production": {"config": "${{ inputs.model-config }}", "promote-from": "staging", "promote-to": "production"},
    }
    assert doc[True]["workflow_dispatch"] == {  # PyYAML reads the key `on` as True (YAML 1.1)
        "inputs": {"model-config": {"description": "the model to promote, as its mlops.yaml (one of those mlops-workspace.yaml lists)", "type": "string", "required": True, "default": "models/shop/mlops.yaml"}}
    }
    assert doc["jobs"]["production"]["environment"] == "production"
    assert doc["jobs"]["production"]["concurrency"] == {"group": "mlops-promote-production-${{ inputs.model-config }}", "cancel-in-progress": False}  # models promote side by side
    assert "# * comments starting with `/mlops retrain | promote MODEL ENV | rollback MODEL ENV | help` on a\n" in workflow.read_text()
    zizmor = Path(sys.executable).with_name("zizmor")
    audit = subprocess.run([str(zizmor), "--offline", "--no-config", "--strict-collection", "--no-progress", "--min-severity", "medium", str(workflow)], capture_output=True, text=True, timeout=60)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert not (here / ".github" / "workflows" / "mlops-monitor.yml").exists()
    checked = cli_noprefect("validate", cwd=here)
    assert checked.exit_code == 0, checked.output
    assert checked.output.startswith("mlops-workspace.yaml: OK (1 model(s): shop)\nmodels/shop/mlops.yaml: OK\n")
    # --config mlops-workspace.yaml (what the actions pass) is the workspace too
    assert cli_noprefect("validate", "--config", "mlops-workspace.yaml", cwd=here).output == checked.output
    # A second model folder: kept as it is, and no starter model is written again
    again = cli_noprefect("init", "--workspace", cwd=here)
    assert again.stdout.splitlines()[:2] == ["kept (exists; --force overwrites) mlops-workspace.yaml", "kept (exists; --force overwrites) .github/workflows/mlops.yml"]


# -- a merge queue on GitHub (the stand-in), as the action runs it ------------------------
def test_merge_group_sets_each_models_context_and_the_aggregate_on_github(prefect_api: str, repo: GitRepo, tmp_path: Path) -> None:
    """GitHub's merge_group example, the pull-request action's own step script with
    `config: mlops-workspace.yaml`: three contexts (commit status and check run each)."""
    import os
    import subprocess
    import sys

    from tests.github_standin import StandIn
    from tests.test_github import ACTION_STEP, TOKEN, outputs
    from tests.test_merge_group import queue_payload

    make_workspace(repo)
    repo.branch("feature").edit("models/prices/mlops.yaml", "r2: {min: 0.5}", "r2: {min: 0.4}").commit("relax the prices gate")
    pr_head = repo.git("rev-parse", "HEAD")
    repo.git("checkout", "--quiet", "--detach", "main")
    repo.git("merge", "--quiet", "--no-ff", "-m", "Merge pull request #12 from acme/feature", pr_head)
    head = repo.git("rev-parse", "HEAD")
    github = StandIn(token=TOKEN).start()
    try:
        github.add_repo("acme/models")
        event = tmp_path / "event.json"
        event.write_text(json.dumps(queue_payload(repo, 12, pr_head)))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))}
        env.update(
            CI="true", GITHUB_ACTIONS="true", GITHUB_EVENT_NAME="merge_group", GITHUB_EVENT_PATH=str(event), GITHUB_REPOSITORY="acme/models",
            GITHUB_SHA=head, GITHUB_API_URL=github.url, GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"), GITHUB_OUTPUT=str(tmp_path / "output.txt"),
            GITHUB_TOKEN=TOKEN, PREFECT_API_URL=prefect_api, MLOPS_GITHUB_WRITE_INTERVAL="0",
            MLOPS_CONFIG="mlops-workspace.yaml", PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        )  # fmt: skip
        proc = subprocess.run(["bash", "-e", "-c", ACTION_STEP], cwd=repo.path, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        state = github.repos["acme/models"]
        assert [(s["context"], s["state"]) for s in state.statuses[head]] == [
            ("mlops/gate", "pending"),
            ("mlops/gate/churn", "success"),
            ("mlops/gate/prices", "pending"),
            ("mlops/gate/prices", "success"),
            ("mlops/gate", "success"),
        ]
        assert state.statuses[head][1]["description"].startswith("mlops: unchanged since `main` (model key ")
        assert state.statuses[head][-1]["description"] == "mlops: all 2 models pass (1 passed, 1 unchanged)"
        checks = sorted((c["name"], c["status"], c["conclusion"]) for c in state.check_runs.values())
        assert checks == [("mlops/gate", "completed", "success"), ("mlops/gate/churn", "completed", "success"), ("mlops/gate/prices", "completed", "success")]
        assert state.comments == {}  # a queue run comments nowhere
        summary = (tmp_path / "summary.md").read_text()
        assert "### ✅ mlops workspace: all 2 models pass (1 passed, 1 unchanged)\n\n| model | config | state | result |\n" in summary
        assert "| ➖ `churn` | `models/churn/mlops.yaml` | unchanged | unchanged since `main` (model key " in summary
        out = outputs(tmp_path / "output.txt")
        assert (out["verdict"], out["summary"], out["comment-url"]) == ("pass", "all 2 models pass (1 passed, 1 unchanged)", "")
        assert list(json.loads(out["metrics"])) == ["prices"] and set(json.loads(out["metrics"])["prices"]) == {"rmse", "r2"}
        assert github.violations == []
    finally:
        github.stop()


# -- ChatOps -------------------------------------------------------------------------------
def test_retrain_from_a_comment_retrains_every_model_and_promote_needs_a_model(cli, repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_chatops import local_comment, local_thread

    make_workspace(repo)
    monkeypatch.setenv("MLOPS_WORKSPACE_JOBS", "1")  # one after another, in this process
    repo.branch("feature").gen({"README.md": "docs\n"}).commit("docs only")
    result = local_comment(cli, repo, tmp_path, 21, "/mlops retrain")
    assert result.exit_code == 0, result.output
    comments, reactions = local_thread(repo, 21)
    assert reactions == {"521": ["eyes", "rocket"]}
    reply = comments[-1]["body"]
    assert reply.startswith("<!-- mlgitops:chatops reply-to=521 -->\n> `/mlops retrain`\n\n@alice: retrained: workspace: all 2 models pass (2 passed)\n\n- `churn`: ")
    assert "\n- `prices`: " in reply and reply.rstrip().endswith("Each model's comment is updated.")
    stickies = [c["body"] for c in comments if c["body"].startswith("<!-- mlgitops:pr-report")]
    assert [b.splitlines()[0] for b in stickies] == ["<!-- mlgitops:pr-report name=churn -->", "<!-- mlgitops:pr-report name=prices -->"]
    assert all("`/mlops retrain` by @alice" in b for b in stickies)
    assert {k: v["state"] for k, v in statuses(repo).items()} == {"mlops/gate/churn": "success", "mlops/gate/prices": "success", "mlops/gate": "success"}
    promote = local_comment(cli, repo, tmp_path, 21, "/mlops promote production")
    assert promote.exit_code == 2, promote.output
    assert local_thread(repo, 21)[0][-1]["body"] == (
        "<!-- mlgitops:chatops reply-to=521 -->\n> `/mlops promote production`\n\n@alice: `/mlops promote production` failed: no model 'production' in mlops-workspace.yaml "
        "(models: churn, prices); expected `/mlops promote MODEL ENV [from SOURCE]`\n\nHint: e.g. `/mlops promote churn production`\n"
    )


def test_promote_and_rollback_comments_name_the_model(cli, repo: GitRepo, tmp_path: Path) -> None:
    """In a workspace `/mlops promote MODEL ENV` and `/mlops rollback MODEL ENV` act on
    that model's manifests, on its own promotion branch (mlops/deploy/<model>/<env>)."""
    from tests.test_chatops import local_comment, local_thread

    make_workspace(repo)
    staged = "    staging: {manifest: deploy/staging.yaml}\n"
    repo.edit("models/churn/mlops.yaml", staged, staged + "    production: {manifest: deploy/production.yaml}\n").commit("churn: a production environment")
    deployed = cli("deploy", cwd=repo.path)
    assert deployed.exit_code == 0, deployed.output
    repo.git("merge", "--quiet", "mlops/deploy/churn/staging")  # staging runs churn v1

    helped = local_comment(cli, repo, tmp_path, 30, "/mlops help")
    assert helped.exit_code == 0, helped.output
    help_text = local_thread(repo, 30)[0][-1]["body"]
    assert "- `/mlops promote MODEL ENV [from SOURCE]`: open the PR that deploys MODEL to ENV from the environment SOURCE (default: the environment before ENV)\n" in help_text
    assert "- `/mlops rollback MODEL ENV [to VERSION]`: open the PR that rolls MODEL in ENV back to its previous version (or to registry VERSION)\n" in help_text
    assert help_text.rstrip().endswith("Models (mlops-workspace.yaml): `churn`, `prices`.")

    promoted = local_comment(cli, repo, tmp_path, 30, "/mlops promote churn production")
    assert promoted.exit_code == 0, promoted.output
    assert re.match(r"ran promote: opened PR #3: Promote churn v1 \([0-9a-f]{12}\) to production$", promoted.stdout.splitlines()[-1]), promoted.stdout
    pulls = json.loads((repo.path / ".mlops" / "forge" / "pulls.json").read_text())
    assert [(p["number"], p["head"], p["state"]) for p in pulls] == [(1, "mlops/deploy/churn/staging", "merged"), (2, "mlops/deploy/prices/staging", "open"), (3, "mlops/deploy/churn/production", "open")]
    assert repo.git("diff", "--name-only", "main", "mlops/deploy/churn/production") == "models/churn/deploy/production.yaml"
    assert "mlops/deploy-production" not in repo.git("branch", "--list")
    # What the workflow's manual production job runs (`config: ${{ inputs.model-config }}`): the same PR
    manual = cli("promote", "staging", "production", "--config", "models/churn/mlops.yaml", cwd=repo.path)
    assert manual.exit_code == 0, manual.output
    assert re.match(r"unchanged PR #3: Promote churn v1 \([0-9a-f]{12}\) to production", manual.output), manual.output

    nothing = local_comment(cli, repo, tmp_path, 30, "/mlops rollback churn staging")
    assert nothing.exit_code == 2, nothing.output
    assert local_thread(repo, 30)[0][-1]["body"] == (
        "<!-- mlgitops:chatops reply-to=530 -->\n> `/mlops rollback churn staging`\n\n@alice: `/mlops rollback churn staging` failed: staging has no previous pin to roll back to "
        "(models/churn/deploy/staging.yaml@main has no `previous:`)\n\nHint: name a version: mlops rollback staging --to VERSION --config models/churn/mlops.yaml "
        "(`mlops status --config models/churn/mlops.yaml` shows the registry's versions)\n"
    )
    for body, error in [
        ("/mlops promote", "name the model: `/mlops promote MODEL ENV [from SOURCE]` (this repository's models, in mlops-workspace.yaml: churn, prices)\n\nHint: e.g. `/mlops promote churn production`"),
        ("/mlops rollback sales staging", "no model 'sales' in mlops-workspace.yaml (models: churn, prices); expected `/mlops rollback MODEL ENV [to VERSION]`\n\nHint: e.g. `/mlops rollback churn staging`"),
        ("/mlops promote prices production", "no environment 'production' in deploy.environments (staging)"),
    ]:
        refused = local_comment(cli, repo, tmp_path, 30, body)
        assert refused.exit_code == 2, refused.output
        assert local_thread(repo, 30)[0][-1]["body"] == f"<!-- mlgitops:chatops reply-to=530 -->\n> `{body}`\n\n@alice: `{body}` failed: {error}\n"
