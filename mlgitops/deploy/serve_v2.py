"""The Open Inference Protocol v2 (KServe V2, also spoken by MLServer and Triton) over
the model `mlops serve` holds.

* ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2/models/{name}/ready``:
  200 with an empty body, or 400 ("a 4xx status code indicates false");
* ``GET /v2``: server metadata; ``GET /v2/models/{name}``: model metadata, one input per
  feature column (``FP32`` for numeric columns, ``BYTES`` for text, shape ``[-1, 1]``)
  and the outputs ``label`` and, for classifiers, ``probabilities`` (``[-1, classes]``);
* ``POST /v2/models/{name}/infer``: one tensor per column, shape ``[rows]`` or
  ``[rows, 1]``, data flat or nested; ``null`` (or NaN, or ``""`` for text) is a
  missing value, as in ``/predict``. Inputs may also come as binary tensor data after
  the JSON head (``Inference-Header-Content-Length``, Triton's binary extension, which
  tritonclient sends by default); outputs are always JSON.

Every route also answers under ``/versions/{version}``; a name or version other than
the one served is a 404. Errors are ``{"error": "..."}`` with 400, as the protocol says.
Rows are scored by the same ``OnnxModel.run_records`` as ``/predict``, so both routes
give the same answers for the same rows.
"""

from __future__ import annotations

import json
import math
import struct
import weakref
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # serve.py imports this module to add its routes
    from mlgitops.deploy.serve import Loaded, ModelHolder

#: "onnx_onnxv1: A ONNX model encoded for ONNX Runtime" (the protocol's Platforms list)
PLATFORM = "onnx_onnxv1"
BINARY_HEADER = "inference-header-content-length"

# Binary tensor data: little-endian, row-major (Triton's binary_tensor_data extension).
_NUMPY = {"BOOL": "?", "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8", "INT8": "i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}
NUMERIC = frozenset(_NUMPY)


class V2Error(Exception):
    """A request the protocol answers with ``{"error": message}`` and ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def model_name(holder: ModelHolder, loaded: Loaded) -> str:
    return loaded.pin.name or holder.env


def input_types(loaded: Loaded) -> dict[str, str]:
    """{feature column: "FP32" | "BYTES"}, in the model's input order."""
    model = loaded.model
    known = _TYPES.get(model)
    if known is None:  # once per model, not per request
        per_column = {spec.get("column", spec["name"]): spec["type"] for spec in model.inputs if spec.get("column", spec["name"])}
        known = _TYPES[model] = {column: "BYTES" if per_column.get(column, "float") == "string" else "FP32" for column in model.features}
    return known


_TYPES: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


def label_datatype(classes: list[Any] | None) -> str:
    if classes is None:
        return "FP32"  # a regressor: ONNX Runtime computes in float32
    if all(isinstance(c, bool) for c in classes):
        return "BOOL"
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return "INT64"
    if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in classes):
        return "FP64"
    return "BYTES"


def output_names(loaded: Loaded) -> list[str]:
    model = loaded.model
    has_proba = model.classes_ is not None and len(model.session.get_outputs()) > 1
    return ["label", "probabilities"] if has_proba else ["label"]


def server_metadata() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("mlgitops")
    except PackageNotFoundError:  # a checkout run without installing it
        ours = "0+unknown"
    return {"name": "mlgitops", "version": ours, "extensions": []}


def model_metadata(holder: ModelHolder, loaded: Loaded) -> dict[str, Any]:
    classes = loaded.model.classes_
    outputs = [{"name": "label", "datatype": label_datatype(classes), "shape": [-1]}]
    if "probabilities" in output_names(loaded):
        outputs.append({"name": "probabilities", "datatype": "FP32", "shape": [-1, len(classes)]})
    body: dict[str, Any] = {"name": model_name(holder, loaded)}
    if loaded.pin.version is not None:
        body["versions"] = [str(loaded.pin.version)]
    body["platform"] = PLATFORM
    body["inputs"] = [{"name": column, "datatype": datatype, "shape": [-1, 1]} for column, datatype in input_types(loaded).items()]
    body["outputs"] = outputs
    parameters: dict[str, Any] = {"sha256": loaded.pin.sha256}
    if classes is not None:
        parameters["classes"] = json.dumps(classes)  # parameter values are strings, numbers or booleans
    body["parameters"] = parameters
    return body


def check_model(holder: ModelHolder, loaded: Loaded | None, name: str, version: str | None) -> Loaded:
    """The served model if the URL names it, else V2Error (404, or 400 when none is loaded)."""
    if loaded is None:
        raise V2Error(holder.last_error or "no model loaded", 400)
    served = model_name(holder, loaded)
    if name != served:
        raise V2Error(f"unknown model {name!r}: this server serves {served!r}", 404)
    if version is not None and version != str(loaded.pin.version):
        raise V2Error(f"model {served!r} has no version {version!r}: serving version {loaded.pin.version}", 404)
    return loaded


# -- inference requests ---------------------------------------------------------------


def parse_request(raw: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """(the JSON head, the binary tensor data after it)."""
    if header_length is not None:
        try:
            size = int(header_length)
        except ValueError:
            raise V2Error(f"Inference-Header-Content-Length is not a number: {header_length!r}") from None
        if not 0 < size <= len(raw):
            raise V2Error(f"Inference-Header-Content-Length {size} does not fit a body of {len(raw)} bytes")
        head, binary = raw[:size], raw[size:]
    else:
        head, binary = raw, b""
    try:
        request = json.loads(head)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
        raise V2Error(f"body is not JSON: {exc}") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise V2Error('expected an inference request {"inputs": [{"name", "shape", "datatype", "data"}, ...]}')
    return request, binary


def _flatten(data: list[Any]) -> list[Any]:
    if not any(isinstance(item, list) for item in data):
        return data  # already flat: the common case
    flat: list[Any] = []
    stack = [iter([data])]
    while stack:  # iterative: a deeply nested array must not exhaust the recursion limit
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        else:
            flat.append(item)
    return flat


_END = object()


def _binary_values(name: str, datatype: str, chunk: bytes, count: int) -> list[Any]:
    import numpy as np

    if datatype == "BYTES":
        values: list[Any] = []
        at = 0
        while at < len(chunk) and len(values) <= count:  # bounded by the chunk's length
            if at + 4 > len(chunk):
                raise V2Error(f"input {name!r}: binary BYTES data ends inside an element's length")
            (length,) = struct.unpack_from("<I", chunk, at)
            at += 4
            if at + length > len(chunk):
                raise V2Error(f"input {name!r}: binary BYTES data ends inside element {len(values)}")
            try:
                values.append(chunk[at : at + length].decode())
            except UnicodeDecodeError:
                raise V2Error(f"input {name!r}: element {len(values)} is not UTF-8 text") from None
            at += length
        if len(values) != count:
            raise V2Error(f"input {name!r}: shape holds {count} elements, binary data {len(values)}")
        return values
    dtype = np.dtype(_NUMPY[datatype])
    if len(chunk) != count * dtype.itemsize:
        raise V2Error(f"input {name!r}: shape holds {count} {datatype} elements ({count * dtype.itemsize} bytes), binary data has {len(chunk)} bytes")
    return np.frombuffer(chunk, dtype=dtype).tolist()


def _shape(name: str, shape: Any) -> int:
    """The row count of a column tensor's shape: [rows] or [rows, 1]."""
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise V2Error(f"input {name!r}: shape must be a list of non-negative integers, got {json.dumps(shape)}")
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        return shape[0]
    raise V2Error(f"input {name!r}: shape {json.dumps(shape)}; a column is [rows] or [rows, 1]")


def _column(name: str, datatype: str, expected: str, values: list[Any]) -> list[Any]:
    if expected == "BYTES":
        if datatype != "BYTES":
            raise V2Error(f"input {name!r} has datatype {datatype}; the model takes BYTES (text) for this column")
        for i, v in enumerate(values):
            if v is not None and not isinstance(v, str):
                raise V2Error(f"input {name!r}: element {i} is {json.dumps(v)}, not a string (null for missing)")
        return values
    if datatype not in NUMERIC:
        raise V2Error(f"input {name!r} has datatype {datatype}; the model takes a number (FP32) for this column")
    for i, v in enumerate(values):
        if v is not None and not isinstance(v, (int, float)):
            raise V2Error(f"input {name!r}: element {i} is {json.dumps(v)}, not a number (null for missing)")
    return values


def rows_from_request(request: dict[str, Any], binary: bytes, loaded: Loaded, max_rows: int) -> list[dict[str, Any]]:
    """One row per element of the column tensors, as ``/predict`` takes them."""
    types = input_types(loaded)
    columns: dict[str, list[Any]] = {}
    rows = -1
    at = 0
    for index, spec in enumerate(request["inputs"]):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not isinstance(spec.get("datatype"), str) or "shape" not in spec:
            raise V2Error(f"inputs[{index}]: expected {{\"name\": string, \"shape\": [...], \"datatype\": string, \"data\": [...]}}")
        name, datatype = spec["name"], spec["datatype"]
        if name not in types:
            raise V2Error(f"unknown input {name!r}; the model takes {', '.join(map(repr, types))}")
        if name in columns:
            raise V2Error(f"input {name!r} is given twice")
        count = _shape(name, spec["shape"])
        if datatype != "BYTES" and datatype not in NUMERIC:
            raise V2Error(f"input {name!r}: unknown datatype {datatype!r}")
        parameters = spec.get("parameters") if isinstance(spec.get("parameters"), dict) else {}
        if "binary_data_size" in parameters:
            size = parameters["binary_data_size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0 or at + size > len(binary):
                raise V2Error(f"input {name!r}: binary_data_size {json.dumps(size)} does not fit the {len(binary) - at} bytes of binary data left")
            values = _binary_values(name, datatype, binary[at : at + size], count)
            at += size
        elif "data" in spec and isinstance(spec["data"], list):
            values = _flatten(spec["data"])
            if len(values) != count:
                raise V2Error(f"input {name!r}: shape {json.dumps(spec['shape'])} holds {count} elements, data has {len(values)}")
        else:
            raise V2Error(f"input {name!r} has no data (a JSON array, or binary_data_size)")
        if rows not in (-1, count):
            raise V2Error(f"input {name!r} has {count} rows, the inputs before it {rows}")
        rows = count
        columns[name] = _column(name, datatype, types[name], values)
    if at != len(binary):
        raise V2Error(f"{len(binary) - at} bytes of binary data after the last input")
    missing = [c for c in types if c not in columns]
    if missing:
        raise V2Error(f"missing input(s) {', '.join(map(repr, missing[:5]))}" + (" ..." if len(missing) > 5 else ""))
    if rows < 1:
        raise V2Error("the inputs hold no rows")
    if rows > max_rows:
        raise V2Error(f"at most {max_rows} rows per request, got {rows}")
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*(columns[n] for n in names))]


def requested_outputs(request: dict[str, Any], loaded: Loaded) -> list[str]:
    available = output_names(loaded)
    asked = request.get("outputs")
    if asked is None:
        return available
    if not isinstance(asked, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in asked):
        raise V2Error('outputs: expected [{"name": string}, ...]')
    names = [o["name"] for o in asked]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise V2Error(f"unknown output {unknown[0]!r}; the model gives {', '.join(map(repr, available))}")
    return names


def infer(holder: ModelHolder, loaded: Loaded, request: dict[str, Any], binary: bytes, max_rows: int) -> dict[str, Any]:
    """The inference response for a parsed request (V2Error for a bad one)."""
    rows = rows_from_request(request, binary, loaded, max_rows)
    wanted = requested_outputs(request, loaded)
    if "id" in request and not isinstance(request["id"], str):
        raise V2Error(f"id must be a string, got {json.dumps(request['id'])}")
    model = loaded.model
    try:
        raw_labels, proba = model.run_records(rows)
    except Exception as exc:  # noqa: BLE001 - a value ONNX Runtime rejects is the client's input
        raise V2Error(f"cannot score these rows: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    labels = model.labels(raw_labels)
    datatype = label_datatype(model.classes_)
    outputs: list[dict[str, Any]] = []
    for name in wanted:
        if name == "label":
            data = [str(v) for v in labels] if datatype == "BYTES" else labels
            outputs.append({"name": "label", "shape": [len(rows)], "datatype": datatype, "data": data})
        else:
            flat = [_json_float(p) for row in proba for p in row]
            outputs.append({"name": "probabilities", "shape": [len(rows), len(model.classes_)], "datatype": "FP32", "parameters": {"classes": json.dumps(model.classes_)}, "data": flat})
    body: dict[str, Any] = {"model_name": model_name(holder, loaded)}
    if loaded.pin.version is not None:
        body["model_version"] = str(loaded.pin.version)
    if "id" in request:
        body["id"] = request["id"]
    body["parameters"] = {"sha256": loaded.pin.sha256}
    body["outputs"] = outputs
    return body


def _json_float(value: Any) -> float | None:
    f = float(value)
    return None if math.isnan(f) else f


# -- routes -----------------------------------------------------------------------------


def routes(holder: ModelHolder, read_body: Callable[[Any], Any], count: Callable[[str, Any], Any], max_rows: int) -> list[Any]:
    """The protocol's routes; ``count(template, endpoint)`` wraps each for the metrics,
    ``read_body(request)`` returns (bytes, None) or (None, an error response), and a
    request holds at most ``max_rows`` rows."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def error(exc: V2Error) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    async def live(request: Request) -> Response:
        return Response(status_code=200)

    async def ready(request: Request) -> Response:
        return Response(status_code=200 if holder.current is not None else 400)

    async def server(request: Request) -> JSONResponse:
        return JSONResponse(server_metadata())

    async def metadata(request: Request) -> JSONResponse:
        try:
            loaded = check_model(holder, holder.current, request.path_params["name"], request.path_params.get("version"))
        except V2Error as exc:
            return error(exc)
        return JSONResponse(model_metadata(holder, loaded))

    async def model_ready(request: Request) -> Response:
        try:
            check_model(holder, holder.current, request.path_params["name"], request.path_params.get("version"))
        except V2Error as exc:
            return error(exc)
        return Response(status_code=200)

    async def infer_route(request: Request) -> Response:
        loaded = holder.current  # one model for the whole request, whatever a swap does meanwhile
        try:
            loaded = check_model(holder, loaded, request.path_params["name"], request.path_params.get("version"))
        except V2Error as exc:
            return error(exc)
        raw, refused = await read_body(request)
        if refused is not None:
            return refused
        try:
            parsed, binary = parse_request(raw, request.headers.get(BINARY_HEADER))
            return JSONResponse(infer(holder, loaded, parsed, binary, max_rows))
        except V2Error as exc:
            return error(exc)

    table = [
        ("/v2", server, ["GET"]),
        ("/v2/health/live", live, ["GET"]),
        ("/v2/health/ready", ready, ["GET"]),
        ("/v2/models/{name}", metadata, ["GET"]),
        ("/v2/models/{name}/versions/{version}", metadata, ["GET"]),
        ("/v2/models/{name}/ready", model_ready, ["GET"]),
        ("/v2/models/{name}/versions/{version}/ready", model_ready, ["GET"]),
        ("/v2/models/{name}/infer", infer_route, ["POST"]),
        ("/v2/models/{name}/versions/{version}/infer", infer_route, ["POST"]),
    ]
    return [Route(path, count(path, endpoint), methods=methods) for path, endpoint, methods in table]
