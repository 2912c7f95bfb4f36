"""`mlops gc`: old pull-request candidates out of the registry."""

from __future__ import annotations

import json

import click

from mlgitops.commands.options import config_option, guarded, repo_option
from mlgitops.errors import EXIT_OK, InputError

LOCAL_CACHE_DAYS = 30.0  # --local-cache's default age, like registry.candidates_max_age_days'


@click.command()
@click.option("--older-than", "older_than", type=click.FloatRange(min=0), default=None, help="Remove pull-request candidates older than this many days (default: registry.candidates_max_age_days).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.option("--local-cache", "local_cache", is_flag=True, help="Instead: prune this machine's cache of fetched models (entries unused for --older-than days, default 30) and old Prefect database templates.")
@config_option
@repo_option
@guarded
def gc(older_than: float | None, as_json: bool, local_cache: bool, config: str | None, repo: str | None) -> int:
    """Remove old pull-request candidates from the registry, and the objects only they used.

    Registered versions and their objects are never removed. With --local-cache, prune
    this machine's model cache instead (no config needed; a pruned model is fetched
    and verified again on its next use).
    """
    if local_cache:
        if config or repo:
            raise InputError("--local-cache prunes this machine's cache and reads no repository: drop --config/--repo", hint="mlops gc --local-cache [--older-than DAYS]")
        from mlgitops.deploy.cache_gc import prune
        from mlgitops.deploy.fetch import cache_root

        result = prune(cache_root(), older_than if older_than is not None else LOCAL_CACHE_DAYS)
        if as_json:
            click.echo(json.dumps(result, indent=2))
        else:
            click.echo(
                f"removed {result['objects_removed']} cached models unused for {result['older_than_days']:g} days (kept {result['objects_kept']})"
                f" and {result['templates_removed']} old Prefect database templates from {result['cache']}: {result['bytes_freed'] / 1e6:.1f} MB freed"
            )
        return EXIT_OK
    from mlgitops.deploy.candidates import gc_command

    result = gc_command(repo, config, older_than)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"removed {result['candidates_removed']} candidates older than {result['older_than_days']:g} days (kept {result['candidates_kept']}); removed {result['objects_removed']} objects")
    return EXIT_OK
