"""What the commands share: the options, and ``guarded`` (exit codes, crash logs)."""

from __future__ import annotations

import sys
from typing import Any, Callable

import click

from mlgitops.guard import call_guarded

config_option = click.option("--config", "config", default=None, help="Path of mlops.yaml (default: at the repo root).")
repo_option = click.option("--repo", default=None, help="Repository folder (default: the current one).")
forge_option = click.option("--forge", type=click.Choice(["auto", "local", "github"]), default="auto", show_default=True, help="Where manifests and PRs live; auto: GitHub on an Actions runner with a token, else local git branches.")
token_option = click.option("--token", default=None, help="GitHub token (default: $GITHUB_TOKEN). Never printed.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
manifest_option = click.option("--manifest", "manifest", default=None, type=click.Path(dir_okay=False), help="Read this manifest file instead of ENV's from mlops.yaml (no mlops.yaml or git needed; relative file pins are relative to the current folder).")
ref_option = click.option("--ref", default=None, help="Read the manifest from this git branch (e.g. main) instead of the working tree file.")


def guarded(fn: Callable[..., int]) -> Callable[..., None]:
    """Map our errors to their exit codes; anything else is exit 3 with a log."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        sys.exit(call_guarded(fn.__name__, lambda: fn(*args, **kwargs)))

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper
