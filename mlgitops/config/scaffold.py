"""`mlops init`: the scaffold a repository starts from."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from mlgitops.errors import InputError
from mlgitops.report.render import environment
from mlgitops.plan.store import atomic_write

WORKFLOW = Path(".github/workflows/mlops.yml")
MONITOR_WORKFLOW = Path(".github/workflows/mlops-monitor.yml")
ACTION_REF = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)(/[\w./-]+)?@(?P<ref>[\w./-]+)$")
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
SHORT_SHA = re.compile(r"^[0-9a-f]{7,39}$")
BRANCH = re.compile(r"^[\w.-]+(/[\w.-]+)*$")  # written into the workflow's YAML as is
# An environment name becomes a job id (GitHub: a letter or _, then letters, digits, - or _)
# and a deploy.environments key (letters, digits, '_', '.', '-'): the names both accept.
ENVIRONMENT = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
RESERVED_JOBS = {"gate", "deploy", "chatops"}  # the workflow's other jobs
GITHUB_REMOTE = re.compile(r"^(?:https://(?:[^@/]+@)?github\.com/|git@github\.com:|ssh://git@github\.com/)(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+?)(?:\.git)?/?$")
RESOLVE_TIMEOUT = 30.0  # seconds for `git ls-remote`; a hung network must not hang init


def default_registry(root: Path) -> str | None:
    """GitHub's container registry for a repository whose origin is on github.com
    (``oci://ghcr.io/owner/repo/models``: the job's GITHUB_TOKEN pushes there, so a
    GitHub repository needs no cloud account); None (the folder) otherwise."""
    proc = subprocess.run(["git", "remote", "get-url", "origin"], cwd=root, capture_output=True, text=True, timeout=RESOLVE_TIMEOUT)
    m = GITHUB_REMOTE.match(proc.stdout.strip()) if proc.returncode == 0 else None
    return f"oci://ghcr.io/{m['owner'].lower()}/{m['repo'].lower()}/models" if m else None


def promotions(environments: list[str]) -> list[dict[str, str]]:
    """The workflow's manual promotion jobs: each environment after the first is
    promoted from the one before it, in a job held by its GitHub Environment."""
    if not environments:
        raise InputError("--environments names no environment", hint="e.g. --environments staging,production")
    for name in environments:
        if not ENVIRONMENT.match(name):
            raise InputError(f"--environments: {name!r} is not an environment name (letters, digits, '_', '-'; starting with a letter)", hint="e.g. --environments staging,production")
    if len(set(environments)) != len(environments):
        raise InputError(f"--environments {','.join(environments)}: an environment is named twice", hint="e.g. --environments staging,production")
    return [{"source": a, "to": b, "job": b if b not in RESERVED_JOBS else f"promote-{b}"} for a, b in zip(environments, environments[1:])]


def write_scaffold(root: Path, data: str, target: str, action_ref: str, force: bool, branch: str = "main", registry: str = "auto", environments: tuple[str, ...] = ("staging", "production"), workspace: bool = False) -> list[tuple[Path, bool]]:
    """Write mlops.yaml and the workflows; existing files are kept unless ``force``.

    ``workspace``: mlops-workspace.yaml listing ``models/*/mlops.yaml``, a first model at
    ``models/<name>/mlops.yaml`` when none is there yet, and the workflow for every
    model (``config: mlops-workspace.yaml``); its manual promotion jobs take the model
    as a ``model-config`` input (default: the first model), and no monitor workflow is
    written (it watches one model).

    The workflows pin the actions to a full commit sha: a tag or branch in
    ``action_ref`` is resolved with ``git ls-remote`` (only when a workflow is written).
    ``registry``: "auto" (:func:`default_registry`), a URL, or a folder.
    """
    from mlgitops.deploy.registry.urls import open_backend

    url = default_registry(root) if registry == "auto" else registry
    if url is not None and url != ".mlops/registry":
        open_backend(url, root)  # a malformed URL or unknown scheme is refused before anything is written
        if "\n" in url or "'" in url or '"' in url or "#" in url:
            raise InputError(f"--registry {url!r} cannot be written into mlops.yaml as is", hint="e.g. --registry s3://my-bucket/models")
    else:
        url = None
    packages = bool(url and url.startswith("oci://ghcr.io/"))  # the jobs that push get `packages: write`
    match = ACTION_REF.match(action_ref)
    if not match:
        raise InputError(f"--action-ref {action_ref!r} is not OWNER/REPO[/PATH]@REF", hint="e.g. acme/mlgitops/actions/pull-request@v1")
    promoted = promotions(list(environments))
    if not BRANCH.match(branch):
        raise InputError(f"--branch {branch!r} is not a branch name", hint="e.g. --branch main")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", root.resolve().name).strip("-.") or "model"
    model = Path("mlops.yaml")
    wanted = [model, WORKFLOW, MONITOR_WORKFLOW]
    model_config = None  # a workspace's promotion jobs: the model-config input's default
    if workspace:
        from mlgitops.config.workspace import WORKSPACE_FILE

        model = Path("models") / name / "mlops.yaml"
        existing = sorted(p.relative_to(root).as_posix() for p in root.glob("models/*/mlops.yaml"))
        wanted = [Path(WORKSPACE_FILE)] + ([model] if not existing else []) + [WORKFLOW]
        model_config = existing[0] if existing else model.as_posix()  # the promotion jobs' default model
    written = [rel for rel in wanted if force or not (root / rel).exists()]
    env = environment()
    files: dict[Path, str] = {}
    if workspace:
        files[wanted[0]] = env.get_template("init_workspace.yaml.j2").render()
    if model in written:
        files[model] = env.get_template("init_mlops.yaml.j2").render(name=name, data=data, target=target, registry_url=url, schema_url=schema_url(match["repo"], match["ref"]), environments=list(environments))
    if WORKFLOW in written or MONITOR_WORKFLOW in written:
        sha = pin(match["repo"], match["ref"])
        uses, _, ref = action_ref.rpartition("@")
        comment = "" if sha == ref else f" # {ref}"  # the tag a reader (and Dependabot) updates

        def pinned(name: str | None) -> str:
            return f"{sibling(uses, name) if name else uses}@{sha}{comment}"

        files[WORKFLOW] = env.get_template("init_workflow.yml.j2").render(action_ref=pinned(None), deploy_ref=pinned("deploy"), chatops_ref=pinned("chatops"), config=wanted[0].as_posix() if workspace else "mlops.yaml", branch=branch, packages=packages, promotions=promoted, model_config=model_config)
        files[MONITOR_WORKFLOW] = env.get_template("init_monitor.yml.j2").render(monitor_ref=pinned("monitor"), current="data/recent.csv", packages=packages)
    out = []
    for rel in wanted:
        if rel not in written:
            out.append((rel, False))
            continue
        atomic_write(root / rel, files[rel])
        out.append((rel, True))
    return out


def pin(repo: str, ref: str) -> str:
    """The full commit sha ``ref`` names in GitHub repository ``repo`` (a sha is kept).

    A tag can be moved by whoever controls the action's repository; a commit sha
    cannot, so the workflows `mlops init` writes never name a tag (zizmor's
    ``unpinned-uses``). ``GITHUB_SERVER_URL`` (GitHub Enterprise) replaces github.com.
    """
    if FULL_SHA.match(ref):
        return ref
    url = f"{os.environ.get('GITHUB_SERVER_URL', 'https://github.com').rstrip('/')}/{repo}"
    hint = f"pass the full 40-character commit sha after the @ (`git ls-remote {url} {ref}` prints it)"
    if SHORT_SHA.match(ref):
        raise InputError(f"--action-ref: {ref!r} looks like a shortened commit sha; GitHub Actions needs all 40 characters", hint=hint)
    # No credential prompt: GitHub answers an unknown repository with an auth challenge.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "SSH_ASKPASS": "true"}
    try:
        proc = subprocess.run(["git", "ls-remote", "--", url, ref, f"{ref}^{{}}"], capture_output=True, text=True, timeout=RESOLVE_TIMEOUT, env=env, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"--action-ref: could not resolve {ref!r} to a commit of {url}: {exc}", hint=hint) from None
    refs = {name: sha for sha, _, name in (line.partition("\t") for line in proc.stdout.splitlines())}
    # An annotated tag's own object is not a commit: prefer its peeled `^{}` line
    # (asked for by name above: ls-remote matches patterns against whole ref names).
    for name in (f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}", f"refs/heads/{ref}"):
        if FULL_SHA.match(refs.get(name, "")):
            return refs[name]
    errors = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    # git's first `fatal:` line says what went wrong; the lines after it are boilerplate.
    why = next((line for line in errors if line.startswith("fatal:")), errors[0] if errors else "") if proc.returncode else ""
    why = why or "no such tag or branch"
    raise InputError(f"--action-ref: could not resolve {ref!r} to a commit of {url}: {why}", hint=hint)


def schema_url(repo: str, ref: str) -> str:
    """Where an editor finds the JSON Schema of mlops.yaml (schema/mlops.schema.json,
    kept equal to `mlops schema` by tests/test_conventions.py) at the action's ref:
    the schema of the version the workflow runs. The ref is written as given (a tag
    is not resolved: the modeline is for completion, not a security boundary)."""
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    if server == "https://github.com":
        return f"https://raw.githubusercontent.com/{repo}/{ref}/schema/mlops.schema.json"
    return f"{server}/{repo}/raw/{ref}/schema/mlops.schema.json"  # GitHub Enterprise Server


def sibling(uses: str, name: str) -> str:
    """OWNER/REPO/actions/<name> beside OWNER/REPO/actions/pull-request (no ref)."""
    return f"{uses.removesuffix('/pull-request')}/{name}" if uses.endswith("/pull-request") else f"{uses}/actions/{name}"
