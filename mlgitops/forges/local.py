"""The embedded default forge: comments and statuses as files under `.mlops/forge/`.

Layout (stable, other tools may read it):

* ``.mlops/forge/<pr>/comments.json`` - the PR's comments, like GitHub's issue comments
* ``.mlops/forge/<pr>/comment.md`` - our comment's latest body, for reading
* ``.mlops/forge/statuses/<sha>.json`` - commit statuses by context
* ``.mlops/forge/<pr>/reactions.json`` - reactions to comments (ChatOps), by comment id
* ``.mlops/forge/collaborators.json`` - ``{"login": "admin|write|read|none"}``, who may
  run ChatOps commands; without it the clone's owner is everyone (see ``permission``)
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from mlgitops.plan.store import MLOPS_DIR, atomic_write
from mlgitops.forges import BODY_LIMIT, GATE_CONTEXT, STATUS_DESCRIPTION_LIMIT, TITLE_LIMIT, CommentRef, fit

if TYPE_CHECKING:
    from mlgitops.events.payloads import Event
    from mlgitops.forges import IssueRef, PullRef

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
        body = fit(body, BODY_LIMIT)  # GitHub's limits here too, so a local run shows what GitHub would
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

    # -- ChatOps ----------------------------------------------------------------
    def permission(self, login: str) -> str:
        """From ``collaborators.json``; without that file whoever can run mlops on this
        clone can already push to it, so every sender counts as ``admin``."""
        path = self.dir / "collaborators.json"
        if not path.is_file():
            return "admin"
        from mlgitops.errors import InputError

        try:
            people = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}", hint='write {"login": "write", ...}') from None
        if not isinstance(people, dict):
            raise InputError(f"{path}: expected an object of login -> permission", hint='write {"login": "write", ...}')
        return str(people.get(login, "none"))

    def pull_info(self, number: int) -> dict:
        """The local forge has no PR records for comments: the checkout is the PR's head."""
        from mlgitops.gitrepo import current_branch, resolve

        root = self.dir.parents[1]
        return {"number": number, "head_sha": resolve(root, "HEAD"), "head_ref": current_branch(root), "base_sha": None, "base_ref": None, "head_repo": None, "fork": False, "state": "open", "url": self.comment_path(f"pr-{number}").as_uri()}

    def react(self, number: int, comment_id: int, content: str) -> None:
        path = self.dir / f"pr-{number}" / "reactions.json"
        given = json.loads(path.read_text()) if path.is_file() else {}
        mine = given.setdefault(str(comment_id), [])
        if content not in mine:  # like GitHub: one reaction of a kind per user
            mine.append(content)
        atomic_write(path, json.dumps(given, indent=2))

    def reply(self, number: int, body: str, key: str | None = None) -> str | None:
        """A new comment (``key`` matters only where answers can be lost: GitHub)."""
        pr = f"pr-{number}"
        comments = self.comments(pr)
        comments.append({"id": max((c["id"] for c in comments), default=0) + 1, "created_at": _now(), "updated_at": _now(), "body": fit(body, BODY_LIMIT), "author": "mlops"})
        atomic_write(self.dir / pr / "comments.json", json.dumps(comments, indent=2))
        return (self.dir / pr / "comments.json").as_uri()

    def statuses(self, sha: str) -> dict:
        path = self.dir / "statuses" / f"{sha}.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def set_status(self, sha: str, state: str, description: str, summary: str | None = None, context: str = GATE_CONTEXT) -> None:
        if state not in STATES:
            raise ValueError(f"unknown status state {state!r}")
        statuses = self.statuses(sha)
        statuses[context] = {"state": state, "description": fit(description, STATUS_DESCRIPTION_LIMIT), "updated_at": _now()}
        atomic_write(self.dir / "statuses" / f"{sha}.json", json.dumps(statuses, indent=2))


class LocalRepoForge:
    """Promotion PRs as local git branches, recorded under ``.mlops/forge/pulls.json``.

    The branch is built with git plumbing (a temporary index, ``commit-tree`` and
    ``update-ref``), so the user's checkout and working tree are never touched. A
    PR counts as merged once its head commit is reachable from its base branch.
    """

    name = "local"

    def __init__(self, root: Path, branch: str | None = None) -> None:
        self.root = root
        self.dir = root / MLOPS_DIR / "forge"
        self._branch = branch

    def _git(self, *args: str, env: dict[str, str] | None = None, input: str | None = None, check: bool = True) -> str:
        import os
        import subprocess

        from mlgitops.errors import GitError

        proc = subprocess.run(["git", *args], cwd=self.root, capture_output=True, text=True, input=input, env={**os.environ, **(env or {})})
        if check and proc.returncode != 0:
            raise GitError(f"git {' '.join(args)} failed in {self.root}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def default_branch(self) -> str:
        """The configured branch, else origin's HEAD, else init.defaultBranch, main or
        master, whichever exists; never simply the branch checked out."""
        from mlgitops.errors import GitError

        if self._branch:
            return self._branch
        origin = self._git("symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD", check=False).removeprefix("origin/")
        configured = self._git("config", "--get", "init.defaultBranch", check=False)
        for candidate in (origin, configured, "main", "master"):
            if candidate and self._git("rev-parse", "--verify", "--quiet", f"refs/heads/{candidate}", check=False):
                return candidate
        raise GitError(f"{self.root}: cannot tell the default branch (no origin/HEAD, no main or master)", hint="name it in mlops.yaml: deploy.environments.<env>.branch")

    def read_file(self, branch: str, path: str) -> str | None:
        import subprocess

        proc = subprocess.run(["git", "show", f"{branch}:{path}"], cwd=self.root, capture_output=True)
        return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else None

    def pulls(self) -> list[dict]:
        path = self.dir / "pulls.json"
        pulls = json.loads(path.read_text()) if path.is_file() else []
        for pull in pulls:
            if pull["state"] == "open" and self._merged(pull):
                pull["state"] = "merged"
        return pulls

    def _merged(self, pull: dict) -> bool:
        import subprocess

        proc = subprocess.run(["git", "merge-base", "--is-ancestor", pull["head_sha"], f"refs/heads/{pull['base']}"], cwd=self.root, capture_output=True)
        return proc.returncode == 0

    def open_pulls(self, head: str) -> list[dict]:
        return [p for p in self.pulls() if p["state"] == "open" and p["head"] == head]

    def _blob(self, content: str | bytes) -> str:
        import subprocess

        data = content.encode() if isinstance(content, str) else content
        proc = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=self.root, input=data, capture_output=True, check=True)
        return proc.stdout.decode().strip()

    # -- issues (the monitor's one issue per model) ---------------------------------
    def issues(self) -> list[dict]:
        path = self.dir / "issues.json"
        return json.loads(path.read_text()) if path.is_file() else []

    def issue_path(self, number: int) -> Path:
        return self.dir / "issues" / f"{number}.md"

    def upsert_issue(self, marker: str, title: str, body: str) -> "IssueRef":
        """Edit the open issue holding ``marker`` or open one; never two."""
        from mlgitops.forges import IssueRef

        title, body = fit(title, TITLE_LIMIT), fit(body, BODY_LIMIT)
        issues = self.issues()
        mine = next((i for i in issues if i["state"] == "open" and marker in i.get("marker", "")), None)
        created = mine is None
        if mine is None:
            mine = {"number": max((i["number"] for i in issues), default=0) + 1, "state": "open", "marker": marker, "created_at": _now(), "updates": 0}
            issues.append(mine)
        else:
            mine["updates"] = mine.get("updates", 0) + 1
        mine.update(title=title, updated_at=_now(), url=self.issue_path(mine["number"]).as_uri())
        atomic_write(self.issue_path(mine["number"]), f"# {title}\n\n{body}")
        atomic_write(self.dir / "issues.json", json.dumps(issues, indent=2))
        return IssueRef(mine["number"], mine["url"], created)

    def close_pull(self, number: int, comment: str) -> None:
        pulls = self.pulls()
        for pull in pulls:
            if pull["number"] == number and pull["state"] == "open":
                pull.update(state="closed", updated_at=_now())
                path = self.pull_path(number)
                atomic_write(path, (path.read_text() if path.is_file() else "") + f"\n\n---\nClosed by mlops: {comment}\n")
        atomic_write(self.dir / "pulls.json", json.dumps(pulls, indent=2))

    def pull_path(self, number: int) -> Path:
        return self.dir / "pulls" / f"{number}.md"

    def upsert_pull(self, base: str, head: str, files: dict[str, str | bytes], title: str, body: str) -> "PullRef":
        import os
        import tempfile

        from mlgitops.forges import PullRef

        title, body = fit(title, TITLE_LIMIT), fit(body, BODY_LIMIT)
        base_sha = self._git("rev-parse", "--verify", f"refs/heads/{base}^{{commit}}")
        fd, index = tempfile.mkstemp(prefix="mlops-index-")
        os.close(fd)
        try:
            env = {"GIT_INDEX_FILE": index}
            self._git("read-tree", base_sha, env=env)
            for path, text in files.items():
                blob = self._blob(text)
                self._git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            tree = self._git("write-tree", env=env)
        finally:
            Path(index).unlink(missing_ok=True)
        current = self._git("rev-parse", "--verify", "--quiet", f"refs/heads/{head}", check=False)
        pulls = self.pulls()
        mine = next((p for p in pulls if p["head"] == head and p["state"] == "open"), None)
        unchanged = bool(current) and self._git("rev-parse", f"{current}^{{tree}}") == tree and self._git("rev-parse", f"{current}^") == base_sha
        if unchanged and mine is not None:
            commit = current
        else:
            from mlgitops.errors import GitError

            worktrees = self._git("worktree", "list", "--porcelain", check=False).splitlines()
            if f"branch refs/heads/{head}" in worktrees:
                raise GitError(f"branch {head} is checked out in a worktree; updating the PR would move it under your files", hint=f"switch away from {head} (e.g. `git checkout {base}`) and run again")
            commit = self._git("commit-tree", tree, "-p", base_sha, "-m", title, env={"GIT_AUTHOR_NAME": "mlops", "GIT_AUTHOR_EMAIL": "mlops@localhost", "GIT_COMMITTER_NAME": "mlops", "GIT_COMMITTER_EMAIL": "mlops@localhost"})
            # compare-and-swap: fail rather than overwrite a branch someone moved meanwhile
            self._git("update-ref", f"refs/heads/{head}", commit, current or "0" * 40)
        created = mine is None
        if mine is None:
            mine = {"number": max((p["number"] for p in pulls), default=0) + 1, "base": base, "head": head, "state": "open", "created_at": _now()}
            pulls.append(mine)
        mine.update(title=title, head_sha=commit, base_sha=base_sha, updated_at=_now())
        atomic_write(self.pull_path(mine["number"]), f"# {title}\n\n{body}")
        mine["url"] = self.pull_path(mine["number"]).as_uri()
        atomic_write(self.dir / "pulls.json", json.dumps(pulls, indent=2))
        return PullRef(mine["number"], mine["url"], created, not unchanged)
