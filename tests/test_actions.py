"""The composite action, the workflows and `mlops init`, read as GitHub would read them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO_ROOT

ACTIONS = sorted(REPO_ROOT.glob("actions/*/action.yml"))
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
CHECK = [sys.executable, "-m", "check_jsonschema"]
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def steps_of(doc: dict) -> list[dict]:
    if "runs" in doc:
        return doc["runs"]["steps"]
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


@pytest.mark.parametrize("path", ACTIONS, ids=lambda p: p.parent.name)
def test_action_validates_offline(path: Path) -> None:
    proc = subprocess.run([*CHECK, "--builtin-schema", "vendor.github-actions", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_validates_offline(path: Path) -> None:
    proc = subprocess.run([*CHECK, "--builtin-schema", "vendor.github-workflows", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", [*ACTIONS, *WORKFLOWS], ids=lambda p: p.name if p.suffix == ".yml" and p.name != "action.yml" else p.parent.name)
def test_no_expression_in_shell_and_every_action_pinned(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    for step in steps_of(doc):
        assert "${{" not in step.get("run", ""), f"{path}: pass inputs through env:, never ${{{{ }}}} in run: (code injection)"
        uses = step.get("uses")
        if uses and not uses.startswith("./"):
            assert PINNED.match(uses), f"{path}: {uses} is not pinned to a commit sha"


def test_workflows_use_least_privilege_and_never_pull_request_target() -> None:
    for path in WORKFLOWS:
        text = path.read_text()
        doc = yaml.safe_load(text)
        assert "pull_request_target" not in text
        assert doc["permissions"] == {}  # each job asks for its own
        for job in doc["jobs"].values():
            perms = job["permissions"]
            assert perms["contents"] == "read"
            assert set(perms.values()) <= {"read", "write"} and all(v == "write" for k, v in perms.items() if k != "contents")
            assert set(perms) <= {"contents", "pull-requests", "statuses", "checks"}


SHA = "0123456789abcdef0123456789abcdef01234567"


def test_init_writes_a_valid_scaffold_and_keeps_existing_files(tmp_path: Path, cli_noprefect) -> None:
    result = cli_noprefect("init", "--action-ref", f"acme/mlgitops/actions/pull-request@{SHA}", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:2] == ["wrote mlops.yaml", "wrote .github/workflows/mlops.yml"]
    workflow = tmp_path / ".github" / "workflows" / "mlops.yml"
    proc = subprocess.run([*CHECK, "--builtin-schema", "vendor.github-workflows", str(workflow)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    doc = yaml.safe_load(workflow.read_text())
    assert doc[True] == {"pull_request": {"types": ["opened", "synchronize", "reopened"]}, "merge_group": {"types": ["checks_requested"]}, "push": {"branches": ["main"]}, "issue_comment": {"types": ["created"]}}  # YAML 1.1 reads `on` as true
    assert doc["permissions"] == {}
    gate = doc["jobs"]["gate"]
    assert gate["if"] == "github.event_name == 'pull_request' || github.event_name == 'merge_group'"  # the merge queue's required check
    assert gate["permissions"] == {"contents": "read", "pull-requests": "write", "statuses": "write", "checks": "write"}
    assert gate["steps"][1] == {"uses": f"acme/mlgitops/actions/pull-request@{SHA}", "with": {"config": "mlops.yaml"}}  # a sha stays as given, no tag comment
    deploy = doc["jobs"]["deploy"]
    assert (deploy["if"], deploy["permissions"]) == ("github.event_name == 'push'", {"contents": "write", "pull-requests": "write"})
    assert deploy["steps"][1] == {"uses": f"acme/mlgitops/actions/deploy@{SHA}", "with": {"config": "mlops.yaml"}}
    chatops = doc["jobs"]["chatops"]
    assert chatops["if"] == "github.event_name == 'issue_comment' && github.event.issue.pull_request && startsWith(github.event.comment.body, '/mlops')"
    assert chatops["steps"][0]["with"] == {"fetch-depth": 0, "persist-credentials": False}  # the default branch: trusted code decides
    assert chatops["steps"][1] == {"uses": f"acme/mlgitops/actions/chatops@{SHA}", "with": {"config": "mlops.yaml"}}
    monitor = tmp_path / ".github" / "workflows" / "mlops-monitor.yml"
    proc = subprocess.run([*CHECK, "--builtin-schema", "vendor.github-workflows", str(monitor)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    mdoc = yaml.safe_load(monitor.read_text())
    assert mdoc[True]["schedule"] == [{"cron": "23 5 * * *"}] and "workflow_dispatch" in mdoc[True]
    assert mdoc["jobs"]["monitor"]["steps"][1]["uses"] == f"acme/mlgitops/actions/monitor@{SHA}"
    assert cli_noprefect("validate", cwd=tmp_path).exit_code == 0
    assert "registry:\n  path: .mlops/registry       # a folder;" in (tmp_path / "mlops.yaml").read_text()  # not on github.com
    (tmp_path / "mlops.yaml").write_text("# mine\n")
    again = cli_noprefect("init", cwd=tmp_path)  # the default tag is not resolved: no workflow is written
    assert again.exit_code == 0 and again.stdout.splitlines()[0] == "kept (exists; --force overwrites) mlops.yaml"
    assert (tmp_path / "mlops.yaml").read_text() == "# mine\n"
    bad = cli_noprefect("init", "--action-ref", "not a ref", cwd=tmp_path)
    assert bad.exit_code == 2 and "is not OWNER/REPO[/PATH]@REF" in bad.stderr
    # Not on github.com: a folder registry, and no job gets `packages`.
    assert all("packages" not in job["permissions"] for job in doc["jobs"].values())


def test_init_registry_option(tmp_path: Path, cli_noprefect) -> None:
    """--registry names registry.url; a URL it cannot open is exit 2 and nothing is written."""
    s3 = tmp_path / "s3"
    s3.mkdir()
    result = cli_noprefect("init", "--action-ref", f"acme/mlgitops/actions/pull-request@{SHA}", "--registry", "s3://acme-models/churn", cwd=s3)
    assert result.exit_code == 0, result.output
    assert "registry:\n  # Versions, and each pull request's candidate, live here and outlive the runner:" in (s3 / "mlops.yaml").read_text()
    assert "  url: s3://acme-models/churn\n" in (s3 / "mlops.yaml").read_text()
    assert "packages" not in (s3 / ".github" / "workflows" / "mlops.yml").read_text()
    assert cli_noprefect("validate", cwd=s3).exit_code == 0
    bad = tmp_path / "bad"
    bad.mkdir()
    refused = cli_noprefect("init", "--action-ref", f"acme/mlgitops/actions/pull-request@{SHA}", "--registry", "ftp://x/y", cwd=bad)
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: registry URL 'ftp://x/y': unknown scheme 'ftp' (known: file paths, file://, ")
    assert sorted(p.name for p in bad.iterdir()) == []


def test_init_refuses_an_action_ref_it_cannot_pin(tmp_path: Path, cli_noprefect, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tag is resolved to its commit (tests/security/test_workflows.py); one that cannot
    be is exit 2 naming the repository and how to find the sha, and writes nothing."""
    monkeypatch.setenv("GITHUB_SERVER_URL", (tmp_path / "nowhere").as_uri())
    missing = cli_noprefect("init", "--action-ref", "acme/mlgitops/actions/pull-request@v1", cwd=tmp_path)
    assert missing.exit_code == 2
    assert missing.stderr.startswith(f"error: --action-ref: could not resolve 'v1' to a commit of {(tmp_path / 'nowhere').as_uri()}/acme/mlgitops: fatal: ")
    assert f"hint: pass the full 40-character commit sha after the @ (`git ls-remote {(tmp_path / 'nowhere').as_uri()}/acme/mlgitops v1` prints it)" in missing.stderr
    short = cli_noprefect("init", "--action-ref", f"acme/mlgitops/actions/pull-request@{SHA[:39]}", cwd=tmp_path)
    assert short.exit_code == 2
    assert short.stderr.startswith(f"error: --action-ref: '{SHA[:39]}' looks like a shortened commit sha; GitHub Actions needs all 40 characters")
    branch = cli_noprefect("init", "--action-ref", f"acme/mlgitops/actions/pull-request@{SHA}", "--branch", "main]", cwd=tmp_path)
    assert (branch.exit_code, branch.stderr) == (2, "error: --branch 'main]' is not a branch name\n  hint: e.g. --branch main\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_action_step_script_is_what_the_e2e_tests_run() -> None:
    """The action's run step is exactly `mlops run --config "$MLOPS_CONFIG"` with the
    token in env; tests/test_github.py runs that command with a runner's env."""
    doc = yaml.safe_load((REPO_ROOT / "actions" / "pull-request" / "action.yml").read_text())
    step = next(s for s in doc["runs"]["steps"] if s.get("id") == "run")
    assert step["run"].strip() == 'mlops run --config "$MLOPS_CONFIG"'
    assert step["env"] == {"GITHUB_TOKEN": "${{ inputs.token }}", "MLOPS_CONFIG": "${{ inputs.config }}"}
    assert shutil.which("bash")


def test_deploy_action_runs_mlops_deploy_and_declares_its_outputs() -> None:
    doc = yaml.safe_load((REPO_ROOT / "actions" / "deploy" / "action.yml").read_text())
    step = next(s for s in doc["runs"]["steps"] if s.get("id") == "deploy")
    assert step["run"].strip() == 'mlops deploy --config "$MLOPS_CONFIG"'
    declared = {name: out["value"] for name, out in doc["outputs"].items()}
    assert declared == {name: f"${{{{ steps.deploy.outputs.{name} }}}}" for name in ("version", "pull-url", "deploy-message")}
    import inspect

    from mlgitops import cli

    source = inspect.getsource(cli._print_outcome)
    for name in declared:
        assert f'"{name}"' in source


def test_chatops_action_checks_before_it_installs_requirements() -> None:
    """A fork's requirements file must never be installed: the command is checked
    (permission through the API, fork) first, writing nothing, and only an accepted
    retrain installs the requirements."""
    doc = yaml.safe_load((REPO_ROOT / "actions" / "chatops" / "action.yml").read_text())
    steps = doc["runs"]["steps"]
    ids = [s.get("id") or s.get("name") for s in steps]
    check, head, install, run = ids.index("check"), ids.index("Check out the PR's head (accepted retrain only)"), ids.index("Install the training requirements (accepted retrain only)"), ids.index("chatops")
    assert check < head < install < run
    assert steps[head]["if"] == "steps.check.outputs.chatops-run == 'true' && steps.check.outputs.chatops-command == 'retrain'"
    assert steps[head]["with"]["persist-credentials"] is False and steps[head]["with"]["ref"] == "refs/pull/${{ github.event.issue.number }}/head"
    assert steps[check]["run"].strip() == 'mlops run --check-command --config "$MLOPS_CONFIG"'
    assert steps[install]["if"] == "steps.check.outputs.chatops-run == 'true' && steps.check.outputs.chatops-command == 'retrain' && inputs.requirements != ''"
    assert steps[run]["run"].strip() == 'mlops run --config "$MLOPS_CONFIG"'
    assert {s.get("env", {}).get("GITHUB_TOKEN") for s in (steps[check], steps[run])} == {"${{ inputs.token }}"}
    import inspect

    from mlgitops import cli

    source = inspect.getsource(cli.run_chatops_command)
    for name in ("chatops-command", "chatops-run", "chatops-reply"):
        assert f'"{name}"' in source


def test_action_outputs_are_the_ones_the_run_writes() -> None:
    doc = yaml.safe_load((REPO_ROOT / "actions" / "pull-request" / "action.yml").read_text())
    declared = {name: out["value"] for name, out in doc["outputs"].items()}
    assert declared == {name: f"${{{{ steps.run.outputs.{name} }}}}" for name in ("verdict", "summary", "metrics", "comment-url", "drift-report")}
    import inspect

    from mlgitops.run import runner

    source = inspect.getsource(runner.deliver)
    for name in declared:
        assert f'"{name}"' in source
