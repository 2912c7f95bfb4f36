"""`mlops webhook serve`: GitHub's deliveries, verified and run once."""

from __future__ import annotations

import click

from mlgitops.commands.options import guarded, repo_option
from mlgitops.errors import EXIT_OK


@click.group()
def webhook() -> None:
    """Receive GitHub webhook deliveries as a service."""


@webhook.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 behind a proxy or in a container).")
@click.option("--port", default=8787, show_default=True, type=int, help="Port (0: any free port).")
@click.option("--secret-env", default="MLOPS_WEBHOOK_SECRET", show_default=True, help="Environment variable holding the webhook's secret (never a flag: it would show in `ps`).")
@click.option("--max-body", default=25 * 1024 * 1024, show_default=True, type=click.IntRange(1), help="Largest delivery accepted, in bytes (GitHub sends at most 25 MB); a larger one is 413.")
@click.option("--header-timeout", default=10.0, show_default=True, type=click.FloatRange(0, min_open=True), help="Seconds a client has to send a request's headers; then 408 and the connection is closed.")
@click.option("--body-timeout", default=30.0, show_default=True, type=click.FloatRange(0, min_open=True), help="Seconds a client has to send a whole body (GitHub itself gives up after 10 s); then 408 and the connection is closed.")
@click.option("--max-unfinished-per-client", default=8, show_default=True, type=click.IntRange(1), help="Bodies one client address (an IPv6 /64) may be sending at once; beyond it 429 with Retry-After.")
@click.option("--max-unfinished", default=64, show_default=True, type=click.IntRange(1), help="Bodies all clients may be sending at once; beyond it 503 with Retry-After.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Deliveries run at once (embedded runner).")
@click.option("--queue", "queue_size", default=100, show_default=True, type=click.IntRange(1, 100_000), help="Deliveries that may wait; beyond it the service answers 503 and GitHub may redeliver.")
@click.option("--stop-grace", default=5.0, show_default=True, type=click.FloatRange(0), help="On SIGTERM/SIGINT, seconds a running delivery's processes get between SIGTERM and SIGKILL.")
@repo_option
@click.option("--forge", type=click.Choice(["local", "github"]), default="github", show_default=True, help="Where runs report; github (GITHUB_TOKEN in the service's environment) also answers ChatOps' permission questions. local: files under .mlops/ (ChatOps then needs .mlops/forge/collaborators.json).")
@click.option("--record-only", is_flag=True, help="Verify and record deliveries but run nothing (to try a webhook's setup, or measure the service).")
@click.option("--deployment", default=None, envvar="MLOPS_DEPLOYMENT", help="Hand each delivery to Prefect workers through this deployment (e.g. mlops-event/mlops-event; needs PREFECT_API_URL) instead of running it here.")
@guarded
def webhook_serve(host: str, port: int, secret_env: str, max_body: int, header_timeout: float, body_timeout: float, max_unfinished_per_client: int, max_unfinished: int, workers: int, queue_size: int, stop_grace: float, repo: str | None, forge: str, record_only: bool, deployment: str | None) -> int:
    """Verify, deduplicate and run GitHub deliveries (pull_request, push, issue_comment, merge_group).

    Point the repository's webhook (content type application/json, with a secret) at
    http://HOST:PORT/webhook. Each new delivery is answered at once (202) and run with
    `mlops run` in a worktree of the clone at --repo, at the payload's commit.

    \b
    Answers: 202 queued or ignored, 200 duplicate or ping,
    400 bad headers or JSON (invalid, not an object, nested deeper than 400),
    401 missing or wrong X-Hub-Signature-256 (decided before the body is read),
    408 headers or body too slow, 413 body over --max-body,
    429/503 too many bodies arriving, 503 run queue full.

    On SIGTERM or SIGINT the running delivery's processes are ended and its worktree
    removed; the next start runs it again, once.
    """
    from mlgitops.service.http import Limits
    from mlgitops.service.serve import ServiceOptions, serve_webhook

    limits = Limits(max_body=max_body, body_timeout=body_timeout, per_client=max_unfinished_per_client, unfinished=max_unfinished)
    options = ServiceOptions(host, port, secret_env, header_timeout, workers, queue_size, stop_grace, repo, forge, record_only, deployment, limits)
    serve_webhook(options, lambda line: click.echo(line, err=True))
    return EXIT_OK
