"""Conventions users look for (issue 15): a pre-commit hook, the schema file an editor
completes from (and the modeline `mlops init` writes), an action.yml at the root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Iterator

import jsonschema
import pytest
import yaml

from mlgitops.config.scaffold import schema_url
from tests.helpers import REPO_ROOT, GitRepo

SHA = "0123456789abcdef0123456789abcdef01234567"
SCHEMA = REPO_ROOT / "schema" / "mlops.schema.json"


# --- schema/mlops.schema.json and the modeline --------------------------------------


def test_the_schema_file_is_what_mlops_schema_prints(tmp_path: Path, cli_noprefect) -> None:
    """Editors read the committed file; `mlops schema` is the truth. A config change
    that does not regenerate the file fails here."""
    printed = cli_noprefect("schema", cwd=tmp_path)
    assert printed.exit_code == 0, printed.output
    assert SCHEMA.read_text() == printed.output, "regenerate it: mlops schema > schema/mlops.schema.json"
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA.read_text()))


def test_init_writes_the_schema_modeline_first_and_the_file_validates_against_it(tmp_path: Path, cli_noprefect) -> None:
    result = cli_noprefect("init", "--action-ref", f"acme/mlgitops/actions/pull-request@{SHA}", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    text = (tmp_path / "mlops.yaml").read_text()
    assert text.splitlines()[0] == f"# yaml-language-server: $schema=https://raw.githubusercontent.com/acme/mlgitops/{SHA}/schema/mlops.schema.json"
    jsonschema.validate(yaml.safe_load(text), json.loads(SCHEMA.read_text()))  # what init writes, the schema accepts
    with pytest.raises(jsonschema.ValidationError, match="'min_acuracy' was unexpected"):
        jsonschema.validate(yaml.safe_load(text.replace("    min: 0.80", "    min_acuracy: 0.80")), json.loads(SCHEMA.read_text()))


def test_the_modeline_names_the_actions_ref_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tag stays a tag (no network for a modeline); GitHub Enterprise gets its /raw/ URL."""
    monkeypatch.delenv("GITHUB_SERVER_URL", raising=False)
    assert schema_url("mlgitops/mlgitops", "v1") == "https://raw.githubusercontent.com/mlgitops/mlgitops/v1/schema/mlops.schema.json"
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://ghe.example.com/")
    assert schema_url("acme/mlgitops", "v1") == "https://ghe.example.com/acme/mlgitops/raw/v1/schema/mlops.schema.json"


# --- action.yml at the root ---------------------------------------------------------


def test_the_root_action_is_the_pull_request_action() -> None:
    """The Marketplace lists the root action.yml; `uses: OWNER/REPO@v1` must gate
    exactly like `OWNER/REPO/actions/pull-request@v1` (same inputs, outputs, steps)."""
    root = yaml.safe_load((REPO_ROOT / "action.yml").read_text())
    pr = yaml.safe_load((REPO_ROOT / "actions" / "pull-request" / "action.yml").read_text())
    assert root["runs"] == pr["runs"]
    assert (root["inputs"], root["outputs"], root["description"], root["branding"]) == (pr["inputs"], pr["outputs"], pr["description"], pr["branding"])
    names = {yaml.safe_load(p.read_text())["name"] for p in REPO_ROOT.glob("actions/*/action.yml")}
    assert root["name"] == "mlgitops model gate" and root["name"] not in names  # Marketplace names are unique


# --- the pre-commit hook ------------------------------------------------------------

HOOK = {
    "id": "mlops-validate",
    "name": "mlops validate",
    "description": "Check mlops.yaml (in a workspace, every model mlops-workspace.yaml lists) and its data with `mlops validate` (no training, < 1 s).",
    "entry": "mlops validate",
    "language": "python",
    "files": r"mlops(-workspace)?\.ya?ml$",
    "pass_filenames": False,
}
VALID = """\
version: 1
name: hooked
data:
  path: sklearn:breast_cancer
  target: target
training:
  estimator: sklearn.linear_model.LogisticRegression
gates:
  accuracy:
    min: 0.5
"""


def pre_commit() -> list[str]:
    beside = Path(sys.executable).with_name("pre-commit")
    found = str(beside) if beside.exists() else shutil.which("pre-commit")
    assert found, "pre-commit is missing: pip install -e '.[test]'"
    return [found]


def test_the_hook_manifest() -> None:
    assert yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text()) == [HOOK]
    proc = subprocess.run([*pre_commit(), "validate-manifest", str(REPO_ROOT / ".pre-commit-hooks.yaml")], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


class Hooked:
    """A user's repository whose .pre-commit-config.yaml names this checkout (at its
    HEAD commit) as the hook's repo, run by the real pre-commit."""

    def __init__(self, repo: GitRepo, env: dict[str, str], home: Path) -> None:
        self.repo, self.env, self.home = repo, env, home

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*pre_commit(), "run", "mlops-validate", "--color", "never", *args], cwd=self.repo.path, env=self.env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hooked]:
    """`language: python` for real, offline: pre-commit clones this checkout, makes its
    virtualenv and runs `pip install .` there, with no index (PIP_NO_INDEX) and no
    dependencies (PIP_NO_DEPS; no build isolation, so setuptools comes from the
    virtualenv's seed), which the hook's Python finds on PYTHONPATH (this venv's
    site-packages; its editable mlgitops is a .pth file, which PYTHONPATH does not
    read, so the hook runs the copy pre-commit installed). The environment is made
    once (PRE_COMMIT_HOME) for the three runs; `pre-commit try-repo` would make it
    anew in a temporary store on every call. With a network, a user's first run
    installs the dependencies too."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
    repo = GitRepo(tmp_path_factory.mktemp("user"))
    config = {"repos": [{"repo": str(REPO_ROOT), "rev": head, "hooks": [{"id": "mlops-validate"}]}]}
    repo.gen({"mlops.yaml": VALID, "README.md": "x\n", ".pre-commit-config.yaml": yaml.safe_dump(config)})
    repo.git("add", ".")
    repo.git("commit", "-q", "-m", "init")
    home = tmp_path_factory.mktemp("pre-commit-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PRE_COMMIT", "VIRTUAL_ENV", "PYTHON"))}
    env |= {
        "PRE_COMMIT_HOME": str(home),
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # pip reads "0" here as: no isolation
        "PIP_CONFIG_FILE": os.devnull,
        "PYTHONPATH": sysconfig.get_paths()["purelib"],
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    yield Hooked(repo, env, home)


def test_the_hook_passes_a_valid_config_with_the_copy_it_installed(hooked: Hooked) -> None:
    proc = hooked.run("--all-files")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if not line.startswith("[INFO] ")]  # the install says what it does
    assert len(lines) == 1 and lines[0].startswith("mlops validate.") and lines[0].endswith(".Passed"), proc.stdout
    installed = sorted(hooked.home.glob("repo*/py_env-*/lib/python*/site-packages/mlgitops/__init__.py"))
    assert len(installed) == 1, "pre-commit's own environment holds mlgitops"


def test_the_hook_fails_a_bad_config_with_the_line_and_key(hooked: Hooked) -> None:
    (hooked.repo.path / "mlops.yaml").write_text(VALID.replace("min: 0.5", "min: 0.9x"))
    hooked.repo.git("add", "mlops.yaml")
    try:
        proc = hooked.run()  # the staged change, as at `git commit`
        assert proc.returncode == 1, proc.stdout + proc.stderr
        lines = [line for line in proc.stdout.splitlines() if not line.startswith("[INFO] ")]
        assert lines[0].startswith("mlops validate.") and lines[0].endswith(".Failed"), proc.stdout
        assert lines[1:3] == ["- hook id: mlops-validate", "- exit code: 2"], proc.stdout
        assert "error: mlops.yaml:10:10: gates.accuracy.min: expected a number" in proc.stdout, proc.stdout
    finally:
        hooked.repo.git("reset", "-q", "HEAD", "--", "mlops.yaml")
        hooked.repo.git("checkout", "HEAD", "--", "mlops.yaml")


def test_the_hook_skips_a_commit_that_does_not_touch_mlops_yaml(hooked: Hooked) -> None:
    (hooked.repo.path / "README.md").write_text("y\n")
    hooked.repo.git("add", "README.md")
    try:
        proc = hooked.run()
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lines = [line for line in proc.stdout.splitlines() if not line.startswith("[INFO] ")]
        assert len(lines) == 1 and lines[0].startswith("mlops validate.") and lines[0].endswith("(no files to check)Skipped"), proc.stdout
    finally:
        hooked.repo.git("reset", "-q", "HEAD", "--", "README.md")
        hooked.repo.git("checkout", "HEAD", "--", "README.md")
