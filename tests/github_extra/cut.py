"""Cut GitHub's own OpenAPI description down to the operations the shared subset lacks.

The shared material (../shared/github/openapi/api.github.com.subset.json) is a cut of
npm ``@octokit/openapi@23.0.2``; it has no collaborator-permission, reaction or
issue list/create/edit operations, which ChatOps and the monitor's issue need. This
script takes the same package, the same version, and writes the same kind of
self-contained cut (the operations plus every component they reference) to
``api.github.com.extra.json``. The stand-in merges both.

Reproduce (the npm registry is reachable here; GitHub is not)::

    npm pack @octokit/openapi@23.0.2 && tar xzf octokit-openapi-23.0.2.tgz
    python tests/github_extra/cut.py package/generated/api.github.com.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OPERATIONS = {
    "/repos/{owner}/{repo}/collaborators/{username}/permission": ["get"],
    "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions": ["post"],
    "/repos/{owner}/{repo}/issues": ["get", "post"],
    "/repos/{owner}/{repo}/issues/{issue_number}": ["patch"],
}


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
    paths = {p: {m: doc["paths"][p][m] for m in methods} for p, methods in OPERATIONS.items()}
    components: dict[str, dict[str, Any]] = {}
    pending, seen = refs(paths), set()
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
        "info": {**doc["info"], "description": "A cut of GitHub's REST description (@octokit/openapi 23.0.2, MIT): the operations in OPERATIONS of tests/github_extra/cut.py and the components they reference."},
        "servers": doc.get("servers", []),
        "paths": paths,
        "components": {k: dict(sorted(v.items())) for k, v in sorted(components.items())},
    }


if __name__ == "__main__":
    source = json.loads(Path(sys.argv[1]).read_text())
    out = Path(__file__).with_name("api.github.com.extra.json")
    out.write_text(json.dumps(cut(source), indent=1, sort_keys=False) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes)")
