"""A GitHub REST stand-in: a real HTTP server on 127.0.0.1 with state.

It serves exactly the endpoints mlgitops calls, and is held to GitHub's own material
in tests/github/: every JSON body it returns starts from the operation's example
response in the OpenAPI description and is validated against the operation's
response schema (violations are recorded and asserted empty by the tests). It can
inject faults (500, 502, 403/429 with Retry-After, 401, slow responses, an answer
lost after the work was done: a 5xx or a dropped connection), act as a read-only
token (a fork's pull request), and serve under /api/v3 like GitHub Enterprise Server.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from tests.helpers import GITHUB_MATERIAL

SHARED = GITHUB_MATERIAL  # the name from when it lay beside the checkout in ../shared/github
SPEC_PATH = SHARED / "openapi" / "api.github.com.subset.json"
# Operations that cut lacks (permissions, reactions, issues): the same package
# and version, cut the same way; see tests/github_extra/README.md.
EXTRA_SPEC_PATH = Path(__file__).resolve().parent / "github_extra" / "api.github.com.extra.json"
ROLES = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read"}  # role_name -> legacy permission (GitHub's description of the endpoint)
GITHUB = "https://api.github.com"


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # the answer's JSON (e.g. GitHub's error body); None: a default error body
    after: bool = False  # do the work, then answer with the fault (a lost response)
    delay: float = 0.0
    drop: bool = False  # close the connection without any answer (with after: once the work is done)


@dataclass
class Repo:
    full_name: str
    default_branch: str = "main"
    read_only: bool = False
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    check_runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    # A small git model behind the refs, contents and merge endpoints.
    commits: dict[str, dict[str, Any]] = field(default_factory=dict)  # sha -> {files, parents, message, tree}
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit sha
    blobs: dict[str, bytes] = field(default_factory=dict)
    trees: dict[str, dict[str, bytes]] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)  # real issues (PRs live in pulls)
    collaborators: dict[str, str] = field(default_factory=dict)  # login -> role_name
    reactions: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # comment id -> reactions

    def next_number(self) -> int:
        """Issues and pull requests share one sequence of numbers, as on GitHub."""
        return max([*self.pulls, *self.issues, 0]) + 1

    def tree_of(self, files: dict[str, bytes]) -> str:
        import hashlib

        sha = hashlib.sha1(json.dumps(sorted((k, _blob_sha(v)) for k, v in files.items())).encode()).hexdigest()
        self.trees[sha] = dict(files)
        return sha

    def new_commit(self, files: dict[str, bytes], parents: list[str], message: str) -> str:
        import hashlib

        tree = self.tree_of(files)
        sha = hashlib.sha1(json.dumps([tree, parents, message, len(self.commits)]).encode()).hexdigest()
        self.commits[sha] = {"files": dict(files), "parents": parents, "message": message, "tree": tree}
        return sha

    def commit(self, branch: str, files: dict[str, bytes], message: str, parents: list[str] | None = None) -> str:
        """A new commit on ``branch`` whose tree is its parent's plus ``files``."""
        parent = self.branches.get(branch)
        parents = parents if parents is not None else ([parent] if parent else [])
        tree = dict(self.commits[parents[0]]["files"]) if parents else {}
        tree.update(files)
        sha = self.new_commit(tree, parents, message)
        self.branches[branch] = sha
        return sha

    def file(self, branch: str, path: str) -> bytes | None:
        sha = self.branches.get(branch)
        return self.commits[sha]["files"].get(path) if sha else None


class Spec:
    """The OpenAPI subset: example bodies and response validators per operation."""

    def __init__(self, path: Path = SPEC_PATH) -> None:
        from openapi_schema_validator import OAS30Validator

        self.doc = json.loads(path.read_text())
        if path == SPEC_PATH and EXTRA_SPEC_PATH.is_file():
            extra = json.loads(EXTRA_SPEC_PATH.read_text())
            for template, methods in extra["paths"].items():
                self.doc["paths"].setdefault(template, {}).update(methods)
            for kind, items in extra["components"].items():
                self.doc["components"].setdefault(kind, {}).update(items)
        self._validator_cls = OAS30Validator
        self._validators: dict[str, Any] = {}

    def resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            target: Any = self.doc
            for part in node["$ref"][2:].split("/"):
                target = target[part]
            node = target
        return node

    def response(self, method: str, template: str, status: int) -> dict[str, Any]:
        op = self.doc["paths"][template][method.lower()]
        return self.resolve(op["responses"][str(status)])

    def example(self, method: str, template: str, status: int) -> Any:
        content = self.response(method, template, status)["content"]["application/json"]
        examples = content.get("examples") or {}
        first = self.resolve(examples.get("default") or next(iter(examples.values())))
        value = first["value"]
        while isinstance(value, dict) and set(value) == {"$ref"}:  # an example pointing at another
            target = self.resolve(value)
            value = target.get("value", target)
        return copy.deepcopy(value)

    def errors(self, method: str, template: str, status: int, body: Any) -> list[str]:
        resp = self.response(method, template, status)
        content = (resp.get("content") or {}).get("application/json")
        if content is None:
            return [] if body is None else [f"{method} {template} {status}: the spec has no body here"]
        key = f"{method} {template} {status}"
        if key not in self._validators:
            self._validators[key] = self._validator_cls({**content["schema"], "components": self.doc["components"]})
        return [f"{key}: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in self._validators[key].iter_errors(body) if not _nullable_enum(e)]


    def request_errors(self, method: str, template: str, body: Any) -> list[Any]:
        """The request body's violations of the operation's request schema (OpenAPI
        ``requestBody``; read as a write, so ``readOnly`` properties are refused)."""
        op = self.doc["paths"][template].get(method.lower()) or {}
        content = ((op.get("requestBody") or {}).get("content") or {}).get("application/json")
        if content is None:
            return []
        key = f"request {method} {template}"
        if key not in self._validators:
            from openapi_schema_validator import OAS30WriteValidator

            self._validators[key] = OAS30WriteValidator({**content["schema"], "components": self.doc["components"]})
        return sorted(self._validators[key].iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path])

    def invalid_request(self, method: str, template: str, body: Any) -> dict[str, Any] | None:
        """GitHub's 422 for a body its schema refuses, or None. The message reads like
        GitHub's own for the two cases its answers are on record (a string over
        ``maxLength``: "Invalid request.\n\nOnly 65535 characters are allowed; 68338 were
        supplied."; missing fields: "\"name\", \"head_sha\" weren't supplied."); ``errors``
        lists every violation in the validation-error shape (resource, field, code, message)."""
        errors = self.request_errors(method, template, body)
        if not errors:
            return None
        first = errors[0]
        if first.validator == "maxLength":
            detail = f"Only {first.validator_value} characters are allowed; {len(first.instance)} were supplied."
        elif first.validator == "required" and isinstance(first.instance, dict):
            missing = [f'"{n}"' for n in first.validator_value if n not in first.instance]
            detail = f"{', '.join(missing)} {'wasn' if len(missing) == 1 else 'weren'}'t supplied."
        else:
            detail = f"For 'properties/{'/'.join(map(str, first.absolute_path))}', {first.message}."
        resource = next((name for part, name in RESOURCES if part in template), "Resource")
        codes = {"required": "missing_field", "maxLength": "custom", "minLength": "custom"}
        listed = []
        for e in errors[:10]:
            field_name = "/".join(map(str, e.absolute_path)) or "body"
            message = f"{field_name} is too long (maximum is {e.validator_value} characters)" if e.validator == "maxLength" else e.message[:300]
            item = {"resource": resource, "code": codes.get(e.validator, "invalid"), "message": message}
            if e.absolute_path:
                item["field"] = "/".join(map(str, e.absolute_path))
            listed.append(item)
        op = self.doc["paths"][template][method.lower()]
        return {"message": f"Invalid request.\n\n{detail}", "errors": listed, "documentation_url": (op.get("externalDocs") or {}).get("url", "https://docs.github.com/rest"), "status": "422"}


# The resource a refused request names, by a part of its path (GitHub's `resource`).
RESOURCES = [("/check-runs", "CheckRun"), ("/statuses/", "Status"), ("/reactions", "Reaction"), ("/labels", "Label"), ("/comments", "IssueComment"), ("/pulls", "PullRequest"), ("/issues", "Issue"), ("/git/refs", "Reference"), ("/git/commits", "Commit"), ("/git/trees", "Tree"), ("/git/blobs", "Blob"), ("/contents/", "Content"), ("/dispatches", "Dispatch")]


def _nullable_enum(error: Any) -> bool:
    """OAS 3.0 `nullable: true` beside `enum` without null (e.g. check-run.conclusion):
    GitHub sends null there, as its own recordings show; the validator reads the enum
    strictly. Only this one ambiguity is excused."""
    return error.validator == "enum" and error.instance is None and bool(error.schema.get("nullable"))


Handler = Callable[["StandIn", Repo, dict[str, str], dict[str, Any], dict[str, list[str]]], tuple[int, Any, dict[str, str]]]
ROUTES: list[tuple[str, str, Handler]] = []


def route(method: str, template: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ROUTES.append((method, template, fn))
        return fn

    return register


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    if "/git/ref" in template or "/contents/" in template:
        # git ref names and file paths contain slashes (heads/mlops/deploy-staging)
        pattern = pattern.replace("(?P<ref>[^/]+)", "(?P<ref>.+)").replace("(?P<path>[^/]+)", "(?P<path>.+)")
    return re.compile("^" + pattern + "$")


class StandIn:
    def __init__(self, token: str = "ghs_test_token", prefix: str = "") -> None:
        self.spec = Spec()
        self.token = token
        self.prefix = prefix  # "/api/v3" for GitHub Enterprise Server
        self.repos: dict[str, Repo] = {}
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int]] = []
        self.violations: list[str] = []
        self.delay = 0.0
        self.identity = "github-actions[bot]"  # who the token is; a PAT is a user login
        self.ids = itertools.count(1000)
        self.lock = threading.RLock()
        self.server: ThreadingHTTPServer | None = None
        self.routes = [(m, t, _compile(t), fn) for m, t, fn in ROUTES]

    # -- lifecycle ----------------------------------------------------------------
    def start(self, port: int = 0) -> "StandIn":
        standin = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                standin._dispatch(self)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", port), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.prefix}"

    # -- state helpers for tests -----------------------------------------------------
    def add_repo(self, full_name: str, default_branch: str = "main") -> Repo:
        repo = Repo(full_name, default_branch)
        repo.commit(default_branch, {"README.md": b"# " + full_name.encode() + b"\n"}, "Initial commit")
        self.repos[full_name] = repo
        return repo

    def add_pull(self, full_name: str, number: int, head_sha: str, base_sha: str, head_ref: str = "feature", base_ref: str = "main") -> dict[str, Any]:
        pull = {"number": number, "head_sha": head_sha, "base_sha": base_sha, "head_ref": head_ref, "base_ref": base_ref, "state": "open"}
        self.repos[full_name].pulls[number] = pull
        return pull

    def add_comment(self, full_name: str, number: int, body: str, author: str) -> int:
        """Someone else's comment on issue or PR ``number`` (e.g. a ChatOps command)."""
        cid = next(self.ids)
        stamp = now()
        self.repos[full_name].comments[cid] = {"id": cid, "number": number, "body": body, "created_at": stamp, "updated_at": stamp, "author": author}
        return cid

    def merge_over_http(self, full_name: str, number: int) -> None:
        """Merge PR ``number`` as a person would, through the REST endpoint."""
        import urllib.request

        req = urllib.request.Request(f"{self.url}/repos/{full_name}/pulls/{number}/merge", data=b"{}", method="PUT", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.loads(resp.read())["merged"] is True

    def fail(self, method: str, path: str, status: int, times: int = 1, headers: dict[str, str] | None = None, body: Any = None, after: bool = False, delay: float = 0.0) -> None:
        self.faults.append(Fault(method, re.compile(path), status, times, headers or {}, body, after, delay))

    def lose_answer(self, method: str, path: str, times: int = 1) -> None:
        """Do the request's work, then drop the connection before answering: the
        client cannot tell whether it happened (a reset or a timeout on GitHub)."""
        self.faults.append(Fault(method, re.compile(path), 0, times, after=True, drop=True))

    def calls(self, method: str | None = None, pattern: str = "") -> list[tuple[str, str, int]]:
        return [c for c in self.log if (method is None or c[0] == method) and re.search(pattern, c[1])]

    # -- HTTP -----------------------------------------------------------------------
    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        path, query = parts.path, parse_qs(parts.query)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        if self.delay:
            time.sleep(self.delay)
        fault = self._take_fault(h.command, path)
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and not fault.after:
            if fault.drop:
                return self._drop(h, path)
            return self._send(h, fault.status, fault.body if fault.body is not None else _error_body(fault.status), fault.headers, path)
        auth = h.headers.get("Authorization", "")
        if auth not in (f"token {self.token}", f"Bearer {self.token}"):
            return self._send(h, 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}, {}, path)
        if not path.startswith(self.prefix):
            return self._send(h, 404, _error_body(404), {}, path)
        local = path[len(self.prefix):] or "/"
        if h.command == "GET" and local == "/user":
            if self.identity.endswith("[bot]"):  # installation tokens may not read /user
                return self._send(h, 403, {"message": "Resource not accessible by integration", "documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user", "status": "403"}, {}, path)
            user = self.spec.example("GET", "/user", 200)
            user["login"] = self.identity
            user["user_view_type"] = "private"  # the schema's discriminator; the example predates it
            self.violations += self.spec.errors("GET", "/user", 200, user)
            return self._send(h, 200, json.loads(json.dumps(user).replace(GITHUB, self.url)), {}, path)
        for method, template, pattern, fn in self.routes:
            m = pattern.match(local)
            if method != h.command or not m:
                continue
            from urllib.parse import unquote

            params = {k: unquote(v) for k, v in m.groupdict().items()}
            repo = self.repos.get(f"{params.get('owner')}/{params.get('repo')}")
            if repo is None:
                return self._send(h, 404, _error_body(404), {}, path)
            if repo.read_only and method != "GET":
                return self._send(h, 403, {"message": "Resource not accessible by integration", "documentation_url": "https://docs.github.com/rest", "status": "403"}, {}, path)
            try:
                body = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                return self._send(h, 400, {"message": "Problems parsing JSON", "documentation_url": "https://docs.github.com/rest"}, {}, path)
            invalid = self.spec.invalid_request(method, template, body)
            if invalid is not None:  # GitHub checks the body against the schema before doing anything
                if "422" in self.doc_responses(method, template):
                    self.violations += self.spec.errors(method, template, 422, invalid)
                return self._send(h, 422, invalid, {}, path)
            with self.lock:
                status, payload, headers = fn(self, repo, params, body, query)
            if status < 400 and payload is not None:
                self.violations += self.spec.errors(method, template, status, payload)
            if fault:  # the work happened, the answer is lost
                if fault.drop:
                    return self._drop(h, path)
                return self._send(h, fault.status, fault.body if fault.body is not None else _error_body(fault.status), fault.headers, path)
            return self._send(h, status, payload, headers, path)
        return self._send(h, 404, _error_body(404), {}, path)

    def doc_responses(self, method: str, template: str) -> dict[str, Any]:
        return self.spec.doc["paths"][template][method.lower()]["responses"]

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and fault.path.search(path):
                    fault.times -= 1
                    return fault
        return None

    def _drop(self, h: BaseHTTPRequestHandler, path: str) -> None:
        """No status line, no body: the connection just closes (logged as status 0)."""
        self.log.append((h.command, path, 0))
        h.close_connection = True

    def _send(self, h: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str], path: str) -> None:
        self.log.append((h.command, path, status))
        data = b"" if payload is None else json.dumps(payload).encode()
        h.send_response(status)
        base = {
            "Content-Type": "application/json; charset=utf-8",
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": "4999",
            "X-RateLimit-Reset": str(int(time.time()) + 3600),
            "X-RateLimit-Used": "1",
            "X-RateLimit-Resource": "core",
            "Content-Length": str(len(data)),
        }
        for k, v in {**base, **headers}.items():
            h.send_header(k, v)
        h.end_headers()
        if data:
            h.wfile.write(data)

    # -- object builders (GitHub's examples, our values) --------------------------------
    def api(self, repo: Repo, rest: str = "") -> str:
        return f"{self.url}/repos/{repo.full_name}{rest}"

    def rewrite(self, obj: Any, repo: Repo) -> Any:
        """Point the example's URLs at this server and this repo."""
        text = json.dumps(obj).replace(f"{GITHUB}/repos/octocat/Hello-World", self.api(repo)).replace(GITHUB, self.url)
        text = text.replace("https://github.com/octocat/Hello-World", f"https://github.com/{repo.full_name}")
        return json.loads(text)


def _error_body(status: int) -> dict[str, Any]:
    messages = {401: "Bad credentials", 403: "Forbidden", 404: "Not Found", 422: "Validation Failed", 429: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", 500: "Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
    return {"message": messages.get(status, "Error"), "documentation_url": "https://docs.github.com/rest", "status": str(status)}


def _page(items: list[Any], query: dict[str, list[str]], url: str) -> tuple[list[Any], dict[str, str]]:
    per_page = int((query.get("per_page") or ["30"])[0])
    page = int((query.get("page") or ["1"])[0])
    chunk = items[(page - 1) * per_page : page * per_page]
    links = []
    if page * per_page < len(items):
        links.append(f'<{url}?per_page={per_page}&page={page + 1}>; rel="next"')
        last = (len(items) + per_page - 1) // per_page
        links.append(f'<{url}?per_page={per_page}&page={last}>; rel="last"')
    return chunk, ({"Link": ", ".join(links)} if links else {})


# -- endpoints -------------------------------------------------------------------------
@route("GET", "/repos/{owner}/{repo}")
def get_repo(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    out = s.rewrite(s.spec.example("GET", "/repos/{owner}/{repo}", 200), repo)
    owner, name = repo.full_name.split("/")
    out.update(name=name, full_name=repo.full_name, default_branch=repo.default_branch, fork=False, language="Python")  # the example omits a required `language`
    out["owner"]["login"] = owner
    for key in ("source", "parent", "template_repository"):  # fork-only objects of the example
        out.pop(key, None)
    return 200, out, {}


def _issue_comment(s: StandIn, repo: Repo, c: dict[str, Any], template: str, status: int, method: str = "GET") -> dict[str, Any]:
    out = s.rewrite(s.spec.example(method, template, status), repo)
    out.update(
        id=c["id"],
        node_id=f"IC_{c['id']}",
        body=c["body"],
        url=s.api(repo, f"/issues/comments/{c['id']}"),
        html_url=f"https://github.com/{repo.full_name}/pull/{c['number']}#issuecomment-{c['id']}",
        issue_url=s.api(repo, f"/issues/{c['number']}"),
        created_at=c["created_at"],
        updated_at=c["updated_at"],
    )
    author = c.get("author", s.identity)
    out["user"]["login"] = author
    out["user"]["type"] = "Bot" if author.endswith("[bot]") else "User"
    return out


@route("GET", "/repos/{owner}/{repo}/issues/{issue_number}")
def get_issue(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    number = int(p["issue_number"])
    if number in repo.issues:
        return 200, _issue(s, repo, repo.issues[number], "GET", "/repos/{owner}/{repo}/issues/{issue_number}", 200), {}
    if number not in repo.pulls:
        return 404, _error_body(404), {}
    out = s.rewrite(s.spec.example("GET", "/repos/{owner}/{repo}/issues/{issue_number}", 200), repo)
    out.update(number=number, url=s.api(repo, f"/issues/{number}"), comments_url=s.api(repo, f"/issues/{number}/comments"), comments=sum(1 for c in repo.comments.values() if c["number"] == number))
    return 200, out, {}


def _issue(s: StandIn, repo: Repo, issue: dict[str, Any], method: str, template: str, status: int) -> dict[str, Any]:
    out = s.rewrite(s.spec.example(method, template, status), repo)
    if isinstance(out, list):
        out = out[0]
    n = issue["number"]
    label = out["labels"][0] if out.get("labels") else {"id": 1, "node_id": "LA_1", "url": "", "name": "", "description": None, "color": "ededed", "default": False}
    out.update(
        id=issue["id"], node_id=f"I_{issue['id']}", number=n, title=issue["title"], body=issue.get("body"), state=issue["state"],
        labels=[{**label, "id": i + 1, "name": name, "url": s.api(repo, f"/labels/{name}"), "default": False} for i, name in enumerate(issue["labels"])],
        url=s.api(repo, f"/issues/{n}"), html_url=f"https://github.com/{repo.full_name}/issues/{n}", comments_url=s.api(repo, f"/issues/{n}/comments"),
        comments=sum(1 for c in repo.comments.values() if c["number"] == n), created_at=issue["created_at"], updated_at=issue["updated_at"],
        closed_at=issue.get("closed_at"), pull_request=None, assignee=None, assignees=[], milestone=None,
    )
    out.pop("pull_request")  # an issue, not a PR: GitHub leaves the key out
    out["user"]["login"] = issue["author"]
    out["user"]["type"] = "Bot" if issue["author"].endswith("[bot]") else "User"
    return out


def _too_long(resource: str, body: Any) -> tuple[int, Any, dict[str, str]] | None:
    """GitHub's 422 for an issue or PR whose title or body is over its limit."""
    for name, limit in (("title", 256), ("body", 65536)):
        if isinstance(body.get(name), str) and len(body[name]) > limit:
            return 422, {"message": "Validation Failed", "errors": [{"resource": resource, "code": "custom", "field": name, "message": f"{name} is too long (maximum is {limit} characters)"}], "documentation_url": "https://docs.github.com/rest", "status": "422"}, {}
    return None


def _check_output_too_long(body: Any) -> tuple[int, Any, dict[str, str]] | None:
    """output.summary and output.text: maxLength 65535 in GitHub's OpenAPI description."""
    for name in ("summary", "text"):
        if len((body.get("output") or {}).get(name) or "") > 65535:
            return 422, {"message": f"Invalid request. output.{name} is too long", "documentation_url": "https://docs.github.com/rest"}, {}
    return None


def _validation_failed(resource: str, field_name: str, code: str = "missing_field") -> tuple[int, Any, dict[str, str]]:
    return 422, {"message": "Validation Failed", "errors": [{"resource": resource, "code": code, "field": field_name}], "documentation_url": "https://docs.github.com/rest", "status": "422"}, {}


@route("GET", "/repos/{owner}/{repo}/issues")
def list_issues(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    """Issues (GitHub lists PRs here too; this repo's PRs are left out, as `pull_request`
    objects would need the PR's issue shape, and callers filter them anyway)."""
    state = (q.get("state") or ["open"])[0]
    labels = [x for x in (q.get("labels") or [""])[0].split(",") if x]
    creator = (q.get("creator") or [None])[0]
    hits = [i for i in sorted(repo.issues.values(), key=lambda x: -x["number"]) if (state == "all" or i["state"] == state) and all(l in i["labels"] for l in labels) and (creator is None or i["author"] == creator)]
    items, headers = _page([_issue(s, repo, i, "GET", "/repos/{owner}/{repo}/issues", 200) for i in hits], q, s.api(repo, "/issues"))
    return 200, items, headers


@route("POST", "/repos/{owner}/{repo}/issues")
def create_issue(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    if not isinstance(body.get("title"), (str, int)) or not str(body["title"]).strip():
        return _validation_failed("Issue", "title")
    if too_long := _too_long("Issue", body):
        return too_long
    if repo.read_only:
        return 403, {"message": "Resource not accessible by integration", "documentation_url": "https://docs.github.com/rest/issues/issues#create-an-issue", "status": "403"}, {}
    number = repo.next_number()
    stamp = now()
    labels = [x if isinstance(x, str) else x.get("name", "") for x in body.get("labels") or []]
    repo.issues[number] = {"id": next(s.ids), "number": number, "title": str(body["title"]), "body": body.get("body"), "labels": labels, "state": "open", "author": s.identity, "created_at": stamp, "updated_at": stamp}
    out = _issue(s, repo, repo.issues[number], "POST", "/repos/{owner}/{repo}/issues", 201)
    return 201, out, {"Location": out["url"]}


@route("PATCH", "/repos/{owner}/{repo}/issues/{issue_number}")
def update_issue(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    issue = repo.issues.get(int(p["issue_number"]))
    if issue is None:
        return 404, _error_body(404), {}
    if too_long := _too_long("Issue", body):
        return too_long
    if "state" in body and body["state"] not in ("open", "closed"):
        return _validation_failed("Issue", "state", "invalid")
    for key in ("title", "body", "state"):
        if key in body:
            issue[key] = body[key]
    if "labels" in body:
        issue["labels"] = [x if isinstance(x, str) else x.get("name", "") for x in body["labels"]]
    issue["updated_at"] = now()
    issue["closed_at"] = issue["updated_at"] if issue["state"] == "closed" else None
    return 200, _issue(s, repo, issue, "PATCH", "/repos/{owner}/{repo}/issues/{issue_number}", 200), {}


@route("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission")
def collaborator_permission(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    login = p["username"]
    role = repo.collaborators.get(login)
    if role is None and login != s.identity:
        return 404, _error_body(404), {}
    role = role or "write"
    out = s.rewrite(s.spec.example("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission", 200), repo)
    out.update(permission=ROLES.get(role, "none"), role_name=role)
    out["user"].update(login=login, role_name=role)
    out["user"]["permissions"] = {"admin": role == "admin", "maintain": role in ("admin", "maintain"), "push": ROLES.get(role) in ("admin", "write"), "triage": role != "read", "pull": True}
    return 200, out, {}


@route("POST", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions")
def create_reaction(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    cid = int(p["comment_id"])
    if cid not in repo.comments:
        return 404, _error_body(404), {}
    content = body.get("content")
    if content not in ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"):
        return _validation_failed("Reaction", "content", "invalid")
    given = repo.reactions.setdefault(cid, [])
    existing = next((r for r in given if r["content"] == content and r["user"] == s.identity), None)
    status = 200 if existing else 201  # GitHub: 200 when this user already reacted so
    if existing is None:
        existing = {"id": next(s.ids), "content": content, "user": s.identity, "created_at": now()}
        given.append(existing)
    out = s.rewrite(s.spec.example("POST", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions", status), repo)
    out.update(id=existing["id"], node_id=f"REA_{existing['id']}", content=content, created_at=existing["created_at"])
    out["user"]["login"] = s.identity
    return status, out, {}


@route("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
def list_comments(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    number = int(p["issue_number"])
    items = [c for c in sorted(repo.comments.values(), key=lambda c: c["id"]) if c["number"] == number]
    chunk, headers = _page(items, q, s.api(repo, f"/issues/{number}/comments"))
    example = s.spec.example("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments", 200)[0]
    out = []
    for c in chunk:
        item = _issue_comment(s, repo, c, "/repos/{owner}/{repo}/issues/comments/{comment_id}", 200)
        out.append({k: item.get(k, v) for k, v in example.items()} | item)
    return 200, out, headers


@route("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
def create_comment(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    number = int(p["issue_number"])
    if not isinstance(body.get("body"), str):
        return 422, {"message": "Validation Failed", "errors": [{"resource": "IssueComment", "code": "missing_field", "field": "body"}], "documentation_url": "https://docs.github.com/rest"}, {}
    if len(body["body"]) > 65536:
        return 422, {"message": "Validation Failed", "errors": [{"resource": "IssueComment", "code": "custom", "field": "body", "message": "body is too long (maximum is 65536 characters)"}], "documentation_url": "https://docs.github.com/rest"}, {}
    if number not in repo.pulls and number not in repo.issues:
        return 404, _error_body(404), {}
    cid = next(s.ids)
    stamp = now()
    repo.comments[cid] = {"id": cid, "number": number, "body": body["body"], "created_at": stamp, "updated_at": stamp, "author": s.identity}
    out = _issue_comment(s, repo, repo.comments[cid], "/repos/{owner}/{repo}/issues/{issue_number}/comments", 201, "POST")
    return 201, out, {"Location": out["url"]}


@route("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
def get_comment(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    c = repo.comments.get(int(p["comment_id"]))
    if c is None:
        return 404, _error_body(404), {}
    return 200, _issue_comment(s, repo, c, "/repos/{owner}/{repo}/issues/comments/{comment_id}", 200), {}


@route("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
def edit_comment(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    c = repo.comments.get(int(p["comment_id"]))
    if c is None:
        return 404, _error_body(404), {}
    if not isinstance(body.get("body"), str) or len(body["body"]) > 65536:
        return 422, {"message": "Validation Failed", "documentation_url": "https://docs.github.com/rest"}, {}
    c.update(body=body["body"], updated_at=now())
    return 200, _issue_comment(s, repo, c, "/repos/{owner}/{repo}/issues/comments/{comment_id}", 200, "PATCH"), {}


@route("DELETE", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
def delete_comment(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    if repo.comments.pop(int(p["comment_id"]), None) is None:
        return 404, _error_body(404), {}
    return 204, None, {}


def _pull(s: StandIn, repo: Repo, pull: dict[str, Any], template: str) -> dict[str, Any]:
    return _pull_full(s, repo, pull, template)


@route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}")
def get_pull(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    pull = repo.pulls.get(int(p["pull_number"]))
    if pull is None:
        return 404, _error_body(404), {}
    return 200, _pull(s, repo, pull, "/repos/{owner}/{repo}/pulls/{pull_number}"), {}


@route("GET", "/repos/{owner}/{repo}/commits/{commit_sha}/pulls")
def pulls_for_commit(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    sha = p["commit_sha"]
    hits = [pl for pl in repo.pulls.values() if pl["head_sha"] == sha]
    return 200, [_pull(s, repo, pl, "/repos/{owner}/{repo}/commits/{commit_sha}/pulls") for pl in hits], {}


@route("GET", "/repos/{owner}/{repo}/commits/{ref}")
def get_commit(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    out = s.rewrite(s.spec.example("GET", "/repos/{owner}/{repo}/commits/{ref}", 200), repo)
    sha = p["ref"]
    out.update(sha=sha, url=s.api(repo, f"/commits/{sha}"), comments_url=s.api(repo, f"/commits/{sha}/comments"))
    out["files"] = []  # the example's file entries lack fields the schema requires; we list none
    return 200, out, {}


@route("POST", "/repos/{owner}/{repo}/statuses/{sha}")
def create_status(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    if body.get("state") not in ("error", "failure", "pending", "success"):
        return 422, {"message": "Validation Failed", "errors": [{"resource": "Status", "code": "custom", "field": "state", "message": "state is not included in the list"}], "documentation_url": "https://docs.github.com/rest"}, {}
    if len(body.get("description") or "") > 140:
        return 422, {"message": "Validation Failed", "documentation_url": "https://docs.github.com/rest"}, {}
    sid = next(s.ids)
    out = s.rewrite(s.spec.example("POST", "/repos/{owner}/{repo}/statuses/{sha}", 201), repo)
    out.update(id=sid, node_id=f"SC_{sid}", state=body["state"], description=body.get("description"), context=body.get("context", "default"), target_url=body.get("target_url"), url=s.api(repo, f"/statuses/{p['sha']}"), created_at=now(), updated_at=now())
    repo.statuses.setdefault(p["sha"], []).append(out)
    return 201, out, {"Location": out["url"]}


@route("GET", "/repos/{owner}/{repo}/commits/{ref}/statuses")
def list_statuses(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    return 200, list(reversed(repo.statuses.get(p["ref"], []))), {}


def _check_run(s: StandIn, repo: Repo, run: dict[str, Any], method: str, template: str, status: int) -> dict[str, Any]:
    out = s.rewrite(s.spec.example(method, template, status), repo)
    out.update(id=run["id"], node_id=f"CR_{run['id']}", head_sha=run["head_sha"], name=run["name"], status=run["status"], conclusion=run.get("conclusion"), url=s.api(repo, f"/check-runs/{run['id']}"), html_url=f"https://github.com/{repo.full_name}/runs/{run['id']}", started_at=run["started_at"], completed_at=run.get("completed_at"))
    out["output"].update(title=run["output"].get("title"), summary=run["output"].get("summary"), text=run["output"].get("text"))
    out["pull_requests"] = []
    return out


@route("POST", "/repos/{owner}/{repo}/check-runs")
def create_check_run(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    if not s.identity.endswith("[bot]"):  # what GitHub tells a personal access token
        return 403, {"message": "You must authenticate via a GitHub App.", "documentation_url": "https://docs.github.com/rest/checks/runs#create-a-check-run", "status": "403"}, {}
    if not body.get("name") or not body.get("head_sha"):
        return 422, {"message": "Invalid request.\n\n\"name\", \"head_sha\" weren't supplied.", "documentation_url": "https://docs.github.com/rest"}, {}
    if body.get("status") == "completed" and not body.get("conclusion"):
        return 422, {"message": "Validation Failed", "documentation_url": "https://docs.github.com/rest"}, {}
    if too_long := _check_output_too_long(body):
        return too_long
    rid = next(s.ids)
    run = {"id": rid, "name": body["name"], "head_sha": body["head_sha"], "status": body.get("status", "queued"), "conclusion": body.get("conclusion"), "output": body.get("output") or {}, "started_at": now(), "completed_at": now() if body.get("status") == "completed" else None}
    repo.check_runs[rid] = run
    return 201, _check_run(s, repo, run, "POST", "/repos/{owner}/{repo}/check-runs", 201), {}


@route("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}")
def update_check_run(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    run = repo.check_runs.get(int(p["check_run_id"]))
    if run is None:
        return 404, _error_body(404), {}
    if too_long := _check_output_too_long(body):
        return too_long
    for key in ("status", "conclusion", "output"):
        if key in body:
            run[key] = body[key]
    if run["status"] == "completed":
        run["completed_at"] = now()
    return 200, _check_run(s, repo, run, "PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}", 200), {}


@route("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs")
def list_check_runs(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    name, status = (q.get("check_name") or [None])[0], (q.get("status") or [None])[0]
    runs = [r for r in sorted(repo.check_runs.values(), key=lambda r: -r["id"]) if r["head_sha"] == p["ref"] and name in (None, r["name"]) and status in (None, r["status"])]
    items = [_check_run(s, repo, r, "GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}", 200) for r in runs]
    return 200, {"total_count": len(items), "check_runs": items}, {}


# -- git data, contents and pull requests (promotion PRs) --------------------------------
def _blob_sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _ref_body(s: StandIn, repo: Repo, name: str, template: str, method: str, status: int) -> dict[str, Any]:
    out = s.rewrite(s.spec.example(method, template, status), repo)
    sha = repo.branches[name]
    out.update(ref=f"refs/heads/{name}", url=s.api(repo, f"/git/refs/heads/{name}"))
    out["object"].update(sha=sha, url=s.api(repo, f"/git/commits/{sha}"))
    return out


@route("GET", "/repos/{owner}/{repo}/branches/{branch}")
def get_branch(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    name = p["branch"]
    if name not in repo.branches:
        return 404, {"message": "Branch not found", "documentation_url": "https://docs.github.com/rest/branches/branches#get-a-branch", "status": "404"}, {}
    out = s.rewrite(s.spec.example("GET", "/repos/{owner}/{repo}/branches/{branch}", 200), repo)
    sha = repo.branches[name]
    out["name"] = name
    out["commit"].update(sha=sha, url=s.api(repo, f"/commits/{sha}"))
    return 200, out, {}


@route("GET", "/repos/{owner}/{repo}/git/ref/{ref}")
def get_ref(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    name = p["ref"].removeprefix("heads/")
    if not p["ref"].startswith("heads/") or name not in repo.branches:
        return 404, _error_body(404), {}
    return 200, _ref_body(s, repo, name, "/repos/{owner}/{repo}/git/ref/{ref}", "GET", 200), {}


@route("POST", "/repos/{owner}/{repo}/git/refs")
def create_ref(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    ref, sha = body.get("ref", ""), body.get("sha", "")
    if not ref.startswith("refs/heads/") or sha not in repo.commits:
        return 422, {"message": "Reference update failed", "documentation_url": "https://docs.github.com/rest/git/refs#create-a-reference", "status": "422"}, {}
    name = ref.removeprefix("refs/heads/")
    if name in repo.branches:
        return 422, {"message": "Reference already exists", "documentation_url": "https://docs.github.com/rest/git/refs#create-a-reference", "status": "422"}, {}
    repo.branches[name] = sha
    return 201, _ref_body(s, repo, name, "/repos/{owner}/{repo}/git/refs", "POST", 201), {}


def _ancestors(repo: Repo, sha: str) -> set[str]:
    seen, stack = set(), [sha]
    while stack:
        cur = stack.pop()
        if cur in seen or cur not in repo.commits:
            continue
        seen.add(cur)
        stack += repo.commits[cur]["parents"]
    return seen


@route("PATCH", "/repos/{owner}/{repo}/git/refs/{ref}")
def update_ref(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    name = p["ref"].removeprefix("heads/")
    sha = body.get("sha", "")
    if name not in repo.branches:
        return 422, {"message": "Reference does not exist", "documentation_url": "https://docs.github.com/rest/git/refs#update-a-reference", "status": "422"}, {}
    if sha not in repo.commits:
        return 422, {"message": "Object does not exist", "documentation_url": "https://docs.github.com/rest/git/refs#update-a-reference", "status": "422"}, {}
    if not body.get("force") and repo.branches[name] not in _ancestors(repo, sha):
        return 422, {"message": "Update is not a fast forward", "documentation_url": "https://docs.github.com/rest/git/refs#update-a-reference", "status": "422"}, {}
    repo.branches[name] = sha
    for pull in repo.pulls.values():
        # GitHub closes a PR whose head no longer has commits of its own (e.g. a branch
        # force-reset to its base); it cannot be reopened.
        if pull["state"] == "open" and pull["head_ref"] == name and sha in _ancestors(repo, repo.branches[pull["base_ref"]]):
            pull["state"] = "closed"
    return 200, _ref_body(s, repo, name, "/repos/{owner}/{repo}/git/refs/{ref}", "PATCH", 200), {}


@route("GET", "/repos/{owner}/{repo}/git/commits/{commit_sha}")
def get_git_commit(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    sha = p["commit_sha"]
    if sha not in repo.commits:
        return 404, _error_body(404), {}
    out = s.rewrite(s.spec.example("GET", "/repos/{owner}/{repo}/git/commits/{commit_sha}", 200), repo)
    c = repo.commits[sha]
    out.update(sha=sha, url=s.api(repo, f"/git/commits/{sha}"), html_url=f"https://github.com/{repo.full_name}/commit/{sha}", message=c["message"])
    out["tree"] = {"sha": c["tree"], "url": s.api(repo, f"/git/trees/{c['tree']}")}
    out["parents"] = [{"sha": ps, "url": s.api(repo, f"/git/commits/{ps}"), "html_url": f"https://github.com/{repo.full_name}/commit/{ps}"} for ps in c["parents"]]
    return 200, out, {}


def _content(s: StandIn, repo: Repo, path: str, data: bytes, branch: str, template: str, method: str, status: int) -> dict[str, Any]:
    import base64

    example = s.spec.example(method, template, status)
    entry = example if method == "GET" else example["content"]
    entry = s.rewrite(entry, repo)
    sha = _blob_sha(data)
    entry.update(name=path.rsplit("/", 1)[-1], path=path, sha=sha, size=len(data), url=s.api(repo, f"/contents/{path}?ref={branch}"), git_url=s.api(repo, f"/git/blobs/{sha}"), html_url=f"https://github.com/{repo.full_name}/blob/{branch}/{path}", download_url=f"https://raw.githubusercontent.com/{repo.full_name}/{branch}/{path}")
    entry["_links"] = {"self": entry["url"], "git": entry["git_url"], "html": entry["html_url"]}
    if method == "GET":
        entry.update(type="file", encoding="base64", content=base64.b64encode(data).decode())
        return entry
    out = s.rewrite(example, repo)
    out["content"] = entry
    commit_sha = repo.branches[branch]
    out["commit"].update(sha=commit_sha, url=s.api(repo, f"/git/commits/{commit_sha}"), html_url=f"https://github.com/{repo.full_name}/commit/{commit_sha}", message=repo.commits[commit_sha]["message"])
    return out


@route("GET", "/repos/{owner}/{repo}/contents/{path}")
def get_contents(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    branch = (q.get("ref") or [repo.default_branch])[0]
    data = repo.file(branch, p["path"]) if branch in repo.branches else None
    if data is None:
        return 404, _error_body(404), {}
    return 200, _content(s, repo, p["path"], data, branch, "/repos/{owner}/{repo}/contents/{path}", "GET", 200), {}


@route("PUT", "/repos/{owner}/{repo}/contents/{path}")
def put_contents(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    import base64

    path = p["path"]
    branch = body.get("branch") or repo.default_branch
    if branch not in repo.branches or not body.get("message") or "content" not in body:
        return 422, {"message": "Invalid request.", "documentation_url": "https://docs.github.com/rest/repos/contents#create-or-update-file-contents", "status": "422"}, {}
    old = repo.file(branch, path)
    if old is not None and body.get("sha") != _blob_sha(old):
        # GitHub: a missing or stale sha of an existing file is a conflict
        return 409, {"message": f"{path} does not match {body.get('sha')}", "documentation_url": "https://docs.github.com/rest/repos/contents#create-or-update-file-contents", "status": "409"}, {}
    data = base64.b64decode(body["content"])
    repo.commit(branch, {path: data}, body["message"])
    status = 201 if old is None else 200
    return status, _content(s, repo, path, data, branch, "/repos/{owner}/{repo}/contents/{path}", "PUT", status), {}


def _pull_full(s: StandIn, repo: Repo, pull: dict[str, Any], template: str, method: str = "GET", status: int = 200) -> dict[str, Any]:
    out = s.rewrite(s.spec.example(method, template, status), repo)
    if isinstance(out, list):
        out = out[0]
    n = pull["number"]
    out.update(number=n, state=pull["state"], title=pull.get("title", ""), body=pull.get("body"), merged=pull.get("merged", False), url=s.api(repo, f"/pulls/{n}"), html_url=f"https://github.com/{repo.full_name}/pull/{n}", issue_url=s.api(repo, f"/issues/{n}"), comments_url=s.api(repo, f"/issues/{n}/comments"))
    out["requested_teams"] = []  # GitHub's example team lacks the schema's required `type`
    owner = repo.full_name.split("/")[0]
    out["head"].update(sha=pull["head_sha"], ref=pull["head_ref"], label=f"{owner}:{pull['head_ref']}")
    out["base"].update(sha=pull["base_sha"], ref=pull["base_ref"], label=f"{owner}:{pull['base_ref']}")
    for side in ("head", "base"):
        out[side]["repo"].update(full_name=repo.full_name, name=repo.full_name.split("/")[1], fork=False)
        out[side]["repo"]["owner"]["login"] = owner
    if pull.get("head_repo"):  # a pull request from a fork
        fork_owner = pull["head_repo"].split("/")[0]
        out["head"]["repo"].update(full_name=pull["head_repo"], name=pull["head_repo"].split("/")[1], fork=True)
        out["head"]["repo"]["owner"]["login"] = fork_owner
        out["head"]["label"] = f"{fork_owner}:{pull['head_ref']}"
    return out


@route("GET", "/repos/{owner}/{repo}/pulls")
def list_pulls(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    state = (q.get("state") or ["open"])[0]
    head = (q.get("head") or [None])[0]
    base = (q.get("base") or [None])[0]
    owner = repo.full_name.split("/")[0]
    hits = [pl for pl in sorted(repo.pulls.values(), key=lambda x: -x["number"]) if (state == "all" or pl["state"] == state) and (head is None or f"{owner}:{pl['head_ref']}" == head) and (base is None or pl["base_ref"] == base)]
    for pl in hits:  # a branch pushed since the PR opened moves its head
        pl["head_sha"] = repo.branches.get(pl["head_ref"], pl["head_sha"])
    items, headers = _page([_pull_full(s, repo, pl, "/repos/{owner}/{repo}/pulls") for pl in hits], q, s.api(repo, "/pulls"))
    return 200, items, headers


@route("POST", "/repos/{owner}/{repo}/pulls")
def create_pull(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    head, base = body.get("head", ""), body.get("base", "")
    doc = "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"
    if head not in repo.branches or base not in repo.branches or not body.get("title"):
        return 422, {"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "invalid", "field": "head" if head not in repo.branches else "base"}], "documentation_url": doc, "status": "422"}, {}
    if too_long := _too_long("PullRequest", body):
        return too_long
    if any(pl["state"] == "open" and pl["head_ref"] == head and pl["base_ref"] == base for pl in repo.pulls.values()):
        return 422, {"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "custom", "message": f"A pull request already exists for {repo.full_name.split('/')[0]}:{head}."}], "documentation_url": doc, "status": "422"}, {}
    number = repo.next_number()
    pull = {"number": number, "head_sha": repo.branches[head], "base_sha": repo.branches[base], "head_ref": head, "base_ref": base, "state": "open", "title": body["title"], "body": body.get("body"), "merged": False}
    repo.pulls[number] = pull
    return 201, _pull_full(s, repo, pull, "/repos/{owner}/{repo}/pulls", "POST", 201), {}


@route("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}")
def update_pull(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    pull = repo.pulls.get(int(p["pull_number"]))
    if pull is None:
        return 404, _error_body(404), {}
    if too_long := _too_long("PullRequest", body):
        return too_long
    for key in ("title", "body", "state"):
        if key in body:
            pull[key] = body[key]
    pull["head_sha"] = repo.branches.get(pull["head_ref"], pull["head_sha"])
    return 200, _pull_full(s, repo, pull, "/repos/{owner}/{repo}/pulls/{pull_number}", "PATCH", 200), {}


@route("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge")
def merge_pull(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    pull = repo.pulls.get(int(p["pull_number"]))
    if pull is None:
        return 404, _error_body(404), {}
    if pull["state"] != "open":
        return 405, {"message": "Pull Request is not mergeable", "documentation_url": "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request", "status": "405"}, {}
    head_sha = repo.branches[pull["head_ref"]]
    base_sha = repo.branches[pull["base_ref"]]
    changed = {k: v for k, v in repo.commits[head_sha]["files"].items() if repo.commits[base_sha]["files"].get(k) != v}
    sha = repo.commit(pull["base_ref"], changed, f"Merge pull request #{pull['number']} from {pull['head_ref']}", parents=[base_sha, head_sha])
    pull.update(state="closed", merged=True, head_sha=head_sha)
    out = s.spec.example("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge", 200)
    out.update(sha=sha, merged=True)
    return 200, out, {}


@route("POST", "/repos/{owner}/{repo}/git/blobs")
def create_blob(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    import base64

    if "content" not in body or body.get("encoding", "utf-8") not in ("utf-8", "base64"):
        return 422, {"message": "Invalid request.", "documentation_url": "https://docs.github.com/rest/git/blobs#create-a-blob", "status": "422"}, {}
    data = base64.b64decode(body["content"]) if body.get("encoding") == "base64" else body["content"].encode()
    sha = _blob_sha(data)
    repo.blobs[sha] = data
    out = s.rewrite(s.spec.example("POST", "/repos/{owner}/{repo}/git/blobs", 201), repo)
    out.update(sha=sha, url=s.api(repo, f"/git/blobs/{sha}"))
    return 201, out, {"Location": out["url"]}


@route("POST", "/repos/{owner}/{repo}/git/trees")
def create_tree(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    doc = "https://docs.github.com/rest/git/trees#create-a-tree"
    base = body.get("base_tree")
    if base is not None and base not in repo.trees:
        return 422, {"message": "Invalid tree info", "documentation_url": doc, "status": "422"}, {}
    files = dict(repo.trees[base]) if base else {}
    for entry in body.get("tree") or []:
        if entry.get("sha") is None and "content" not in entry:
            files.pop(entry["path"], None)  # sha: null deletes
            continue
        data = entry["content"].encode() if "content" in entry else repo.blobs.get(entry["sha"])
        if data is None:
            return 422, {"message": "Invalid tree info", "documentation_url": doc, "status": "422"}, {}
        files[entry["path"]] = data
    sha = repo.tree_of(files)
    out = s.rewrite(s.spec.example("POST", "/repos/{owner}/{repo}/git/trees", 201), repo)
    out.update(sha=sha, url=s.api(repo, f"/git/trees/{sha}"), truncated=False)
    out["tree"] = [{"path": k, "mode": "100644", "type": "blob", "sha": _blob_sha(v), "size": len(v), "url": s.api(repo, f"/git/blobs/{_blob_sha(v)}")} for k, v in sorted(files.items())]
    return 201, out, {"Location": out["url"]}


@route("POST", "/repos/{owner}/{repo}/git/commits")
def create_git_commit(s: StandIn, repo: Repo, p: dict[str, str], body: Any, q: Any) -> tuple[int, Any, dict[str, str]]:
    doc = "https://docs.github.com/rest/git/commits#create-a-commit"
    tree, parents = body.get("tree"), body.get("parents") or []
    if tree not in repo.trees or any(ps not in repo.commits for ps in parents) or not body.get("message"):
        return 422, {"message": "Invalid request.", "documentation_url": doc, "status": "422"}, {}
    sha = repo.new_commit(repo.trees[tree], parents, body["message"])
    out = s.rewrite(s.spec.example("POST", "/repos/{owner}/{repo}/git/commits", 201), repo)
    out.update(sha=sha, url=s.api(repo, f"/git/commits/{sha}"), html_url=f"https://github.com/{repo.full_name}/commit/{sha}", message=body["message"])
    out["tree"] = {"sha": tree, "url": s.api(repo, f"/git/trees/{tree}")}
    out["parents"] = [{"sha": ps, "url": s.api(repo, f"/git/commits/{ps}"), "html_url": f"https://github.com/{repo.full_name}/commit/{ps}"} for ps in parents]
    return 201, out, {"Location": out["url"]}


def github_for_cli(monkeypatch: Any, token: str) -> Any:
    """A started stand-in with acme/models, and the environment the CLI reads to reach
    it (token, API URL, repository, no write spacing); stops it and asserts no
    violations at the end. Use as a generator fixture body: ``yield from``."""
    server = StandIn(token=token).start()
    server.add_repo("acme/models")
    monkeypatch.setenv("GITHUB_TOKEN", token)
    monkeypatch.setenv("GITHUB_API_URL", server.url)
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/models")
    monkeypatch.setenv("MLOPS_GITHUB_WRITE_INTERVAL", "0")
    yield server
    server.stop()
    assert server.violations == []

