"""`mlops demo`: the whole PR loop on the bundled example."""

from __future__ import annotations

from pathlib import Path

import click

from mlgitops.commands.options import guarded


@click.command()
@click.option("--dir", "directory", default=None, type=click.Path(file_okay=False), help="Where to create the demo repo (default: a new temp dir).")
@guarded
def demo(directory: str | None) -> int:
    """Make a git repo from the bundled example, open a PR branch, run the PR flow."""
    from mlgitops.run.demo import run_demo

    return run_demo(Path(directory) if directory else None)
