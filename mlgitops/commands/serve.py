"""`mlops serve ENV`: predictions over HTTP from the pinned ONNX model."""

from __future__ import annotations

import click

from mlgitops.commands.options import config_option, guarded, manifest_option, ref_option, repo_option
from mlgitops.errors import EXIT_OK


@click.command()
@click.argument("env", required=False)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 in a container).")
@click.option("--port", default=8080, show_default=True, type=int, help="Port (0: any free port).")
@click.option("--poll", default=2.0, show_default=True, type=float, help="Seconds between manifest checks; a changed pin is loaded and swapped in.")
@ref_option
@manifest_option
@config_option
@repo_option
@guarded
def serve(env: str | None, host: str, port: int, poll: float, ref: str | None, manifest: str | None, config: str | None, repo: str | None) -> int:
    """Serve predictions over HTTP from the ONNX model ENV's manifest pins.

    Pins on any registry (files, s3://, oci://, ...) are fetched into the local cache
    ($MLOPS_CACHE_DIR, else $XDG_CACHE_HOME/mlgitops) and their sha256 checked; a new pin
    that cannot be fetched or fails its hash leaves the previous model serving and
    /healthz "degraded" with the reason.
    """
    from mlgitops.deploy.pinned import pinned_source, serve_pinned

    serve_pinned(pinned_source(env, manifest, ref, config, repo), host, port, poll, lambda line: click.echo(line, err=True))
    return EXIT_OK
