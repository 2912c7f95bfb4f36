"""`mlops demo`: the whole PR loop on the bundled example, in a throwaway git repo."""

from __future__ import annotations

import re
import subprocess
import tempfile
from importlib.resources import files
from pathlib import Path

import click

from mlgitops.errors import InputError, MlopsError

PR_BRANCH = "demo/deeper-trees"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)


def make_demo_repo(target: Path) -> Path:
    """A repo whose `main` holds the example and a PR branch raising max_depth."""
    example = (files("mlgitops.examples") / "mlops.yaml").read_text(encoding="utf-8")
    target.mkdir(parents=True, exist_ok=True)
    if any(target.iterdir()):
        raise InputError(f"--dir {target} is not empty; pick an empty or new folder for the demo")
    _git(target, "init", "--quiet", "--initial-branch=main")
    _git(target, "config", "user.name", "mlops demo")
    _git(target, "config", "user.email", "demo@mlops.invalid")
    (target / "mlops.yaml").write_text(example, encoding="utf-8")
    (target / ".gitignore").write_text(".mlops/\n", encoding="utf-8")
    _git(target, "add", "mlops.yaml", ".gitignore")
    _git(target, "commit", "--quiet", "-m", "Add the model pipeline")
    _git(target, "checkout", "--quiet", "-b", PR_BRANCH)
    changed, count = re.subn(r"(?m)^(\s+max_depth:\s*)\d+", r"\g<1>6", example, count=1)
    if count != 1:
        raise MlopsError("the bundled example has no training.params.max_depth line to change")
    (target / "mlops.yaml").write_text(changed, encoding="utf-8")
    _git(target, "commit", "--quiet", "-am", "Deeper trees (max_depth 2 -> 6)")
    return target


def run_demo(directory: Path | None) -> int:
    from rich.console import Console

    from mlgitops.config.loader import load_config
    from mlgitops.events.payloads import local_event
    from mlgitops.forges.local import LocalForge
    from mlgitops.report.render import print_terminal
    from mlgitops.run.runner import run_pull_request

    repo = make_demo_repo(directory or Path(tempfile.mkdtemp(prefix="mlops-demo-")))
    console = Console(highlight=False)
    console.print(f"demo repo: {repo}\nPR: {PR_BRANCH} -> main (training.params.max_depth 2 -> 6)\nrunning the pull-request flow (Prefect)...\n")
    cfg = load_config(repo / "mlops.yaml")
    event = local_event(repo, "main")
    forge = LocalForge(repo)
    outcome = run_pull_request(cfg, repo, "mlops.yaml", event, forge)
    comment_path = forge.comment_path(event.pr_key)
    click.echo(f"----- PR comment ({comment_path.relative_to(repo)}) -----")
    click.echo(comment_path.read_text(encoding="utf-8"))
    click.echo("----- terminal report -----")
    print_terminal(outcome.report, console)
    console.print(f"\nTry it yourself: cd {repo} && mlops run --base main   (a rerun reuses the cached result)")
    return outcome.exit_code
