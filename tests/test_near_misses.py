"""Near misses (issue 15, item 7): the tests that must fail on a bug that is only a
little wrong. Each expected number comes from GitHub's published material or from the
scenario, never from the product's own constants:

- the comment cap: GitHub refuses an issue comment over 65,536 characters ("body is
  too long (maximum is 65536 characters)"); a comment that would pass it is cut by
  the product and accepted by the stand-in, which enforces that limit;
- X-Hub-Signature-256 one hex digit off (first, middle, last) is refused;
- a manifest pin one hex digit off (first, middle, last) is refused;
- the deploy action's outputs, read from $GITHUB_OUTPUT after a real run of the
  action's own step scripts and resolved with the action's declared expressions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.github_standin import StandIn, github_for_cli
from tests.helpers import GitRepo

GITHUB_COMMENT_MAX = 65536  # GitHub: "body is too long (maximum is 65536 characters)"
TOKEN = "ghs_near_miss_token_789"
REPO_ROOT = Path(__file__).resolve().parents[1]
POSITIONS = {"first": 0, "middle": 32, "last": 63}


def off_by_one_digit(hexdigits: str, at: int) -> str:
    """``hexdigits`` with the digit at ``at`` changed to its neighbour (mod 16)."""
    digit = format((int(hexdigits[at], 16) + 1) % 16, "x")
    return hexdigits[:at] + digit + hexdigits[at + 1 :]


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    yield from github_for_cli(monkeypatch, TOKEN)


# -- (a) the comment cap, held to GitHub's 65,536 end to end ----------------------------
def _forge(github: StandIn) -> Any:
    from mlgitops.forges.github import GitHubForge

    return GitHubForge("acme/models", TOKEN, github.url, seconds_between_writes=0, seconds_between_requests=0)


def _posted(github: StandIn, number: int) -> list[str]:
    return [c["body"] for c in sorted(github.repos["acme/models"].comments.values(), key=lambda c: c["id"]) if c["number"] == number]


def test_a_report_past_githubs_limit_is_cut_by_the_report_and_accepted_by_github(github: StandIn) -> None:
    """The report itself (not the forge's last-resort cut) shortens a comment that would
    pass 65,536 characters, with its own note, leaving room for the sha stamp."""
    from mlgitops.events.payloads import Event
    from mlgitops.report.model import Change
    from mlgitops.report.render import marker, render_comment
    from tests.test_render import make_report

    sha = "c" * 40
    github.add_pull("acme/models", 3, sha, "d" * 40)
    report = make_report()
    report.config_changes = [Change(f"training.params.p{i}", "x" * 3500, "y" * 3500) for i in range(40)]  # 280,000 characters; the first ten alone 70,000
    ref = _forge(github).upsert_comment(Event(kind="pull_request", repo="acme/models", pr_number=3, head_sha=sha), marker(report.name), render_comment(report))
    assert ref.created
    assert github.calls("POST", r"/issues/3/comments$")[-1][2] == 201
    (body,) = _posted(github, 3)
    assert GITHUB_COMMENT_MAX - 200 < len(body) <= GITHUB_COMMENT_MAX  # cut near GitHub's limit, not far below it
    assert body.endswith(f"> ⚠️ This comment was truncated to fit GitHub's 65,536-character limit. Run `mlops run --json` for the full report.\n<!-- mlgitops:sha={sha} -->\n")
    assert "Cut here" not in body  # the report fitted itself; the forge did not have to
    assert body.startswith(marker(report.name) + "\n")


@pytest.mark.parametrize("size", [GITHUB_COMMENT_MAX - 64, GITHUB_COMMENT_MAX + 1, 200_000])
def test_any_body_the_forge_posts_fits_githubs_limit(github: StandIn, size: int) -> None:
    """Whatever reaches the forge (a custom template, a ChatOps reply) is fitted before
    GitHub sees it; 65,536 is GitHub's number, and the stand-in refuses one more."""
    from mlgitops.events.payloads import Event

    sha = "e" * 40
    stamp = f"\n<!-- mlgitops:sha={sha} -->\n"
    github.add_pull("acme/models", 4, sha, "d" * 40)
    text = "<!-- m -->\n" + "y" * (size - len("<!-- m -->\n"))
    _forge(github).upsert_comment(Event(kind="pull_request", repo="acme/models", pr_number=4, head_sha=sha), "<!-- m -->", text)
    (body,) = _posted(github, 4)
    assert [c[2] for c in github.calls("POST", r"/issues/4/comments$")] == [201]
    if size + len(stamp) <= GITHUB_COMMENT_MAX:
        assert body == text + stamp  # it fits: nothing is cut
    else:
        assert GITHUB_COMMENT_MAX - 100 < len(body) <= GITHUB_COMMENT_MAX
        assert body.endswith(f"\n\n> ⚠️ Cut here: longer than GitHub's 65,536-character limit.\n{stamp}")


def test_the_stand_in_holds_comments_to_githubs_limit(github: StandIn) -> None:
    import requests

    github.add_pull("acme/models", 5, "f" * 40, "d" * 40)
    url, auth = f"{github.url}/repos/acme/models/issues/5/comments", {"Authorization": f"token {TOKEN}"}
    assert requests.post(url, json={"body": "z" * GITHUB_COMMENT_MAX}, headers=auth, timeout=10).status_code == 201
    over = requests.post(url, json={"body": "z" * (GITHUB_COMMENT_MAX + 1)}, headers=auth, timeout=10)
    assert over.status_code == 422
    assert over.json()["errors"] == [{"resource": "IssueComment", "code": "custom", "field": "body", "message": "body is too long (maximum is 65536 characters)"}]
    (cid,) = github.repos["acme/models"].comments
    edit = requests.patch(f"{github.url}/repos/acme/models/issues/comments/{cid}", json={"body": "z" * (GITHUB_COMMENT_MAX + 1)}, headers=auth, timeout=10)
    assert edit.status_code == 422


# -- (b) X-Hub-Signature-256 one hex digit off ------------------------------------------
@pytest.mark.parametrize("position", POSITIONS)
def test_a_signature_one_hex_digit_off_is_refused(tmp_path: Path, position: str) -> None:
    from mlgitops.service.webhook import signature, verified
    from tests.test_webhook import SECRET, Recorder, Service, example

    body = example("pull_request")
    right = signature(SECRET, body)
    digits = right.removeprefix("sha256=")
    wrong = "sha256=" + off_by_one_digit(digits, POSITIONS[position])
    assert len(wrong) == len(right) == 71 and sum(a != b for a, b in zip(wrong, right)) == 1
    assert verified(SECRET, body, right) and not verified(SECRET, body, wrong)

    recorder = Recorder()
    svc = Service(tmp_path, recorder)
    try:
        refused = svc.post(body, headers={"X-Hub-Signature-256": wrong})
        assert refused[:2] == (401, {"error": "X-Hub-Signature-256 does not match: the delivery is not from a webhook with this secret"})
        assert svc.log.counts() == {} and recorder.runs == []
        accepted = svc.post(body, headers={"X-Hub-Signature-256": right})
        assert accepted[0] == 202, accepted
    finally:
        svc.stop()


def test_githubs_test_vector_one_hex_digit_off_is_refused() -> None:
    from mlgitops.service.webhook import verified
    from tests.test_webhook import VECTOR

    (vector,) = json.loads(VECTOR.read_text())["vectors"]
    secret, body, header = vector["secret"].encode(), vector["payload"].encode(), vector["X-Hub-Signature-256"]
    assert verified(secret, body, header)
    for at in POSITIONS.values():
        assert not verified(secret, body, "sha256=" + off_by_one_digit(header.removeprefix("sha256="), at))
    assert not verified(secret, body, header[:-1])  # one digit short
    assert not verified(secret, body, header + "0")  # one digit more


# -- (c) a pin one hex digit off --------------------------------------------------------
@pytest.mark.parametrize("position", POSITIONS)
def test_a_served_pin_edited_by_one_hex_digit_is_refused(tmp_path: Path, position: str) -> None:
    """The served model's pin, its sha256 edited in one digit (same URI, same bytes):
    not the pin being served, and the bytes do not hash to it."""
    from mlgitops.deploy.serve import ModelHolder
    from tests.test_serve import artifact, pin

    uri, sha = artifact(tmp_path, "one.onnx", 1.0)
    manifest = tmp_path / "staging.yaml"
    manifest.write_text(pin(1, uri, sha))
    holder = ModelHolder("staging", manifest.read_text, "deploy/staging.yaml", tmp_path)
    assert holder.load(initial=True) and holder.current.pin.sha256 == sha
    bad = off_by_one_digit(sha, POSITIONS[position])
    manifest.write_text(pin(1, uri, bad))
    assert holder.load() is False
    assert holder.last_error == f"deploy/staging.yaml: model.sha256: the artifact {uri} hashes to {sha[:12]}, not the pinned {bad[:12]}; refusing to use it"
    assert holder.current.pin.sha256 == sha  # the old model is still served


@pytest.mark.parametrize("position", POSITIONS)
def test_a_cached_entry_under_a_near_miss_pin_is_not_served(tmp_path: Path, position: str) -> None:
    """The right bytes planted in the cache under a pin one digit off: the cache
    re-hashes every read, so the entry is dropped and the pin refused."""
    from fsspec.implementations.memory import MemoryFileSystem

    from mlgitops.deploy.fetch import cache_path, fetch_pinned, verify_artifact
    from mlgitops.deploy.manifest import ManifestError, Pin
    from mlgitops.deploy.registry import Registry
    from mlgitops.deploy.registry.urls import open_backend

    data = b"model bytes " * 100
    sha = hashlib.sha256(data).hexdigest()
    name = f"near-miss-{position}"
    registry = Registry(open_backend(f"memory://{name}/models", Path(".")))
    try:
        assert registry.put_object(data) == sha
        bad = off_by_one_digit(sha, POSITIONS[position])
        entry = cache_path(bad, tmp_path / "cache")
        entry.parent.mkdir(parents=True)
        entry.write_bytes(data)
        with pytest.raises(ManifestError) as info:
            fetch_pinned(Pin("m", 1, registry.object_uri(sha), bad), tmp_path, "deploy/prod.yaml", tmp_path / "cache")
        assert info.value.message == f"deploy/prod.yaml: model.sha256: the artifact {registry.object_uri(sha)} hashes to {sha[:12]}, not the pinned {bad[:12]}; refusing to use it"
        assert info.value.hint == "the registry object was changed or corrupted, or the pin was edited by hand; redeploy it with `mlops rollback ENV --to VERSION` or restore the registry"
        assert not entry.exists()
        for almost in (sha[:63], sha.upper(), sha + "0"):  # a hand-built Pin (no read_pin): still refused before any fetch
            with pytest.raises(ManifestError) as info:
                fetch_pinned(Pin("m", 1, registry.object_uri(sha), almost), tmp_path, "deploy/prod.yaml", tmp_path / "cache")
            assert info.value.message == f"deploy/prod.yaml: model.sha256: expected 64 lowercase hex digits, got {almost!r}"
        assert fetch_pinned(Pin("m", 1, registry.object_uri(sha), sha), tmp_path, "deploy/prod.yaml", tmp_path / "cache") == data
        assert verify_artifact(Pin("m", 1, registry.object_uri(sha), sha), tmp_path, "deploy/prod.yaml") == data  # a registry URI: fetched, not read as a path
        assert cache_path(sha, Path("/c")) == Path("/c/objects") / sha[:2] / sha
    finally:
        for key in [k for k in MemoryFileSystem.store if k.startswith(f"/{name}/")]:
            MemoryFileSystem.store.pop(key, None)


# -- (d) the deploy action's outputs, from $GITHUB_OUTPUT after a real run --------------
def read_github_output(path: Path) -> dict[str, str]:
    """$GITHUB_OUTPUT as the runner reads it: ``name=value`` lines and
    ``name<<DELIMITER`` ... ``DELIMITER`` blocks."""
    out: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").split("\n") if path.is_file() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            out[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
        else:
            if line:
                name, value = line.split("=", 1)
                out[name] = value
            i += 1
    return out


def action_outputs(doc: dict, steps: dict[str, dict[str, str]]) -> dict[str, str]:
    """The action's outputs from its steps' outputs, evaluating its declared
    ``${{ steps.A.outputs.X || steps.B.outputs.X }}`` as Actions does (a step that did
    not run has no outputs; ``||`` yields the first non-empty)."""
    result = {}
    for name, spec in doc["outputs"].items():
        m = re.fullmatch(r"\$\{\{\s*(.+?)\s*\}\}", spec["value"])
        assert m, spec["value"]
        value = ""
        for term in m.group(1).split("||"):
            ref = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", term.strip())
            assert ref, term
            value = value or steps.get(ref.group(1), {}).get(ref.group(2), "")
        result[name] = value
    return result


def run_step(doc: dict, step_id: str, repo: GitRepo, env: dict[str, str], output: Path) -> subprocess.CompletedProcess[str]:
    step = next(s for s in doc["runs"]["steps"] if s.get("id") == step_id)
    given = {"GITHUB_TOKEN": TOKEN, "MLOPS_CONFIG": "mlops.yaml", "PROMOTE_FROM": "staging", "PROMOTE_TO": "production"}
    step_env = {k: given[k] for k in step["env"]}  # only what the step declares
    return subprocess.run(["bash", "-e", "-c", step["run"]], check=False, cwd=repo.path, env={**env, **step_env, "GITHUB_OUTPUT": str(output)}, capture_output=True, text=True, timeout=300)


def test_the_deploy_actions_outputs_after_a_real_run(cli: Any, prefect_api: str, repo: GitRepo, github: StandIn, tmp_path: Path) -> None:
    from tests.test_deploy import HAND_WRITTEN, make_repo, pr_and_merge
    from tests.test_deploy_github import sync_checkout

    doc = yaml.safe_load((REPO_ROOT / "actions" / "deploy" / "action.yml").read_text())
    remote = github.repos["acme/models"]
    remote.commit("main", {"deploy/staging.yaml": HAND_WRITTEN.encode()}, "Add the staging manifest")
    make_repo(repo)
    pr_and_merge(cli, repo, "feature/stronger", "C: 0.01", "C: 1.0", 7)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))}
    env.update(CI="true", GITHUB_ACTIONS="true", GITHUB_EVENT_NAME="push", GITHUB_REPOSITORY="acme/models", GITHUB_SHA=repo.git("rev-parse", "HEAD"), GITHUB_REF="refs/heads/main",
               GITHUB_API_URL=github.url, GITHUB_SERVER_URL="https://github.com", PREFECT_API_URL=prefect_api, MLOPS_GITHUB_WRITE_INTERVAL="0", PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")

    deployed = run_step(doc, "deploy", repo, env, tmp_path / "deploy-output.txt")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    (number,) = remote.pulls
    title = remote.pulls[number]["title"]
    assert title.startswith("Deploy churn v1 (")
    outputs = action_outputs(doc, {"deploy": read_github_output(tmp_path / "deploy-output.txt")})
    assert outputs == {"version": "1", "pull-url": f"https://github.com/acme/models/pull/{number}", "deploy-message": f"registered churn v1; opened PR #{number}: {title}"}

    github.merge_over_http("acme/models", number)
    sync_checkout(github, repo)
    promoted = run_step(doc, "promote", repo, env, tmp_path / "promote-output.txt")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    (promotion,) = [n for n, p in remote.pulls.items() if p["head_ref"] == "mlops/deploy-production"]
    outputs = action_outputs(doc, {"promote": read_github_output(tmp_path / "promote-output.txt")})
    assert outputs["pull-url"] == f"https://github.com/acme/models/pull/{promotion}"
    assert outputs["version"] == "1"
    assert outputs["deploy-message"] == f"opened PR #{promotion}: {remote.pulls[promotion]['title']}"
    assert TOKEN not in (deployed.stdout + deployed.stderr + promoted.stdout + promoted.stderr).replace(f"::add-mask::{TOKEN}\n", "")


# -- (c') a pin that is almost well formed ----------------------------------------------
GOOD = "a" * 64
HINT = "manifests are written by promotion PRs; restore the last good one with `git checkout`, or `mlops rollback ENV --to VERSION`"


@pytest.mark.parametrize(
    ("sha", "why"),
    [(GOOD[:63], "63 digits"), (GOOD + "a", "65 digits"), ("A" * 64, "upper case"), (GOOD[:32] + "g" + GOOD[33:], "one g"), (GOOD[:63] + "X", "one X"), ("0x" + GOOD[:62], "a 0x prefix")],
)
def test_a_pin_sha256_that_is_almost_hex_is_refused_where_it_stands(sha: str, why: str) -> None:
    from mlgitops.deploy.manifest import ManifestError, read_pin

    with pytest.raises(ManifestError) as info:
        read_pin(f"model:\n  uri: m.onnx\n  sha256: '{sha}'\n", "deploy/staging.yaml")
    assert info.value.message == f"deploy/staging.yaml:3:11: model.sha256: expected 64 lowercase hex digits, got {sha!r}"
    assert info.value.hint == HINT


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model:\n  uri: [unclosed\n", "deploy/staging.yaml:3:1: not valid YAML: expected ',' or ']', but got '<stream end>'"),
        ("- 1\n", "deploy/staging.yaml:1:1: expected a mapping with a `model:` key, got CommentedSeq"),
        ("env: x\nmodel: nope\n", "deploy/staging.yaml:2:8: model: expected a mapping (name, version, uri, sha256, ...), got str"),
        ("model:\n  uri: m.onnx\n", "deploy/staging.yaml:1:1: model.sha256: expected a string, got None"),
        (f"model:\n  sha256: {GOOD}\n", "deploy/staging.yaml:1:1: model.uri: expected a string, got None"),
        (f"model:\n  uri: 5\n  sha256: {GOOD}\n", "deploy/staging.yaml:2:8: model.uri: expected a string, got 5"),
        (f"model:\n  uri: m.onnx\n  sha256: {GOOD}\n  version: 0\n", "deploy/staging.yaml:4:12: model.version: expected a whole number >= 1, got 0"),
        (f"model:\n  uri: m.onnx\n  sha256: {GOOD}\n  version: true\n", "deploy/staging.yaml:4:12: model.version: expected a whole number >= 1, got True"),
        (f"model:\n  uri: m.onnx\n  sha256: {GOOD}\n  version: '1'\n", "deploy/staging.yaml:4:12: model.version: expected a whole number >= 1, got '1'"),
        (f"model:\n  uri: 5\n  sha256: {GOOD[:63]}\n", f"deploy/staging.yaml:2:8: model.uri: expected a string, got 5\ndeploy/staging.yaml:3:11: model.sha256: expected 64 lowercase hex digits, got {GOOD[:63]!r}"),
    ],
)
def test_a_manifest_that_is_almost_a_pin_is_refused_where_it_stands(text: str, message: str) -> None:
    from mlgitops.deploy.manifest import ManifestError, read_pin

    with pytest.raises(ManifestError) as info:
        read_pin(text, "deploy/staging.yaml")
    assert info.value.message == message
    if "not valid YAML" in message:
        assert info.value.hint == "fix the file by hand, or restore it with `git checkout` and promote again"


def test_a_pin_manifest_that_ruamel_cannot_read_or_that_bombs_is_refused_where_it_stands() -> None:
    """A control character is refused by ruamel's reader, whose error has no line or
    column (the message then has none); an alias bomb by the bounds, at its place."""
    from mlgitops.deploy.manifest import ManifestError, read_pin

    with pytest.raises(ManifestError) as info:
        read_pin("model: \x07\n", "deploy/staging.yaml")
    assert (info.value.message, info.value.hint) == ('deploy/staging.yaml: not valid YAML: unacceptable character #x0007: special characters are not allowed\n  in "<unicode string>", position 7', "fix the file by hand, or restore it with `git checkout` and promote again")
    bomb = "a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    with pytest.raises(ManifestError) as info:
        read_pin(bomb, "deploy/staging.yaml")
    assert (info.value.message, info.value.hint) == ("deploy/staging.yaml:4:29: aliases expand to more than 10,000 values (at *c)", 'an alias bomb ("billion laughs") or close to one: write the values out')


def test_a_pin_read_in_full() -> None:
    from mlgitops.deploy.manifest import Pin, read_pin

    text = f"model:\n  name: churn\n  version: 3\n  uri: m.pkl\n  sha256: {GOOD}\n  metrics: {{f1: 0.9}}\n  lineage: {{pr: 7}}\nprevious: {{version: 2, uri: p.onnx, sha256: {'b' * 64}}}\nheld: {{version: 4, sha256: {'c' * 64}}}\n"
    assert read_pin(text, "w") == Pin("churn", 3, "m.pkl", GOOD, "joblib", {"f1": 0.9}, {"pr": 7}, {"version": 2, "uri": "p.onnx", "sha256": "b" * 64}, {"version": 4, "sha256": "c" * 64})
    assert read_pin(f"model:\n  uri: m.onnx\n  sha256: {GOOD}\n  name: caf\xe9\n".encode("latin-1"), "w") == Pin("caf\ufffd", None, "m.onnx", GOOD)  # bytes: UTF-8, bad bytes replaced
    assert read_pin(f"model:\n  uri: m.onnx\n  sha256: {GOOD}\n  format: joblib\nprevious: {{version: 2}}\nheld: {{sha256: 5}}\n", "w") == Pin(None, None, "m.onnx", GOOD, "joblib")
    assert [read_pin(t, "w") for t in (None, "", "# nothing\n", "model:\n", "model: {name: churn}\n")] == [None] * 5
    assert [read_pin(f"model:\n  uri: m{ext}\n  sha256: {GOOD}\n", "w").format for ext in (".joblib", ".pkl", ".onnx", ".JOBLIB")] == ["joblib", "joblib", "onnx", "onnx"]


@pytest.mark.parametrize("position", POSITIONS)
def test_a_file_pin_one_hex_digit_off_is_refused_with_its_hint(tmp_path: Path, position: str) -> None:
    from mlgitops.deploy.fetch import fetch_pinned, verify_artifact
    from mlgitops.deploy.manifest import ManifestError, Pin

    data = b"model bytes"
    sha = hashlib.sha256(data).hexdigest()
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.onnx").write_bytes(data)
    bad = off_by_one_digit(sha, POSITIONS[position])
    for read in (verify_artifact, fetch_pinned):
        with pytest.raises(ManifestError) as info:
            read(Pin("m", 1, "models/m.onnx", bad), tmp_path, "deploy/prod.yaml")
        assert (info.value.message, info.value.hint) == (f"deploy/prod.yaml: model.sha256: the artifact models/m.onnx hashes to {sha[:12]}, not the pinned {bad[:12]}; refusing to use it", "the file was changed or corrupted; redeploy it with `mlops rollback ENV --to VERSION` or restore the registry")
        assert read(Pin("m", 1, "models/m.onnx", sha), tmp_path, "deploy/prod.yaml") == data
    with pytest.raises(ManifestError) as info:
        verify_artifact(Pin("m", 1, "models/gone.onnx", sha), tmp_path, "deploy/prod.yaml")
    assert (info.value.message, info.value.hint) == (f"deploy/prod.yaml: model.uri: the pinned artifact models/gone.onnx does not exist ({tmp_path / 'models' / 'gone.onnx'})", "the registry folder must be readable here (registry.path in mlops.yaml)")


# -- (b') the intake around the signature, at its exact limits ---------------------------
def _post_raw(port: int, body: Any, headers: dict[str, str]) -> tuple[int, dict]:
    """POST /webhook with http.client: ``body`` bytes (Content-Length) or a list of
    chunks (chunked transfer encoding, no Content-Length)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        if isinstance(body, list):
            def chunks() -> Iterator[bytes]:
                for i, chunk in enumerate(body):
                    if i:
                        time.sleep(0.2)  # apart, so the server receives them as separate messages
                    yield chunk

            conn.request("POST", "/webhook", body=chunks(), headers=headers, encode_chunked=True)
        else:
            conn.request("POST", "/webhook", body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_the_intake_at_its_exact_limits(tmp_path: Path) -> None:
    from mlgitops.service.webhook import signature
    from tests.test_webhook import SECRET, Recorder, Service

    body = json.dumps({"action": "opened", "pad": "x" * 900}).encode()
    limit = len(body)
    recorder = Recorder()
    svc = Service(tmp_path, recorder, max_body=limit)
    try:
        def head(sig: str | None = None, delivery: str = "d-1", event: str | None = "pull_request") -> dict[str, str]:
            h = {"Content-Type": "application/json", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sig or signature(SECRET, body)}
            if event:
                h["X-GitHub-Event"] = event
            return h

        malformed = "X-Hub-Signature-256 is not sha256=<64 hex digits>: the delivery is not from a webhook with this secret"
        for sig in ("sha256=" + "a" * 63, "sha256=" + "g" * 64, "sha256=" + "a" * 65):
            assert _post_raw(svc.port, body, head(sig)) == (401, {"error": malformed})
        assert _post_raw(svc.port, body, head(event=None)) == (400, {"error": "a delivery needs the X-GitHub-Event and X-GitHub-Delivery headers"})
        assert _post_raw(svc.port, body, head(delivery="d" * 101)) == (400, {"error": "a delivery needs the X-GitHub-Event and X-GitHub-Delivery headers"})
        assert _post_raw(svc.port, body, head(delivery="d" * 100))[0] == 202  # 100 characters: the most a delivery id may have
        assert _post_raw(svc.port, body, head(delivery="e-1"))[0] == 202  # exactly max_body bytes, declared
        assert _post_raw(svc.port, [body[:500], body[500:]], head(delivery="e-2"))[0] == 202  # exactly max_body bytes, in chunks
        bigger = body + b" "
        assert _post_raw(svc.port, bigger, {**head(signature(SECRET, bigger)), "X-GitHub-Delivery": "e-3"}) == (413, {"error": f"body over {limit} bytes"})
        assert _post_raw(svc.port, [bigger[:600], bigger[600:]], {**head(signature(SECRET, bigger)), "X-GitHub-Delivery": "e-4"}) == (413, {"error": f"body over {limit} bytes"})  # counted over all chunks
        assert [svc.log.get(d) is not None for d in ("d" * 100, "e-1", "e-2", "e-3", "e-4", "d" * 101)] == [True, True, True, False, False, False]
    finally:
        recorder.gate.set()
        svc.stop()


def test_the_cache_root_without_settings_is_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlgitops.deploy.fetch import cache_root

    monkeypatch.delenv("MLOPS_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_root() == tmp_path / ".cache" / "mlgitops"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "mlgitops"
