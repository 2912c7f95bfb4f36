"""`mlops webhook serve`, put together: the delivery log, the runner (embedded or a
Prefect deployment), the HTTP app, resuming what a stopped service left."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mlgitops.errors import InputError


@dataclass
class ServiceOptions:
    """`mlops webhook serve`'s options (see its --help)."""

    host: str
    port: int
    secret_env: str
    header_timeout: float
    workers: int
    queue_size: int
    stop_grace: float
    repo: str | None
    forge: str
    record_only: bool
    deployment: str | None
    limits: Any  # service.http.Limits


def serve_webhook(options: ServiceOptions, say: Callable[[str], None]) -> None:
    """Run the service until stopped; ``say`` gets its start-up lines."""
    from mlgitops.gitrepo import repo_root
    from mlgitops.run import childenv
    from mlgitops.service.asgi import bind_server
    from mlgitops.service.http import make_app
    from mlgitops.service.webhook import DeliveryLog, LocalDispatcher, deployment_runner, lock_state, prune_worktrees, resume, worktree_base

    childenv.make_undumpable()  # deliveries' PR code runs as this user: it must not read our /proc/<pid>/environ (token, secret)
    secret = os.environ.pop(options.secret_env, "")  # runs started from here never see it
    if not secret:
        raise InputError(f"the webhook secret is not set: ${options.secret_env} is empty", hint=f"export {options.secret_env}=<the secret set on the GitHub webhook> (it is never read from a flag or a file)")
    if options.forge == "github" and not options.record_only and not os.environ.get("GITHUB_TOKEN"):
        raise InputError("--forge github needs GITHUB_TOKEN in the service's environment", hint="export GITHUB_TOKEN=<a token that may comment, set statuses and open PRs>, or serve with --forge local")
    root = repo_root(Path(options.repo or ".").resolve())
    state = root / ".mlops" / "webhook"
    lock = lock_state(state)  # noqa: F841 - held until the process ends
    log = DeliveryLog(state / "deliveries.sqlite")
    run = (lambda delivery: (0, "recorded only (--record-only)")) if options.record_only else None
    deployment = options.deployment if not options.record_only else None
    if deployment:
        if not os.environ.get("PREFECT_API_URL"):
            raise InputError("--deployment needs a Prefect server: PREFECT_API_URL is not set", hint="export PREFECT_API_URL=http://HOST:4200/api (see prefect.yaml), or serve without --deployment")
        from mlgitops.service.prefect_deploy import check_deployment

        check_deployment(deployment)  # a typo stops the service now, not every delivery later
        run = deployment_runner(deployment, root, options.forge, log)
    worktrees = worktree_base(root)
    if prune_worktrees(root, worktrees):
        say("removed the worktrees a stopped service left behind")
    dispatcher = LocalDispatcher(root, log, run=run, workers=options.workers, queue=options.queue_size, forge=options.forge, worktrees=worktrees)
    app = make_app(secret.encode(), log, dispatcher, state / "payloads", options.limits, options.stop_grace)
    how = f"hands deliveries to Prefect deployment {deployment}" if deployment else f"{options.workers} worker(s), queue {options.queue_size}"

    def ready(bound: int) -> None:
        say(f"webhook service on http://{options.host}:{bound}/webhook for {root} ({how}); GET /healthz, GET /deliveries/ID")

    server, sock, _ = bind_server(app, options.host, options.port, ready, header_timeout=options.header_timeout)  # a port in use is refused before anything is resumed
    requeued = resume(log, dispatcher, state / "payloads", options.stop_grace)
    if requeued:
        say(f"requeued {len(requeued)} delivery(ies) a previous run accepted but did not finish")
    server.run(sockets=[sock])
