"""`mlops schema`: the JSON Schema of mlops.yaml."""

from __future__ import annotations

import json

import click


@click.command()
def schema() -> None:
    """Print the JSON Schema of mlops.yaml (for editors)."""
    from mlgitops.config.loader import json_schema

    click.echo(json.dumps(json_schema(), indent=2))
