"""GitHub (and GitHub Enterprise) through PyGithub over HTTP.

* sticky comment: found by its hidden marker and edited; duplicates (two runs racing,
  or a POST retried after the server already created it) are folded into the oldest;
  a run for a commit that is no longer the PR's head leaves the comment alone;
* the gate as a commit status and a check run, both named ``mlops/gate``;
* retries on 5xx, 429 and secondary rate limits, honouring ``Retry-After``, bounded in
  count and wait (PyGithub's GithubRetry, capped), then a clear ForgeError.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..errors import EXIT_INTERNAL, EXIT_INVALID_INPUT, MlopsError
from . import GATE_CONTEXT, CommentRef

if TYPE_CHECKING:
    from ..events import Event
    from . import PullRef

DEFAULT_API_URL = "https://api.github.com"
ISSUE_LABEL = "mlops"  # the label our issues carry (GitHub creates it on first use)
CHECK_OUTPUT_LIMIT = 65_535  # characters GitHub accepts in a check run's output.summary
STATE_TO_CONCLUSION = {"success": "success", "failure": "failure", "error": "failure"}


class ForgeError(MlopsError):
    """GitHub could not be reached or refused us; the message says what to do."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, hint: str | None = None, status: int | None = None) -> None:
        super().__init__(message, hint)
        self.status = status  # GitHub's HTTP status, when GitHub answered


class ForgeAuthError(ForgeError):
    exit_code = EXIT_INVALID_INPUT


class ReadOnly(ForgeError):
    """The token may not write (e.g. a pull request from a fork)."""

    exit_code = EXIT_INVALID_INPUT


class WaitTooLong(Exception):
    """GitHub asked us to wait longer than this run's budget: stop now rather than
    retry before the time GitHub named (its rate-limit rules forbid that)."""


def make_retry(total: int = 4, max_wait: float = 30.0) -> Any:
    """PyGithub's retry (secondary rate limits, 5xx) plus 429 and PATCH, bounded."""
    from github.GithubRetry import GithubRetry
    from urllib3.util.retry import Retry

    class BoundedRetry(GithubRetry):
        def get_retry_after(self, response: Any) -> float | None:  # urllib3 hook: 429/503 Retry-After
            after = super().get_retry_after(response)
            if after is None and response.status == 429:
                # GitHub's rules: no Retry-After -> wait for x-ratelimit-reset when the
                # primary limit is spent, else at least one minute.
                reset = response.headers.get("x-ratelimit-reset")
                if response.headers.get("x-ratelimit-remaining") == "0" and reset and reset.isdigit():
                    after = max(0.0, int(reset) - time.time())
                else:
                    after = 60.0
            if after is not None and after > max_wait:
                raise WaitTooLong(f"GitHub asked to wait {after:.0f} s before retrying (Retry-After), more than the {max_wait:.0f} s this run allows")
            return after

    return BoundedRetry(
        total=total,
        backoff_factor=0.5,
        backoff_max=max_wait,
        secondary_rate_wait=min(60.0, max_wait),
        max_rate_limit_wait=max_wait,
        status_forcelist=[429, *range(500, 600)],
        # Editing the sticky comment and completing the check run are PATCHes; GitHub
        # applies them idempotently, so they are as safe to retry as PUT.
        allowed_methods=Retry.DEFAULT_ALLOWED_METHODS | {"GET", "POST", "PATCH"},
        raise_on_status=False,
    )


class GitHubForge:
    name = "github"
    shows_pending = True

    def __init__(
        self,
        repo: str,
        token: str,
        api_url: str | None = None,
        retries: int = 4,
        max_wait: float = 30.0,
        timeout: int = 20,
        seconds_between_writes: float = 1.0,
        seconds_between_requests: float = 0.25,
        branch: str | None = None,
    ) -> None:
        from github import Auth, Github

        self.repo_name = repo
        self._branch = branch
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        # PyGithub's default spacing follows GitHub's advice against secondary rate
        # limits (serial requests, >= 1 s between writes); tests pass 0.
        self.gh = Github(
            base_url=self.api_url,
            auth=Auth.Token(token),
            retry=make_retry(retries, max_wait),
            timeout=timeout,
            per_page=100,
            seconds_between_requests=seconds_between_requests,
            seconds_between_writes=seconds_between_writes,
        )
        self._repo: Any = None
        self._check_runs: dict[str, Any] = {}
        self._issues: dict[int, Any] = {}
        self.checks_enabled = True
        self.warnings: list[str] = []

    # -- plumbing ---------------------------------------------------------------
    @property
    def repo(self) -> Any:
        if self._repo is None:
            self._repo = self._call("read the repository", lambda: self.gh.get_repo(self.repo_name))
        return self._repo

    def _call(self, what: str, fn: Any) -> Any:
        from github.GithubException import BadCredentialsException, GithubException, RateLimitExceededException

        try:
            return fn()
        except MlopsError:
            raise  # already explained by an inner call
        except BadCredentialsException:
            raise ForgeAuthError(f"GitHub rejected the token while trying to {what} (401 Bad credentials)", hint="set GITHUB_TOKEN (or --token) to a valid token for this repository") from None
        except RateLimitExceededException as exc:
            raise ForgeError(f"GitHub's rate limit stopped us while trying to {what}: {_message(exc)}", hint="wait for the limit to reset, or use a token with a higher limit") from None
        except GithubException as exc:
            if _is_permission(exc):
                raise ReadOnly(f"the token may not {what} ({exc.status}: {_message(exc)})") from None
            if exc.status == 404:
                raise ForgeError(f"GitHub answered 404 Not Found while trying to {what}: {_message(exc)}", hint="check GITHUB_REPOSITORY, the PR number and GITHUB_API_URL (Enterprise: https://HOST/api/v3); a token without access also sees 404", status=404) from None
            raise ForgeError(f"GitHub answered {exc.status} while trying to {what}: {_message(exc)}", hint="retried already; check https://www.githubstatus.com or GITHUB_API_URL", status=exc.status) from None
        except Exception as exc:  # requests/urllib3: connection refused, retries exhausted, timeouts
            name = type(exc).__name__
            text = str(exc).split("(Caused by", 1)[0].strip()
            raise ForgeError(f"could not reach GitHub at {self.api_url} to {what}: {name}: {text}", hint="check GITHUB_API_URL and the network; the request was retried") from None

    # -- comments ---------------------------------------------------------------
    def _me(self) -> str | None:
        """Our login, when the token may read it (an Actions/App token may not: None)."""
        if not hasattr(self, "_login"):
            from github.GithubException import GithubException

            try:
                self._login: str | None = self.gh.get_user().login
            except GithubException:
                self._login = None
        return self._login

    def _ours(self, comment: Any) -> bool:
        """Only our own comments count: anyone can paste the marker into theirs."""
        user = comment.user
        if user is None:
            return False
        me = self._me()
        return user.login == me if me else user.type == "Bot"

    def _marked(self, number: int, marker: str) -> list[Any]:
        comments = self._call("list the PR's comments", lambda: list(self._issue(number).get_comments()))
        return sorted((c for c in comments if marker in (c.body or "") and self._ours(c)), key=lambda c: c.id)

    def _issue(self, number: int) -> Any:
        if number not in self._issues:
            self._issues[number] = self._call("read the pull request", lambda: self.repo.get_issue(number))
        return self._issues[number]

    def upsert_comment(self, event: "Event", marker: str, body: str) -> CommentRef:
        try:
            return self._upsert(event, marker, body)
        except ForgeError as exc:
            # By status, never by text: the API URL's port may read "404".
            if exc.status != 404:
                raise
            # The comment we meant to edit was deleted meanwhile (a racing run folded
            # it away): look again, once.
            return self._upsert(event, marker, body)

    def _upsert(self, event: "Event", marker: str, body: str) -> CommentRef:
        if event.pr_number is None:
            raise ForgeError(f"event {event.kind} names no pull request to comment on")
        number = event.pr_number
        sha = event.head_sha or ""
        stamped = f"{body.rstrip()}\n<!-- mlgitops:sha={sha} -->\n" if sha else body
        head = self._call("read the pull request", lambda: self.repo.get_pull(number).head.sha)
        mine = self._marked(number, marker)
        if sha and head and head != sha:
            # A newer commit was pushed: its own run owns the comment.
            return CommentRef(mine[0].id if mine else None, mine[0].html_url if mine else None, False, f"PR #{number} moved on to {head[:7]}; the comment was left to that run")
        if mine:
            keep = mine[0]
            self._call("edit the PR comment", lambda: keep.edit(stamped))
            created = False
        else:
            keep = self._call("comment on the PR", lambda: self._issue(number).create_comment(stamped))
            created = True
            mine = self._marked(number, marker)
            if mine and mine[0].id != keep.id:
                # Another run (or a retried POST) created one too: the oldest wins.
                first = mine[0]
                self._call("edit the PR comment", lambda: first.edit(stamped))
                keep = first
        for extra in [c for c in mine if c.id != keep.id]:
            self._delete_quietly(extra)
        return CommentRef(keep.id, keep.html_url, created)

    def _delete_quietly(self, comment: Any) -> None:
        """Delete a duplicate; one a racing run deleted first is already fine."""
        from github.GithubException import GithubException

        try:
            comment.delete()
        except GithubException as exc:
            if exc.status != 404:
                self._call("delete a duplicate PR comment", comment.delete)

    # -- gate -------------------------------------------------------------------
    def set_status(self, sha: str, state: str, description: str, summary: str | None = None, context: str = GATE_CONTEXT) -> None:
        self._call(
            "set the commit status",
            lambda: self.repo.get_commit(sha).create_status(state=state, description=description[:140], context=context),
        )
        if self.checks_enabled:
            try:
                self._check_run(sha, state, description, summary, context)
            except ReadOnly as exc:
                # Checks need a GitHub App token (Actions' GITHUB_TOKEN is one); a PAT
                # gets 403. The commit status above still gates the merge.
                self.checks_enabled = False
                self.warnings.append(f"check run skipped: {exc.message}")

    def _check_run(self, sha: str, state: str, description: str, summary: str | None, context: str) -> None:
        title = description[:1000]
        output = {"title": title, "summary": (summary or description)[:CHECK_OUTPUT_LIMIT]}
        run = self._check_runs.get(sha)
        if state == "pending":
            if run is None:
                self._check_runs[sha] = self._call("create the check run", lambda: self.repo.create_check_run(name=context, head_sha=sha, status="in_progress", output=output))
            return
        conclusion = STATE_TO_CONCLUSION[state]
        if run is None:
            self._call("create the check run", lambda: self.repo.create_check_run(name=context, head_sha=sha, status="completed", conclusion=conclusion, output=output))
        else:
            self._call("complete the check run", lambda: run.edit(status="completed", conclusion=conclusion, output=output))

    # -- promotion pull requests (DeployForge) ----------------------------------------
    def default_branch(self) -> str:
        if not self._branch:
            self._branch = self._call("read the repository", lambda: self.repo.default_branch)
        return str(self._branch)

    def read_file(self, branch: str, path: str) -> str | None:
        data = self._file_bytes(branch, path)
        return data.decode("utf-8", "replace") if data is not None else None  # a non-UTF-8 manifest then fails as YAML, naming the file

    def _file_bytes(self, branch: str, path: str) -> bytes | None:
        from github.GithubException import UnknownObjectException

        def get() -> bytes | None:
            try:
                content = self.repo.get_contents(path, ref=branch)
            except UnknownObjectException:
                return None
            if isinstance(content, list):
                raise ForgeError(f"{path} on {branch} in {self.repo_name} is a folder, not a file")
            return content.decoded_content

        return self._call(f"read {path} on {branch}", get)

    def upsert_pull(self, base: str, head: str, files: dict[str, str | bytes], title: str, body: str) -> "PullRef":
        """Point ``head`` at one new commit, ``base`` plus ``files``, built with the Git
        Data API (blobs, a tree on the base tree, a commit) and moved there in one ref
        update; then open the branch's PR or edit the one already open. Never resetting
        the branch to the base first matters: a PR whose branch has no commits of its
        own is closed by GitHub. A rerun with the same content leaves the branch alone."""
        import base64

        from github.GithubException import UnknownObjectException
        from github.InputGitTreeElement import InputGitTreeElement

        from . import PullRef

        wanted = {path: text.encode() if isinstance(text, str) else text for path, text in files.items()}
        base_sha = self._call(f"read branch {base}", lambda: self.repo.get_branch(base).commit.sha)
        owner = self.repo_name.split("/")[0]
        open_prs = self._call("list open pull requests", lambda: list(self.repo.get_pulls(state="open", head=f"{owner}:{head}", base=base)))
        mine = next((p for p in open_prs if p.head.ref == head), None)

        def get_ref() -> Any:
            try:
                ref = self.repo.get_git_ref(f"heads/{head}")
                _ = ref.object.sha  # PyGithub loads lazily: make a missing branch raise here
                return ref
            except UnknownObjectException:
                return None

        ref = self._call(f"read branch {head}", get_ref)
        unchanged = False
        if ref is not None and mine is not None:
            parents = self._call(f"read branch {head}", lambda: [c.sha for c in self.repo.get_git_commit(ref.object.sha).parents])
            unchanged = parents == [base_sha] and all(self._file_bytes(head, path) == data for path, data in wanted.items())
        if not unchanged:
            base_commit = self._call(f"read commit {base_sha[:7]}", lambda: self.repo.get_git_commit(base_sha))
            elements = []
            for path, data in wanted.items():
                blob = self._call(f"upload {path}", lambda: self.repo.create_git_blob(base64.b64encode(data).decode(), "base64"))
                elements.append(InputGitTreeElement(path, "100644", "blob", sha=blob.sha))
            tree = self._call("write the tree", lambda: self.repo.create_git_tree(elements, base_commit.tree))
            commit = self._call("write the commit", lambda: self.repo.create_git_commit(title, tree, [base_commit]))
            if ref is None:
                self._call(f"create branch {head}", lambda: self.repo.create_git_ref(f"refs/heads/{head}", commit.sha))
            else:
                self._call(f"move branch {head}", lambda: ref.edit(commit.sha, force=True))
        if mine is None:
            mine = self._call("open the pull request", lambda: self.repo.create_pull(base=base, head=head, title=title, body=body))
            created = True
        else:
            pull = mine
            self._call("update the pull request", lambda: pull.edit(title=title, body=body))
            created = False
        return PullRef(mine.number, mine.html_url, created, not unchanged)

    def close_pull(self, number: int, comment: str) -> None:
        pull = self._call("read the pull request", lambda: self.repo.get_pull(number))
        self._call("comment on the pull request", lambda: self._issue(number).create_comment(f"Closed by mlops: {comment}"))
        self._call("close the pull request", lambda: pull.edit(state="closed"))

    def open_pulls(self, head: str) -> list[dict]:
        owner = self.repo_name.split("/")[0]
        pulls = self._call("list open pull requests", lambda: list(self.repo.get_pulls(state="open", head=f"{owner}:{head}")))
        return [{"number": p.number, "head": p.head.ref, "title": p.title, "url": p.html_url} for p in pulls if p.head.ref == head]

    def upsert_issue(self, marker: str, title: str, body: str) -> Any:
        """Edit our open issue holding ``marker`` or open one (labelled ``mlops``)."""
        from . import IssueRef

        def find() -> Any:
            for issue in self.repo.get_issues(state="open", labels=[ISSUE_LABEL]):
                if issue.pull_request is None and marker in (issue.body or "") and self._ours(issue):
                    return issue
            return None

        text = body if marker in body else f"{marker}\n{body}"
        mine = self._call("list the open issues", find)
        if mine is not None:
            self._call("edit the issue", lambda: mine.edit(title=title, body=text))
            return IssueRef(mine.number, mine.html_url, False)
        made = self._call("open an issue", lambda: self.repo.create_issue(title=title, body=text, labels=[ISSUE_LABEL]))
        return IssueRef(made.number, made.html_url, True)

    # -- ChatOps ----------------------------------------------------------------
    def permission(self, login: str) -> str:
        """``login``'s base permission here: admin, write, read or none (GitHub maps
        maintain to write and triage to read); someone GitHub does not know is none."""
        try:
            return str(self._call(f"read {login}'s permission", lambda: self.repo.get_collaborator_permission(login)))
        except ForgeError as exc:
            if exc.status == 404:
                return "none"
            raise

    def pull_info(self, number: int) -> dict[str, Any]:
        """Head/base of PR ``number`` and whether its head lives in a fork."""
        pull = self._call("read the pull request", lambda: self.repo.get_pull(number))
        head_repo = pull.head.repo.full_name if pull.head.repo is not None else None
        return {"number": number, "head_sha": pull.head.sha, "head_ref": pull.head.ref, "base_sha": pull.base.sha, "base_ref": pull.base.ref, "head_repo": head_repo, "fork": head_repo != self.repo_name, "state": pull.state, "url": pull.html_url}

    def react(self, number: int, comment_id: int, content: str) -> None:
        """Add reaction ``content`` (+1, -1, eyes, rocket, confused, ...) to a comment."""
        comment = self._call("read the command's comment", lambda: self._issue(number).get_comment(comment_id))
        self._call("react to the command", lambda: comment.create_reaction(content))

    def reply(self, number: int, body: str) -> str | None:
        """A new comment on issue or PR ``number``; its URL."""
        made = self._call("reply on the pull request", lambda: self._issue(number).create_comment(body))
        return made.html_url

    # -- lookups ----------------------------------------------------------------
    def pull_for_sha(self, sha: str) -> int | None:
        """The open PR whose head is ``sha`` (else any PR containing it), if one exists."""
        pulls = self._call("find the PR for a commit", lambda: list(self.repo.get_commit(sha).get_pulls()))
        for pull in pulls:
            if pull.state == "open" and pull.head.sha == sha:
                return pull.number
        return pulls[0].number if pulls else None


def _message(exc: Any) -> str:
    data = getattr(exc, "data", None)
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    return str(exc)


def _is_permission(exc: Any) -> bool:
    """403s that mean "this token may not", not "slow down"."""
    text = _message(exc).lower()
    return exc.status == 403 and ("resource not accessible" in text or "must have" in text or "permission" in text or "must authenticate via a github app" in text)
