"""What the dispatcher is given (:class:`Context`) and gives back (:class:`Outcome`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Context:
    """Where and how an event is handled (what the CLI options say)."""

    root: Path  # the repository's checkout to run in
    config: Path | None = None  # mlops.yaml (default: at the root)
    forge: str = "auto"  # auto | local | github
    token: str | None = None  # GitHub token (default: $GITHUB_TOKEN); never printed
    check_only: bool = False  # issue_comment: only decide whether the command would run

    def config_paths(self) -> tuple[Path, Path, str]:
        from mlgitops.config.locate import find_config

        return find_config(self.root, self.config)

    def workspace(self) -> Any:
        """The workspace (mlops-workspace.yaml at the repository root) when no config
        was named or the config named is that file, else None: then every model it
        lists is handled."""
        from mlgitops.config.workspace import load_workspace, workspace_root

        root = workspace_root(self.root, self.config)  # also --config mlops-workspace.yaml (the Actions' input)
        return load_workspace(root) if root is not None else None


@dataclass
class Outcome:
    """What handling one event did; every front door shows it with ``present``."""

    exit_code: int
    route: str  # pull_request | merge_group | deploy | chatops | chatops-check | skipped
    message: str = ""  # one line: the verdict, the deploy message, the ChatOps answer, why skipped
    report: Any = None  # the run's Report (pull_request, merge_group)
    deploy: Any = None  # the deploy's outcome (deploy)
    where: str | None = None  # the comment: a file under .mlops/ or a URL
    queue_line: str | None = None  # merge_group: what the gate's status says
    decision: str | None = None  # chatops: ignore | help | unknown | refuse | run
    command: str | None = None  # chatops: the command's name
    notes: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)  # GitHub Actions step outputs
    models: list[Any] = field(default_factory=list)  # a workspace: run.workspace.ModelRun per model (else empty)

    def summary(self) -> dict[str, Any]:
        """A JSON-safe digest (the child's result file, the service's delivery record)."""
        return {k: getattr(self, k) for k in ("exit_code", "route", "message", "where", "decision", "command", "notes")}
