"""Attack: pull-request code runs inside the token-holding `mlops` process through a pickle.

The training command already ran in a child with an allow-listed environment, but the
model file it wrote was then unpickled by `mlops` itself, and so was any pickle cached
under `.mlops/` (one a previous pull request planted, under the webhook service).
Unpickling runs code: a `__reduce__` read `os.environ` (GITHUB_TOKEN, the webhook
secret, cloud keys) or ended the process with a chosen exit code. Now an untrusted run
with a credential in reach trains, unpickles and scores in a secret-less child
(`mlgitops.run.compute_child`), and its errors still reach the user as before.

Each end-to-end test also replaces the flow in this (the parent's) process with one
that fails: the compute must not run here at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mlgitops.run import compute_child
from mlgitops.config.loader import load_config
from mlgitops.events.payloads import Event
from mlgitops.forges.local import LocalForge
from mlgitops.plan.decide import make_plan
from tests.helpers import COMMAND_CONFIG, TRAIN_SCRIPT, GitRepo, mixed_frame
from tests.test_bad_input import CASES, pr

TOKEN = "ghp_" + "Q7w8E9r0T1" * 4
SECRETS = {
    "GITHUB_TOKEN": TOKEN,
    "MLOPS_WEBHOOK_SECRET": "webhook-secret-" + "x" * 20,
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "MLOPS_OCI_PASSWORD": "oci-password-" + "y" * 20,
    "PREFECT_API_KEY": "pnu_" + "z" * 36,
}

# Run when unpickled: where it runs (pid, parent), what that process's environment
# holds (os.environ and the kernel's copy of it), then the real model or None.
REDUCE = (
    "(__import__('json').dump({{'pid': __import__('os').getpid(), 'ppid': __import__('os').getppid(), "
    "'environ': dict(__import__('os').environ), 'proc_environ': open('/proc/self/environ', 'rb').read().decode('latin-1')}}, "
    "open({out!r}, 'w')), {then})[1]"
)


class Payload:
    """A pickle that runs ``expr`` (via eval) when loaded, and loads as its value."""

    def __init__(self, expr: str) -> None:
        self.expr = expr

    def __reduce__(self) -> tuple:
        return (eval, (self.expr,))


def evil_train_script(out: Path, then: str = "None") -> str:
    """An argparse script like the users', whose model file is the payload."""
    return (
        "import argparse, pickle\n"
        "parser = argparse.ArgumentParser()\n"
        "parser.add_argument('--train_data_path'); parser.add_argument('--model_output_path'); parser.add_argument('--C')\n"
        "args = parser.parse_args()\n"
        f"open(args.model_output_path, 'wb').write({pickle.dumps(Payload(REDUCE.format(out=str(out), then=then)))!r})\n"
    )


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(compute_child.ISOLATE_ENV, raising=False)
    return SECRETS


@pytest.fixture
def no_flow_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow must not run in the token holder (on the old code it did)."""
    from mlgitops.run import compute

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the flow ran in the process that holds the token")

    monkeypatch.setattr(compute, "run_flow", refuse)


def assert_ran_elsewhere(dump_path: Path) -> dict:
    """The payload ran in a child of this process, with no credential in reach."""
    dump = json.loads(dump_path.read_text())
    assert dump["pid"] != os.getpid()
    assert dump["ppid"] == os.getpid()  # the compute child, started by `mlops` (this process under CliRunner)
    for name, value in SECRETS.items():
        assert name not in dump["environ"], name
        assert not any(value in v for v in dump["environ"].values()), name
        assert value not in dump["proc_environ"], name
    assert "PREFECT_API_URL" in dump["environ"]  # what it needs does pass
    return dump


def test_the_training_commands_pickle_is_unpickled_in_a_child_without_the_token(cli, repo: GitRepo, tmp_path: Path, secrets: dict, no_flow_here: None) -> None:
    """The attack as reported: train.py writes a model whose unpickling dumps the environment."""
    out = tmp_path / "unpickled-by.json"
    repo.gen({"mlops.yaml": COMMAND_CONFIG, "train.py": TRAIN_SCRIPT, "data/churn.csv": mixed_frame(120).to_csv(index=False)}).commit("base")
    repo.branch("pr").gen({"train.py": evil_train_script(out)}).commit("a model file with a payload")
    result = cli("run", "--base", "main", cwd=repo.path)
    assert_ran_elsewhere(out)
    # The payload loads as None: the user is told what is wrong with the model file.
    assert result.exit_code == 2, result.output
    assert result.stderr == "error: mlops.yaml:7:12: training.command wrote a NoneType, which has no predict method\n  hint: save the fitted estimator itself\n"
    assert repo.mlops_files() == []


GOOD = "name: churn\ndata: {path: data/churn.csv, target: churn}\ntraining: {estimator: sklearn.linear_model.LogisticRegression}\n"


def test_a_planted_cached_pickle_is_unpickled_only_in_the_child(cli, repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A previous pull request's run left a pickle under `.mlops/cache/models/<key>/`
    with a matching meta.json; a later run that reuses the key loads it in the child."""
    pr(repo, {"README.md": "docs only: the candidate's key is the base's\n"})
    first = cli("run", "--base", "main", cwd=repo.path)  # no secret in reach: in-process, fills the cache
    assert first.exit_code == 0, first.output

    cfg = load_config(repo.path / "mlops.yaml", display="mlops.yaml")
    base = repo.git("rev-parse", "main")
    plan = make_plan(cfg, repo.path, "mlops.yaml", Event(kind="local", base_ref="main", base_sha=base, head_ref="pr", head_sha=repo.git("rev-parse", "HEAD")))
    entry = repo.path / ".mlops" / "cache" / "models" / plan.candidate.key
    real = (entry / "model.joblib").read_bytes()
    out = tmp_path / "unpickled-by.json"
    planted = pickle.dumps(Payload(REDUCE.format(out=str(out), then=f"__import__('joblib').load(__import__('io').BytesIO({real!r}))")))
    (entry / "model.joblib").write_bytes(planted)
    meta = json.loads((entry / "meta.json").read_text())
    (entry / "meta.json").write_text(json.dumps(meta | {"model_sha256": hashlib.sha256(planted).hexdigest()}))
    shutil.rmtree(repo.path / ".mlops" / "cache" / "runs")  # no cached report: the models are loaded

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    from mlgitops.run import compute

    monkeypatch.setattr(compute, "run_flow", lambda *a, **k: (_ for _ in ()).throw(AssertionError("the flow ran in the process that holds the token")))
    second = cli("run", "--base", "main", "--json", cwd=repo.path)
    assert second.exit_code == 0, second.output
    assert_ran_elsewhere(out)
    report = json.loads(second.stdout)  # stdout stays pure JSON: the child's output goes to stderr
    assert report["candidate"]["source"] == "cache" and report["candidate"]["key"] == plan.candidate.key
    assert report["reused"] is False


@pytest.mark.parametrize("case", ["bad estimator parameter", "missing target column"])
def test_an_input_error_in_the_child_reaches_the_user_as_before(cli, repo: GitRepo, case: str, secrets: dict, no_flow_here: None) -> None:
    """Same message, hint and exit code as test_bad_input's in-process runs."""
    files, expected = CASES[case]
    pr(repo, files)
    result = cli("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 2, result.output
    assert result.stderr == "error: " + expected.format(root=repo.path)
    assert result.stdout == ""
    assert repo.mlops_files() == []


def test_a_crash_in_the_child_is_exit_3_with_its_traceback_in_the_log(cli, repo: GitRepo, monkeypatch: pytest.MonkeyPatch, secrets: dict, no_flow_here: None) -> None:
    """An environment problem in the child (its Prefect API is down) is reported as an
    in-process run reports it: exit 3, the error's type and text, the log's path."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{port}/api")
    pr(repo, {"README.md": "x"})
    result = cli("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 3, result.output
    first, second, third = result.stderr.splitlines()
    assert first == f"internal error: RuntimeError: Failed to reach API at http://127.0.0.1:{port}/api/"
    assert second.startswith("  a log with versions and the traceback is at ") and third == "  please attach it when reporting the problem"
    log = Path(second.split(" is at ", 1)[1]).read_text()
    assert "ChildTraceback: in the compute process:\nTraceback (most recent call last):" in log
    assert 'in run_flow\n' in log and "scikit-learn: " in log  # where the child failed, and the versions
    assert TOKEN not in log
    assert repo.mlops_files() == []


def test_pr_code_that_ends_the_unpickling_process_cannot_choose_the_exit_code(repo: GitRepo, tmp_path: Path, prefect_api: str) -> None:
    """On the old code `os._exit(0)` in the model's pickle ended `mlops run` with 0: a
    passing check. Now it ends the compute child, and `mlops run` says so: exit 3."""
    repo.gen({"mlops.yaml": COMMAND_CONFIG, "train.py": TRAIN_SCRIPT, "data/churn.csv": mixed_frame(120).to_csv(index=False)}).commit("base")
    out = tmp_path / "unpickled-by.json"
    repo.branch("pr").gen({"train.py": evil_train_script(out, then="__import__('os')._exit(0)")}).commit("exit 0 when loaded")
    env = {**os.environ, **SECRETS, "PREFECT_API_URL": prefect_api, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop(compute_child.ISOLATE_ENV, None)
    mlops = Path(sys.executable).with_name("mlops")
    proc = subprocess.run([str(mlops), "run", "--base", "main"], cwd=repo.path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[-3] == "internal error: ComputeCrashed: the compute process ended (exit status 0) without a result"
    assert lines[-2].startswith(f"  a log with versions and the traceback is at {tmp_path / 'cache'}")
    dump = json.loads(out.read_text())  # written before the payload ended its process
    assert TOKEN not in json.dumps(dump) and "GITHUB_TOKEN" not in dump["environ"]
    assert repo.mlops_files() == []


# -- what the child may see, and when a run isolates (no training: fast) --------------------
def planned(repo: GitRepo, base_env: str, pr_env: str | None = None) -> tuple:
    """A pull request's plan; the base ref's and the PR's mlops.yaml list ``training.env``."""

    def text(env: str) -> str:
        return f"name: churn\ndata: {{path: data/churn.csv, target: churn}}\ntraining:\n  estimator: sklearn.linear_model.LogisticRegression\n  env: {env}\nalerts: {{webhook_env: TEAM_ALERT_URL}}\n"

    base = repo.gen({"mlops.yaml": text(base_env), "data/churn.csv": mixed_frame(40).to_csv(index=False)}).commit("base")
    if pr_env is not None:
        repo.branch("pr").gen({"mlops.yaml": text(pr_env)}).commit("pr")
    cfg = load_config(repo.path / "mlops.yaml", display="mlops.yaml")
    return cfg, make_plan(cfg, repo.path, "mlops.yaml", Event(kind="pull_request", pr_number=1, base_ref="main", base_sha=base, head_ref="pr"))


ENVIRON = {
    "PATH": "/usr/bin", "HOME": "/home/ci", "TMPDIR": "/tmp/x", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "XDG_CACHE_HOME": "/home/ci/.cache",
    "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_HOME": "/home/ci/.prefect", "MLOPS_VERBOSE": "1", "MLOPS_CACHE_DIR": "/c",
    "PREFECT_API_URL": "http://elsewhere/api", "MLOPS_ISOLATE": "1",
    "GITHUB_TOKEN": TOKEN, "MLOPS_WEBHOOK_SECRET": "s", "TEAM_ALERT_URL": "https://hooks.example/T/B/X",
    "PREFECT_API_KEY": "pnu_x", "PREFECT_API_AUTH_STRING": "admin:pass", "PREFECT_API_DATABASE_CONNECTION_URL": "postgresql+asyncpg://u:pw@db/prefect",
    "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "k", "AZURE_STORAGE_CONNECTION_STRING": "AccountKey=k", "GOOGLE_APPLICATION_CREDENTIALS": "/k.json",
    "MLOPS_OCI_PASSWORD": "p", "HF_TOKEN": "hf_x", "MY_SETTING": "v", "HTTPS_PROXY": "http://user:pw@proxy:3128",
}  # fmt: skip


def test_the_childs_environment_is_the_allow_list_and_non_secret_settings(repo: GitRepo) -> None:
    cfg, plan = planned(repo, "[HF_TOKEN, MY_SETTING]", pr_env="[HF_TOKEN, MY_SETTING, GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY]")
    env = compute_child.environment(cfg, plan, "http://127.0.0.1:4200/api", ENVIRON)
    assert env == {
        "PATH": "/usr/bin", "HOME": "/home/ci", "TMPDIR": "/tmp/x", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "XDG_CACHE_HOME": "/home/ci/.cache",
        "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_HOME": "/home/ci/.prefect", "MLOPS_VERBOSE": "1", "MLOPS_CACHE_DIR": "/c",
        "PREFECT_API_URL": "http://127.0.0.1:4200/api",  # the API this process uses, even when it is in Prefect's settings only
       
        "HF_TOKEN": "hf_x", "MY_SETTING": "v",  # the base ref's training.env: its training command needs them; the PR's additions are not
    }  # fmt: skip
    # No trusted config lists anything: credential-like names stay out, the rest passes.
    cfg2, plan2 = planned(GitRepo(repo.path.parent / "local"), "[HF_TOKEN, MY_SETTING]")
    plan2.candidate.trusted = None
    plan2.baseline.side = None
    env2 = compute_child.environment(cfg2, plan2, None, ENVIRON)
    assert "HF_TOKEN" not in env2 and env2["MY_SETTING"] == "v" and "PREFECT_API_URL" not in env2


def test_an_untrusted_run_isolates_when_a_credential_is_in_reach(repo: GitRepo) -> None:
    from mlgitops.forges.github import GitHubForge

    cfg, plan = planned(repo, "[]")
    local = LocalForge(repo.path)
    plain = {"PATH": "/usr/bin", "HOME": "/h", "PREFECT_API_URL": "http://x/api", "MLOPS_VERBOSE": "1", "AWS_CA_BUNDLE": "/etc/ca.pem", "AWS_REGION": "eu-west-3"}
    assert compute_child.credentials_in_reach(cfg, plan, local, plain) == []
    for name in ("GITHUB_TOKEN", "MLOPS_WEBHOOK_SECRET", "TEAM_ALERT_URL", "AZURE_STORAGE_CONNECTION_STRING", "MLOPS_OCI_PASSWORD", "PREFECT_API_KEY", "AWS_ACCESS_KEY_ID"):
        assert compute_child.credentials_in_reach(cfg, plan, local, {**plain, name: "v"}) == [name]
    assert compute_child.credentials_in_reach(cfg, plan, local, {**plain, "GITHUB_TOKEN": ""}) == []  # set but empty: nothing held
    forge = GitHubForge("o/r", "tok", "http://127.0.0.1:9")  # a token in memory, e.g. from --token
    assert compute_child.credentials_in_reach(cfg, plan, forge, plain) == ["a GitHubForge token"]

    assert compute_child.wanted(cfg, plan, local, plain) is False  # nothing to protect: in-process
    assert compute_child.wanted(cfg, plan, local, {**plain, "MLOPS_ISOLATE": "1"}) is True
    assert compute_child.wanted(cfg, plan, local, {**plain, "GITHUB_TOKEN": TOKEN}) is True
    assert compute_child.wanted(cfg, plan, local, {**plain, "MLOPS_ISOLATE": "0", "GITHUB_TOKEN": TOKEN}) is True  # no way out
    assert compute_child.wanted(cfg, plan, forge, plain) is True


SLEEPY_TRAIN = """\
import json, os, sys, time
open(sys.argv[1] + '.tmp', 'w').write(json.dumps({'pid': os.getpid(), 'ppid': os.getppid()}))
os.replace(sys.argv[1] + '.tmp', sys.argv[1])
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")  # ended; its reaper may be a container's init that never reaps


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_killing_mlops_outright_ends_the_compute_child_and_its_training_command(repo: GitRepo, tmp_path: Path, prefect_api: str) -> None:
    """No debris: SIGKILL of `mlops run` while the child trains ends the child (parent-death
    signal) and, through it, the training command."""
    import signal
    import time

    marker = tmp_path / "training.json"
    config = COMMAND_CONFIG.replace("python train.py --train_data_path {train} --model_output_path {model} --C 1.0", f"python train.py {marker} {{train}} {{model}}")
    repo.gen({"mlops.yaml": config, "train.py": SLEEPY_TRAIN, "data/churn.csv": mixed_frame(60).to_csv(index=False)}).commit("base")
    env = {**os.environ, "GITHUB_TOKEN": TOKEN, "PREFECT_API_URL": prefect_api, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    mlops = Path(sys.executable).with_name("mlops")
    proc = subprocess.Popen([str(mlops), "run"], cwd=repo.path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), f"the training command never started (mlops exited {proc.returncode})"
        training = json.loads(marker.read_text())
        child = training["ppid"]
        assert child != proc.pid and not _gone(child)  # the training command's parent is the compute child
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 30
        while not (_gone(child) and _gone(training["pid"])) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _gone(child) and _gone(training["pid"])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in (locals().get("child"), (locals().get("training") or {}).get("pid")):
            if pid and not _gone(pid):
                os.kill(pid, signal.SIGKILL)
