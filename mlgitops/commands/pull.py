"""`mlops pull ENV --to DIR`: the pinned ONNX model, checked, into a folder."""

from __future__ import annotations

import click

from mlgitops.commands.options import config_option, guarded, manifest_option, ref_option, repo_option
from mlgitops.errors import EXIT_OK


@click.command()
@click.argument("env", required=False)
@click.option("--to", "to", required=True, type=click.Path(file_okay=False), help="Folder to write model.onnx and pin.json into (created if missing).")
@ref_option
@manifest_option
@config_option
@repo_option
@guarded
def pull(env: str | None, to: str, ref: str | None, manifest: str | None, config: str | None, repo: str | None) -> int:
    """Fetch the ONNX model ENV's manifest pins, check its sha256, write it to a folder.

    For an init container or a CI step: DIR/model.onnx and DIR/pin.json (name, version,
    sha256, uri, pulled_at), each written whole or not at all; nothing is written when
    the model cannot be fetched or fails its hash (exit 2).
    """
    from mlgitops.deploy.pinned import pinned_source, pull_to

    click.echo(pull_to(pinned_source(env, manifest, ref, config, repo), to))
    return EXIT_OK
