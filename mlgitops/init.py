"""`mlops init`: the scaffold a repository starts from."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import InputError
from .render import environment
from .store import atomic_write

WORKFLOW = Path(".github/workflows/mlops.yml")
MONITOR_WORKFLOW = Path(".github/workflows/mlops-monitor.yml")
ACTION_REF = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[\w./-]+$")


def write_scaffold(root: Path, data: str, target: str, action_ref: str, force: bool, branch: str = "main") -> list[tuple[Path, bool]]:
    """Write mlops.yaml and the workflow; existing files are kept unless ``force``."""
    if not ACTION_REF.match(action_ref):
        raise InputError(f"--action-ref {action_ref!r} is not OWNER/REPO[/PATH]@REF", hint="e.g. acme/mlgitops/actions/pull-request@v1")
    env = environment()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", root.resolve().name).strip("-.") or "model"
    files = {
        Path("mlops.yaml"): env.get_template("init_mlops.yaml.j2").render(name=name, data=data, target=target),
        WORKFLOW: env.get_template("init_workflow.yml.j2").render(action_ref=action_ref, deploy_ref=deploy_ref(action_ref), chatops_ref=sibling_ref(action_ref, "chatops"), config="mlops.yaml", branch=branch),
        MONITOR_WORKFLOW: env.get_template("init_monitor.yml.j2").render(monitor_ref=sibling_ref(action_ref, "monitor"), current="data/recent.csv"),
    }
    out = []
    for rel, text in files.items():
        path = root / rel
        if path.exists() and not force:
            out.append((rel, False))
            continue
        atomic_write(path, text)
        out.append((rel, True))
    return out


def deploy_ref(action_ref: str) -> str:
    """The deploy action beside the pull-request action: OWNER/REPO/actions/deploy@REF."""
    return sibling_ref(action_ref, "deploy")


def sibling_ref(action_ref: str, name: str) -> str:
    """OWNER/REPO/actions/<name>@REF beside OWNER/REPO/actions/pull-request@REF."""
    uses, _, ref = action_ref.rpartition("@")
    return f"{uses.removesuffix('/pull-request')}/{name}@{ref}" if uses.endswith("/pull-request") else f"{uses}/actions/{name}@{ref}"
