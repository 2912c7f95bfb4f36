"""Attack: a pull request's training command reads the tool's credentials.

The command used to start with the whole environment (GITHUB_TOKEN, the alert webhook
URL, cloud keys); its failing output went verbatim into the error, comment and alert;
and a same-uid child could read them from /proc/<ppid>/environ.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlgitops.config.loader import LoadedConfig, parse_config
from mlgitops.data.load import load_dataset
from mlgitops.errors import TrainingError
from mlgitops.events.payloads import Event
from mlgitops.plan.decide import make_plan
from mlgitops.train.training import run_command
from tests.helpers import GitRepo, mixed_frame

SECRETS = {
    "GITHUB_TOKEN": "ghs_" + "A1b2C3d4E5" * 4,
    "MLOPS_ALERT_WEBHOOK": "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "MY_PASSWORD": "correct horse battery staple",
}
# Writes its whole environment next to the model, then a model.
DUMP_SCRIPT = """\
import json, os, sys
import joblib
from sklearn.dummy import DummyClassifier
import pandas as pd
df = pd.read_csv(sys.argv[1])
json.dump(dict(os.environ), open(os.environ["DUMP_TO"] if "DUMP_TO" in os.environ else "env.json", "w"))
joblib.dump(DummyClassifier().fit(df.drop(columns=["churn"]), df["churn"]), sys.argv[2])
"""


def config(root: Path, env: list[str] | None = None, command: str = "python dump.py {train} {model}", display: str = "mlops.yaml") -> LoadedConfig:
    listed = f"\n  env: {json.dumps(env)}" if env is not None else ""
    text = f"name: churn\ndata: {{path: data/churn.csv, target: churn}}\ntraining:\n  command: {command}{listed}\nalerts: {{webhook_env: MLOPS_ALERT_WEBHOOK}}\n"
    return parse_config(text, root / "mlops.yaml", display)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "data").mkdir()
    mixed_frame(60).to_csv(tmp_path / "data" / "churn.csv", index=False)
    (tmp_path / "dump.py").write_text(DUMP_SCRIPT)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HF_TOKEN", "hf_" + "z" * 30)
    monkeypatch.setenv("MY_SETTING", "visible")
    return tmp_path


def dumped(root: Path) -> dict[str, str]:
    return json.loads((root / "env.json").read_text())


def assert_no_secret(env: dict[str, str]) -> None:
    for name, value in SECRETS.items():
        assert name not in env
        assert not any(value in v for v in env.values()), name


def test_env_dump_has_no_credentials(workdir: Path) -> None:
    """The attack as reproduced: a train.py that dumps its environment."""
    cfg = config(workdir)
    run_command(cfg, load_dataset(cfg, workdir), workdir)
    env = dumped(workdir)
    assert_no_secret(env)
    assert env["PATH"] == os.environ["PATH"]
    assert "HF_TOKEN" not in env and "MY_SETTING" not in env


def test_training_command_sees_the_allow_list_and_the_base_refs_training_env(workdir: Path) -> None:
    base = config(workdir, ["MY_SETTING"])
    cfg = config(workdir, ["MY_SETTING"])
    run_command(cfg, load_dataset(cfg, workdir), workdir, trusted=base.config)
    env = dumped(workdir)
    assert_no_secret(env)
    assert env["PATH"] == os.environ["PATH"]
    assert env["MY_SETTING"] == "visible"
    assert env["MLOPS_TARGET"] == "churn"
    assert "HF_TOKEN" not in env


def test_a_pr_that_lists_the_token_in_training_env_does_not_get_it(workdir: Path) -> None:
    """mlops.yaml is part of the PR: the base ref's training.env is the one in force."""
    repo = GitRepo(workdir)
    base_text = "name: churn\ndata: {path: data/churn.csv, target: churn}\ntraining:\n  command: python dump.py {train} {model}\n  env: [MY_SETTING]\n"
    (workdir / "mlops.yaml").write_text(base_text)
    base_sha = repo.commit("base")
    repo.branch("pr").edit("mlops.yaml", "env: [MY_SETTING]", "env: [MY_SETTING, GITHUB_TOKEN, HF_TOKEN]").commit("pr")
    cfg = parse_config((workdir / "mlops.yaml").read_text(), workdir / "mlops.yaml", "mlops.yaml")
    plan = make_plan(cfg, workdir, "mlops.yaml", Event(kind="pull_request", base_ref="main", base_sha=base_sha, head_ref="pr", pr_number=1))
    assert plan.candidate.trusted is not None and list(plan.candidate.trusted.training.env) == ["MY_SETTING"]
    run_command(cfg, load_dataset(cfg, workdir), workdir, trusted=plan.candidate.trusted)
    env = dumped(workdir)
    assert_no_secret(env)
    assert "HF_TOKEN" not in env and env["MY_SETTING"] == "visible"
    # When the command fails for want of the variable, the error says why it is missing.
    (workdir / "dump.py").write_text("import sys; sys.exit('no token')\n")
    with pytest.raises(TrainingError) as err:
        run_command(cfg, load_dataset(cfg, workdir), workdir, trusted=plan.candidate.trusted)
    assert err.value.message.endswith("no token\nnote: training.env as changed here takes effect after merge; this run passed the base ref's list (MY_SETTING)")


def test_with_no_trusted_config_credential_like_names_are_withheld(workdir: Path) -> None:
    cfg = config(workdir, ["MY_SETTING", "HF_TOKEN", "MY_PASSWORD"])
    run_command(cfg, load_dataset(cfg, workdir), workdir, trusted=None)
    env = dumped(workdir)
    assert_no_secret(env)
    assert "HF_TOKEN" not in env and env["MY_SETTING"] == "visible"


def test_failing_command_output_is_redacted_in_the_error(workdir: Path) -> None:
    """The tail goes into the terminal, the PR comment and alerts."""
    leak = "\n".join(
        [
            "import os, sys",
            f"print('token', {SECRETS['GITHUB_TOKEN']!r}, file=sys.stderr)",  # got it somehow
            f"print('hook', {SECRETS['MLOPS_ALERT_WEBHOOK']!r}, file=sys.stderr)",
            f"print('aws', {SECRETS['AWS_SECRET_ACCESS_KEY']!r}, file=sys.stderr)",
            "print('pat', 'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz', file=sys.stderr)",
            "sys.exit(3)",
        ]
    )
    (workdir / "dump.py").write_text(leak)
    cfg = config(workdir)
    with pytest.raises(TrainingError) as err:
        run_command(cfg, load_dataset(cfg, workdir), workdir)
    tail = err.value.message.split("--- last lines of its output ---\n", 1)[1]
    assert tail == "token ***\nhook ***\naws ***\npat ***"
    assert err.value.exit_code == 2


PPID_SCRIPT = """\
import os, sys
try:
    seen = open(f"/proc/{os.getppid()}/environ", "rb").read().decode()
except OSError as exc:
    seen = f"refused: {type(exc).__name__}"
open("ppid-environ.txt", "w").write(seen)
sys.exit(1)
"""
PARENT = """\
import sys
from pathlib import Path
from mlgitops.config.loader import parse_config
from mlgitops.data.load import load_dataset
from mlgitops.errors import TrainingError
from mlgitops.train.training import run_command
root = Path(sys.argv[1])
cfg = parse_config("data: {path: data/churn.csv, target: churn}\\ntraining: {command: '" + sys.argv[2] + " {train} {model}'}\\n", root / "mlops.yaml", "mlops.yaml")
try:
    run_command(cfg, load_dataset(cfg, root), root)
except TrainingError:
    pass
"""


def test_training_command_cannot_read_the_parents_environ(workdir: Path) -> None:
    """The parent makes itself non-dumpable. Root with CAP_SYS_PTRACE may read any
    process's environ, so as root the parent runs without capabilities, as the
    unprivileged user of a CI runner or the webhook service does."""
    (workdir / "ppid.py").write_text(PPID_SCRIPT)
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot drop CAP_SYS_PTRACE, which reads any process's environ")
        prefix = [setpriv, "--inh-caps=-all", "--bounding-set=-all"]
    # The secret must be in the parent's initial environment: /proc/<pid>/environ shows that.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "GITHUB_TOKEN": SECRETS["GITHUB_TOKEN"]}
    env |= {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}
    subprocess.run([*prefix, sys.executable, "-c", PARENT, str(workdir), "python ppid.py"], env=env, cwd=workdir, check=True, timeout=120)
    seen = (workdir / "ppid-environ.txt").read_text()
    assert SECRETS["GITHUB_TOKEN"] not in seen
    assert seen == "refused: PermissionError"
