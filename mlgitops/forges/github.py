"""GitHub (and GitHub Enterprise) through PyGithub over HTTP.

* sticky comment: found by its hidden marker and edited; duplicates (two runs racing)
  are folded into the oldest; a run for a commit that is no longer the PR's head
  leaves the comment alone;
* the gate as a commit status and a check run, both named ``mlops/gate``;
* every body is fitted below GitHub's limits here (``fit``), whatever a caller passes;
* creates (POST) are never repeated blindly: after a lost answer we look for what the
  first try made (see ``GitHubForge._create``);
* retries on 5xx, 429 and secondary rate limits, waiting as GitHub's rules say
  (``Retry-After``; else ``x-ratelimit-reset`` when the limit is spent; else at least
  a minute, doubling on repeats), within a budget of waiting per run, then a clear
  ForgeError.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

from mlgitops.errors import EXIT_INTERNAL, EXIT_INVALID_INPUT, MlopsError
from mlgitops.forges import BODY_LIMIT, CHECK_TEXT_LIMIT, GATE_CONTEXT, STATUS_DESCRIPTION_LIMIT, TITLE_LIMIT, CommentRef, fit

if TYPE_CHECKING:
    from mlgitops.events.payloads import Event
    from mlgitops.forges import PullRef

DEFAULT_API_URL = "https://api.github.com"
ISSUE_LABEL = "mlops"  # the label our issues carry (GitHub creates it on first use)
STATE_TO_CONCLUSION = {"success": "success", "failure": "failure", "error": "failure"}
SECONDARY_WAIT = 60.0  # GitHub: without Retry-After or a spent primary limit, "wait for at least one minute"
DEFAULT_WAIT_BUDGET = 90.0  # seconds a run may spend waiting on GitHub: one secondary-limit minute and some backoff


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
    """GitHub asked us to wait longer than this run may still wait: stop now rather
    than retry before the time GitHub named (its rate-limit rules forbid that)."""


class WaitBudget:
    """How long this run may still wait on GitHub in all, and how it sleeps.

    One budget is shared by every retry of one forge. ``sleep`` and ``clock`` are
    injectable so tests can check the exact wait without spending it.
    """

    def __init__(self, seconds: float, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time) -> None:
        self.total = seconds
        self.left = seconds
        self.sleep = sleep
        self.clock = clock
        self.secondary_waits = 0  # secondary limits met without Retry-After: each doubles the next wait

    def wait(self, seconds: float, why: str) -> None:
        """Sleep ``seconds``, or raise WaitTooLong when that is more than is left."""
        if seconds > self.left:
            raise WaitTooLong(f"GitHub asked to wait {seconds:.0f} s before retrying ({why}), more than the {self.left:.0f} s left of this run's {self.total:.0f} s for waiting")
        self.left -= seconds
        if seconds > 0:
            self.sleep(seconds)

    def rate_limit_wait(self, headers: Any, retry_after: float | None) -> tuple[float, str]:
        """GitHub's rule for a 403/429 rate limit: Retry-After; else, when the primary
        limit is spent, until x-ratelimit-reset; else at least one minute, doubled
        on each repeat (their "exponential backoff")."""
        if retry_after is not None:
            return retry_after, "Retry-After"
        reset = headers.get("x-ratelimit-reset") or ""
        if headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
            # +1: it is not said when within that second the window resets
            return max(0.0, int(reset) - self.clock()) + 1, "until x-ratelimit-reset"
        wait = SECONDARY_WAIT * 2**self.secondary_waits
        self.secondary_waits += 1
        return wait, "a secondary rate limit without Retry-After: at least a minute"


def make_retry(total: int = 4, budget: WaitBudget | None = None) -> Any:
    """PyGithub's GithubRetry (it tells a rate-limit 403 from a permission 403 by the
    body) with GitHub's waiting rules and a per-run budget, and without POST retries.

    Why POST is left out, unlike GithubRetry's default (``allowed_methods`` with
    POST): urllib3 repeats a request whose answer was lost (connection reset after
    sending, a read timeout) or was a 5xx, and for a create that makes a second
    comment, PR or check run. A create is retried by ``GitHubForge._create`` only
    after it looked for what the first try made. A 403/429 rate limit is the one
    answer after which a POST is repeated here: GitHub refused it before doing it.
    """
    from github.GithubRetry import GithubRetry
    from urllib3.util.retry import Retry

    wait_budget = budget or WaitBudget(DEFAULT_WAIT_BUDGET)

    class BudgetRetry(GithubRetry):
        budget = wait_budget

        def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
            if method.upper() == "POST":
                return status_code in (403, 429)  # GithubRetry.increment re-raises a 403 that is no rate limit
            return bool(super().is_retry(method, status_code, has_retry_after))

        def sleep(self, response: Any = None) -> None:
            # The one place urllib3 waits between tries: all waits go through the budget.
            if response is not None and response.status in (403, 429):
                after = self.get_retry_after(response)  # seconds or an HTTP date, as urllib3 reads it
                wait, why = self.budget.rate_limit_wait(response.headers, after)
            else:
                after = self.get_retry_after(response) if response is not None else None
                wait, why = (after, "Retry-After") if after is not None else (self.get_backoff_time(), "backoff after an error")
            self.budget.wait(wait, why)

    return BudgetRetry(
        total=total,
        backoff_factor=0.5,
        backoff_max=8.0,
        max_rate_limit_wait=None,  # the budget decides, in sleep()
        status_forcelist=[429, *range(500, 600)],
        # Editing the sticky comment and completing the check run are PATCHes; GitHub
        # applies them idempotently, so they are as safe to retry as PUT.
        allowed_methods=Retry.DEFAULT_ALLOWED_METHODS | {"PATCH"},
        raise_on_status=False,
    )


def _outcome_unknown(exc: BaseException) -> bool:
    """A create that may have happened: the answer was lost or was a server error."""
    import requests
    from github.GithubException import GithubException

    if isinstance(exc, GithubException):
        return exc.status >= 500
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError))


class GitHubForge:
    name = "github"
    shows_pending = True

    def __init__(
        self,
        repo: str,
        token: str,
        api_url: str | None = None,
        retries: int = 4,
        max_wait: float = DEFAULT_WAIT_BUDGET,
        timeout: int = 20,
        seconds_between_writes: float = 1.0,
        seconds_between_requests: float = 0.25,
        branch: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``max_wait``: the seconds this forge may spend waiting on GitHub in all
        (rate limits, backoff); a wait GitHub asks for beyond it stops the run."""
        from github import Auth, Github

        self.repo_name = repo
        self._branch = branch
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self.retries = retries
        self.budget = WaitBudget(max_wait, sleep, clock)
        # PyGithub's default spacing follows GitHub's advice against secondary rate
        # limits (serial requests, >= 1 s between writes); tests pass 0.
        self.gh = Github(
            base_url=self.api_url,
            auth=Auth.Token(token),
            retry=make_retry(retries, self.budget),
            timeout=timeout,
            per_page=100,
            seconds_between_requests=seconds_between_requests,
            seconds_between_writes=seconds_between_writes,
        )
        self._repo: Any = None
        self._check_runs: dict[tuple[str, str], Any] = {}  # (sha, context): a workspace sets several contexts on one sha
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
        except WaitTooLong as exc:
            raise ForgeError(f"stopped before trying again to {what}: {exc}", hint="run the job again later; retrying sooner breaks GitHub's rate-limit rules") from None
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

    def _create(self, what: str, post: Callable[[], Any], find: Callable[[], Any] | None) -> Any:
        """Run the create ``post`` (a POST); when its outcome is unknown (the
        connection dropped after sending, a timeout, a 5xx), first ask ``find`` for
        what it may have made and return that; post again only when nothing is
        found. ``find=None`` says a second copy is harmless (a commit status, a
        content-addressed blob). Bounded by ``retries`` and the wait budget."""

        def attempts() -> Any:
            for attempt in range(self.retries + 1):
                try:
                    return post()
                except Exception as exc:
                    if attempt == self.retries or not _outcome_unknown(exc):
                        raise
                self.budget.wait(min(0.5 * 2**attempt, 8.0), "backoff after a lost answer")
                if find is not None:
                    found = find()
                    if found is not None:
                        return found
            raise AssertionError("unreachable: the last attempt returns or raises")

        return self._call(what, attempts)

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
        stamped = fit(body.rstrip(), BODY_LIMIT, f"\n<!-- mlgitops:sha={sha} -->\n") if sha else fit(body, BODY_LIMIT)
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
            keep = self._create("comment on the PR", lambda: self._issue(number).create_comment(stamped), lambda: next(iter(self._marked(number, marker)), None))
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
        short = fit(description, STATUS_DESCRIPTION_LIMIT)
        # A repeated status is harmless (GitHub shows the latest per context): no lookup.
        self._create("set the commit status", lambda: self.repo.get_commit(sha).create_status(state=state, description=short, context=context), None)
        if self.checks_enabled:
            try:
                self._check_run(sha, state, description, summary, context)
            except ReadOnly as exc:
                # Checks need a GitHub App token (Actions' GITHUB_TOKEN is one); a PAT
                # gets 403. The commit status above still gates the merge.
                self.checks_enabled = False
                self.warnings.append(f"check run skipped: {exc.message}")

    def _check_run(self, sha: str, state: str, description: str, summary: str | None, context: str) -> None:
        title = fit(description, 1000)
        output = {"title": title, "summary": fit(summary or description, CHECK_TEXT_LIMIT)}
        run = self._check_runs.get((sha, context))

        def find(status: str | None) -> Any:
            """The newest run of ours named ``context`` on ``sha`` (one a lost answer made)."""
            runs = list(self.repo.get_commit(sha).get_check_runs(check_name=context, **({"status": status} if status else {})))
            return max(runs, key=lambda r: r.id) if runs else None

        if state == "pending":
            if run is None:
                self._check_runs[(sha, context)] = self._create("create the check run", lambda: self.repo.create_check_run(name=context, head_sha=sha, status="in_progress", output=output), lambda: find("in_progress"))
            return
        conclusion = STATE_TO_CONCLUSION[state]
        if run is None:
            run = self._create("create the check run", lambda: self.repo.create_check_run(name=context, head_sha=sha, status="completed", conclusion=conclusion, output=output), lambda: find(None))
            if run.conclusion == conclusion:
                return
        done = run
        self._call("complete the check run", lambda: done.edit(status="completed", conclusion=conclusion, output=output))

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

        from mlgitops.forges import PullRef

        wanted = {path: text.encode() if isinstance(text, str) else text for path, text in files.items()}
        title, body = fit(title, TITLE_LIMIT), fit(body, BODY_LIMIT)
        base_sha = self._call(f"read branch {base}", lambda: self.repo.get_branch(base).commit.sha)
        owner = self.repo_name.split("/")[0]

        def find_pull() -> Any:
            return next((p for p in self.repo.get_pulls(state="open", head=f"{owner}:{head}", base=base) if p.head.ref == head), None)

        mine = self._call("list open pull requests", find_pull)

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
            # Blobs and trees are named by their content and a stray commit is
            # unreachable: repeating these creates is harmless (find=None).
            for path, data in wanted.items():
                blob = self._create(f"upload {path}", lambda: self.repo.create_git_blob(base64.b64encode(data).decode(), "base64"), None)
                elements.append(InputGitTreeElement(path, "100644", "blob", sha=blob.sha))
            tree = self._create("write the tree", lambda: self.repo.create_git_tree(elements, base_commit.tree), None)
            commit = self._create("write the commit", lambda: self.repo.create_git_commit(title, tree, [base_commit]), None)
            if ref is None:

                def made_ref() -> Any:
                    """The branch a lost answer created: only if it holds our commit."""
                    found = get_ref()
                    return found if found is not None and found.object.sha == commit.sha else None

                self._create(f"create branch {head}", lambda: self.repo.create_git_ref(f"refs/heads/{head}", commit.sha), made_ref)
            else:
                self._call(f"move branch {head}", lambda: ref.edit(commit.sha, force=True))
        if mine is None:
            mine, created = self._open_pull(base, head, title, body, find_pull)
        else:
            pull = mine
            self._call("update the pull request", lambda: pull.edit(title=title, body=body))
            created = False
        return PullRef(mine.number, mine.html_url, created, not unchanged)

    def _open_pull(self, base: str, head: str, title: str, body: str, find_pull: Callable[[], Any]) -> tuple[Any, bool]:
        """Open the PR from ``head``; (pull, created). One a lost answer opened is
        found by its head branch; GitHub's 422 "A pull request already exists"
        (another run, or a listing that lagged) means: update that one instead."""
        from github.GithubException import GithubException

        def post() -> tuple[Any, bool]:
            try:
                return self.repo.create_pull(base=base, head=head, title=title, body=body), True
            except GithubException as exc:
                if not _already_exists(exc):
                    raise
                existing = find_pull()
                if existing is None:
                    raise
            existing.edit(title=title, body=body)
            return existing, False

        def find() -> tuple[Any, bool] | None:
            found = find_pull()
            return (found, True) if found is not None else None

        pull, created = self._create("open the pull request", post, find)
        return pull, created

    def close_pull(self, number: int, comment: str) -> None:
        pull = self._call("read the pull request", lambda: self.repo.get_pull(number))
        text = fit(f"Closed by mlops: {comment}", BODY_LIMIT)
        self._create("comment on the pull request", lambda: self._issue(number).create_comment(text), lambda: next((c for c in self._marked(number, text) if c.body == text), None))
        self._call("close the pull request", lambda: pull.edit(state="closed"))

    def open_pulls(self, head: str) -> list[dict]:
        owner = self.repo_name.split("/")[0]
        pulls = self._call("list open pull requests", lambda: list(self.repo.get_pulls(state="open", head=f"{owner}:{head}")))
        return [{"number": p.number, "head": p.head.ref, "title": p.title, "url": p.html_url} for p in pulls if p.head.ref == head]

    def upsert_issue(self, marker: str, title: str, body: str) -> Any:
        """Edit our open issue holding ``marker`` or open one (labelled ``mlops``)."""
        from mlgitops.forges import IssueRef

        def find() -> Any:
            for issue in self.repo.get_issues(state="open", labels=[ISSUE_LABEL]):
                if issue.pull_request is None and marker in (issue.body or "") and self._ours(issue):
                    return issue
            return None

        text = fit(body if marker in body else f"{marker}\n{body}", BODY_LIMIT)  # the marker leads, so it survives a cut
        title = fit(title, TITLE_LIMIT)
        mine = self._call("list the open issues", find)
        if mine is not None:
            self._call("edit the issue", lambda: mine.edit(title=title, body=text))
            return IssueRef(mine.number, mine.html_url, False)
        made = self._create("open an issue", lambda: self.repo.create_issue(title=title, body=text, labels=[ISSUE_LABEL]), find)
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
        # GitHub answers 200 to a reaction we already gave: repeating it is harmless.
        self._create("react to the command", lambda: comment.create_reaction(content), None)

    def reply(self, number: int, body: str, key: str | None = None) -> str | None:
        """A new comment on issue or PR ``number`` (fitted to GitHub's limit); its
        URL. ``key``, a hidden marker in ``body``, finds the reply a lost answer
        made; without it the exact body is looked for."""
        text = fit(body, BODY_LIMIT)
        probe = key if key and key in text else text

        def find() -> Any:
            return next((c for c in self._marked(number, probe) if key or c.body == text), None)

        made = self._create("reply on the pull request", lambda: self._issue(number).create_comment(text), find)
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


def _already_exists(exc: Any) -> bool:
    """GitHub's 422 for a second PR from one head to one base: errors[].message
    "A pull request already exists for OWNER:BRANCH." """
    data = getattr(exc, "data", None)
    errors = data.get("errors") if isinstance(data, dict) else None
    return exc.status == 422 and any(isinstance(e, dict) and str(e.get("message", "")).startswith("A pull request already exists") for e in errors or [])


def _is_permission(exc: Any) -> bool:
    """403s that mean "this token may not", not "slow down"."""
    text = _message(exc).lower()
    return exc.status == 403 and ("resource not accessible" in text or "must have" in text or "permission" in text or "must authenticate via a github app" in text)
