"""The registry (content-addressed, atomic, verified) and manifest pin editing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlgitops.deploy.manifest import ManifestError, Pin, read_pin, write_pin
from mlgitops.deploy.registry import Registry, RegistryError


def register(reg: Registry, data: bytes, key: str = "k1") -> object:
    return reg.register("churn", {"onnx": (data, "onnx")}, {"accuracy": 0.9}, {"model_key": key, "git_sha": "abc"}, None, ["a"], "classification")


def test_versions_are_numbered_content_addressed_and_verified(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    v1 = register(reg, b"first model")
    v2 = register(reg, b"second model", "k2")
    assert (v1.version, v2.version) == (1, 2)
    assert reg.object_path(v1.artifacts["onnx"].sha256).read_bytes() == b"first model"
    assert reg.find("churn", "k2", v2.artifacts["onnx"].sha256).version == 2
    assert reg.load(reg.get("churn", 1)) == b"first model"
    reg.object_path(v1.artifacts["onnx"].sha256).write_bytes(b"tampered")
    with pytest.raises(RegistryError, match=r"churn v1 onnx [0-9a-f]{12} is corrupted: its content hashes to"):
        reg.load(reg.get("churn", 1))
    with pytest.raises(RegistryError, match=r"model 'churn' has no version 7 in the registry .* \(versions: 1, 2\)"):
        reg.get("churn", 7)


def test_racing_writers_get_distinct_versions(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from mlgitops.deploy.registry import Registry\n"
        "r = Registry(Path(sys.argv[1]))\n"
        "for i in range(10): r.register('m', {'onnx': (f'{sys.argv[2]}-{i}'.encode(), 'onnx')}, {}, {}, None, [], 'classification')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "reg"), str(n)]) for n in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    versions = Registry(tmp_path / "reg").versions("m")
    assert [v.version for v in versions] == list(range(1, 31))
    assert not [p for p in (tmp_path / "reg").rglob("*.tmp")]


def test_a_killed_write_leaves_no_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = Registry(tmp_path / "reg")

    def killed(*args: object) -> None:
        raise KeyboardInterrupt  # the process dies between the object and the record

    monkeypatch.setattr(os, "link", killed)
    with pytest.raises(KeyboardInterrupt):
        register(reg, b"half")
    assert reg.versions("churn") == [] and not list((tmp_path / "reg" / "models" / "churn").iterdir())


MANIFEST = """\
# production: read by the serving fleet (keep me)
environment: production
owner: ml-platform   # who to page
model:
  name: churn
  version: 1
  uri: registry/aa
  sha256: {a}
  format: onnx
  metrics: {{accuracy: 0.9}}
  lineage: {{git_sha: abc}}
notes: |
  free text the tool must keep
"""


def test_write_pin_changes_only_pin_lines() -> None:
    text = MANIFEST.format(a="a" * 64)
    old = read_pin(text, "deploy/production.yaml")
    new = Pin("churn", 2, "registry/bb", "b" * 64, "onnx", {"accuracy": 0.95}, {"git_sha": "def", "pr": 12})
    out = write_pin(text, "production", new, old)
    before, after = text.splitlines(), out.splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert [b.split(":")[0].strip() for _, b in changed] == ["version", "uri", "sha256", "metrics", "lineage"]
    assert after[len(before):] == [f"previous: {{version: 1, uri: registry/aa, sha256: {'a' * 64}}}"]
    assert "owner: ml-platform   # who to page" in out and "free text the tool must keep" in out
    assert read_pin(out, "x").version == 2 and read_pin(out, "x").previous["version"] == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model: [1, 2\n", "deploy/s.yaml:2:1: not valid YAML"),
        ("- a\n- b\n", "deploy/s.yaml:1:1: expected a mapping with a `model:` key, got CommentedSeq"),
        ("model: 3\n", "deploy/s.yaml:1:8: model: expected a mapping (name, version, uri, sha256, ...), got int"),
        (f"model:\n  uri: x\n  sha256: {'a' * 64}\n  version: zero\n", "deploy/s.yaml:4:12: model.version: expected a whole number >= 1, got 'zero'"),
    ],
)
def test_nonsense_manifests_are_named_by_line(text: str, message: str) -> None:
    with pytest.raises(ManifestError) as err:
        read_pin(text, "deploy/s.yaml")
    assert err.value.message.startswith(message)
