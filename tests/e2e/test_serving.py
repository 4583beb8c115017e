"""Model serving: ``kiln serve`` with the Open Inference Protocol (KServe v2) over REST and gRPC,
MLflow's ``/invocations`` scoring protocol and Prometheus metrics.

The models are built by serving_models.py (scikit-learn's bundled data sets converted with
skl2onnx, and a small CNN made with onnx.helper), each an MLflow model folder (MLmodel +
model.onnx). Every answer is checked against onnxruntime run here in Python on the same input,
within 1e-6 (labels exactly); the clients are raw HTTP, ``tritonclient.http`` (JSON and the
binary tensor extension) and ``tritonclient.grpc``.

One ``kiln serve`` with every model serves most tests; ``/invocations`` scores the one model of a
server, so those tests start one server per model; the registry, hot-swap and dynamic-batching
tests start their own. Each process is stopped by its PID. The registry tests log models to the
session's tracking server (``--target``): kiln server on SQLite or PostgreSQL, or mlflow server,
which kiln serve must resolve ``models:/`` and ``runs:/`` URIs against all the same.

Interface points this suite pins (decided here where the spec left them open):

* ``/invocations`` answers ``{"predictions": {<output>: <nested list>, ...}}``, a dict of every
  ONNX output in graph order with its full shape (label [N], probabilities [N, C], variable
  [N, 1], logits [N, 10]), which is what MLflow 3.17's scoring server answers for these models
  (``mlflow.onnx``'s pyfunc returns a dict of outputs for tensor input; the tests compare with
  MLflow run in-process). For ``dataframe_split``, ``dataframe_records`` and CSV, MLflow refuses
  these models (their signature is a tensor; it fails "Failed to enforce schema"); Kiln takes the
  frame's columns, in order, as the single input's features and answers in the same shape.
  Errors are a 4xx with a JSON body; an unsupported Content-Type is a 415, as in MLflow.
* gRPC errors: NOT_FOUND for an unknown model, INVALID_ARGUMENT for a bad request.
* The OIP ``data`` of an answer may be flat or nested: it is reshaped by its ``shape``.
* NaN inputs are sent in binary (HTTP extension, gRPC raw contents): JSON has no NaN.
"""

import concurrent.futures
import glob
import json
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import warnings

import numpy as np
import pytest
import requests
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

import serving_models
from conftest import free_port, kiln_bin, stop_process, tail, unique
from helpers import raw_http

# ---------------------------------------------------------------------------
# Constants

BATCHES = (1, 7, 100)
RTOL = 1e-6
ATOL = 1e-6
READY_TIMEOUT = 120  # s, for a server to load its models (a debug build, registry downloads)
REQUEST_TIMEOUT = 60  # s, any single request
QUICK = 5.0  # s, the most a refusal of a hostile request may take
SWAP_DEADLINE = 10.0  # s, from moving the alias to every client seeing the new version
RSS_GROWTH_LIMIT = 256 * 1024  # KiB the server's peak RSS may grow by during a hostile test
HUGE = 1_000_000_000_000

NP_TO_OIP = {np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64", np.dtype(np.int64): "INT64",
             np.dtype(np.int32): "INT32", np.dtype(np.bool_): "BOOL", np.dtype(np.uint8): "UINT8"}
OIP_TO_NP = {v: k for k, v in NP_TO_OIP.items()}


# ---------------------------------------------------------------------------
# The server process


def onnxruntime_library():
    """libonnxruntime.so.<version> of the onnxruntime package the references come from."""
    import onnxruntime

    found = sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so*")))
    return found[0] if found else None


def wait_for_answer(server, url, what, timeout):
    """Waits (at most `timeout` s) until `url` answers 200; a process that exits or never answers
    is stopped and reported with its log. `server` has .proc, .log_path and .stop()."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {server.proc.returncode}:\n{tail(server.log_path)}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.1)
    log = tail(server.log_path)
    server.stop()
    raise RuntimeError(f"{what} was not ready within {timeout}s:\n{log}")


class Serve:
    """A `kiln serve` process on free loopback ports, stopped by its PID."""

    def __init__(self, models, *extra, tracking_uri=None, env=None):
        self.models = dict(models)  # name -> URI
        self.extra = [str(a) for a in extra]
        self.tracking_uri = tracking_uri
        self.env_extra = dict(env or {})
        self.port = free_port()
        self.grpc_port = free_port()
        while self.grpc_port == self.port:
            self.grpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.grpc_url = f"127.0.0.1:{self.grpc_port}"
        self.workdir = tempfile.mkdtemp(prefix="kiln-e2e-serve-")
        self.log_path = os.path.join(self.workdir, "serve.log")
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid

    def command(self):
        cmd = [kiln_bin(), "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--grpc-port", str(self.grpc_port)]
        for name, uri in self.models.items():
            cmd += ["--model", f"{name}={uri}"]
        if self.tracking_uri:
            cmd += ["--tracking-uri", self.tracking_uri]
        return cmd + self.extra

    def environment(self):
        env = dict(os.environ)
        # The tracking server is only what the test says (--tracking-uri, or `env`).
        env.pop("MLFLOW_TRACKING_URI", None)
        lib = onnxruntime_library()
        if lib and "ORT_DYLIB_PATH" not in env:
            env["ORT_DYLIB_PATH"] = lib  # the same onnxruntime as the references
        env.update(self.env_extra)
        return env

    def start(self, timeout=READY_TIMEOUT):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                         env=self.environment(), stdin=subprocess.DEVNULL)
        return wait_for_answer(self, self.url + "/v2/health/ready", "kiln serve", timeout)

    def stop(self):
        stop_process(self.proc)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self):
        return tail(self.log_path)

    def status_kib(self, field):
        """VmRSS, VmHWM, ... of the process from /proc, in KiB."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.pid}/status")

    def assert_alive(self):
        assert self.proc.poll() is None, f"kiln serve died ({self.proc.returncode}):\n{self.log()}"
        r = requests.get(self.url + "/v2/health/live", timeout=10)
        assert r.status_code == 200, r.text
        r = requests.get(self.url + "/v2/health/ready", timeout=10)
        assert r.status_code == 200, r.text

    # -- requests

    def get(self, path, **kw):
        return requests.get(self.url + path, timeout=REQUEST_TIMEOUT, **kw)

    def post(self, path, **kw):
        return requests.post(self.url + path, timeout=REQUEST_TIMEOUT, **kw)

    def infer(self, model, body, version=None, **kw):
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
        return self.post(path, json=body, **kw)


def started(serve):
    try:
        return serve.start()
    except BaseException:
        serve.stop()
        raise


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Every model of serving_models.py, built once for the module: {name: BuiltModel}."""
    return serving_models.build_all(str(tmp_path_factory.mktemp("serving-models")))


@pytest.fixture(scope="module")
def serve(models):
    """One kiln serve with every local model."""
    srv = started(Serve({name: m.path for name, m in models.items()}))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def single(models):
    """single(name): a kiln serve with that one model (for /invocations), started on first use."""
    servers = {}

    def get(name):
        if name not in servers:
            servers[name] = Serve({name: models[name].path})
            started(servers[name])
        return servers[name]

    yield get
    for srv in servers.values():
        srv.stop()


# ---------------------------------------------------------------------------
# Requests and answers


def tensor_json(name, x, nested=False):
    x = np.asarray(x)
    return {"name": name, "datatype": NP_TO_OIP[x.dtype], "shape": list(x.shape),
            "data": x.tolist() if nested else x.reshape(-1).tolist()}


def infer_body(model, x, nested=False, **extra):
    return {"inputs": [tensor_json(model.input_name, x, nested)], **extra}


def decode_json_outputs(body):
    """{name: array} of an OIP JSON answer (data flat or nested, reshaped by `shape`)."""
    out = {}
    for o in body["outputs"]:
        dtype = OIP_TO_NP[o["datatype"]]
        out[o["name"]] = np.asarray(o["data"], dtype=dtype).reshape(o["shape"])
    return out


def binary_request(tensors, outputs=None, parameters=None, header_length=None, tail_bytes=b""):
    """(body, headers) of an OIP request with the binary tensor extension.

    tensors: [(name, datatype, shape, raw bytes, declared binary_data_size or None for len(raw))]"""
    inputs = []
    payload = b""
    for name, datatype, shape, raw, size in tensors:
        inputs.append({"name": name, "datatype": datatype, "shape": list(shape),
                       "parameters": {"binary_data_size": len(raw) if size is None else size}})
        payload += raw
    req = {"inputs": inputs}
    if outputs is not None:
        req["outputs"] = outputs
    if parameters:
        req["parameters"] = parameters
    header = json.dumps(req).encode()
    length = len(header) if header_length is None else header_length
    return header + payload + tail_bytes, {"Inference-Header-Content-Length": str(length),
                                           "Content-Type": "application/octet-stream"}


def decode_binary_answer(resp):
    """{name: array} of an answer whose outputs may be binary (Inference-Header-Content-Length)."""
    content = resp.content
    length = resp.headers.get("Inference-Header-Content-Length")
    header = json.loads(content[:int(length)] if length is not None else content)
    offset = int(length) if length is not None else len(content)
    out = {}
    for o in header["outputs"]:
        dtype = OIP_TO_NP[o["datatype"]]
        size = (o.get("parameters") or {}).get("binary_data_size")
        if size is None:
            out[o["name"]] = np.asarray(o["data"], dtype=dtype).reshape(o["shape"])
        else:
            out[o["name"]] = np.frombuffer(content[offset:offset + size], dtype=dtype).reshape(o["shape"])
            offset += size
    assert offset == len(content), f"{len(content) - offset} bytes after the last binary output"
    return header, out


def assert_outputs(got, expected, what=""):
    assert set(got) == set(expected), f"{what}: outputs {sorted(got)} != {sorted(expected)}"
    for name, exp in expected.items():
        g = np.asarray(got[name])
        assert g.shape == exp.shape, f"{what}: {name} has shape {g.shape}, expected {exp.shape}"
        if np.issubdtype(exp.dtype, np.integer):
            np.testing.assert_array_equal(g, exp, err_msg=f"{what}: {name}")
        else:
            np.testing.assert_allclose(g.astype(np.float32), exp, rtol=RTOL, atol=ATOL, equal_nan=True,
                                       err_msg=f"{what}: {name}")


def assert_oip_error(resp, status, started_at=None):
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text[:500]}"
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    if started_at is not None:
        assert time.time() - started_at < QUICK, f"took {time.time() - started_at:.1f}s to refuse"
    return body


def oip_shape(shape):
    return [d if isinstance(d, int) and d >= 0 else -1 for d in shape]


def ort_signature(model):
    """(inputs, outputs) as OIP metadata lists, from onnxruntime's view of the model file."""
    sess = serving_models._session(os.path.join(model.path, "model.onnx"))
    kinds = {"tensor(float)": "FP32", "tensor(int64)": "INT64", "tensor(double)": "FP64", "tensor(int32)": "INT32"}

    def meta(values):
        return [{"name": v.name, "datatype": kinds[v.type], "shape": oip_shape(v.shape)} for v in values]

    return meta(sess.get_inputs()), meta(sess.get_outputs())


def rows(model, n):
    x = model.inputs
    return np.ascontiguousarray(np.concatenate([x] * (n // len(x) + 1))[:n])


# ---------------------------------------------------------------------------
# Health and metadata (raw REST)


def test_health(serve):
    for path in ("/v2/health/live", "/v2/health/ready"):
        r = serve.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text)


def test_server_metadata(serve):
    r = serve.get("/v2")
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["name"], str) and body["name"], body
    assert isinstance(body["version"], str) and body["version"], body
    assert isinstance(body["extensions"], list) and all(isinstance(e, str) for e in body["extensions"]), body


@pytest.mark.parametrize("name", serving_models.NAMES)
def test_model_metadata(serve, models, name):
    inputs, outputs = ort_signature(models[name])
    for path in (f"/v2/models/{name}", f"/v2/models/{name}/versions/1"):
        r = serve.get(path)
        assert r.status_code == 200, (path, r.text)
        body = r.json()
        assert body["name"] == name, body
        assert body["versions"] == ["1"], body
        assert body["platform"] == "onnx", body
        assert [{k: t[k] for k in ("name", "datatype", "shape")} for t in body["inputs"]] == inputs, body
        assert [{k: t[k] for k in ("name", "datatype", "shape")} for t in body["outputs"]] == outputs, body


def test_model_metadata_shapes_are_what_the_models_declare(serve):
    # Spelled out once, so that a change of converter shows here first.
    body = serve.get("/v2/models/breast_rf").json()
    assert [(t["name"], t["datatype"], t["shape"]) for t in body["inputs"]] == [("input", "FP32", [-1, 30])]
    outs = {t["name"]: (t["datatype"], t["shape"]) for t in body["outputs"]}
    assert outs == {"label": ("INT64", [-1]), "probabilities": ("FP32", [-1, 2])}
    cnn = serve.get("/v2/models/cnn").json()
    assert [(t["name"], t["shape"]) for t in cnn["inputs"]] == [("input", [-1, 1, 8, 8])]
    assert [(t["name"], t["datatype"], t["shape"]) for t in cnn["outputs"]] == [("logits", "FP32", [-1, 10])]


@pytest.mark.parametrize("name", serving_models.NAMES)
def test_model_ready(serve, name):
    for path in (f"/v2/models/{name}/ready", f"/v2/models/{name}/versions/1/ready"):
        r = serve.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text)


def test_unknown_model_is_404(serve, models):
    x = models["breast_rf"].inputs[:1]
    for path in ("/v2/models/nope", "/v2/models/nope/ready", "/v2/models/nope/versions/1",
                 "/v2/models/breast_rf/versions/2", "/v2/models/breast_rf/versions/2/ready"):
        assert_oip_error(serve.get(path), 404)
    assert_oip_error(serve.infer("nope", infer_body(models["breast_rf"], x)), 404)
    assert_oip_error(serve.infer("breast_rf", infer_body(models["breast_rf"], x), version="2"), 404)


# ---------------------------------------------------------------------------
# Correctness over REST JSON


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", serving_models.NAMES)
def test_infer_json_matches_onnxruntime(serve, models, name, batch):
    m = models[name]
    x = rows(m, batch)
    r = serve.infer(name, infer_body(m, x))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == name, body.get("model_name")
    if "model_version" in body:
        assert body["model_version"] == "1"
    assert [o["name"] for o in body["outputs"]] == m.output_names
    for o in body["outputs"]:
        if o["datatype"] == "INT64":  # integers in JSON, not 1.0
            assert all(type(v) is int for v in np.asarray(o["data"], dtype=object).reshape(-1)), o
    assert_outputs(decode_json_outputs(body), m.reference(x), f"{name} x{batch}")


@pytest.mark.parametrize("name", serving_models.NAMES)
def test_large_requests_split_over_sessions_answer_in_row_order(serve, models, name):
    """1,000 rows are split over the free sessions and joined back: every row's answer must be
    its own, in order, as onnxruntime computes it."""
    m = models[name]
    x = rows(m, 1000)
    # A different shift per row, so that no two shards hold the same rows.
    x = np.ascontiguousarray(x + np.linspace(0, 0.5, len(x), dtype=x.dtype).reshape(-1, *[1] * (x.ndim - 1)))
    r = serve.infer(name, infer_body(m, x))
    assert r.status_code == 200, r.text[:300]
    assert_outputs(decode_json_outputs(r.json()), m.reference(x), f"{name} x1000")


@pytest.mark.parametrize("name", ["breast_gb", "cnn"])
def test_infer_json_nested_data(serve, models, name):
    m = models[name]
    x = rows(m, 7)
    r = serve.infer(name, infer_body(m, x, nested=True))
    assert r.status_code == 200, r.text
    assert_outputs(decode_json_outputs(r.json()), m.reference(x), name)


def test_infer_json_id_requested_outputs_and_version_route(serve, models):
    m = models["digits_mlp"]
    x = rows(m, 5)
    body = infer_body(m, x, id="req-42", outputs=[{"name": "probabilities"}])
    r = serve.infer("digits_mlp", body, version="1")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer.get("id") == "req-42", answer
    assert [o["name"] for o in answer["outputs"]] == ["probabilities"]
    assert_outputs(decode_json_outputs(answer), {"probabilities": m.reference(x)["probabilities"]})
    bad = infer_body(m, x, outputs=[{"name": "nope"}])
    assert_oip_error(serve.infer("digits_mlp", bad), 400)


def test_infer_without_content_type(serve, models):
    m = models["iris_gb"]
    x = rows(m, 3)
    r = raw_http(serve.url, "POST", "/v2/models/iris_gb/infer", body=json.dumps(infer_body(m, x)).encode())
    assert r.status_code == 200, r.text
    assert_outputs(decode_json_outputs(r.json()), m.reference(x))
    # The binary extension without a Content-Type, too.
    body, headers = binary_request([("input", "FP32", x.shape, x.tobytes(), None)])
    headers.pop("Content-Type")
    r = raw_http(serve.url, "POST", "/v2/models/iris_gb/infer", body=body, headers=headers)
    assert r.status_code == 200, r.text
    assert_outputs(decode_json_outputs(r.json()), m.reference(x))


@pytest.mark.parametrize("name", ["breast_lr", "diabetes_rf", "cnn"])
def test_infer_binary_raw(serve, models, name):
    """The binary tensor extension by hand: binary input, outputs binary on request, per output or all."""
    m = models[name]
    x = rows(m, 7)
    ref = m.reference(x)
    body, headers = binary_request([("input", "FP32", x.shape, x.tobytes(), None)],
                                   parameters={"binary_data_output": True})
    r = serve.post(f"/v2/models/{name}/infer", data=body, headers=headers)
    assert r.status_code == 200, r.text[:500]
    assert "Inference-Header-Content-Length" in r.headers, r.headers
    header, got = decode_binary_answer(r)
    assert all((o.get("parameters") or {}).get("binary_data_size") for o in header["outputs"]), header
    assert_outputs(got, ref, name)
    # One output binary, the others JSON.
    first = m.output_names[0]
    body, headers = binary_request([("input", "FP32", x.shape, x.tobytes(), None)],
                                   outputs=[{"name": n, "parameters": {"binary_data": n == first}}
                                            for n in m.output_names])
    r = serve.post(f"/v2/models/{name}/infer", data=body, headers=headers)
    assert r.status_code == 200, r.text[:500]
    header, got = decode_binary_answer(r)
    for o in header["outputs"]:
        assert ("data" in o) == (o["name"] != first), o
    assert_outputs(got, ref, name)


# ---------------------------------------------------------------------------
# tritonclient.http


@pytest.fixture(scope="module")
def triton_http(serve):
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{serve.port}", connection_timeout=10.0,
                                              network_timeout=float(REQUEST_TIMEOUT))
    yield client
    client.close()


def test_triton_http_health_and_metadata(triton_http, models):
    assert triton_http.is_server_live()
    assert triton_http.is_server_ready()
    for name in serving_models.NAMES:
        assert triton_http.is_model_ready(name)
        assert triton_http.is_model_ready(name, model_version="1")
        md = triton_http.get_model_metadata(name)
        inputs, outputs = ort_signature(models[name])
        assert md["name"] == name and md["platform"] == "onnx" and md["versions"] == ["1"], md
        assert [{k: t[k] for k in ("name", "datatype", "shape")} for t in md["inputs"]] == inputs
        assert [{k: t[k] for k in ("name", "datatype", "shape")} for t in md["outputs"]] == outputs
    assert not triton_http.is_model_ready("nope")
    server = triton_http.get_server_metadata()
    assert server["name"] and server["version"], server
    with pytest.raises(InferenceServerException) as e:
        triton_http.get_model_metadata("nope")
    assert e.value.status() == "404"


def triton_http_infer(client, m, x, mode):
    """mode: "json" (all JSON), "binary" (binary inputs and outputs), "default" (as tritonclient
    sends when told nothing: binary input, no outputs named, binary_data_output on the request)."""
    inp = httpclient.InferInput(m.input_name, list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=(mode != "json"))
    outputs = None
    if mode != "default":
        outputs = [httpclient.InferRequestedOutput(n, binary_data=(mode == "binary")) for n in m.output_names]
    result = client.infer(m.name, [inp], outputs=outputs)
    return {n: result.as_numpy(n) for n in m.output_names}, result


@pytest.mark.parametrize("mode", ["json", "binary", "default"])
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", serving_models.NAMES)
def test_triton_http_infer(triton_http, models, name, batch, mode):
    m = models[name]
    x = rows(m, batch)
    got, result = triton_http_infer(triton_http, m, x, mode)
    assert_outputs(got, m.reference(x), f"{name} x{batch} {mode}")
    response = result.get_response()
    assert response["model_name"] == name
    for o in response["outputs"]:
        binary = "binary_data_size" in (o.get("parameters") or {})
        assert binary == (mode != "json"), o


def test_triton_http_errors(triton_http, models):
    m = models["breast_rf"]
    inp = httpclient.InferInput("input", [1, 29], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 29), np.float32))
    with pytest.raises(InferenceServerException) as e:
        triton_http.infer("breast_rf", [inp])
    assert e.value.status() == "400", e.value
    inp = httpclient.InferInput("input", [1, 30], "FP32")
    inp.set_data_from_numpy(m.inputs[:1])
    with pytest.raises(InferenceServerException) as e:
        triton_http.infer("nope", [inp])
    assert e.value.status() == "404", e.value


# ---------------------------------------------------------------------------
# tritonclient.grpc


@pytest.fixture(scope="module")
def triton_grpc(serve):
    client = grpcclient.InferenceServerClient(url=serve.grpc_url)
    yield client
    client.close()


def grpc_status(exc):
    return exc.status()  # "StatusCode.NOT_FOUND"


def test_grpc_health_and_metadata(triton_grpc, models):
    t = REQUEST_TIMEOUT
    assert triton_grpc.is_server_live(client_timeout=t)
    assert triton_grpc.is_server_ready(client_timeout=t)
    server = triton_grpc.get_server_metadata(client_timeout=t)
    assert server.name and server.version, server
    for name in serving_models.NAMES:
        assert triton_grpc.is_model_ready(name, client_timeout=t)
        assert triton_grpc.is_model_ready(name, model_version="1", client_timeout=t)
        md = triton_grpc.get_model_metadata(name, client_timeout=t)
        inputs, outputs = ort_signature(models[name])
        assert md.name == name and md.platform == "onnx" and list(md.versions) == ["1"], md
        assert [{"name": i.name, "datatype": i.datatype, "shape": list(i.shape)} for i in md.inputs] == inputs
        assert [{"name": o.name, "datatype": o.datatype, "shape": list(o.shape)} for o in md.outputs] == outputs
    try:
        assert not triton_grpc.is_model_ready("nope", client_timeout=t)
    except InferenceServerException as e:
        assert grpc_status(e) == "StatusCode.NOT_FOUND", e
    with pytest.raises(InferenceServerException) as e:
        triton_grpc.get_model_metadata("nope", client_timeout=t)
    assert grpc_status(e.value) == "StatusCode.NOT_FOUND", e.value


def triton_grpc_infer(client, m, x, model_name=None):
    inp = grpcclient.InferInput(m.input_name, list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    outputs = [grpcclient.InferRequestedOutput(n) for n in m.output_names]
    result = client.infer(model_name or m.name, [inp], outputs=outputs, client_timeout=REQUEST_TIMEOUT)
    return {n: result.as_numpy(n) for n in m.output_names}, result


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", serving_models.NAMES)
def test_grpc_infer(triton_grpc, models, name, batch):
    m = models[name]
    x = rows(m, batch)
    got, result = triton_grpc_infer(triton_grpc, m, x)
    assert_outputs(got, m.reference(x), f"{name} x{batch} grpc")
    assert result.get_response().model_name == name


def grpc_stub(serve):
    import grpc
    from tritonclient.grpc import service_pb2_grpc

    channel = grpc.insecure_channel(serve.grpc_url)
    return channel, service_pb2_grpc.GRPCInferenceServiceStub(channel)


def grpc_decode(resp):
    """{name: array} of a ModelInferResponse, from raw_output_contents or typed contents."""
    out = {}
    for i, o in enumerate(resp.outputs):
        dtype = OIP_TO_NP[o.datatype]
        if resp.raw_output_contents:
            arr = np.frombuffer(resp.raw_output_contents[i], dtype=dtype)
        elif o.datatype == "INT64":
            arr = np.asarray(o.contents.int64_contents, dtype=dtype)
        else:
            arr = np.asarray(o.contents.fp32_contents, dtype=dtype)
        out[o.name] = arr.reshape(list(o.shape))
    return out


def test_grpc_typed_contents(serve, models):
    """ModelInfer with the input in fp32_contents instead of raw_input_contents."""
    from tritonclient.grpc import service_pb2

    m = models["breast_gb"]
    x = rows(m, 7)
    channel, stub = grpc_stub(serve)
    with channel:
        req = service_pb2.ModelInferRequest(model_name="breast_gb", id="g-1")
        t = req.inputs.add(name="input", datatype="FP32", shape=list(x.shape))
        t.contents.fp32_contents.extend(x.reshape(-1).tolist())
        resp = stub.ModelInfer(req, timeout=REQUEST_TIMEOUT)
    assert resp.model_name == "breast_gb" and resp.id == "g-1"
    assert_outputs(grpc_decode(resp), m.reference(x), "typed contents")


def test_grpc_errors(serve, models):
    import grpc
    from tritonclient.grpc import service_pb2

    m = models["breast_rf"]
    x = m.inputs[:2]

    def request(model="breast_rf", name="input", datatype="FP32", shape=(2, 30), raw=None):
        req = service_pb2.ModelInferRequest(model_name=model)
        req.inputs.add(name=name, datatype=datatype, shape=list(shape))
        req.raw_input_contents.append(x.tobytes() if raw is None else raw)
        return req

    cases = [
        (request(model="nope"), grpc.StatusCode.NOT_FOUND),
        (request(name="wrong"), grpc.StatusCode.INVALID_ARGUMENT),
        (request(datatype="FP64", raw=x.astype(np.float64).tobytes()), grpc.StatusCode.INVALID_ARGUMENT),
        (request(shape=(2, 29)), grpc.StatusCode.INVALID_ARGUMENT),
        (request(shape=(3, 30)), grpc.StatusCode.INVALID_ARGUMENT),  # more elements than bytes
        (request(raw=x.tobytes()[:-3]), grpc.StatusCode.INVALID_ARGUMENT),  # truncated
        (request(shape=(HUGE, 30)), grpc.StatusCode.INVALID_ARGUMENT),
        (request(shape=(2**62, 2**62)), grpc.StatusCode.INVALID_ARGUMENT),  # the product overflows
    ]
    hwm = serve.status_kib("VmHWM")
    channel, stub = grpc_stub(serve)
    with channel:
        for req, code in cases:
            t0 = time.time()
            with pytest.raises(grpc.RpcError) as e:
                stub.ModelInfer(req, timeout=REQUEST_TIMEOUT)
            assert e.value.code() == code, (req.inputs[0], e.value.code(), e.value.details())
            assert e.value.details(), "an error without a message"
            assert time.time() - t0 < QUICK
        # Two inputs for a one-input model.
        req = request()
        req.inputs.add(name="extra", datatype="FP32", shape=[2, 30])
        req.raw_input_contents.append(x.tobytes())
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(req, timeout=REQUEST_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert serve.status_kib("VmHWM") - hwm < RSS_GROWTH_LIMIT
    serve.assert_alive()


# ---------------------------------------------------------------------------
# MLflow's scoring protocol: /invocations, /ping, /health, /version


_PYFUNC = {}


def mlflow_answer(m, body, content_type="application/json"):
    """What MLflow 3.17's scoring server answers for this model and body: (status, JSON)."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.scoring_server import invocations

    if m.name not in _PYFUNC:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _PYFUNC[m.name] = mlflow.pyfunc.load_model(m.path)
    model = _PYFUNC[m.name]
    try:
        r = invocations(body, content_type, model, model.metadata.get_input_schema())
    except MlflowException as e:
        return e.get_http_status_code(), json.loads(e.serialize_as_json())
    return r.status, (json.loads(r.response) if r.mimetype == "application/json" else r.response)


def assert_predictions(resp, m, x, what):
    assert resp.status_code == 200, f"{what}: {resp.status_code} {resp.text[:500]}"
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert set(body) == {"predictions"}, f"{what}: {sorted(body)}"
    preds = body["predictions"]
    assert isinstance(preds, dict) and list(preds) == m.output_names, f"{what}: {str(preds)[:300]}"
    got = {k: np.asarray(v, dtype=m.outputs[k].dtype) for k, v in preds.items()}
    assert_outputs(got, m.reference(x), what)  # every output, in full shape (see the module's doc)
    return body


def frame(m, x):
    flat = x.reshape(len(x), -1)
    columns = [f"x{i}" for i in range(flat.shape[1])]
    return columns, flat.tolist()


def invocation_payloads(m, x):
    """(format, body bytes, content type) for every format MLflow's scoring server takes."""
    out = [
        ("instances", {"instances": x.tolist()}),
        ("inputs", {"inputs": x.tolist()}),
        ("inputs-named", {"inputs": {m.input_name: x.tolist()}}),
    ]
    if x.ndim == 2:
        columns, data = frame(m, x)
        out += [
            ("dataframe_split", {"dataframe_split": {"columns": columns, "index": list(range(len(data))),
                                                     "data": data}}),
            ("dataframe_split-no-index", {"dataframe_split": {"columns": columns, "data": data}}),
            ("dataframe_records", {"dataframe_records": [dict(zip(columns, row)) for row in data]}),
        ]
    payloads = [(fmt, json.dumps(body).encode(), "application/json") for fmt, body in out]
    if x.ndim == 2:
        columns, data = frame(m, x)
        csv = ",".join(columns) + "\n" + "".join(",".join(repr(v) for v in row) + "\n" for row in data)
        payloads.append(("csv", csv.encode(), "text/csv"))
    return payloads


@pytest.mark.parametrize("name", serving_models.NAMES)
def test_invocations_every_format(single, models, name):
    m = models[name]
    srv = single(name)
    for batch in (1, 7):
        x = rows(m, batch)
        for fmt, body, ctype in invocation_payloads(m, x):
            r = srv.post("/invocations", data=body, headers={"Content-Type": ctype})
            answer = assert_predictions(r, m, x, f"{name} {fmt} x{batch}")
            if fmt in ("instances", "inputs", "inputs-named"):
                # The tensor formats: exactly MLflow's answer (keys, nesting, values).
                status, mlflow_body = mlflow_answer(m, body)
                assert status == 200, mlflow_body
                assert list(mlflow_body["predictions"]) == list(answer["predictions"])
                for k, v in mlflow_body["predictions"].items():
                    assert np.asarray(v).shape == np.asarray(answer["predictions"][k]).shape, (fmt, k)
                    np.testing.assert_allclose(np.asarray(answer["predictions"][k], dtype=np.float64),
                                               np.asarray(v, dtype=np.float64), rtol=RTOL, atol=ATOL)


def test_mlflow_refuses_frames_for_these_models(models):
    """Why Kiln's answer to a data frame is its own: MLflow 3.17 refuses a frame for a model with a
    tensor signature (what mlflow.onnx writes), so there is no MLflow answer to match."""
    m = models["breast_rf"]
    for fmt, body, ctype in invocation_payloads(m, rows(m, 2)):
        if fmt.startswith("dataframe") or fmt == "csv":
            status, answer = mlflow_answer(m, body, ctype)
            assert status == 400, (fmt, answer)


def test_invocations_answer_shapes_spelled_out(single, models):
    """The shapes, written out: a dict of every output with its full shape, as MLflow answers."""
    m = models["breast_rf"]
    x = rows(m, 2)
    body = single("breast_rf").post("/invocations", json={"instances": x.tolist()}).json()
    assert set(body["predictions"]) == {"label", "probabilities"}
    assert len(body["predictions"]["label"]) == 2 and all(isinstance(v, int) for v in body["predictions"]["label"])
    assert np.asarray(body["predictions"]["probabilities"]).shape == (2, 2)
    m = models["diabetes_rf"]
    body = single("diabetes_rf").post("/invocations", json={"inputs": rows(m, 3).tolist()}).json()
    assert list(body["predictions"]) == ["variable"]
    assert np.asarray(body["predictions"]["variable"]).shape == (3, 1)  # not flattened
    # MLflow itself: the same keys and shapes.
    _, mlflow_body = mlflow_answer(m, json.dumps({"inputs": rows(m, 3).tolist()}))
    assert np.asarray(mlflow_body["predictions"]["variable"]).shape == (3, 1)


def test_invocations_content_type_parameters(single, models):
    m = models["iris_gb"]
    x = rows(m, 4)
    srv = single("iris_gb")
    r = srv.post("/invocations", data=json.dumps({"instances": x.tolist()}),
                 headers={"Content-Type": "application/json; charset=utf-8"})
    assert_predictions(r, m, x, "charset=utf-8")
    columns, data = frame(m, x)
    csv = ",".join(columns) + "\n" + "".join(",".join(repr(v) for v in row) + "\n" for row in data)
    r = srv.post("/invocations", data=csv, headers={"Content-Type": "text/csv; charset=utf-8"})
    assert_predictions(r, m, x, "csv charset=utf-8")


def test_invocations_errors(single, models):
    m = models["breast_rf"]
    srv = single("breast_rf")
    x = rows(m, 2)
    bad = [
        (b"{not json", "application/json", "malformed JSON"),
        (b"[1, 2, 3]", "application/json", "a list, not an object"),
        (json.dumps({"nope": x.tolist()}).encode(), "application/json", "no known format key"),
        (json.dumps({"instances": x.tolist(), "inputs": x.tolist()}).encode(), "application/json", "two formats"),
        (json.dumps({"instances": x[:, :29].tolist()}).encode(), "application/json", "29 features"),
        (json.dumps({"inputs": {"wrong": x.tolist()}}).encode(), "application/json", "wrong input name"),
        (json.dumps({"instances": [["a"] * 30]}).encode(), "application/json", "strings"),
        (json.dumps({"dataframe_split": {"columns": ["a"], "data": [[1.0, 2.0]]}}).encode(), "application/json",
         "rows longer than the columns"),
        (b"a,b\n1,2\n", "text/csv", "2 columns for 30 features"),
        (b"\xff\xfe\x00", "application/json", "not UTF-8"),
    ]
    for body, ctype, what in bad:
        t0 = time.time()
        r = srv.post("/invocations", data=body, headers={"Content-Type": ctype})
        assert 400 <= r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"
        assert r.headers.get("content-type", "").startswith("application/json"), (what, r.headers)
        r.json()
        assert time.time() - t0 < QUICK, what
    # MLflow answers an unsupported media type with a 415.
    r = srv.post("/invocations", data=json.dumps({"instances": x.tolist()}), headers={"Content-Type": "text/plain"})
    assert r.status_code == 415, r.text[:300]
    assert mlflow_answer(m, json.dumps({"instances": x.tolist()}), "text/plain")[0] == 415
    srv.assert_alive()


def test_ping_health_version(single):
    srv = single("breast_lr")
    for path in ("/ping", "/health"):
        r = srv.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text)
    r = srv.get("/version")
    assert r.status_code == 200 and r.text.strip(), r.text


# ---------------------------------------------------------------------------
# Hostile input (OIP REST)


def post_raw(serve, model, body, headers=None):
    return serve.post(f"/v2/models/{model}/infer", data=body, headers=headers or {"Content-Type": "application/json"})


def test_wrong_dtype_shape_and_name(serve, models):
    m = models["breast_rf"]
    x = m.inputs[:2]
    flat = x.reshape(-1).tolist()
    cases = {
        "INT64 for an FP32 input": {"name": "input", "datatype": "INT64", "shape": [2, 30],
                                    "data": [int(v) for v in flat]},
        "FP64 for an FP32 input": {"name": "input", "datatype": "FP64", "shape": [2, 30], "data": flat},
        "BYTES": {"name": "input", "datatype": "BYTES", "shape": [2, 30], "data": ["a"] * 60},
        "unknown datatype": {"name": "input", "datatype": "FP99", "shape": [2, 30], "data": flat},
        "strings as FP32": {"name": "input", "datatype": "FP32", "shape": [2, 30], "data": ["1.0"] * 60},
        "null in data": {"name": "input", "datatype": "FP32", "shape": [2, 30], "data": [None] * 60},
        "29 features": {"name": "input", "datatype": "FP32", "shape": [2, 29], "data": flat[:58]},
        "rank 1": {"name": "input", "datatype": "FP32", "shape": [60], "data": flat},
        "rank 3": {"name": "input", "datatype": "FP32", "shape": [2, 30, 1], "data": flat},
        "shape says 3 rows, data has 2": {"name": "input", "datatype": "FP32", "shape": [3, 30], "data": flat},
        "shape says 1 row, data has 2": {"name": "input", "datatype": "FP32", "shape": [1, 30], "data": flat},
        "negative dimension": {"name": "input", "datatype": "FP32", "shape": [-2, 30], "data": flat},
        "fractional dimension": {"name": "input", "datatype": "FP32", "shape": [2.5, 30], "data": flat},
        "shape not a list": {"name": "input", "datatype": "FP32", "shape": "2,30", "data": flat},
        "wrong input name": {"name": "inputs", "datatype": "FP32", "shape": [2, 30], "data": flat},
        "no data": {"name": "input", "datatype": "FP32", "shape": [2, 30]},
    }
    for what, tensor in cases.items():
        t0 = time.time()
        body = assert_oip_error(serve.infer("breast_rf", {"inputs": [tensor]}), 400, t0)
        assert "Traceback" not in body["error"], what
    for what, req in {
        "no inputs": {"inputs": []},
        "inputs missing": {},
        "an extra input": {"inputs": [tensor_json("input", x), tensor_json("extra", x)]},
        "the input twice": {"inputs": [tensor_json("input", x), tensor_json("input", x)]},
        "inputs not a list": {"inputs": {"name": "input"}},
    }.items():
        assert_oip_error(serve.infer("breast_rf", req), 400, time.time())
    # The CNN wants [N, 1, 8, 8]: 64 features in a row is the wrong shape.
    c = models["cnn"]
    flat = rows(c, 2).reshape(2, 64)
    assert_oip_error(serve.infer("cnn", {"inputs": [tensor_json("input", flat)]}), 400)
    serve.assert_alive()


@pytest.mark.parametrize("body", [
    b"", b"{", b'{"inputs": [', b"null", b"[]", b'"inputs"', b"{'inputs': []}", b'{"inputs": [{"name": "input"}]}',
    b"\xff\xfe\xfd", b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 30], "data": [' + b"1," * 29
    + b"1]}]} trailing",
], ids=["empty", "open-brace", "truncated", "null", "list", "string", "single-quotes", "no-datatype",
        "not-utf8", "trailing-garbage"])
def test_malformed_json(serve, body):
    assert_oip_error(post_raw(serve, "breast_rf", body), 400, time.time())


def test_deeply_nested_json(serve):
    """A deeply nested `data` (or document) is refused, not a stack overflow."""
    depth = 100_000
    data = b"[" * depth + b"1.0" + b"]" * depth
    body = b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 30], "data": ' + data + b"}]}"
    r = post_raw(serve, "breast_rf", body)
    assert 400 <= r.status_code < 500, r.status_code
    serve.assert_alive()


def test_huge_declared_shapes_are_refused_quickly_in_bounded_memory(serve, models):
    m = models["breast_rf"]
    x = m.inputs[:1]
    hwm = serve.status_kib("VmHWM")
    rss = serve.status_kib("VmRSS")
    shapes = [[HUGE, 30], [HUGE, HUGE], [2**62, 2**62], [2**63 - 1, 30], [20_000_000, 30], [1, 30 * HUGE]]
    for shape in shapes:
        t0 = time.time()
        tensor = {"name": "input", "datatype": "FP32", "shape": shape, "data": x.reshape(-1).tolist()}
        assert_oip_error(serve.infer("breast_rf", {"inputs": [tensor]}), 400, t0)
        t0 = time.time()
        body, headers = binary_request([("input", "FP32", shape, x.tobytes(), None)])
        assert_oip_error(post_raw(serve, "breast_rf", body, headers), 400, t0)
        t0 = time.time()
        body, headers = binary_request([("input", "FP32", shape, x.tobytes(), HUGE * 120)])
        assert 400 <= post_raw(serve, "breast_rf", body, headers).status_code < 500
        assert time.time() - t0 < QUICK
    # Dimensions beyond any integer type.
    for dims in ("[1e30, 30]", "[18446744073709551616, 30]", "[1, 30, -0]"):
        body = ('{"inputs": [{"name": "input", "datatype": "FP32", "shape": ' + dims
                + ', "data": ' + json.dumps(x.reshape(-1).tolist()) + "}]}").encode()
        assert_oip_error(post_raw(serve, "breast_rf", body), 400, time.time())
    serve.assert_alive()
    assert serve.status_kib("VmHWM") - hwm < RSS_GROWTH_LIMIT, (hwm, serve.status_kib("VmHWM"))
    assert serve.status_kib("VmRSS") - rss < RSS_GROWTH_LIMIT, (rss, serve.status_kib("VmRSS"))


def test_binary_payload_errors(serve, models):
    m = models["breast_rf"]
    x = m.inputs[:2]
    raw = x.tobytes()
    cases = {
        "truncated payload": binary_request([("input", "FP32", [2, 30], raw[:-5], len(raw))]),
        "payload shorter than binary_data_size": binary_request([("input", "FP32", [2, 30], raw, len(raw) + 4)]),
        "binary_data_size not the shape's size": binary_request([("input", "FP32", [2, 30], raw[:-4], None)]),
        "binary_data_size larger than the shape's": binary_request(
            [("input", "FP32", [2, 30], raw + b"\0" * 4, None)]),
        "bytes after the last tensor": binary_request([("input", "FP32", [2, 30], raw, None)], tail_bytes=b"xyz"),
        "header length past the body": binary_request([("input", "FP32", [2, 30], raw, None)],
                                                      header_length=10_000_000),
        "header length cutting the JSON": binary_request([("input", "FP32", [2, 30], raw, None)], header_length=20),
        "negative binary_data_size": binary_request([("input", "FP32", [2, 30], raw, -240)]),
        "binary FP64 for FP32": binary_request([("input", "FP64", [2, 30], x.astype(np.float64).tobytes(), None)]),
        "binary INT64 for FP32": binary_request([("input", "INT64", [2, 30], x.astype(np.int64).tobytes(), None)]),
    }
    for what, (body, headers) in cases.items():
        t0 = time.time()
        r = post_raw(serve, "breast_rf", body, headers)
        assert r.status_code == 400, f"{what}: {r.status_code} {r.text[:300]}"
        assert r.json().get("error"), what
        assert time.time() - t0 < QUICK, what
    for value in ("abc", "-1", "", "99999999999999999999999"):
        body, headers = binary_request([("input", "FP32", [2, 30], raw, None)])
        headers["Inference-Header-Content-Length"] = value
        r = post_raw(serve, "breast_rf", body, headers)
        assert r.status_code == 400, f"Inference-Header-Content-Length {value!r}: {r.status_code} {r.text[:300]}"
    # binary_data_size on the request when no Inference-Header-Content-Length says where JSON ends.
    body, headers = binary_request([("input", "FP32", [2, 30], raw, None)])
    del headers["Inference-Header-Content-Length"]
    assert post_raw(serve, "breast_rf", body, headers).status_code == 400
    serve.assert_alive()


def test_nan_inputs_are_computed_as_onnxruntime_does(serve, triton_http, triton_grpc, models):
    for name in ("breast_lr", "breast_rf", "breast_gb", "diabetes_rf", "digits_mlp", "cnn"):
        m = models[name]
        x = rows(m, 7).copy()
        flat = x.reshape(len(x), -1)
        flat[0, 0] = np.nan
        flat[3, :] = np.nan
        flat[5, 1::2] = np.nan
        ref = m.reference(x)
        got, _ = triton_http_infer(triton_http, m, x, "binary")
        assert_outputs(got, ref, f"{name} NaN over HTTP")
        got, _ = triton_grpc_infer(triton_grpc, m, x)
        assert_outputs(got, ref, f"{name} NaN over gRPC")
    serve.assert_alive()


# The most a body-limit test sends: the server's limit must be below it (kiln server's is 16 MiB).
BODY_CAP = 96 << 20


def push_body(port, path, chunked, declared=4 << 30, cap=BODY_CAP, seconds=60):
    """POSTs a body larger than any limit: declared with Content-Length (or chunked), sent in 64 KiB
    pieces until the server answers, `cap` bytes are sent, or `seconds` pass. Answers
    (status or None, bytes sent, what ended the upload)."""
    piece = b"[" + b"0," * 32767
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sent = 0
    ended = "cap"
    try:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {declared}\r\n"
        sock.sendall((head + "\r\n").encode())
        deadline = time.time() + seconds
        try:
            while sent < cap:
                if time.time() > deadline:
                    ended = "time"
                    break
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    ended = "answered"
                    break
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n" if chunked else piece)
                sent += len(piece)
        except OSError as e:  # the server stopped reading and closed, or reset
            ended = repr(e)
        data = b""
        sock.settimeout(10)
        try:
            while b"\r\n" not in data:
                more = sock.recv(65536)
                if not more:
                    break
                data += more
        except OSError as e:
            ended += f"; reading: {e!r}"
        m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
        return (int(m.group(1)) if m else None), sent, ended
    finally:
        sock.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_the_limit(serve, chunked):
    hwm = serve.status_kib("VmHWM")
    t0 = time.time()
    status, sent, ended = push_body(serve.port, "/v2/models/breast_rf/infer", chunked)
    assert status == 413, f"expected a 413 after {sent} bytes, got {status} ({ended})"
    assert time.time() - t0 < 60
    serve.assert_alive()
    assert serve.status_kib("VmHWM") - hwm < RSS_GROWTH_LIMIT


def test_server_survived_the_hostile_tests(serve, models):
    serve.assert_alive()
    m = models["breast_lr"]
    x = rows(m, 7)
    r = serve.infer("breast_lr", infer_body(m, x))
    assert r.status_code == 200, r.text
    assert_outputs(decode_json_outputs(r.json()), m.reference(x))


# ---------------------------------------------------------------------------
# Metrics


def scrape(serve):
    r = serve.get("/metrics")
    assert r.status_code == 200, r.text[:300]
    assert r.headers.get("content-type", "").startswith("text/plain"), r.headers
    return r.text


def counter(text, metric, model):
    """The sum over every label set of `metric` with model="<model>"."""
    total = 0.0
    pattern = re.compile(r"^" + re.escape(metric) + r"\{([^}]*)\}\s+(\S+)")
    for line in text.splitlines():
        m = pattern.match(line)
        if m and re.search(r'(^|,)\s*model="' + re.escape(model) + '"', m.group(1)):
            total += float(m.group(2))
    return total


def test_metrics_count_requests_per_model(serve, models):
    m = models["iris_gb"]
    before = counter(scrape(serve), "kiln_inference_requests_total", "iris_gb")
    other = counter(scrape(serve), "kiln_inference_requests_total", "breast_rf")
    for batch in (1, 2, 3):
        assert serve.infer("iris_gb", infer_body(m, rows(m, batch))).status_code == 200
    text = scrape(serve)
    assert counter(text, "kiln_inference_requests_total", "iris_gb") >= before + 3, \
        [line for line in text.splitlines() if "kiln_inference_requests_total" in line]
    assert counter(text, "kiln_inference_requests_total", "breast_rf") == other


# ---------------------------------------------------------------------------
# Traffic split: a challenger answers its share, a shadow gets copies it never answers


def role_counter(text, metric, model, role):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(metric + "{") and f'model="{model}"' in line and f'role="{role}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_challenger_and_shadow_split(models):
    """breast_rf serves; breast_lr is its challenger for 30% of the requests; breast_gb shadows
    every request. Each answer must be exactly the primary's or the challenger's (told apart by
    their probabilities), the challenger's share near 30%, and the shadow must have seen every
    request without ever answering one."""
    primary, challenger, shadow = models["breast_rf"], models["breast_lr"], models["breast_gb"]
    srv = started(Serve({"cancer": primary.path},
                        "--challenger", f"cancer:30={challenger.path}", "--shadow", f"cancer:100={shadow.path}"))
    try:
        n = 300
        # The row on which the two models' probabilities differ most tells their answers apart.
        every = rows(primary, len(primary.inputs))
        gap = np.abs(primary.reference(every)["probabilities"] - challenger.reference(every)["probabilities"]).max(axis=1)
        x = every[int(np.argmax(gap))][None, :]
        from_primary, from_challenger = primary.reference(x), challenger.reference(x)
        assert not np.allclose(from_primary["probabilities"], from_challenger["probabilities"], atol=1e-3)
        seen = {"primary": 0, "challenger": 0}
        for _ in range(n):
            r = srv.infer("cancer", infer_body(primary, x))
            assert r.status_code == 200, r.text
            got = decode_json_outputs(r.json())
            p = np.asarray(got["probabilities"], dtype=np.float32)
            if np.allclose(p, from_primary["probabilities"], rtol=RTOL, atol=ATOL):
                seen["primary"] += 1
            elif np.allclose(p, from_challenger["probabilities"], rtol=RTOL, atol=ATOL):
                seen["challenger"] += 1
            else:
                raise AssertionError(f"an answer from neither the primary nor the challenger: {p}")
        share = seen["challenger"] / n
        assert 0.2 <= share <= 0.4, seen
        deadline = time.time() + 10
        while time.time() < deadline:
            text = scrape(srv)
            if role_counter(text, "kiln_inference_requests_total", "cancer", "shadow") >= n:
                break
            time.sleep(0.1)
        assert role_counter(text, "kiln_inference_requests_total", "cancer", "shadow") == n, text
        assert role_counter(text, "kiln_inference_failures_total", "cancer", "shadow") == 0, text
        assert role_counter(text, "kiln_inference_requests_total", "cancer", "challenger") == seen["challenger"]
        assert role_counter(text, "kiln_inference_requests_total", "cancer", "primary") == seen["primary"]
        assert "shadow answered" in srv.log()
        # A challenger or shadow for a model that is not served is refused at start.
        bad = Serve({"cancer": primary.path}, "--challenger", f"other:10={challenger.path}")
        with pytest.raises(RuntimeError, match="no --model serves"):
            bad.start(timeout=60)
        bad.stop()
    finally:
        srv.stop()


def test_repository_extension(models):
    """POST /v2/repository/index, .../models/<m>/load and .../unload: models are added, replaced,
    given a challenger and removed at run time; every malformed load is a 400 (a missing source a
    404) that leaves what is served untouched."""
    rf, lr, gb = models["breast_rf"], models["breast_lr"], models["breast_gb"]
    x = rows(rf, 5)
    srv = started(Serve({"a": rf.path}))

    def load(name, body, **kw):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return srv.post(f"/v2/repository/models/{name}/load", data=data, **kw)

    def answers(name):
        r = srv.infer(name, infer_body(rf, x))
        assert r.status_code == 200, r.text
        return decode_json_outputs(r.json())

    try:
        index = srv.post("/v2/repository/index", json={})
        assert index.status_code == 200, index.text
        assert [(m["name"], m["state"]) for m in index.json()] == [("a", "READY")]

        assert load("b", {"parameters": {"uri": lr.path}}).status_code == 200
        assert_outputs(answers("b"), lr.reference(x), "b after its load")
        assert srv.get("/v2/models/b/ready").status_code == 200
        assert load("b", {"parameters": {"uri": gb.path}}).status_code == 200  # replaced in place
        assert_outputs(answers("b"), gb.reference(x), "b after its replacement")
        assert load("b", b"").status_code == 200  # again from its own source
        assert_outputs(answers("b"), gb.reference(x), "b reloaded")
        assert sorted(m["name"] for m in srv.post("/v2/repository/index", json={}).json()) == ["a", "b"]

        r = load("a", {"parameters": {"uri": lr.path, "role": "challenger", "percent": 100}})
        assert r.status_code == 200, r.text
        assert_outputs(answers("a"), lr.reference(x), "a with a 100% challenger")
        r = load("a", {"parameters": {"uri": lr.path, "role": "challenger", "percent": 0}})
        assert r.status_code == 200, r.text
        assert_outputs(answers("a"), rf.reference(x), "a with a 0% challenger")

        refused = [
            ("a", b"{", 400), ("a", b"[1, 2]", 400), ("a", b'"x"', 400),
            ("a", {"parameters": "models:/x/1"}, 400), ("a", {"parameters": {"uri": 7}}, 400),
            ("a", {"parameters": {"uri": ""}}, 400), ("a", {"parameters": {"uri": lr.path, "role": "boss"}}, 400),
            ("a", {"parameters": {"uri": lr.path, "percent": 10}}, 400),
            ("a", {"parameters": {"uri": lr.path, "role": "shadow"}}, 400),
            ("a", {"parameters": {"uri": lr.path, "role": "shadow", "percent": 150}}, 400),
            ("a", {"parameters": {"uri": lr.path, "log_inferences": "yes"}}, 400),
            ("a%20b", {"parameters": {"uri": lr.path}}, 400),
            ("c", {"parameters": {"uri": "/nonexistent/model"}}, 404),
            ("c", {}, 404),
            ("nobody", {"parameters": {"role": "challenger", "percent": 10, "uri": lr.path}}, 404),
        ]
        for name, body, status in refused:
            r = load(name, body)
            assert r.status_code == status, (name, body, r.status_code, r.text)
            assert r.json()["error"], (name, body)
        assert sorted(m["name"] for m in srv.post("/v2/repository/index", json={}).json()) == ["a", "b"]
        assert_outputs(answers("a"), rf.reference(x), "a after the refused loads")
        assert_outputs(answers("b"), gb.reference(x), "b after the refused loads")

        assert srv.post("/v2/repository/models/b/unload").status_code == 200
        assert srv.infer("b", infer_body(rf, x)).status_code == 404
        assert srv.get("/v2/models/b/ready").status_code == 404
        r = srv.post("/v2/repository/models/b/unload")
        assert r.status_code == 404 and r.json()["error"], r.text
        assert [m["name"] for m in srv.post("/v2/repository/index", json={}).json()] == ["a"]
    finally:
        srv.stop()


def test_models_from_a_config_file(models, tmp_path):
    """kiln serve --config: [[serve.model]] tables name models with their own settings and a
    challenger; unknown settings are refused at start with the file named."""
    rf, lr = models["breast_rf"], models["breast_lr"]
    config = tmp_path / "serve.toml"
    config.write_text(
        "[[serve.model]]\n"
        f'name = "cancer"\nsource = "{rf.path}"\nmax_batch_size = 1\nsessions = 1\n'
        f'challenger = {{ source = "{lr.path}", percent = 50 }}\n'
        "[[serve.model]]\n"
        f'name = "digits"\nsource = "{models["digits_mlp"].path}"\n')
    srv = started(Serve({}, "--config", str(config)))
    try:
        x = rows(rf, 3)
        answers = set()
        for _ in range(40):
            r = srv.infer("cancer", infer_body(rf, x))
            assert r.status_code == 200, r.text
            p = np.asarray(decode_json_outputs(r.json())["probabilities"], dtype=np.float32)
            for label, m in (("primary", rf), ("challenger", lr)):
                if np.allclose(p, m.reference(x)["probabilities"], rtol=RTOL, atol=ATOL):
                    answers.add(label)
        assert answers == {"primary", "challenger"}, answers
        d = models["digits_mlp"]
        assert_outputs(predictions_of(srv, "digits", d, rows(d, 5)), d.reference(rows(d, 5)), "digits from the file")
    finally:
        srv.stop()
    config.write_text(f'[[serve.model]]\nname = "cancer"\nsource = "{rf.path}"\nport = 9000\n')
    bad = Serve({}, "--config", str(config))
    with pytest.raises(RuntimeError, match="serve.toml"):
        bad.start(timeout=60)
    bad.stop()


# ---------------------------------------------------------------------------
# Dynamic batching


def histogram_sum_and_count(text, needle="batch_size"):
    """(sum, count) over every series of the first histogram whose name contains `needle`, or None."""
    sums, counts = {}, {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not m or needle not in m.group(1):
            continue
        name = m.group(1)
        if name.endswith("_sum"):
            sums.setdefault(name[:-4], 0.0)
            sums[name[:-4]] += float(m.group(3))
        elif name.endswith("_count"):
            counts.setdefault(name[:-6], 0.0)
            counts[name[:-6]] += float(m.group(3))
    for base in sorted(sums):
        if base in counts:
            return sums[base], counts[base]
    return None


def test_dynamic_batching(models):
    names = ("breast_lr", "digits_mlp", "cnn", "breast_rf")
    srv = started(Serve({n: models[n].path for n in names}, "--max-batch-size", 32, "--max-batch-delay-us", 2000))
    try:
        clients = 32
        barrier = threading.Barrier(clients, timeout=60)
        local = threading.local()

        def one(name, i, n):
            m = models[name]
            x = np.ascontiguousarray(m.inputs[i:i + n])
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
            barrier.wait()
            r = session.post(f"{srv.url}/v2/models/{name}/infer", json=infer_body(m, x), timeout=REQUEST_TIMEOUT)
            assert r.status_code == 200, r.text[:300]
            assert_outputs(decode_json_outputs(r.json()), m.reference(x), f"{name} rows {i}..{i + n}")
            return i

        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            for rnd in range(12):
                name = names[rnd % len(names)]
                # Mostly single rows, a few of 3: every client must get back its own rows.
                jobs = [pool.submit(one, name, (rnd * 7 + i) % 90, 3 if i % 11 == 5 else 1) for i in range(clients)]
                done = [f.result(timeout=REQUEST_TIMEOUT + 60) for f in jobs]
                assert sorted(done) == sorted((rnd * 7 + i) % 90 for i in range(clients))
        srv.assert_alive()
        hist = histogram_sum_and_count(scrape(srv))
        if hist is not None:  # the batch size histogram, if the server exposes one
            total, count = hist
            assert count > 0 and total > count, f"no batch of more than one request: sum {total}, count {count}"
    finally:
        srv.stop()


# ---------------------------------------------------------------------------
# Models from the registry (the session's tracking server), and hot swap by alias


def log_onnx(built, registered_model_name, external_data=False):
    """Logs a built model's ONNX graph (the very one served from its folder) with
    mlflow.onnx.log_model, registering a new version of `registered_model_name`."""
    import mlflow
    import mlflow.onnx
    import onnx

    model = onnx.load(os.path.join(built.path, "model.onnx"))
    with mlflow.start_run() as run:
        info = mlflow.onnx.log_model(model, name="model", registered_model_name=registered_model_name,
                                     signature=serving_models.signature_of(model),
                                     pip_requirements=serving_models.pip_requirements(),
                                     save_as_external_data=external_data)
    return run.info.run_id, str(info.registered_model_version)


def predictions_of(srv, model_name, m, x):
    r = srv.infer(model_name, infer_body(m, x))
    assert r.status_code == 200, r.text[:300]
    return decode_json_outputs(r.json())


def metadata_version(srv, model_name):
    r = srv.get(f"/v2/models/{model_name}")
    assert r.status_code == 200, r.text
    return r.json()["versions"]


@pytest.fixture
def registry(server, client):
    """The session's tracking server with the mlflow client pointed at it (a new experiment)."""
    import mlflow

    mlflow.set_experiment(unique("serving"))
    return server


def test_registry_alias(registry, models):
    name = unique("serve-rf")
    log_onnx(models["breast_rf"], name)
    from mlflow import MlflowClient

    MlflowClient(registry.url).set_registered_model_alias(name, "champion", "1")
    srv = started(Serve({"m": f"models:/{name}@champion"}, tracking_uri=registry.url))
    try:
        m = models["breast_rf"]
        for batch in BATCHES:
            x = rows(m, batch)
            assert_outputs(predictions_of(srv, "m", m, x), m.reference(x), f"models:/{name}@champion x{batch}")
        assert metadata_version(srv, "m") == ["1"]
        assert srv.get("/v2/models/m/versions/1/ready").status_code == 200
    finally:
        srv.stop()


def test_registry_uri_forms(registry, models):
    """models:/name/N, models:/name/Stage, models:/name@alias and runs:/<run>/path in one server,
    which finds the tracking server through $MLFLOW_TRACKING_URI."""
    import mlflow
    from mlflow import MlflowClient

    name = unique("serve-forms")
    rf_run, _ = log_onnx(models["breast_rf"], name)
    log_onnx(models["breast_lr"], name)
    cnn = unique("serve-cnn")
    # MLflow's default for ONNX: initializers over 1 KiB go to a <uuid>.data file beside model.onnx
    # (of these models only the CNN has such tensors).
    log_onnx(models["cnn"], cnn, external_data=True)
    client = MlflowClient(registry.url)
    client.transition_model_version_stage(name, "1", "Production")
    client.set_registered_model_alias(name, "latest-good", "2")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(models["iris_gb"].path, artifact_path="exported")
    srv = started(Serve({
        "v2": f"models:/{name}/2",
        "prod": f"models:/{name}/Production",
        "alias": f"models:/{name}@latest-good",
        "cnn": f"models:/{cnn}/1",
        "run": f"runs:/{run.info.run_id}/exported",
        # MLflow 3 keeps a logged model's files beside the run's: runs:/<run>/<name> names the
        # model the run logged under that name.
        "run-model": f"runs:/{rf_run}/model",
    }, env={"MLFLOW_TRACKING_URI": registry.url}))
    rf_model_id = client.get_model_version(name, "1").source[len("models:/"):]
    try:
        cases = {"v2": ("breast_lr", ["2"]), "prod": ("breast_rf", ["1"]), "alias": ("breast_lr", ["2"]),
                 "cnn": ("cnn", ["1"]), "run": ("iris_gb", None), "run-model": ("breast_rf", [rf_model_id])}
        for served, (built, versions) in cases.items():
            m = models[built]
            x = rows(m, 7)
            assert_outputs(predictions_of(srv, served, m, x), m.reference(x), served)
            if versions:
                assert metadata_version(srv, served) == versions, served
    finally:
        srv.stop()


def test_registry_unknown_model_fails_to_start(registry):
    srv = Serve({"m": f"models:/{unique('absent')}@champion"}, tracking_uri=registry.url)
    try:
        with pytest.raises(RuntimeError) as e:
            srv.start(timeout=60)
        assert "exited with" in str(e.value), "kiln serve kept running (or hung) for a model that does not exist"
        assert srv.proc.returncode != 0
    finally:
        srv.stop()


def test_hot_swap_by_alias(registry, models):
    """Moving the alias from v1 (a random forest) to v2 (a logistic regression) under load: no
    request fails, every answer is v1's or v2's, each client's answers switch once to v2's, and
    within SWAP_DEADLINE of the move."""
    from mlflow import MlflowClient

    name = unique("serve-swap")
    log_onnx(models["breast_rf"], name)
    log_onnx(models["breast_lr"], name)
    client = MlflowClient(registry.url)
    client.set_registered_model_alias(name, "champion", "1")
    rf, lr = models["breast_rf"], models["breast_lr"]
    x = rows(rf, 8)
    v1, v2 = rf.reference(x)["probabilities"], lr.reference(x)["probabilities"]
    assert not np.allclose(v1, v2, atol=1e-3), "the two versions must answer differently"
    srv = started(Serve({"m": f"models:/{name}@champion"}, tracking_uri=registry.url))
    stop = threading.Event()
    workers = 4
    seen = [[] for _ in range(workers)]  # per worker: (time, "v1" | "v2" | error)
    body = json.dumps(infer_body(rf, x)).encode()

    def work(k):
        session = requests.Session()
        for _ in range(20_000):  # bounded even if `stop` never came
            if stop.is_set():
                return
            t = time.time()
            try:
                r = session.post(f"{srv.url}/v2/models/m/infer", data=body,
                                 headers={"Content-Type": "application/json"}, timeout=30)
                if r.status_code != 200:
                    seen[k].append((t, f"HTTP {r.status_code}: {r.text[:200]}"))
                    continue
                p = decode_json_outputs(r.json())["probabilities"]
                if np.allclose(p, v1, rtol=RTOL, atol=ATOL):
                    seen[k].append((t, "v1"))
                elif np.allclose(p, v2, rtol=RTOL, atol=ATOL):
                    seen[k].append((t, "v2"))
                else:
                    seen[k].append((t, f"neither version's answer: {p[:2].tolist()}"))
            except requests.RequestException as e:
                seen[k].append((t, f"request failed: {e!r}"))

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(workers)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.5)
        moved = time.time()
        client.set_registered_model_alias(name, "champion", "2")
        deadline = moved + SWAP_DEADLINE
        while time.time() < deadline:
            if all(s and s[-1][1] == "v2" for s in seen):
                break
            time.sleep(0.1)
        swapped = time.time()
        time.sleep(1.0)  # and it stays swapped
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=40)
        alive = srv.proc.poll() is None
        try:
            version = metadata_version(srv, "m") if alive else None
        except (AssertionError, requests.RequestException) as e:
            version = repr(e)
        log = srv.log()
        srv.stop()
    assert alive, log
    errors = [(k, what) for k, s in enumerate(seen) for _, what in s if what not in ("v1", "v2")]
    assert not errors, f"{len(errors)} failed or wrong answers, e.g. {errors[:3]}"
    for k, s in enumerate(seen):
        kinds = [what for _, what in s]
        assert kinds and kinds[0] == "v1", f"worker {k} did not start on v1: {kinds[:5]}"
        first_v2 = kinds.index("v2") if "v2" in kinds else None
        assert first_v2 is not None, f"worker {k} never saw v2 within {SWAP_DEADLINE}s of the move"
        assert "v1" not in kinds[first_v2:], f"worker {k} went back to v1 after seeing v2"
        assert s[first_v2][0] - moved < SWAP_DEADLINE, f"worker {k} saw v2 {s[first_v2][0] - moved:.1f}s late"
    assert swapped - moved < SWAP_DEADLINE
    assert version == ["2"], version


# ---------------------------------------------------------------------------
# kiln server with serving mounted beside the tracking API


class KilnServerWithServing:
    """A `kiln server --serve ...` of its own (a new SQLite store and artifact folder), stopped
    by its PID."""

    def __init__(self, workdir, *extra):
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = [str(a) for a in extra]
        self.log_path = os.path.join(workdir, "server.log")
        self.proc = None

    def start(self, timeout=READY_TIMEOUT):
        cmd = [kiln_bin(), "server", "--host", "127.0.0.1", "--port", str(self.port),
               "--backend-store-uri", f"sqlite:///{self.workdir}/store.db",
               "--artifacts-destination", os.path.join(self.workdir, "artifacts"), "--serve", *self.extra]
        env = dict(os.environ)
        env.pop("MLFLOW_TRACKING_URI", None)
        lib = onnxruntime_library()
        if lib and "ORT_DYLIB_PATH" not in env:
            env["ORT_DYLIB_PATH"] = lib
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, env=env,
                                         stdin=subprocess.DEVNULL)
        return wait_for_answer(self, self.url + "/health", "kiln server", timeout)

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = requests.get(self.url + "/v2/health/ready", timeout=5)
            if r.status_code == 200:
                return
            assert r.status_code == 503, r.text
            time.sleep(0.1)
        raise AssertionError(f"not ready within {timeout}s:\n{tail(self.log_path)}")

    def stop(self):
        stop_process(self.proc)


def test_kiln_server_serves_models_beside_the_tracking_api(models, tmp_path):
    """kiln server --serve: a model logged and registered to this very server is loaded through
    the repository extension and answers on the same port; started again with --serve-model, it
    loads the model at start and is ready once it has."""
    import mlflow
    from mlflow import MlflowClient

    m = models["breast_rf"]
    x = rows(m, 7)
    previous_uri = mlflow.get_tracking_uri()
    srv = KilnServerWithServing(str(tmp_path)).start()
    try:
        assert requests.get(srv.url + "/v2/health/ready", timeout=5).status_code == 200  # nothing to load
        assert requests.get(srv.url + "/health", timeout=5).text.strip() == "OK"  # the tracking server's
        mlflow.set_tracking_uri(srv.url)
        mlflow.set_experiment("serving")
        run_id, _ = log_onnx(m, "cancer")
        client = MlflowClient(srv.url)
        client.set_registered_model_alias("cancer", "champion", "1")
        source = client.get_model_version("cancer", "1").source  # models:/<model_id>, the logged model
        assert source.startswith("models:/m-"), source
        model_id = source[len("models:/"):]
        # The server resolves every kind of URI against its own registry and artifact store.
        for endpoint, uri, version in [("rf", "models:/cancer@champion", "1"), ("by-run", f"runs:/{run_id}/model", model_id),
                                       ("by-id", f"models:/{model_id}", model_id), ("by-number", "models:/cancer/1", "1")]:
            r = requests.post(srv.url + f"/v2/repository/models/{endpoint}/load",
                              json={"parameters": {"uri": uri}}, timeout=REQUEST_TIMEOUT)
            assert r.status_code == 200, (uri, r.text)
            r = requests.post(srv.url + f"/v2/models/{endpoint}/infer", data=json.dumps(infer_body(m, x)),
                              timeout=REQUEST_TIMEOUT)
            assert r.status_code == 200, (uri, r.text)
            assert_outputs(decode_json_outputs(r.json()), m.reference(x), f"kiln server, {uri} loaded at run time")
            assert r.json()["model_version"] == version, uri
        # A missing alias is INVALID_PARAMETER_VALUE in MLflow's registry (and so in Kiln's): 400.
        for uri, status in [("models:/cancer/7", 404), ("models:/cancer@nobody", 400), (f"runs:/{'0' * 32}/model", 404),
                            ("models:/m-0123456789abcdef", 404)]:
            r = requests.post(srv.url + "/v2/repository/models/missing/load",
                              json={"parameters": {"uri": uri}}, timeout=REQUEST_TIMEOUT)
            assert r.status_code == status, (uri, r.status_code, r.text)
            assert r.json()["error"], uri
        assert requests.get(srv.url + "/v2/models/missing", timeout=5).status_code == 404
    finally:
        srv.stop()
    again = KilnServerWithServing(str(tmp_path), "--serve-model", "rf=models:/cancer@champion").start()
    try:
        again.wait_ready()
        r = requests.post(again.url + "/v2/models/rf/infer", data=json.dumps(infer_body(m, x)), timeout=REQUEST_TIMEOUT)
        assert r.status_code == 200, r.text
        assert_outputs(decode_json_outputs(r.json()), m.reference(x), "kiln server --serve-model")
        text = requests.get(again.url + "/metrics", timeout=5).text
        assert counter(text, "kiln_inference_requests_total", "rf") >= 1
    finally:
        again.stop()
        mlflow.set_tracking_uri(previous_uri)


@pytest.mark.parametrize("value", ["fraud", "=models:/fraud/1", "fraud="])
def test_kiln_server_refuses_a_malformed_serve_model(tmp_path, value):
    """--serve-model takes NAME=SOURCE: anything else stops kiln server at start, saying so."""
    srv = KilnServerWithServing(str(tmp_path), "--serve-model", value)
    try:
        with pytest.raises(RuntimeError, match="exited with") as e:
            srv.start(timeout=60)
        assert srv.proc.returncode not in (None, 0)
        assert "NAME=SOURCE" in str(e.value), str(e.value)
    finally:
        srv.stop()
