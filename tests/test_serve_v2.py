"""`mlops serve` speaks the Open Inference Protocol v2 and exposes Prometheus metrics.

A real server on loopback; the V2 client is tritonclient's HTTP client (binary and JSON
tensors), and every body the tests send or receive on ``/v2`` is checked against the
protocol's published OpenAPI schemas (``tests/oip/``). ``/metrics`` is read with
prometheus-client's own parser.
"""

from __future__ import annotations

import hashlib
import json
import math
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import tritonclient.http as triton
import yaml
from prometheus_client.openmetrics.parser import text_string_to_metric_families as text_fd_to_openmetrics
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

from mlgitops.deploy import onnx as export
from mlgitops.deploy.serve import MAX_ROWS, ModelHolder
from tests.test_deploy import Server
from tests.test_serve import artifact, pin

OIP = Path(__file__).parent / "oip" / "rest_predict_v2.yaml"
NAN = float("nan")

#: a seen row, NaN and a missing (null) number, a missing category, unseen categories
ROWS = [
    {"age": 30, "income": 1000.0, "city": "nice", "plan": "pro"},
    {"age": NAN, "income": 52000.0, "city": "lyon", "plan": "basic"},
    {"age": 61.5, "income": None, "city": None, "plan": "pro"},
    {"age": 45, "income": 30000.0, "city": "marseille", "plan": "gold"},
]
COLUMNS = ["age", "income", "city", "plan"]


class Schemas:
    """Validators for the protocol's ``components.schemas``."""

    def __init__(self) -> None:
        from openapi_schema_validator import OAS30Validator

        self.components = yaml.safe_load(OIP.read_text())["components"]
        self.validator = OAS30Validator

    def check(self, name: str, body: Any) -> Any:
        self.validator({"$ref": f"#/components/schemas/{name}", "components": self.components}).validate(body)
        return body


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return Schemas()


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return tmp_path / "staging.yaml"


@pytest.fixture
def server(tmp_path: Path, manifest: Path) -> Iterator[Server]:
    uri, sha = artifact(tmp_path, "one.onnx", 1.0)
    manifest.write_text(pin(1, uri, sha))
    s = Server(ModelHolder("staging", manifest.read_text, "deploy/staging.yaml", tmp_path))
    yield s
    s.stop()


def call(server: Server, method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, bytes, str]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read(), resp.headers.get("content-type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("content-type", "")


def v2_request(rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """One tensor per column, shape [rows, 1]; a missing value is NaN or "" (the published
    schema has no null in tensor data; the server takes null too)."""
    inputs = []
    for column in COLUMNS:
        text = column in ("city", "plan")
        missing = "" if text else NAN
        inputs.append({"name": column, "shape": [len(rows), 1], "datatype": "BYTES" if text else "FP32", "data": [missing if r[column] is None else r[column] for r in rows]})
    return {**extra, "inputs": inputs}


def predict(server: Server, rows: list[dict[str, Any]]) -> dict[str, Any]:
    status, body = server.post("/predict", {"instances": rows})
    assert status == 200, body
    return body


def output(body: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [o for o in body["outputs"] if o["name"] == name]
    return found


def triton_inputs(rows: list[dict[str, Any]], binary: bool) -> list[Any]:
    inputs = []
    for column in COLUMNS:
        if column in ("city", "plan"):  # a binary BYTES element cannot be null: "" is missing, as in /predict
            values = np.array([[r[column] if r[column] is not None else ""] for r in rows], dtype=object)
            tensor = triton.InferInput(column, list(values.shape), "BYTES")
        else:
            values = np.array([[NAN if r[column] is None else r[column]] for r in rows], dtype=np.float32)
            tensor = triton.InferInput(column, list(values.shape), "FP32")
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    return inputs


# -- health and metadata ---------------------------------------------------------------


def test_health_and_metadata_through_tritonclient(server: Server, schemas: Schemas) -> None:
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    try:
        assert client.is_server_live() is True
        assert client.is_server_ready() is True
        assert client.is_model_ready("churn") is True
        assert client.is_model_ready("churn", "1") is True
        assert client.is_model_ready("churn", "2") is False
        assert client.is_model_ready("nope") is False
        metadata = client.get_model_metadata("churn")
        sha = server.holder.current.pin.sha256
        assert metadata == {
            "name": "churn",
            "versions": ["1"],
            "platform": "onnx_onnxv1",
            "inputs": [
                {"name": "age", "datatype": "FP32", "shape": [-1, 1]},
                {"name": "income", "datatype": "FP32", "shape": [-1, 1]},
                {"name": "city", "datatype": "BYTES", "shape": [-1, 1]},
                {"name": "plan", "datatype": "BYTES", "shape": [-1, 1]},
            ],
            "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}, {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}],
            "parameters": {"sha256": sha, "classes": "[0, 1]"},
        }
        schemas.check("metadata_model_response", metadata)
        assert client.get_model_metadata("churn", "1") == metadata
        with pytest.raises(InferenceServerException) as err:
            client.get_model_metadata("nope")
        assert (err.value.status(), err.value.message()) == ("404", "unknown model 'nope': this server serves 'churn'")
        server_meta = schemas.check("metadata_server_response", client.get_server_metadata())
        assert (server_meta["name"], server_meta["extensions"]) == ("mlgitops", [])
    finally:
        client.close()
    # "The HTTP response body should be empty"
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/churn/ready", "/v2/models/churn/versions/1/ready"):
        assert call(server, "GET", path)[:2] == (200, b""), path
    status, body, _ = call(server, "GET", "/v2/models/churn/versions/2")
    assert status == 404
    assert schemas.check("metadata_model_error_response", json.loads(body)) == {"error": "model 'churn' has no version '2': serving version 1"}


# -- inference ---------------------------------------------------------------------------


def test_infer_answers_as_predict_does_on_the_same_rows(server: Server, schemas: Schemas) -> None:
    expected = predict(server, ROWS)
    assert len({tuple(p.values()) for p in expected["probabilities"]}) == len(ROWS)  # four different answers

    request = schemas.check("inference_request", v2_request(ROWS, id="req-7"))
    status, raw, content_type = call(server, "POST", "/v2/models/churn/infer", request)
    assert (status, content_type) == (200, "application/json")
    body = schemas.check("inference_response", json.loads(raw))
    assert (body["model_name"], body["model_version"], body["id"], body["parameters"]) == ("churn", "1", "req-7", {"sha256": expected["sha256"]})
    assert [o["name"] for o in body["outputs"]] == ["label", "probabilities"]
    label, proba = output(body, "label"), output(body, "probabilities")
    assert (label["shape"], label["datatype"], label["data"]) == ([4], "INT64", expected["predictions"])
    assert (proba["shape"], proba["datatype"], proba["parameters"]) == ([4, 2], "FP32", {"classes": "[0, 1]"})
    assert [{"0": round(proba["data"][2 * i], 6), "1": round(proba["data"][2 * i + 1], 6)} for i in range(4)] == expected["probabilities"]

    # the same through tritonclient: binary tensors (its default) and JSON tensors
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    try:
        for binary in (True, False):
            result = client.infer("churn", triton_inputs(ROWS, binary), request_id="r1")
            assert result.as_numpy("label").tolist() == expected["predictions"], binary
            got = result.as_numpy("probabilities")
            assert got.shape == (4, 2) and got.dtype == np.float32
            assert [{"0": round(float(a), 6), "1": round(float(b), 6)} for a, b in got] == expected["probabilities"], binary
            assert result.get_response()["model_version"] == "1"
        asked = client.infer("churn", triton_inputs(ROWS[:1], True), model_version="1", outputs=[triton.InferRequestedOutput("label", binary_data=False)])
        assert [o["name"] for o in asked.get_response()["outputs"]] == ["label"]
        assert asked.as_numpy("label").tolist() == expected["predictions"][:1]
    finally:
        client.close()


def test_flat_nested_and_one_dimensional_tensors_are_one_request(server: Server, schemas: Schemas) -> None:
    rows = [{**ROWS[0], "age": 30}, {**ROWS[1], "age": None, "city": None}]
    expected = predict(server, rows)
    request = v2_request(rows)
    request["inputs"][0] = {"name": "age", "shape": [2], "datatype": "FP64", "data": [30, None]}  # [rows], FP64, null
    request["inputs"][1]["data"] = [[1000.0], [52000.0]]  # nested as its shape
    request["inputs"][2]["data"] = ["nice", None]
    status, raw, _ = call(server, "POST", "/v2/models/churn/versions/1/infer", request)
    assert status == 200
    assert output(json.loads(raw), "label")["data"] == expected["predictions"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda r: r["inputs"].pop(), "missing input(s) 'plan'"),
        (lambda r: r["inputs"][2].update(datatype="FP32", data=[1.0, 2.0]), "input 'city' has datatype FP32; the model takes BYTES (text) for this column"),
        (lambda r: r["inputs"][0].update(datatype="BYTES", data=["30", "40"]), "input 'age' has datatype BYTES; the model takes a number (FP32) for this column"),
        (lambda r: r["inputs"][0].update(datatype="FP8"), "input 'age': unknown datatype 'FP8'"),
        (lambda r: r["inputs"][0].update(data=[1.0, 2.0, 3.0]), "input 'age': shape [2, 1] holds 2 elements, data has 3"),
        (lambda r: r["inputs"][1].update(shape=[1, 1], data=[1.0]), "input 'income' has 1 rows, the inputs before it 2"),
        (lambda r: r["inputs"][0].update(shape=[1, 2]), "input 'age': shape [1, 2]; a column is [rows] or [rows, 1]"),
        (lambda r: r["inputs"][0].update(shape=[2, -1]), "input 'age': shape must be a list of non-negative integers, got [2, -1]"),
        (lambda r: r["inputs"][0].update(data=["x", 1.0]), 'input \'age\': element 0 is "x", not a number (null for missing)'),
        (lambda r: r["inputs"][3].update(data=["pro", 7]), "input 'plan': element 1 is 7, not a string (null for missing)"),
        (lambda r: r["inputs"].append({"name": "colour", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]}), "unknown input 'colour'; the model takes 'age', 'income', 'city', 'plan'"),
        (lambda r: r["inputs"].append(dict(r["inputs"][0])), "input 'age' is given twice"),
        (lambda r: r.update(outputs=[{"name": "score"}]), "unknown output 'score'; the model gives 'label', 'probabilities'"),
        (lambda r: r["inputs"][0].pop("data"), "input 'age' has no data (a JSON array, or binary_data_size)"),
        (lambda r: [t.update(shape=[0, 1], data=[]) for t in r["inputs"]], "the inputs hold no rows"),
    ],
)
def test_bad_requests_are_400_with_the_reason(server: Server, schemas: Schemas, change: Any, error: str) -> None:
    request = v2_request(ROWS[:2])
    change(request)
    status, raw, _ = call(server, "POST", "/v2/models/churn/infer", request)
    assert status == 400
    assert schemas.check("inference_error_response", json.loads(raw)) == {"error": error}


def test_unknown_model_version_and_bodies_that_are_not_requests(server: Server, schemas: Schemas) -> None:
    request = v2_request(ROWS[:1])
    for path, error in [
        ("/v2/models/nope/infer", "unknown model 'nope': this server serves 'churn'"),
        ("/v2/models/churn/versions/7/infer", "model 'churn' has no version '7': serving version 1"),
    ]:
        status, raw, _ = call(server, "POST", path, request)
        assert (status, schemas.check("inference_error_response", json.loads(raw))) == (404, {"error": error})
    status, raw, _ = call(server, "POST", "/v2/models/churn/infer", raw=b"{not json")
    assert status == 400 and json.loads(raw)["error"].startswith("body is not JSON: Expecting property name enclosed in double quotes")
    for path in ("/v2/models/churn/infer", "/predict"):  # nested past Python's recursion limit: still the client's error
        status, raw, _ = call(server, "POST", path, raw=b"[" * 100_000)
        assert (status, json.loads(raw)) == (400, {"error": "body is not JSON: maximum recursion depth exceeded while decoding a JSON array from a unicode string"}), path
    status, raw, _ = call(server, "POST", "/v2/models/churn/infer", {"instances": ROWS[:1]})
    assert (status, json.loads(raw)) == (400, {"error": 'expected an inference request {"inputs": [{"name", "shape", "datatype", "data"}, ...]}'})
    status, raw, _ = call(server, "POST", "/v2/models/churn/infer", v2_request(ROWS[:1] * (MAX_ROWS + 1)))
    assert (status, json.loads(raw)) == (400, {"error": "at most 10000 rows per request, got 10001"})
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    try:
        with pytest.raises(InferenceServerException) as err:
            client.infer("churn", triton_inputs(ROWS[:1], True)[:3])
        assert (err.value.status(), err.value.message()) == ("400", "missing input(s) 'plan'")
    finally:
        client.close()


def test_binary_tensor_data_that_does_not_add_up_is_refused(server: Server) -> None:
    head = json.dumps({"inputs": [{"name": "age", "shape": [1, 1], "datatype": "FP32", "parameters": {"binary_data_size": 4}}]}).encode()

    def post(body: bytes, header: str) -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(f"http://127.0.0.1:{server.port}/v2/models/churn/infer", data=body, headers={"Inference-Header-Content-Length": header})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    assert post(head + b"\0\0", str(len(head))) == (400, {"error": "input 'age': binary_data_size 4 does not fit the 2 bytes of binary data left"})
    assert post(head + b"\0" * 8, str(len(head))) == (400, {"error": "4 bytes of binary data after the last input"})
    assert post(head, str(len(head) + 1)) == (400, {"error": f"Inference-Header-Content-Length {len(head) + 1} does not fit a body of {len(head)} bytes"})
    text = json.dumps({"inputs": [{"name": "city", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 9}}]}).encode()
    assert post(text + b"\x04\0\0\0nice\x07", str(len(text))) == (400, {"error": "input 'city': binary BYTES data ends inside an element's length"})


def test_a_model_with_text_classes_and_one_float_tensor(tmp_path: Path, manifest: Path, schemas: Schemas) -> None:
    """preprocessing: none (one float tensor in the graph) still takes one V2 tensor per
    column; text class labels come back as BYTES."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris(as_frame=True)
    frame = iris.frame
    features = [c for c in frame.columns if c != "target"]
    target = np.asarray(iris.target_names)[frame["target"]]
    model = LogisticRegression(max_iter=500).fit(frame[features], target)
    data = export.to_onnx(model, frame, features, "classification", {"features": features}).onnx
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "iris.onnx").write_bytes(data)
    manifest.write_text(pin(3, "art/iris.onnx", hashlib.sha256(data).hexdigest()).replace("name: churn", "name: iris"))
    server = Server(ModelHolder("staging", manifest.read_text, "deploy/staging.yaml", tmp_path))
    try:
        status, raw, _ = call(server, "GET", "/v2/models/iris")
        metadata = schemas.check("metadata_model_response", json.loads(raw))
        assert metadata["inputs"] == [{"name": f, "datatype": "FP32", "shape": [-1, 1]} for f in features]
        assert metadata["outputs"] == [{"name": "label", "datatype": "BYTES", "shape": [-1]}, {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}]
        assert metadata["parameters"]["classes"] == '["setosa", "versicolor", "virginica"]'
        rows = [frame[features].iloc[i].to_dict() for i in (0, 60, 120)]
        expected = predict(server, rows)
        assert expected["predictions"] == ["setosa", "versicolor", "virginica"]
        request = {"inputs": [{"name": f, "shape": [3, 1], "datatype": "FP32", "data": [r[f] for r in rows]} for f in features]}
        status, raw, _ = call(server, "POST", "/v2/models/iris/infer", request)
        body = schemas.check("inference_response", json.loads(raw))
        assert output(body, "label") == {"name": "label", "shape": [3], "datatype": "BYTES", "data": ["setosa", "versicolor", "virginica"]}
        assert body["model_version"] == "3"
    finally:
        server.stop()


def test_a_regressor_answers_one_float_label(tmp_path: Path, manifest: Path, schemas: Schemas) -> None:
    from sklearn.linear_model import Ridge

    from tests.helpers import regression_frame

    frame = regression_frame(200)
    model = Ridge().fit(frame[["x1", "x2"]], frame["y"])
    data = export.to_onnx(model, frame, ["x1", "x2"], "regression", {"features": ["x1", "x2"]}).onnx
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "ridge.onnx").write_bytes(data)
    manifest.write_text(pin(1, "art/ridge.onnx", hashlib.sha256(data).hexdigest()))
    server = Server(ModelHolder("staging", manifest.read_text, "deploy/staging.yaml", tmp_path))
    try:
        status, raw, _ = call(server, "GET", "/v2/models/churn")
        assert json.loads(raw)["outputs"] == [{"name": "label", "datatype": "FP32", "shape": [-1]}]
        rows = [{"x1": 0.5, "x2": -1.0}, {"x1": -2.0, "x2": 0.25}]
        expected = predict(server, rows)["predictions"]
        request = {"inputs": [{"name": c, "shape": [2], "datatype": "FP32", "data": [r[c] for r in rows]} for c in ("x1", "x2")]}
        status, raw, _ = call(server, "POST", "/v2/models/churn/infer", request)
        body = schemas.check("inference_response", json.loads(raw))
        assert body["outputs"] == [{"name": "label", "shape": [2], "datatype": "FP32", "data": expected}]
        assert math.isclose(expected[0], 3 * 0.5 - 2 * -1.0, abs_tol=0.3)
    finally:
        server.stop()


# -- /metrics --------------------------------------------------------------------------


def scrape(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, raw, content_type = call(server, "GET", "/metrics")
    assert (status, content_type) == (200, "text/plain; version=0.0.4; charset=utf-8")
    return {(s.name, frozenset(s.labels.items())): s.value for family in text_string_to_metric_families(raw.decode()) for s in family.samples}


def sample(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def model_info(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> list[dict[str, str]]:
    return [dict(labels) for (name, labels), value in samples.items() if name == "mlops_serve_model_info" and value == 1.0]


def counts(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {k: v for k, v in samples.items() if not k[0].endswith("_created")}


INFER = "/v2/models/{name}/infer"


def test_metrics_count_requests_errors_latency_and_swaps(tmp_path: Path, manifest: Path, server: Server) -> None:
    sha1 = server.holder.current.pin.sha256
    before = scrape(server)
    routes = ["/healthz", "/predict", "/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/{name}", "/v2/models/{name}/versions/{version}", "/v2/models/{name}/ready", "/v2/models/{name}/versions/{version}/ready", INFER, "/v2/models/{name}/versions/{version}/infer"]
    assert sorted(dict(k[1])["route"] for k in before if k[0] == "mlops_serve_requests_total") == sorted(routes)
    assert sample(before, "mlops_serve_requests_total", route=INFER) == 0.0
    assert [k for k in before if k[0] == "mlops_serve_errors_total"] == []
    assert model_info(before) == [{"environment": "staging", "model": "churn", "version": "1", "sha256": sha1}]
    assert (sample(before, "mlops_serve_swaps_total"), sample(before, "mlops_serve_degraded")) == (0.0, 0.0)

    for _ in range(3):
        assert call(server, "POST", "/v2/models/churn/infer", v2_request(ROWS[:1]))[0] == 200
    assert call(server, "POST", "/v2/models/churn/infer", {"inputs": []})[0] == 400
    assert call(server, "GET", "/v2/models/nope")[0] == 404
    predict(server, ROWS[:1])
    predict(server, ROWS[:2])
    after = scrape(server)
    assert counts(after) == counts(scrape(server))  # a scrape counts nothing
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    with urllib.request.urlopen(req, timeout=5) as resp:  # what a Prometheus server asks for
        assert resp.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
        families = {f.name: f for f in text_fd_to_openmetrics(resp.read().decode())}
    assert [(s.labels, s.value) for s in families["mlops_serve_requests"].samples if s.name == "mlops_serve_requests_total" and s.labels["route"] == INFER] == [({"route": INFER}, 4.0)]
    assert sample(after, "mlops_serve_requests_total", route=INFER) == 4.0
    assert sample(after, "mlops_serve_errors_total", route=INFER, code="400") == 1.0
    assert sample(after, "mlops_serve_requests_total", route="/v2/models/{name}") == 1.0
    assert sample(after, "mlops_serve_errors_total", route="/v2/models/{name}", code="404") == 1.0
    assert sample(after, "mlops_serve_requests_total", route="/predict") == 2.0
    assert sample(after, "mlops_serve_errors_total", route="/predict", code="400") is None
    assert [k for k in after if k[0] == "mlops_serve_errors_total"] == [
        ("mlops_serve_errors_total", frozenset({("route", INFER), ("code", "400")})),
        ("mlops_serve_errors_total", frozenset({("route", "/v2/models/{name}"), ("code", "404")})),
    ]
    assert sample(after, "mlops_serve_request_duration_seconds_count", route=INFER) == 4.0
    assert sample(after, "mlops_serve_request_duration_seconds_bucket", route=INFER, le="+Inf") == 4.0
    assert 0.0 < sample(after, "mlops_serve_request_duration_seconds_sum", route=INFER) < 4 * 5.0

    # a pin whose hash does not match: refused, degraded, no swap
    uri2, sha2 = artifact(tmp_path, "two.onnx", 0.001)
    manifest.write_text(pin(2, uri2, "f" * 64))
    server.wait(lambda h: h["status"] == "degraded")
    refused = scrape(server)
    assert (sample(refused, "mlops_serve_swaps_total"), sample(refused, "mlops_serve_degraded")) == (0.0, 1.0)
    assert model_info(refused) == [{"environment": "staging", "model": "churn", "version": "1", "sha256": sha1}]

    manifest.write_text(pin(2, uri2, sha2))
    server.wait(lambda h: h["status"] == "ok" and h["version"] == 2)
    swapped = scrape(server)
    assert (sample(swapped, "mlops_serve_swaps_total"), sample(swapped, "mlops_serve_degraded")) == (1.0, 0.0)
    assert model_info(swapped) == [{"environment": "staging", "model": "churn", "version": "2", "sha256": sha2}]
    status, raw, _ = call(server, "POST", "/v2/models/churn/infer", v2_request(ROWS[:1]))
    assert (status, json.loads(raw)["model_version"]) == (200, "2")
    assert call(server, "POST", "/v2/models/churn/versions/1/infer", v2_request(ROWS[:1]))[0] == 404


def test_two_servers_keep_their_own_metrics(tmp_path: Path, manifest: Path, server: Server) -> None:
    other = Server(ModelHolder("production", manifest.read_text, "deploy/production.yaml", tmp_path))
    try:
        assert call(server, "POST", "/v2/models/churn/infer", v2_request(ROWS[:1]))[0] == 200
        assert call(server, "POST", "/v2/models/churn/infer", v2_request(ROWS[:1]))[0] == 200
        assert call(other, "POST", "/v2/models/churn/infer", v2_request(ROWS[:1]))[0] == 200
        assert sample(scrape(server), "mlops_serve_requests_total", route=INFER) == 2.0
        theirs = scrape(other)
        assert sample(theirs, "mlops_serve_requests_total", route=INFER) == 1.0
        assert [i["environment"] for i in model_info(theirs)] == ["production"]
    finally:
        other.stop()
