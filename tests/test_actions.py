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

ACTIONS = [*sorted(REPO_ROOT.glob("actions/*/action.yml")), REPO_ROOT / "action.yml"]  # the root one: the Marketplace's
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
CHECK = [sys.executable, "-m", "check_jsonschema"]
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def steps_of(doc: dict) -> list[dict]:
    if "runs" in doc:
        return doc["runs"]["steps"]
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def action_id(path: Path) -> str:
    return "root" if path.parent == REPO_ROOT else path.parent.name


@pytest.mark.parametrize("path", ACTIONS, ids=action_id)
def test_action_validates_offline(path: Path) -> None:
    proc = subprocess.run([*CHECK, "--builtin-schema", "vendor.github-actions", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_validates_offline(path: Path) -> None:
    proc = subprocess.run([*CHECK, "--builtin-schema", "vendor.github-workflows", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", [*ACTIONS, *WORKFLOWS], ids=lambda p: p.name if p.name != "action.yml" else action_id(p))
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
    assert doc[True] == {"pull_request": {"types": ["opened", "synchronize", "reopened"]}, "merge_group": {"types": ["checks_requested"]}, "push": {"branches": ["main"]}, "workflow_dispatch": None, "issue_comment": {"types": ["created"]}}  # YAML 1.1 reads `on` as true
    assert doc["permissions"] == {}
    gate = doc["jobs"]["gate"]
    assert gate["if"] == "github.event_name == 'pull_request' || github.event_name == 'merge_group'"  # the merge queue's required check
    assert gate["permissions"] == {"contents": "read", "pull-requests": "write", "statuses": "write", "checks": "write"}
    assert gate["steps"][1] == {"uses": f"acme/mlgitops/actions/pull-request@{SHA}", "with": {"config": "mlops.yaml"}}  # a sha stays as given, no tag comment
    deploy = doc["jobs"]["deploy"]
    assert (deploy["if"], deploy["permissions"]) == ("github.event_name == 'push'", {"contents": "write", "pull-requests": "write"})
    assert deploy["steps"][1] == {"uses": f"acme/mlgitops/actions/deploy@{SHA}", "with": {"config": "mlops.yaml"}}
    # Promotion to production: a manual run on the default branch, held by the
    # `production` GitHub Environment (its required reviewers approve the job).
    production = doc["jobs"]["production"]
    assert (production["if"], production["environment"]) == ("github.event_name == 'workflow_dispatch' && github.ref == 'refs/heads/main'", "production")
    assert production["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert production["steps"][1] == {"uses": f"acme/mlgitops/actions/deploy@{SHA}", "with": {"config": "mlops.yaml", "promote-from": "staging", "promote-to": "production"}}
    assert [name for name, job in doc["jobs"].items() if "environment" in job] == ["production"]
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


def test_init_environments_option(tmp_path: Path, cli_noprefect) -> None:
    """Three environments: the merge promotes into dev; staging and production each get a
    manual job held by their own GitHub Environment, picked by the `promote-to` input."""
    result = cli_noprefect("init", "--action-ref", f"acme/mlgitops/actions/pull-request@{SHA}", "--environments", "dev,staging,production", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    workflow = tmp_path / ".github" / "workflows" / "mlops.yml"
    proc = subprocess.run([*CHECK, "--builtin-schema", "vendor.github-workflows", str(workflow)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    doc = yaml.safe_load(workflow.read_text())
    assert doc[True]["workflow_dispatch"] == {"inputs": {"promote-to": {"description": "the environment to promote to (from the one before it)", "type": "choice", "options": ["staging", "production"]}}}
    held = {name: job for name, job in doc["jobs"].items() if "environment" in job}
    assert list(held) == ["staging", "production"]
    for name, source in (("staging", "dev"), ("production", "staging")):
        job = held[name]
        assert job["if"] == f"github.event_name == 'workflow_dispatch' && github.ref == 'refs/heads/main' && inputs.promote-to == '{name}'"
        assert job["environment"] == name and job["concurrency"] == {"group": f"mlops-promote-{name}", "cancel-in-progress": False}
        assert job["steps"][1]["with"] == {"config": "mlops.yaml", "promote-from": source, "promote-to": name}
    config = yaml.safe_load((tmp_path / "mlops.yaml").read_text())
    assert config["deploy"]["environments"] == {e: {"manifest": f"deploy/{e}.yaml"} for e in ("dev", "staging", "production")}
    assert list(config["deploy"]["environments"]) == ["dev", "staging", "production"]  # the merge promotes into the first
    assert cli_noprefect("validate", cwd=tmp_path).exit_code == 0
    # One environment: no manual promotion job, no workflow_dispatch.
    one = tmp_path / "one"
    one.mkdir()
    assert cli_noprefect("init", "--action-ref", f"acme/mlgitops/actions/pull-request@{SHA}", "--environments", "production", cwd=one).exit_code == 0
    doc = yaml.safe_load((one / ".github" / "workflows" / "mlops.yml").read_text())
    assert "workflow_dispatch" not in doc[True] and not [j for j in doc["jobs"].values() if "environment" in j]
    # Names a job id or a YAML key could not carry are refused before anything is written.
    for bad, words in (("staging,prod uction", "'prod uction' is not an environment name"), ("a,a", "an environment is named twice"), (",", "names no environment"), ("1st", "'1st' is not an environment name")):
        empty = tmp_path / f"bad-{abs(hash(bad))}"
        empty.mkdir()
        refused = cli_noprefect("init", "--action-ref", f"acme/mlgitops/actions/pull-request@{SHA}", "--environments", bad, cwd=empty)
        assert refused.exit_code == 2 and words in refused.stderr, refused.output
        assert list(empty.iterdir()) == []


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
    assert declared == {name: f"${{{{ steps.deploy.outputs.{name} || steps.promote.outputs.{name} }}}}" for name in ("version", "pull-url", "deploy-message")}
    assert step["if"] == "inputs.promote-to == ''"
    promote = next(s for s in doc["runs"]["steps"] if s.get("id") == "promote")
    assert promote["if"] == "inputs.promote-to != ''"
    assert promote["run"].strip().splitlines()[-1] == 'mlops promote "$PROMOTE_FROM" "$PROMOTE_TO" --config "$MLOPS_CONFIG"'
    assert promote["env"] == {"GITHUB_TOKEN": "${{ inputs.token }}", "MLOPS_CONFIG": "${{ inputs.config }}", "PROMOTE_FROM": "${{ inputs.promote-from }}", "PROMOTE_TO": "${{ inputs.promote-to }}"}
    import inspect

    from mlgitops.events import handlers

    source = inspect.getsource(handlers.deploy_outputs)
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

    from mlgitops.events import handlers

    source = inspect.getsource(handlers.chatops)
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


# Installs in seconds (issue 15): uv, its download cache cached, never site-packages.
UV_VERSION = "0.13.9"
UV_KEY = re.compile(r"^mlops-uv-Linux-[0-9a-f]{16}$")


def step_named(doc: dict, step_id: str) -> dict:
    return next(s for s in steps_of(doc) if s.get("id") == step_id)


@pytest.mark.parametrize("path", ACTIONS, ids=action_id)
def test_action_installs_with_uv_and_caches_only_uvs_download_cache(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    runs = "\n".join(s.get("run", "") for s in steps_of(doc))
    pip_lines = [line.strip() for line in runs.splitlines() if "pip install" in line and not line.strip().startswith("uv pip install")]
    assert pip_lines == [f'python -m pip install --disable-pip-version-check --quiet "uv=={UV_VERSION}"'], "pip only installs uv, pinned"
    assert 'uv pip install --system --quiet "$MLGITOPS_SRC${EXTRAS:+[$EXTRAS]}"' in runs
    caches = [s for s in steps_of(doc) if s.get("uses", "").startswith("actions/cache")]
    paths = [p for s in caches for p in s["with"]["path"].split()]
    assert not [p for p in paths if "pip" in p or "site-packages" in p], paths
    uv = [s for s in caches if s["with"]["path"] == "~/.cache/uv"]
    assert uv[0]["uses"].split("@")[0] == "actions/cache/restore" and uv[0]["id"] == "uv-cache"
    assert (uv[0]["with"]["key"], uv[0]["with"]["restore-keys"]) == ("${{ steps.uv.outputs.key }}", "mlops-uv-${{ runner.os }}-\n")
    ids = [s.get("id") or s.get("name") for s in steps_of(doc)]
    install = next(i for i, s in enumerate(steps_of(doc)) if "uv pip install --system" in s.get("run", "") and "MLGITOPS_SRC" in s.get("env", {}))
    assert ids.index("uv") < ids.index("uv-cache") < install
    saves = [s for s in uv if s["uses"].split("@")[0] == "actions/cache/save"]
    expected_save = {  # saved right after the install (before PR code runs), once per key
        "pull-request": "success() && github.event_name == 'pull_request' && steps.uv-cache.outputs.cache-hit != 'true'",
        "root": "success() && github.event_name == 'pull_request' && steps.uv-cache.outputs.cache-hit != 'true'",
        "deploy": "success() && steps.trust.outputs.trusted == 'true' && steps.uv-cache.outputs.cache-hit != 'true'",
        "monitor": "success() && steps.trust.outputs.trusted == 'true' && steps.uv-cache.outputs.cache-hit != 'true'",
    }.get(action_id(path))
    assert [s["if"] for s in saves] == ([expected_save] if expected_save else [])  # chatops: restore only
    if saves:
        assert steps_of(doc).index(saves[0]) == install + 1 and saves[0]["with"]["key"] == "${{ steps.uv.outputs.key }}"


class Stubs:
    """`python`, `uv` and `mlops` on PATH that record their arguments (and uv's cache
    env), so an action's shell steps run for real with bash, as the runner runs them."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.bin.mkdir()
        self.log = root / "calls.log"
        self.home = root / "home"
        self.home.mkdir()
        for name in ("python", "uv", "mlops"):
            stub = self.bin / name
            stub.write_text('#!/bin/bash\n{ printf "%s" "$(basename "$0")"; printf "\\t%s" "$@"; [ "$(basename "$0")" = uv ] && printf "\\tUV_CACHE_DIR=%s" "$UV_CACHE_DIR"; printf "\\n"; } >> "$STUB_LOG"\n[ "$1" = -VV ] && echo "Python 3.11.7 (stub)"\nexit 0\n')
            stub.chmod(0o755)

    def run(self, step: dict, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
        base = {"PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(self.home), "STUB_LOG": str(self.log), "RUNNER_OS": "Linux"}
        return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], env=base | env, cwd=cwd, capture_output=True, text=True)

    def calls(self) -> list[list[str]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        self.log.unlink(missing_ok=True)
        return [line.split("\t") for line in lines]


def outputs(path: Path) -> dict[str, str]:
    out = dict(line.split("=", 1) for line in path.read_text().splitlines())
    path.unlink()
    return out


@pytest.mark.parametrize("path", ACTIONS, ids=action_id)
def test_the_install_steps_run_key_and_install_as_declared(path: Path, tmp_path: Path) -> None:
    """The key and install steps, run by bash with stubs: the source found from the
    action's folder, a key that moves with the requirements and the extras only, and
    one `uv pip install --system` with your requirements in the same resolution."""
    doc = yaml.safe_load(path.read_text())
    key_step, install = step_named(doc, "uv"), next(s for s in steps_of(doc) if "MLGITOPS_SRC" in s.get("env", {}))
    takes_requirements = "REQUIREMENTS" in install["env"]
    assert ("REQUIREMENTS" in key_step["env"]) == takes_requirements == (action_id(path) in ("pull-request", "root", "deploy"))
    stubs, work = Stubs(tmp_path), tmp_path / "work"
    work.mkdir()
    (work / "requirements.txt").write_text("xgboost==2.1.0\n")
    out = tmp_path / "github_output"
    given = {"ACTION_PATH": str(path.parent), "EXTRAS": "oci", "REQUIREMENTS": "requirements.txt"}
    env = {name: value for name, value in given.items() if name in key_step["env"]} | {"GITHUB_OUTPUT": str(out)}  # only what the step passes

    def key(**changes: str) -> dict[str, str]:
        proc = stubs.run(key_step, env | changes, work)
        assert proc.returncode == 0, proc.stderr
        assert stubs.calls() == [["python", "-VV"]]
        return outputs(out)

    first = key()
    assert Path(first["root"]).resolve() == REPO_ROOT and UV_KEY.match(first["key"]), first
    assert key()["key"] == first["key"]
    assert key(EXTRAS="s3")["key"] != first["key"]
    (work / "requirements.txt").write_text("xgboost==2.1.1\n")
    assert (key()["key"] != first["key"]) is takes_requirements
    bad = stubs.run(key_step, env | {"EXTRAS": "oci];curl x"}, work)
    assert (bad.returncode, bad.stdout) == (2, "::error::extras: 'oci];curl x' is not a comma-separated list of extras (oci, s3, gcs, azure)\n")
    assert not out.exists()

    src = first["root"]
    given = {"MLGITOPS_SRC": src, "EXTRAS": "oci", "REQUIREMENTS": "requirements.txt"}
    install_env = {name: value for name, value in given.items() if name in install["env"]}
    cache = f"UV_CACHE_DIR={stubs.home}/.cache/uv"  # what actions/cache saves as ~/.cache/uv
    proc = stubs.run(install, install_env, work)
    assert proc.returncode == 0, proc.stderr
    uv_call = ["uv", "pip", "install", "--system", "--quiet", f"{src}[oci]", *(["-r", "requirements.txt"] if takes_requirements else []), cache]
    assert stubs.calls() == [["python", "-m", "pip", "install", "--disable-pip-version-check", "--quiet", f"uv=={UV_VERSION}"], uv_call, ["mlops", "--version"]]
    proc = stubs.run(install, install_env | {"EXTRAS": ""} | ({"REQUIREMENTS": ""} if takes_requirements else {}), work)
    assert proc.returncode == 0, proc.stderr
    assert stubs.calls()[1] == ["uv", "pip", "install", "--system", "--quiet", src, cache]


def test_chatops_installs_the_requirements_with_uv_only_after_the_check(tmp_path: Path) -> None:
    doc = yaml.safe_load((REPO_ROOT / "actions" / "chatops" / "action.yml").read_text())
    step = next(s for s in steps_of(doc) if s.get("name") == "Install the training requirements (accepted retrain only)")
    stubs = Stubs(tmp_path)
    proc = stubs.run(step, {"REQUIREMENTS": "ml/requirements.txt"}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert stubs.calls() == [["uv", "pip", "install", "--system", "--quiet", "-r", "ml/requirements.txt", f"UV_CACHE_DIR={stubs.home}/.cache/uv"]]
