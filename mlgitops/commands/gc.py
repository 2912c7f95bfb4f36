"""`mlops gc`: old pull-request candidates out of the registry."""

from __future__ import annotations

import json

import click

from mlgitops.commands.options import config_option, guarded, repo_option
from mlgitops.errors import EXIT_OK


@click.command()
@click.option("--older-than", "older_than", type=click.FloatRange(min=0), default=None, help="Remove pull-request candidates older than this many days (default: registry.candidates_max_age_days).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@config_option
@repo_option
@guarded
def gc(older_than: float | None, as_json: bool, config: str | None, repo: str | None) -> int:
    """Remove old pull-request candidates from the registry, and the objects only they used.

    Registered versions and their objects are never removed.
    """
    from mlgitops.deploy.candidates import gc_command

    result = gc_command(repo, config, older_than)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"removed {result['candidates_removed']} candidates older than {result['older_than_days']:g} days (kept {result['candidates_kept']}); removed {result['objects_removed']} objects")
    return EXIT_OK
