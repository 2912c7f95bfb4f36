"""The embedded default forge: comments and statuses as files under `.mlops/forge/`.

Layout (stable, other tools may read it):

* ``.mlops/forge/<pr>/comments.json`` - the PR's comments, like GitHub's issue comments
* ``.mlops/forge/<pr>/comment.md`` - our comment's latest body, for reading
* ``.mlops/forge/statuses/<sha>.json`` - commit statuses by context
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ..store import MLOPS_DIR, atomic_write
from . import GATE_CONTEXT, CommentRef

if TYPE_CHECKING:
    from ..events import Event

STATES = ("pending", "success", "failure", "error")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class LocalForge:
    name = "local"
    shows_pending = False

    def __init__(self, root: Path) -> None:
        self.dir = root / MLOPS_DIR / "forge"

    def comment_path(self, pr_key: str) -> Path:
        return self.dir / pr_key / "comment.md"

    def comments(self, pr_key: str) -> list[dict]:
        path = self.dir / pr_key / "comments.json"
        return json.loads(path.read_text()) if path.is_file() else []

    def upsert_comment(self, event: "Event", marker: str, body: str) -> CommentRef:
        pr_key = event.pr_key
        comments = self.comments(pr_key)
        mine = next((c for c in comments if marker in c["body"]), None)
        if mine is None:
            mine = {"id": max((c["id"] for c in comments), default=0) + 1, "created_at": _now(), "body": body}
            comments.append(mine)
            created = True
        else:
            created = False
        mine.update(body=body, updated_at=_now())
        atomic_write(self.dir / pr_key / "comments.json", json.dumps(comments, indent=2))
        atomic_write(self.comment_path(pr_key), body)
        return CommentRef(mine["id"], self.comment_path(pr_key).as_uri(), created)

    def statuses(self, sha: str) -> dict:
        path = self.dir / "statuses" / f"{sha}.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def set_status(self, sha: str, state: str, description: str, summary: str | None = None, context: str = GATE_CONTEXT) -> None:
        if state not in STATES:
            raise ValueError(f"unknown status state {state!r}")
        statuses = self.statuses(sha)
        statuses[context] = {"state": state, "description": description[:140], "updated_at": _now()}
        atomic_write(self.dir / "statuses" / f"{sha}.json", json.dumps(statuses, indent=2))
