"""Pins in the deploy target's own files (issue 12): the promotion PR edits exactly the
pinned value (and the sha256/version annotations), every other byte stays; golden
diffs pin the result, and every refusal's exact message is asserted."""

from __future__ import annotations

import difflib
import io
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlgitops.deploy import pinfiles
from mlgitops.config.loader import PinFile, load_config
from mlgitops.errors import ConfigError, MlopsError
from mlgitops.deploy.manifest import Pin
from mlgitops.deploy.pinfiles import PinFileError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).parent / "golden" / "pinfiles"
UPDATE = os.environ.get("MLOPS_UPDATE_GOLDEN") == "1"

SHA = "3f9a" + "5be1" * 15  # the promoted model
URI = f"s3://acme-models/iris/objects/3f/{SHA}"
PIN = Pin("iris", 4, URI, SHA)
OLD_SHA = "0c1d7f3a9b2e4c6d8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e"  # what the examples pin now


def diff(name: str, old: str, new: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{name}", f"b/{name}"))


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


def spec(**kw: Any) -> PinFile:
    return PinFile(**{"path": "k8s/app.yaml", **kw})


def run(text: str, *specs: PinFile, pin: Pin = PIN, path: str = "k8s/app.yaml") -> str | None:
    """The new text of ``path`` (None: unchanged)."""
    out = pinfiles.apply("production", list(specs), pin, lambda p: text if p == path else None)
    assert set(out) <= {path}
    return out.get(path)


def refusal(text: str | None, *specs: PinFile, pin: Pin = PIN) -> str:
    with pytest.raises(PinFileError) as info:
        pinfiles.apply("production", list(specs), pin, lambda p: text)
    assert info.value.exit_code == 2
    return info.value.render()


def example(name: str) -> tuple[Path, Any]:
    root = EXAMPLES / name
    cfg = load_config(root / "mlops.yaml")
    return root, cfg.config.deploy.environments["production"]


def promote_example(name: str) -> tuple[Path, dict[str, str]]:
    root, env = example(name)
    out = pinfiles.apply("production", env.files, PIN, lambda p: (root / p).read_text() if (root / p).is_file() else None)
    return root, out


# ---------------------------------------------------------------- the examples, golden


def test_kserve_example_storage_uri_and_annotations() -> None:
    root, out = promote_example("kserve")
    assert list(out) == ["k8s/inference-service.yaml"]
    old = (root / "k8s/inference-service.yaml").read_text()
    check_golden("kserve.diff", diff("k8s/inference-service.yaml", old, out["k8s/inference-service.yaml"]))


def test_deployment_example_env_vars_by_selectors_in_a_multi_document_file() -> None:
    root, out = promote_example("deployment")
    assert list(out) == ["k8s/iris.yaml"]
    old = (root / "k8s/iris.yaml").read_text()
    new = out["k8s/iris.yaml"]
    check_golden("deployment.diff", diff("k8s/iris.yaml", old, new))
    # the leading `---`, the Service document and the closing `...` are all still there
    assert new.startswith(old[: old.index("---\n") + 4]) and new.endswith("  - {port: 80, targetPort: http}\n...\n")
    assert new.count("\n---\n") == old.count("\n---\n") == 2


def test_the_promoted_deployment_container_pins_the_new_model(tmp_path: Path) -> None:
    """The example's container script, run on the promoted file's env values, writes a
    manifest `mlops serve --manifest` reads as the promoted pin."""
    import subprocess

    import yaml

    from mlgitops.deploy.manifest import read_pin

    _, out = promote_example("deployment")
    deployment = next(d for d in yaml.safe_load_all(out["k8s/iris.yaml"]) if d and d["kind"] == "Deployment")
    server = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "server")
    write_pin = server["args"][0].splitlines()[0].replace("/tmp/pin.yaml", str(tmp_path / "pin.yaml"))
    env = {e["name"]: e["value"] for e in server["env"]}
    subprocess.run(["sh", "-c", write_pin], env={"PATH": os.environ["PATH"], **env}, check=True)
    pin = read_pin((tmp_path / "pin.yaml").read_text(), "pin.yaml")
    assert pin is not None and (pin.uri, pin.sha256, pin.format) == (URI, SHA, "onnx")
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {"mlgitops.dev/model-sha256": SHA, "mlgitops.dev/model-version": "4"}


def test_golden_diffs_catch_a_near_miss() -> None:
    """One extra reformatted line anywhere, or ruamel's round trip (which reformats
    more than the pin), would not match the golden diffs."""
    from mlgitops.deploy.manifest import _yaml

    root, out = promote_example("kserve")
    old = (root / "k8s/inference-service.yaml").read_text()
    golden = (GOLDEN / "kserve.diff").read_text()
    squeezed = out["k8s/inference-service.yaml"].replace("maxReplicas:   6", "maxReplicas: 6")
    assert squeezed != out["k8s/inference-service.yaml"]
    assert diff("k8s/inference-service.yaml", old, squeezed) != golden
    y = _yaml()
    doc = y.load(old)
    doc["spec"]["predictor"]["model"]["storageUri"] = URI
    doc["metadata"]["annotations"]["mlgitops.dev/model-sha256"] = SHA
    doc["metadata"]["annotations"]["mlgitops.dev/model-version"] = "4"
    buf = io.StringIO()
    y.dump(doc, buf)
    assert diff("k8s/inference-service.yaml", old, buf.getvalue()) != golden


def test_examples_validate_with_mlops_validate() -> None:
    from mlgitops.cli import main

    for name in ("kserve", "deployment"):
        result = CliRunner().invoke(main, ["validate", "--config", str(EXAMPLES / name / "mlops.yaml")])
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"examples/{name}/mlops.yaml: OK\n"), result.output
    _, env = example("deployment")
    assert [(f.path, f.document, f.value, f.annotate) for f in env.files] == [
        ("k8s/iris.yaml", {"kind": "Deployment"}, "{uri}", None),
        ("k8s/iris.yaml", {"kind": "Deployment"}, "{sha256}", "spec.template.metadata.annotations"),
    ]


def test_a_second_promotion_of_the_same_pin_changes_nothing() -> None:
    root, out = promote_example("deployment")
    _, env = example("deployment")
    again = pinfiles.apply("production", env.files, PIN, lambda p: out[p])
    assert again == {}
    assert pinfiles.read_values(env.files, lambda p: out[p]) == [
        ("k8s/iris.yaml", "spec.template.spec.containers[name=server].env[name=MODEL_URI].value", URI),
        ("k8s/iris.yaml", "spec.template.spec.containers[name=server].env[name=MODEL_SHA256].value", SHA),
    ]


def test_read_values_shows_what_is_pinned_and_none_for_what_is_missing() -> None:
    root, env = example("kserve")
    files = [*env.files, spec(path="k8s/inference-service.yaml", key="spec.predictor.nope"), spec(path="k8s/gone.yaml", key="a")]
    rows = pinfiles.read_values(files, lambda p: (root / p).read_text() if (root / p).is_file() else None)
    assert rows == [
        ("k8s/inference-service.yaml", "spec.predictor.model.storageUri", f"s3://acme-models/iris/objects/0c/{OLD_SHA}"),
        ("k8s/inference-service.yaml", "spec.predictor.nope", None),
        ("k8s/gone.yaml", "a", None),
    ]


# ---------------------------------------------------------------- Helm values, value formats

HELM = """\
# values.yaml of the iris chart
replicaCount: 2
image: &image {repository: ghcr.io/acme/iris-server, tag: "1.4"}
model:
  uri:    s3://acme-models/iris/objects/0c/0c1d   # pinned by mlgitops
  version: 3
  digest: 'sha256:0c1d'
podAnnotations: {}
sidecar:
  image: *image
"""


def test_helm_values_keys_an_int_version_and_a_flow_mapping_of_annotations() -> None:
    new = run(
        HELM,
        spec(path="k8s/values.yaml", key="model.uri", annotate="podAnnotations"),
        spec(path="k8s/values.yaml", key="model.version", value="{version}"),
        spec(path="k8s/values.yaml", key="model.digest", value="sha256:{sha256}"),
        path="k8s/values.yaml",
    )
    assert new is not None
    check_golden("helm-values.diff", diff("values.yaml", HELM, new))
    import yaml

    values = yaml.safe_load(new)
    assert values["model"] == {"uri": URI, "version": 4, "digest": f"sha256:{SHA}"}  # the version stays a number
    assert values["podAnnotations"] == {"mlgitops.dev/model-sha256": SHA, "mlgitops.dev/model-version": "4"}


KSERVE_MIN = """\
spec:
  predictor:
    model:
      storageUri: s3://old/model.onnx
"""


def test_value_format_default_uri_versus_a_template() -> None:
    assert run(KSERVE_MIN, spec(key="spec.predictor.model.storageUri")) == KSERVE_MIN.replace("s3://old/model.onnx", URI)
    templated = run(KSERVE_MIN, spec(key="spec.predictor.model.storageUri", value="s3://x/{sha256}"))
    assert templated == KSERVE_MIN.replace("s3://old/model.onnx", f"s3://x/{SHA}")
    named = run(KSERVE_MIN, spec(key="spec.predictor.model.storageUri", value="s3://models/{name}/v{version}/{sha256:.12}.{format}"))
    assert named == KSERVE_MIN.replace("s3://old/model.onnx", f"s3://models/iris/v4/{SHA[:12]}.onnx")


def test_a_value_yaml_would_read_as_a_number_is_quoted_to_stay_a_string() -> None:
    digits = "1234567890" * 6 + "1234"
    env = "env:\n- name: MODEL_SHA256\n  value: abc   # plain today\n"
    new = run(env, spec(key="env[name=MODEL_SHA256].value", value="{sha256}"), pin=Pin("iris", 5, URI, digits))
    assert new == f'env:\n- name: MODEL_SHA256\n  value: "{digits}"   # plain today\n'
    exponent = "12e4" + "0" * 60  # YAML 1.2 (Go, so kubectl) reads 12e4000... as a float
    assert run(env, spec(key="env[name=MODEL_SHA256].value", value="{sha256}"), pin=Pin("iris", 5, URI, exponent)) == f'env:\n- name: MODEL_SHA256\n  value: "{exponent}"   # plain today\n'


def test_quotes_comments_crlf_and_an_empty_value_are_kept() -> None:
    text = "a:\r\n  single: 'old'  # one\r\n  double: \"old\"\r\n  empty:\r\n  b: [x, {k: old}]\r\n"
    new = run(
        text,
        spec(key="a.single"),
        spec(key="a.double"),
        spec(key="a.empty"),
        spec(key="a.b[1].k", value="x,{version}"),
    )
    assert new == f"a:\r\n  single: '{URI}'  # one\r\n  double: \"{URI}\"\r\n  empty: {URI}\r\n  b: [x, {{k: \"x,4\"}}]\r\n"


def test_a_quoted_key_with_dots_and_annotations_created_under_a_null_mapping() -> None:
    text = "metadata:\n  annotations:\n    serving.kserve.io/storageUri: old\n  labels:\n"
    new = run(text, spec(key='metadata.annotations["serving.kserve.io/storageUri"]', annotate="metadata.labels"))
    assert new == f'metadata:\n  annotations:\n    serving.kserve.io/storageUri: {URI}\n  labels:\n    mlgitops.dev/model-sha256: "{SHA}"\n    mlgitops.dev/model-version: "4"\n'
    null = run("m:\n  uri: old\n  ann: null   # none yet\n", spec(key="m.uri", annotate="m.ann"))
    assert null == f'm:\n  uri: {URI}\n  ann: {{mlgitops.dev/model-sha256: "{SHA}", mlgitops.dev/model-version: "4"}}   # none yet\n'


def test_a_block_scalar_becomes_one_quoted_line_and_a_missing_top_level_mapping_is_created() -> None:
    text = "model:\n  uri: >-\n    s3://old/\n    model.onnx\n\n  x: 1\nreplicas: 2"  # no final newline
    new = run(text, spec(key="model.uri", annotate="podAnnotations"))
    assert new == f'model:\n  uri: "{URI}"\n\n  x: 1\nreplicas: 2\npodAnnotations:\n  mlgitops.dev/model-sha256: "{SHA}"\n  mlgitops.dev/model-version: "4"\n'


def test_a_pin_without_a_version_writes_an_empty_version_annotation() -> None:
    text = "metadata:\n  annotations: {a: b}\nuri: old\n"
    new = run(text, spec(key="uri", annotate="metadata.annotations"), pin=Pin(None, None, URI, SHA))
    assert new == f'metadata:\n  annotations: {{a: b, mlgitops.dev/model-sha256: "{SHA}", mlgitops.dev/model-version: ""}}\nuri: {URI}\n'


def test_documents_by_index_and_by_several_fields() -> None:
    text = "kind: Deployment\nmetadata: {name: a}\nuri: old\n---\nkind: Deployment\nmetadata: {name: b}\nuri: old\n"
    assert run(text, spec(key="uri", document=1)) == text[: text.index("---")] + f"---\nkind: Deployment\nmetadata: {{name: b}}\nuri: {URI}\n"
    by_name = run(text, spec(key="uri", document={"kind": "Deployment", "metadata.name": "a"}))
    assert by_name == f"kind: Deployment\nmetadata: {{name: a}}\nuri: {URI}\n" + text[text.index("---") :]


# ---------------------------------------------------------------- refusals, exact messages

DEPLOY = (EXAMPLES / "deployment" / "k8s" / "iris.yaml").read_text()
DEPLOY_DOC = {"kind": "Deployment"}
HINT = "\n  hint: compare deploy.environments.production.files[0] in mlops.yaml with the file (key paths: a.b.c; list items [0] or [name=value])"


def test_a_missing_file() -> None:
    assert refusal(None, spec(key="a")) == (
        "k8s/app.yaml: file not found\n"
        "  hint: deploy.environments.production.files[0].path names a file that is not on the target branch: commit it there, or fix the path in mlops.yaml"
    )


def test_a_key_path_not_found_names_the_deepest_key_that_exists() -> None:
    assert refusal(KSERVE_MIN, spec(key="spec.predictor.onnx.storageUri")) == (
        "k8s/app.yaml:2:3: spec.predictor.onnx.storageUri: spec.predictor has no key 'onnx' (its keys: model)" + HINT
    )
    assert refusal(KSERVE_MIN, spec(key="spec.predictor.model.storageURI")) == (
        "k8s/app.yaml:3:5: spec.predictor.model.storageURI: spec.predictor.model has no key 'storageURI' (its keys: storageUri)" + HINT
    )
    assert refusal(KSERVE_MIN, spec(key="status")).startswith("k8s/app.yaml:1:1: status: the document has no key 'status' (its keys: spec)")


def test_a_selector_matching_no_item_or_several() -> None:
    key = "spec.template.spec.containers[name=srv].env[name=MODEL_URI].value"
    assert refusal(DEPLOY, spec(key=key, document=DEPLOY_DOC)) == (
        "k8s/app.yaml:22:7: " + key + ": no item of spec.template.spec.containers has name: srv (their name: server, log-shipper)" + HINT
    )
    twice = "items:\n- name: a\n  v: 1\n- name: a\n  v: 2\n"
    assert refusal(twice, spec(key="items[name=a].v")) == (
        "k8s/app.yaml:1:1: items[name=a].v: 2 items of items have name: a (lines 2, 4); a selector must match exactly one" + HINT
    )
    assert refusal(twice, spec(key="items[nom=a].v")) == "k8s/app.yaml:1:1: items[nom=a].v: no item of items has nom: a (no item has a 'nom' key)" + HINT
    assert refusal(twice, spec(key="items[2].v")) == "k8s/app.yaml:1:1: items[2].v: items has 2 items; [2] is past the end" + HINT


def test_the_target_must_be_one_value_not_a_mapping_or_a_list() -> None:
    assert refusal(KSERVE_MIN, spec(key="spec.predictor.model")) == (
        "k8s/app.yaml:3:5: spec.predictor.model: expected a single value to replace, found a mapping (keys: storageUri)" + HINT
    )
    assert refusal("args: [a, b]\n", spec(key="args")) == "k8s/app.yaml:1:1: args: expected a single value to replace, found a list of 2 items" + HINT


def test_a_list_stepped_into_like_a_mapping_and_back() -> None:
    assert refusal(DEPLOY, spec(key="spec.template.spec.containers.env", document=DEPLOY_DOC)) == (
        "k8s/app.yaml:22:7: spec.template.spec.containers.env: spec.template.spec.containers is a list; select an item with [0] or [name=...]" + HINT
    )
    assert refusal(KSERVE_MIN, spec(key="spec[0]")) == "k8s/app.yaml:1:1: spec[0]: spec is a mapping (keys: predictor), not a list; use .key for a mapping" + HINT


def test_a_bad_value_format_reaching_apply() -> None:
    bad = PinFile.model_construct(path="k8s/app.yaml", key="spec.predictor.model.storageUri", value="s3://x/{sha}", document=None, annotate=None)
    assert refusal(KSERVE_MIN, bad) == (
        "k8s/app.yaml: deploy.environments.production.files[0].value: unknown field {sha}\n"
        '  hint: the value may use {uri} {sha256} {version} {name} {format}, e.g. value: "{uri}"'
    )
    attr = PinFile.model_construct(path="k8s/app.yaml", key="a", value="{uri.__class__}", document=None, annotate=None)
    assert refusal("a: b\n", attr).startswith("k8s/app.yaml: deploy.environments.production.files[0].value: unknown field {uri.__class__}")


def test_a_multi_document_file_needs_document() -> None:
    assert refusal(DEPLOY, spec(key="spec.replicas")) == (
        "k8s/app.yaml:1:1: spec.replicas: the file holds 2 documents; say which one with `document:`\n"
        "  hint: document: 0 (an index, from 0) or document: {kind: Deployment}; the documents here: 0: Deployment iris; 1: Service iris"
    )
    assert refusal(DEPLOY, spec(key="spec.replicas", document={"kind": "StatefulSet"})) == (
        "k8s/app.yaml:1:1: spec.replicas: no document has kind: StatefulSet; `document:` must pick exactly one\n"
        "  hint: the documents here: 0: Deployment iris; 1: Service iris"
    )
    assert refusal(DEPLOY, spec(key="spec.replicas", document={"metadata.name": "iris"})).startswith(
        "k8s/app.yaml:1:1: spec.replicas: 2 documents (0, 1) have metadata.name: iris; `document:` must pick exactly one"
    )
    assert refusal(DEPLOY, spec(key="spec.replicas", document=5)).startswith("k8s/app.yaml:1:1: spec.replicas: document: 5, but the file has 2 documents")


def test_anchors_aliases_and_tags_are_refused_not_half_edited() -> None:
    anchored = "a: &u s3://old\nb: *u\n"
    assert refusal(anchored, spec(key="a")) == "k8s/app.yaml:1:4: a: the value carries an anchor (&name) other places refer to; a pin replaces one plain value" + HINT
    assert refusal(anchored, spec(key="b")) == "k8s/app.yaml:2:1: b: b is an alias (*name) of a block defined on line 1; a pin edits one place: point the key path there" + HINT
    assert refusal(HELM, spec(key="sidecar.image.tag")).startswith("k8s/app.yaml:10:3: sidecar.image.tag: sidecar.image is an alias (*name) of a block defined on line 3")
    assert refusal("a: !!str old\n", spec(key="a")).startswith("k8s/app.yaml:1:4: a: the value carries a tag (!...); a pin replaces one plain value")


def test_invalid_yaml_and_an_alias_bomb_are_refused_with_positions() -> None:
    assert refusal("a: [b\n", spec(key="a")).startswith("k8s/app.yaml:2:1: not valid YAML: ")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi")) + "uri: old\n"
    assert refusal(bomb, spec(key="uri")) == (
        "k8s/app.yaml:4:36: aliases expand to more than 10,000 values (at *c)\n"
        '  hint: an alias bomb ("billion laughs") or close to one: write the values out'
    )


def test_nothing_is_returned_when_one_entry_of_several_fails() -> None:
    files = [spec(key="spec.predictor.model.storageUri"), spec(path="k8s/other.yaml", key="missing.key")]
    texts = {"k8s/app.yaml": KSERVE_MIN, "k8s/other.yaml": "a: b\n"}
    with pytest.raises(PinFileError) as info:
        pinfiles.apply("production", files, PIN, texts.get)
    assert info.value.message == "k8s/other.yaml:1:1: missing.key: the document has no key 'missing' (its keys: a)"
    assert "deploy.environments.production.files[1]" in (info.value.hint or "")


def test_the_check_after_editing_refuses_an_edit_that_changes_anything_else(monkeypatch: pytest.MonkeyPatch) -> None:
    real = pinfiles._apply_edits

    def sloppy(text: str, edits: list[Any]) -> str:
        return real(text, edits).replace("replicaCount: 2", "replicaCount: 3")

    monkeypatch.setattr(pinfiles, "_apply_edits", sloppy)
    with pytest.raises(MlopsError) as info:
        run(HELM, spec(key="model.uri"))
    assert not isinstance(info.value, PinFileError) and info.value.exit_code == 3
    assert info.value.message == "k8s/app.yaml: the edited file would not read as the original with only the pin changed (document 0 replicaCount changed); nothing was written"


# ---------------------------------------------------------------- mlops.yaml validation, positions

CONFIG = """\
data: {path: sklearn:iris, target: target}
training: {estimator: sklearn.linear_model.LogisticRegression}
deploy:
  environments:
    production:
      manifest: deploy/production.yaml
      files:
"""


def config_problems(tmp_path: Path, files: str) -> list[str]:
    (tmp_path / "mlops.yaml").write_text(CONFIG + files)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "mlops.yaml")
    return info.value.problems


def test_validation_points_at_bad_key_paths_in_mlops_yaml(tmp_path: Path) -> None:
    files = """\
        - path: k8s/isvc.yaml
          key: spec..storageUri
        - path: k8s/deploy.yaml
          key: "containers[name=].env"
          annotate: metadata.annotations[0]
        - path: k8s/deploy.yaml
          key: containers[name=server
"""
    prefix = "mlops.yaml:{}: deploy.environments.production.files[{}]."
    assert config_problems(tmp_path, files) == [
        prefix.format("9:16", 0) + "key: expected keys separated by dots, list items as [0] or [name=value] (here: an empty name between two dots at character 5), got 'spec..storageUri'",
        prefix.format("11:16", 1) + "key: expected keys separated by dots, list items as [0] or [name=value] (here: [name=] at character 11 has no value to match), got 'containers[name=].env'",
        prefix.format("12:21", 1) + "annotate: expected keys separated by dots, list items as [0] or [name=value] (here: it must end with a key name (the mapping the annotations go in), not a list item), got 'metadata.annotations[0]'",
        prefix.format("14:16", 2) + "key: expected keys separated by dots, list items as [0] or [name=value] (here: the '[' at character 11 is not closed), got 'containers[name=server'",
    ]


def test_validation_of_value_document_and_path(tmp_path: Path) -> None:
    files = """\
        - path: k8s/isvc.json
          key: a
          value: "s3://x/{sha}"
          document: [0]
        - path: k8s/isvc.yaml
          key: a
          value: "uri"
          document: -1
"""
    prefix = "mlops.yaml:{}: deploy.environments.production.files[{}]."
    assert config_problems(tmp_path, files) == [
        prefix.format("8:17", 0) + "path: expected a .yaml or .yml file, got 'k8s/isvc.json'",
        prefix.format("10:18", 0) + "value: expected text with {uri}, {sha256}, {version}, {name} or {format} (here: unknown field {sha}), got 's3://x/{sha}'",
        prefix.format("11:21", 0) + "document: expected a document index (0, 1, ...) or fields to match such as {kind: Deployment}, got a list",
        prefix.format("14:18", 1) + "value: expected text with {uri}, {sha256}, {version}, {name} or {format} (here: it names no pin field, so every promotion would write the same text), got 'uri'",
        prefix.format("15:21", 1) + "document: expected a document index (0, 1, ...) or fields to match such as {kind: Deployment}, got -1",
    ]


def test_validation_refuses_the_manifest_itself_and_a_key_set_twice(tmp_path: Path) -> None:
    files = """\
        - path: deploy/production.yaml
          key: model.uri
        - path: k8s/isvc.yaml
          key: spec.predictor.model.storageUri
        - path: k8s/isvc.yaml
          key: spec.predictor.model.storageUri
          value: "{uri}"
"""
    assert config_problems(tmp_path, files) == [
        "mlops.yaml:8:17: deploy.environments.production.files[0].path: this is the environment's manifest, which the tool writes itself; name the deploy target's own file",
        "mlops.yaml:13:16: deploy.environments.production.files[2].key: files[1] already sets this key in this file",
    ]


def test_mlops_validate_exits_2_on_a_bad_key_path(tmp_path: Path) -> None:
    from mlgitops.cli import main

    (tmp_path / "mlops.yaml").write_text(CONFIG + "        - {path: k8s/isvc.yaml, key: 'spec..x'}\n")
    result = CliRunner().invoke(main, ["validate", "--config", str(tmp_path / "mlops.yaml")])
    assert result.exit_code == 2
    assert "deploy.environments.production.files[0].key: expected keys separated by dots" in result.output


def test_paths_resolve_under_the_config_folder() -> None:
    assert pinfiles.repo_path("k8s/a.yaml", "services/iris") == "services/iris/k8s/a.yaml"
    assert pinfiles.repo_path("../k8s/a.yaml", "services/iris") == "services/k8s/a.yaml"
    assert pinfiles.repo_path("./k8s/a.yaml") == "k8s/a.yaml"
    seen = []
    pinfiles.apply("production", [spec(key="a")], PIN, lambda p: seen.append(p) or "a: b\n", base="services/iris")
    assert seen == ["services/iris/k8s/app.yaml"]
