"""Rebuild tests/github/ from the registry packages, and check it against SHA256SUMS.

The tests never run this: they read the committed files. Run it by hand to show the
material is what the packages publish, or to refresh it after a version bump::

    python tests/github/fetch.py            # rebuild in a temp dir, compare, change nothing
    python tests/github/fetch.py --write    # rebuild and overwrite tests/github/

It needs `npm` and `pip` (the npm registry and PyPI; nothing else is reached):

- npm ``@octokit/webhooks-examples@7.6.1`` (MIT): ``api.github.com/index.json`` holds,
  per event, the examples of octokit/webhooks ``payload-examples/api.github.com/<event>/``
  after one leading example, in the files' sorted order; the package has no file names,
  so EXAMPLES below names them. Each is written as the repository writes it: compact
  JSON run through prettier (npm ``prettier@3.10.1``, default options).
- npm ``@octokit/openapi@23.0.2`` (MIT): ``generated/api.github.com.json`` cut to PATHS plus
  SEEDS (error responses and headers the tests use) and every component they reference.
- PyPI ``PyGithub==2.10.0`` sdist (LGPL-3.0): ``tests/ReplayData/<name>.txt`` for REPLAY,
  with ``COPYING`` and ``COPYING.LESSER``.

Two files come from no package and are kept as committed (their sums are still
checked): ``webhooks/octokit-webhooks/LICENSE`` (the octokit/webhooks repository's MIT
licence; the npm tarball ships none), and ``signatures/hmac-test-vector.json`` (GitHub's
docs, validating-webhook-deliveries), see README.md. Two examples differ between the npm
package and the repository commit the material was taken from (3a58428a): the
repository's ``workflow_dispatch/payload.json`` has ``inputs`` and
``repository_dispatch/payload.json`` a ``client_payload`` where the package has ``{}``;
OVERRIDES restores them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OPENAPI = "@octokit/openapi@23.0.2"
EXAMPLES_PACKAGE = "@octokit/webhooks-examples@7.6.1"
PRETTIER = "prettier@3.10.1"
PYGITHUB = "PyGithub==2.10.0"
KEPT = ["webhooks/octokit-webhooks/LICENSE", "signatures/hmac-test-vector.json"]

EXAMPLES = {
    "check_run": ["completed.1.payload.json", "completed.payload.json", "completed.with-organization.payload.json", "created.payload.json", "created.with-organization.payload.json", "requested_action.payload.json", "rerequested.payload.json", "rerequested.with-organization.payload.json"],
    "check_suite": ["completed.1.payload.json", "completed.payload.json", "completed.with-organization.payload.json", "requested.payload.json", "requested.payload.with-email-with-special-characters.json", "requested.with-organization.payload.json", "rerequested.payload.json", "rerequested.with-organization.payload.json"],
    "create": ["payload.json", "with-description.payload.json", "with-installation.payload.json", "with-organization.payload.json"],
    "delete": ["payload.json", "with-installation.payload.json", "with-organization.payload.json"],
    "issue_comment": ["created.1.payload.json", "created.payload.json", "created.with-installation.payload.json", "created.with-organization.payload.json", "deleted.payload.json", "deleted.with-organization.payload.json", "edited.payload.json", "edited.with-organization.payload.json"],
    "merge_group": ["checks_requested.payload.json"],
    "ping": ["payload.json", "with-app_id.payload.json", "with-organization.payload.json"],
    "pull_request": ["assigned.payload.json", "assigned.with-organization.payload.json", "closed.payload.json", "closed.with-organization.payload.json", "converted_to_draft.payload.json", "converted_to_draft.with-installation.payload.json", "converted_to_draft.with-organization.payload.json", "labeled.payload.json", "labeled.with-organization.payload.json", "locked.payload.json", "locked.with-organization.payload.json", "opened.payload.json", "opened.with-null-body.json", "opened.with-organization.payload.json", "ready_for_review.payload.json", "ready_for_review.with-installation.payload.json", "ready_for_review.with-organization.payload.json", "reopened.payload.json", "reopened.with-organization.payload.json", "review_request_removed.payload.json", "review_requested.payload.json", "synchronize.payload.json", "unassigned.payload.json", "unassigned.with-organization.payload.json", "unlabeled.payload.json", "unlabeled.with-organization.payload.json", "unlocked.payload.json", "unlocked.with-organization.payload.json"],
    "push": ["1.payload.json", "payload.json", "with-installation.payload.json", "with-new-branch.payload.json", "with-no-username-committer.payload.json", "with-organization.payload.json"],
    "repository_dispatch": ["payload.json"],
    "status": ["payload.json", "with-author-committer-null.payload.json", "with-installation.payload.json"],
    "workflow_dispatch": ["payload.json"],
    "workflow_run": ["completed.payload.json", "completed.with-pull-requests.payload.json", "requested.payload.json", "requested.with-conclusion.payload.json"],
}
OVERRIDES: dict[str, dict[str, Any]] = {
    "workflow_dispatch/payload.json": {"inputs": {"name": "Mona the Octocat"}},
    "repository_dispatch/payload.json": {"client_payload": {"unit": False, "integration": True}},
}

PATHS = {
    "/repos/{owner}/{repo}": ["get"],
    "/repos/{owner}/{repo}/issues/{issue_number}/comments": ["get", "post"],
    "/repos/{owner}/{repo}/issues/comments/{comment_id}": ["get", "patch", "delete"],
    "/repos/{owner}/{repo}/issues/{issue_number}": ["get"],
    "/repos/{owner}/{repo}/issues/{issue_number}/labels": ["get", "post"],
    "/repos/{owner}/{repo}/statuses/{sha}": ["post"],
    "/repos/{owner}/{repo}/commits/{ref}/status": ["get"],
    "/repos/{owner}/{repo}/commits/{ref}/statuses": ["get"],
    "/repos/{owner}/{repo}/check-runs": ["post"],
    "/repos/{owner}/{repo}/check-runs/{check_run_id}": ["get", "patch"],
    "/repos/{owner}/{repo}/commits/{ref}/check-runs": ["get"],
    "/repos/{owner}/{repo}/pulls": ["get", "post"],
    "/repos/{owner}/{repo}/pulls/{pull_number}": ["get", "patch"],
    "/repos/{owner}/{repo}/pulls/{pull_number}/merge": ["get", "put"],
    "/repos/{owner}/{repo}/pulls/{pull_number}/files": ["get"],
    "/repos/{owner}/{repo}/commits/{commit_sha}/pulls": ["get"],
    "/repos/{owner}/{repo}/commits/{ref}": ["get"],
    "/repos/{owner}/{repo}/git/refs": ["post"],
    "/repos/{owner}/{repo}/git/ref/{ref}": ["get"],
    "/repos/{owner}/{repo}/git/refs/{ref}": ["patch", "delete"],
    "/repos/{owner}/{repo}/git/commits": ["post"],
    "/repos/{owner}/{repo}/git/commits/{commit_sha}": ["get"],
    "/repos/{owner}/{repo}/git/trees": ["post"],
    "/repos/{owner}/{repo}/git/blobs": ["post"],
    "/repos/{owner}/{repo}/contents/{path}": ["get", "put", "delete"],
    "/repos/{owner}/{repo}/branches/{branch}": ["get"],
    "/repos/{owner}/{repo}/dispatches": ["post"],
    "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches": ["post"],
    "/rate_limit": ["get"],
    "/user": ["get"],
}
SEEDS = {
    "#/components/headers/content-type",
    "#/components/headers/location",
    "#/components/headers/x-common-marker-version",
    "#/components/responses/bad_request",
    "#/components/responses/validation_failed_simple",
}
SUBSET_NOTE = "Subset of paths (selected methods) and the transitive closure of their #/components refs, cut from @octokit/openapi generated/api.github.com.json; otherwise unmodified."

REPLAY = [
    "CheckRun.testCreateCheckRunCompleted",
    "CheckRun.testCreateCheckRunInProgress",
    "CheckRun.testUpdateCheckRunFailure",
    "CheckRun.testUpdateCheckRunSuccess",
    "Commit.testCreateStatusWithAllParameters",
    "Commit.testCreateStatusWithoutOptionalParameters",
    "Commit.testGetPulls",
    "Issue.testCreateComment",
    "Issue.testGetComments",
    "IssueComment.testDelete",
    "IssueComment.testEdit",
    "PullRequest.testGetIssueComments",
    "SpecificExceptions.testBadCredentials",
]


def refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.add(node["$ref"])
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def cut(doc: dict[str, Any]) -> dict[str, Any]:
    paths = {p: {m: doc["paths"][p][m] for m in methods} for p, methods in PATHS.items()}
    components: dict[str, dict[str, Any]] = {}
    pending, seen = refs(paths) | SEEDS, set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, kind, name = ref.split("/", 3)
        target = doc["components"][kind][name]
        components.setdefault(kind, {})[name] = target
        pending |= refs(target) - seen
    return {
        "openapi": doc["openapi"],
        "info": {**doc["info"], "x-subset-note": SUBSET_NOTE},
        "servers": doc["servers"],
        "paths": paths,
        "components": {k: dict(sorted(v.items())) for k, v in sorted(components.items())},
    }


def run(*args: str, cwd: Path) -> None:
    subprocess.run(list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def member(archive: Path, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        handle = tar.extractfile(name)
        assert handle is not None, f"{archive.name} has no {name}"
        return handle.read()


def build(work: Path, out: Path) -> None:
    run("npm", "pack", "--silent", OPENAPI, EXAMPLES_PACKAGE, cwd=work)
    run(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", "-d", str(work), PYGITHUB, cwd=work)
    run("npm", "install", "--silent", "--no-save", "--no-audit", "--no-fund", "--prefix", str(work / "node"), PRETTIER, cwd=work)
    openapi_tgz = next(work.glob("octokit-openapi-*.tgz"))
    examples_tgz = next(work.glob("octokit-webhooks-examples-*.tgz"))
    sdist = next(work.glob("pygithub-*.tar.gz"))

    # Webhook examples: compact JSON, then prettier with its defaults (no config lookup).
    raw = work / "examples"
    index = {e["name"]: e["examples"] for e in json.loads(member(examples_tgz, "package/api.github.com/index.json"))}
    for event, names in EXAMPLES.items():
        published = index[event][1:]
        assert len(published) == len(names), f"{event}: the package has {len(published)} examples, EXAMPLES names {len(names)}"
        for name, payload in zip(names, published):
            payload = {**payload, **OVERRIDES.get(f"{event}/{name}", {})}
            target = raw / event / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    run(str(work / "node" / "node_modules" / ".bin" / "prettier"), "--no-config", "--no-editorconfig", "--parser", "json", "--write", str(raw), cwd=work)
    dest = out / "webhooks" / "octokit-webhooks" / "api.github.com"
    for source in sorted(raw.glob("*/*.json")):
        (dest / source.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest / source.parent.name / source.name)

    # The OpenAPI cut, written as the shared material was (indent 1, ASCII, no final newline).
    (out / "openapi").mkdir(parents=True, exist_ok=True)
    description = json.loads(member(openapi_tgz, "package/generated/api.github.com.json"))
    (out / "openapi" / "api.github.com.subset.json").write_text(json.dumps(cut(description), indent=1))
    (out / "openapi" / "LICENSE-octokit-openapi").write_bytes(member(openapi_tgz, "package/LICENSE"))

    # PyGithub's recorded exchanges and its licence.
    top = sdist.name.removesuffix(".tar.gz")
    (out / "pygithub-replaydata").mkdir(parents=True, exist_ok=True)
    for name in REPLAY:
        (out / "pygithub-replaydata" / f"{name}.txt").write_bytes(member(sdist, f"{top}/tests/ReplayData/{name}.txt"))
    for name in ("COPYING", "COPYING.LESSER"):
        (out / "pygithub-replaydata" / name).write_bytes(member(sdist, f"{top}/{name}"))

    for rel in KEPT:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HERE / rel, out / rel)


def sums() -> dict[str, str]:
    path = HERE / "SHA256SUMS"
    lines = path.read_text().splitlines() if path.is_file() else []
    return {rel: digest for digest, rel in (line.split("  ", 1) for line in lines)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="overwrite tests/github/ with the rebuilt files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work, out = Path(tmp), Path(tmp) / "out"
        build(work, out)
        built = {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*")) if p.is_file()}
        expected = sums()
        differ = sorted(rel for rel in built.keys() | expected.keys() if built.get(rel) != expected.get(rel))
        if args.write:
            for rel in built:
                (HERE / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(out / rel, HERE / rel)
            (HERE / "SHA256SUMS").write_text("".join(f"{digest}  {rel}\n" for rel, digest in sorted(built.items())))
            print(f"wrote {len(built)} files and SHA256SUMS into {HERE}")
            return 0
    for rel in differ:
        print(f"differs from SHA256SUMS: {rel}")
    print(f"{len(built) - len([r for r in differ if r in built])} of {len(built)} rebuilt files match SHA256SUMS byte for byte")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
