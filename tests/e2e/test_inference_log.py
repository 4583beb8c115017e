"""Inference logging: ``kiln serve --log-inferences`` writes every answered request to Parquet.

Files are at ``<destination>/<model>/date=YYYY-MM-DD/hour=HH/<version>-<role>-<stamp>-<n>-<random>.parquet``
(the UTC date and hour of the request), the destination being ``--inference-log-uri`` (here a
local folder) or, without it, the tracking server's proxied artifact API under
``inference-logs/`` (kiln server and mlflow server alike), and for ``kiln server
--serve-log-inferences`` the server's own artifact store. A file is written when its records
have waited ``--inference-log-flush-seconds``, and everything left at SIGTERM, before the
process exits.

Each file has one row per example: ``time`` (the request's arrival, timestamp[us, UTC]),
``model``, ``version``, ``role``, ``request_id`` (the x-request-id header or gRPC metadata, else
the generated one the answer carries), ``id`` (the OIP request's id, null when absent and for
/invocations), ``row`` (uint32, the example's index in its request), ``latency_ms``,
``queue_ms``, ``inference_ms``, then ``input.<name>`` and ``output.<name>`` per tensor: a plain
column when an example has one element, else a list of its elements in row-major order, in the
tensor's own type.

The tests read every file back with pyarrow and hold it against what was sent (inputs exactly)
and what the server answered (outputs exactly; a shadow's against onnxruntime here). Models are
the small ones of serving_models.py; every server is a process of its own on loopback ports,
stopped by its PID, and every wait is bounded.
"""

import datetime
import os
import posixpath
import re
import signal
import subprocess
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

import serving_models
from conftest import Server, free_port, unique
from helpers import ARTIFACTS_API, files_under
from test_serving import (ATOL, READY_TIMEOUT, REQUEST_TIMEOUT, RTOL, Serve, assert_oip_error, infer_body,
                          decode_json_outputs, log_onnx, onnxruntime_library, role_counter, scrape, started)

# ---------------------------------------------------------------------------
# Constants

NEVER = 3600  # s, a flush interval no test outlives: files are written at SIGTERM
QUICK_FLUSH = 0.5  # s
WAIT = 10.0  # s, the most a file or a counter may take to show up
EXIT_TIMEOUT = 40.0  # s, from SIGTERM to the process's exit (everything flushed)
CLOCK_SLACK = 1.0  # s, between the test's clock around a request and the logged arrival time
MODELS = ("breast_rf", "breast_lr", "breast_gb", "diabetes_rf", "iris_gb", "cnn")

# The columns every file starts with, in order, and what their types must be.
FIXED = ("time", "model", "version", "role", "request_id", "id", "row", "latency_ms", "queue_ms", "inference_ms")
TEXT = ("model", "version", "role", "request_id", "id")
TIMINGS = ("latency_ms", "queue_ms", "inference_ms")
FILE_NAME = re.compile(r"^(?P<version>[^-/]+)-(?P<role>primary|challenger|shadow)-(?P<stamp>\d{8}T\d{6})"
                       r"-(?P<n>\d+)-(?P<random>[0-9A-Za-z]+)\.parquet$")
DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
HOUR_DIR = re.compile(r"^hour=(\d{2})$")


# ---------------------------------------------------------------------------
# Processes


def terminate(proc, log_path, timeout=EXIT_TIMEOUT):
    """SIGTERM to a process this test started; answers its exit status once it has exited (a
    process still running after `timeout` s is killed and reported)."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)
        with open(log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")[-4000:]
        raise AssertionError(f"still running {timeout}s after SIGTERM (killed):\n{log}")


def shut_down(srv):
    """Stops a kiln serve with SIGTERM and answers its exit status; its log stays readable in
    `srv.final_log`."""
    try:
        code = terminate(srv.proc, srv.log_path)
    finally:
        srv.final_log = srv.log()
    return code


def poll(check, timeout=WAIT, interval=0.1):
    """Calls check() until it answers something truthy (answered) or `timeout` s pass (None)."""
    deadline = time.time() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.time() > deadline:
            return None
        time.sleep(interval)


class KilnServerServing(Server):
    """A `kiln server --serve` of its own, on the kind of store the target's kiln server uses
    (a fresh SQLite file, or a fresh PostgreSQL database for kiln-postgres), its artifacts in
    <workdir>/artifacts."""

    def __init__(self, target, workdir, *extra):
        super().__init__("kiln-postgres" if target == "kiln-postgres" else "kiln", workdir)
        self.extra = [str(a) for a in extra]

    def command(self):
        return super().command() + ["--serve", *self.extra]

    def environment(self):
        env = super().environment()
        env.pop("MLFLOW_TRACKING_URI", None)
        lib = onnxruntime_library()
        if lib and "ORT_DYLIB_PATH" not in env:
            env["ORT_DYLIB_PATH"] = lib
        return env

    def restart(self, *extra):
        """Stops the process and starts it again with other --serve flags, on a new port."""
        self.stop()
        self.extra = [str(a) for a in extra]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        return self.start(timeout=READY_TIMEOUT)

    def post(self, path, **kw):
        return requests.post(self.url + path, timeout=REQUEST_TIMEOUT, **kw)

    def wait_ready(self, timeout=READY_TIMEOUT):
        ready = poll(lambda: requests.get(self.url + "/v2/health/ready", timeout=5).status_code == 200, timeout)
        assert ready, f"kiln server --serve not ready within {timeout}s:\n{self.log()}"


# ---------------------------------------------------------------------------
# Requests, and what each one was


class Sent:
    """One answered request: its inputs, the answer, and the ids the log must carry.

    input_name  the model's input
    request_id  the x-request-id given or answered (None when neither is known: gRPC without one)
    body_id     the OIP request's id (None when absent, and for /invocations)
    outputs     {output name: array} as answered
    t0, t1      the test's clock before sending and after the answer
    """

    def __init__(self, what, m, x, outputs, t0, t1, request_id=None, body_id=None):
        self.what = what
        self.input_name = m.input_name
        self.x = x
        self.outputs = outputs
        self.t0 = t0
        self.t1 = t1
        self.request_id = request_id
        self.body_id = body_id

    def __repr__(self):
        return f"<{self.what}: {len(self.x)} rows, request_id={self.request_id!r}, id={self.body_id!r}>"


class Rows:
    """Distinct input rows of a model, handed out in order, so that no two requests share one."""

    def __init__(self, m):
        self.m = m
        self.next = 0

    def take(self, n):
        assert self.next + n <= len(self.m.inputs), "out of distinct rows"
        x = np.ascontiguousarray(self.m.inputs[self.next:self.next + n])
        self.next += n
        return x


def send_json(srv, endpoint, m, x, body_id=None, request_id=None, version_route=False):
    extra = {"id": body_id} if body_id is not None else {}
    headers = {"x-request-id": request_id} if request_id else {}
    path = f"/v2/models/{endpoint}" + ("/versions/1" if version_route else "") + "/infer"
    t0 = time.time()
    r = srv.post(path, json=infer_body(m, x, **extra), headers=headers)
    t1 = time.time()
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
    answered = r.headers.get("x-request-id")
    assert answered, f"{path}: no x-request-id on the answer"
    if request_id:
        assert answered == request_id, (answered, request_id)
    return Sent(f"OIP JSON x{len(x)}", m, x, decode_json_outputs(r.json()), t0, t1, answered, body_id)


def send_http_binary(client, endpoint, m, x, body_id, request_id):
    inp = httpclient.InferInput(m.input_name, list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=True)
    outputs = [httpclient.InferRequestedOutput(n, binary_data=True) for n in m.output_names]
    t0 = time.time()
    result = client.infer(endpoint, [inp], outputs=outputs, request_id=body_id,
                          headers={"x-request-id": request_id})
    t1 = time.time()
    return Sent(f"tritonclient HTTP binary x{len(x)}", m, x, {n: result.as_numpy(n) for n in m.output_names},
                t0, t1, request_id, body_id)


def send_grpc(client, endpoint, m, x, body_id, request_id=None):
    inp = grpcclient.InferInput(m.input_name, list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    outputs = [grpcclient.InferRequestedOutput(n) for n in m.output_names]
    headers = {"x-request-id": request_id} if request_id else None
    t0 = time.time()
    result = client.infer(endpoint, [inp], outputs=outputs, request_id=body_id, headers=headers,
                          client_timeout=REQUEST_TIMEOUT)
    t1 = time.time()
    return Sent(f"tritonclient gRPC x{len(x)}", m, x, {n: result.as_numpy(n) for n in m.output_names},
                t0, t1, request_id, body_id)


def send_invocations(srv, m, x, request_id, fmt):
    t0 = time.time()
    r = srv.post("/invocations", json={fmt: x.tolist()}, headers={"x-request-id": request_id})
    t1 = time.time()
    assert r.status_code == 200, f"/invocations: {r.status_code} {r.text[:300]}"
    predictions = r.json()["predictions"]
    outputs = {k: np.asarray(v, dtype=m.outputs[k].dtype) for k, v in predictions.items()}
    return Sent(f"/invocations {fmt} x{len(x)}", m, x, outputs, t0, t1, request_id, None)


def log_series(srv, metric, endpoint, role="primary"):
    return role_counter(scrape(srv), metric, endpoint, role)


# ---------------------------------------------------------------------------
# The files


class LogFile:
    """One Parquet file of a model's log: where it is and what it holds."""

    def __init__(self, model, rel, data):
        self.model = model
        self.rel = rel  # date=.../hour=.../<name>, relative to the model's folder
        parts = rel.split("/")
        assert len(parts) == 3, f"{model}/{rel}: not <model>/date=YYYY-MM-DD/hour=HH/<file>"
        date, hour, self.name = parts
        assert DATE_DIR.match(date), f"{model}/{rel}: the folder {date!r} is not date=YYYY-MM-DD"
        assert HOUR_DIR.match(hour), f"{model}/{rel}: the folder {hour!r} is not hour=HH"
        self.date = DATE_DIR.match(date).group(1)
        self.hour = HOUR_DIR.match(hour).group(1)
        named = FILE_NAME.match(self.name)
        assert named, f"{model}/{rel}: the file name is not <version>-<role>-<YYYYMMDDTHHMMSS>-<n>-<random>.parquet"
        self.version = named.group("version")
        self.role = named.group("role")
        datetime.datetime.strptime(named.group("stamp"), "%Y%m%dT%H%M%S")  # a real date and time
        self.data = data
        self.table = pq.read_table(pa.BufferReader(data))
        self.rows = self.table.to_pylist()

    def __repr__(self):
        return f"<{self.model}/{self.rel}: {len(self.rows)} rows>"


def files_in_folder(root, model, complete_only=False):
    """{path relative to <root>/<model>: bytes}; complete_only keeps only *.parquet files that
    pyarrow can read (a file may be caught while it is being written)."""
    out = {}
    for rel, data in files_under(os.path.join(root, model)).items():
        if complete_only:
            if not rel.endswith(".parquet"):
                continue
            try:
                pq.read_metadata(pa.BufferReader(data))
            except (pa.ArrowException, OSError):
                continue
        out[rel] = data
    return out


def folder_log(root, model, complete_only=False):
    """Every file of `model` under a local destination, as LogFiles (sorted by path)."""
    return [LogFile(model, rel, data) for rel, data in sorted(files_in_folder(root, model, complete_only).items())]


def list_artifacts(base_url, path):
    """Every file under `path` of a tracking server's proxied artifact store: [full path]."""
    r = requests.get(base_url + ARTIFACTS_API, params={"path": path}, timeout=REQUEST_TIMEOUT)
    assert r.status_code == 200, f"GET {ARTIFACTS_API}?path={path}: {r.status_code} {r.text[:300]}"
    out = []
    for entry in r.json().get("files", []):
        full = f"{path}/{posixpath.basename(entry['path'].rstrip('/'))}"
        if entry.get("is_dir"):
            out += list_artifacts(base_url, full)
        else:
            out.append(full)
    return out


def api_log(base_url, model):
    """Every file of `model` under inference-logs/ on a tracking server, listed and downloaded
    through its proxied artifact API, as LogFiles."""
    prefix = f"inference-logs/{model}"
    files = []
    for path in sorted(list_artifacts(base_url, prefix)):
        r = requests.get(f"{base_url}{ARTIFACTS_API}/{path}", timeout=REQUEST_TIMEOUT)
        assert r.status_code == 200, f"GET {ARTIFACTS_API}/{path}: {r.status_code} {r.text[:300]}"
        files.append(LogFile(model, path[len(prefix) + 1:], r.content))
    return files


def row_count(files):
    return sum(len(f.rows) for f in files)


def wait_for_rows(root, model, n, timeout=WAIT):
    """The complete files of `model` under `root` once they hold `n` rows or more, or None after
    `timeout` s."""
    def written():
        files = folder_log(root, model, complete_only=True)
        return files if row_count(files) >= n else None

    return poll(written, timeout)


def elements(shape):
    return int(np.prod(shape)) if len(shape) else 1


def check_tensor_type(t, dtype, count, what):
    arrow = pa.from_numpy_dtype(dtype)
    if count == 1:
        assert t == arrow, f"{what}: one element per example is a plain {arrow} column, got {t}"
        return
    assert pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t), \
        f"{what}: {count} elements per example is a list column, got {t}"
    assert t.value_type == arrow, f"{what}: a list of {arrow} expected (the tensor's own type), got {t}"
    if pa.types.is_fixed_size_list(t):
        assert t.list_size == count, f"{what}: {t}"


def check_schema(f, m):
    """The columns of a file of model `m` (a BuiltModel): names in order and types."""
    schema = f.table.schema
    expected = list(FIXED) + [f"input.{m.input_name}"] + [f"output.{o}" for o in m.output_names]
    assert schema.names == expected, f"{f}: columns {schema.names}, expected {expected}"
    t = schema.field("time").type
    assert pa.types.is_timestamp(t) and t.unit == "us" and t.tz == "UTC", f"{f}: time is {t}, not timestamp[us, tz=UTC]"
    for name in TEXT:
        t = schema.field(name).type
        assert pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t), \
            f"{f}: {name} is {t}, not text"
    assert schema.field("row").type == pa.uint32(), f"{f}: row is {schema.field('row').type}, not uint32"
    for name in TIMINGS:
        assert schema.field(name).type == pa.float64(), f"{f}: {name} is {schema.field(name).type}, not float64"
    check_tensor_type(schema.field(f"input.{m.input_name}").type, np.float32, m.n_features, f"{f}: input")
    for o in m.output_names:
        ref = m.outputs[o]
        check_tensor_type(schema.field(f"output.{o}").type, ref.dtype, elements(ref.shape[1:]), f"{f}: output {o}")


def check_files(files, endpoint, m, version):
    """What holds for every file: the folder is the model's, the name's version and role are the
    rows', the columns are right, and each row's arrival is in its file's date and hour."""
    assert files, f"no log files for {endpoint}"
    for f in files:
        assert f.rows, f"{f}: an empty file"
        check_schema(f, m)
        assert f.version == version, f"{f}: version {f.version!r} in the name, expected {version!r}"
        for r in f.rows:
            assert r["model"] == endpoint, f"{f}: model {r['model']!r}"
            assert r["version"] == f.version, f"{f}: version {r['version']!r} in a {f.version!r} file"
            assert r["role"] == f.role, f"{f}: role {r['role']!r} in a {f.role!r} file"
            when = r["time"].astimezone(datetime.timezone.utc)
            assert (when.strftime("%Y-%m-%d"), when.strftime("%H")) == (f.date, f.hour), \
                f"{f}: a row that arrived at {when.isoformat()} is in date={f.date}/hour={f.hour}"


def check_requests(files, sent, role="primary", expected=None, exact=True):
    """Every request of `sent` is in the files as its rows, once, with nothing else of `role`.

    expected(s) gives the outputs the rows must hold (default: what was answered); exact=False
    compares them within RTOL/ATOL (a shadow's, computed here by onnxruntime)."""
    groups = {}
    for f in files:
        for r in f.rows:
            if r["role"] == role:
                groups.setdefault(r["request_id"], []).append(r)
    for s in sent:
        rid = s.request_id
        if rid is None:  # no x-request-id: the generated one is found by the body's id
            found = [k for k, rows in groups.items() if any(r["id"] == s.body_id for r in rows)]
            assert len(found) == 1, f"{s}: {len(found)} logged requests with id {s.body_id!r}"
            rid = found[0]
            assert rid, f"{s}: an empty request_id"
        rows = groups.pop(rid, None)
        assert rows, f"{s}: no {role} rows with request_id {rid!r} (logged: {sorted(groups)[:10]})"
        rows.sort(key=lambda r: r["row"])
        n = len(s.x)
        assert [r["row"] for r in rows] == list(range(n)), f"{s}: {role} rows {[r['row'] for r in rows]}"
        outputs = expected(s) if expected else s.outputs
        times = {r["time"] for r in rows}
        assert len(times) == 1, f"{s}: the rows of one request arrived at different times: {sorted(times)}"
        arrival = rows[0]["time"].timestamp()
        assert s.t0 - CLOCK_SLACK <= arrival <= s.t1 + CLOCK_SLACK, \
            f"{s}: logged arrival {rows[0]['time'].isoformat()} is outside the request ({s.t0:.3f}..{s.t1:.3f})"
        for i, r in enumerate(rows):
            what = f"{s} {role} row {i}"
            assert r["request_id"] == rid
            assert r["id"] == s.body_id, f"{what}: id {r['id']!r}, expected {s.body_id!r}"
            got_x = np.asarray(r[f"input.{s.input_name}"], dtype=np.float32)
            assert got_x.size == s.x[i].size and np.array_equal(got_x.reshape(s.x[i].shape), s.x[i]), \
                f"{what}: logged input {got_x[:6]}... is not what was sent {s.x[i].reshape(-1)[:6]}..."
            for name, arr in outputs.items():
                want = np.asarray(arr)[i]
                got = np.asarray(r[f"output.{name}"], dtype=want.dtype)
                assert got.size == want.size, f"{what}: output {name} has {got.size} elements, expected {want.size}"
                got = got.reshape(want.shape)
                if exact or np.issubdtype(want.dtype, np.integer):
                    assert np.array_equal(got, want), f"{what}: logged {name} {got} != answered {want}"
                else:
                    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{what}: {name}")
            for name in TIMINGS:
                assert isinstance(r[name], float) and r[name] >= 0, f"{what}: {name} = {r[name]!r}"
            latency, queue, inference = r["latency_ms"], r["queue_ms"], r["inference_ms"]
            assert latency >= inference, f"{what}: latency {latency} ms < inference {inference} ms"
            assert latency >= queue, f"{what}: latency {latency} ms < queue {queue} ms"
    assert not groups, f"{role} rows of requests that were not sent: {sorted(groups)[:10]}"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The models of serving_models.py these tests serve, built once: {name: BuiltModel}."""
    return serving_models.build_all(str(tmp_path_factory.mktemp("log-models")), names=MODELS)


# ---------------------------------------------------------------------------
# A local folder: every protocol, written at SIGTERM


@pytest.fixture(scope="module")
def folder_run(models, tmp_path_factory):
    """kiln serve --log-inferences into a folder, flushed only at shutdown: requests of 1 and 5
    rows over OIP JSON (with and without an id and x-request-id), tritonclient HTTP binary,
    tritonclient gRPC and /invocations; then /metrics, then SIGTERM."""
    m = models["breast_rf"]
    logdir = str(tmp_path_factory.mktemp("log-folder"))
    srv = started(Serve({"cancer": m.path}, "--log-inferences", "--inference-log-uri", logdir,
                        "--inference-log-flush-seconds", NEVER, "--inference-log-queue", 1000))
    take = Rows(m).take
    sent = []
    try:
        sent.append(send_json(srv, "cancer", m, take(1), body_id="json-1", request_id="rid-json-1"))
        sent.append(send_json(srv, "cancer", m, take(5), body_id="json-5", request_id="rid-json-5",
                              version_route=True))
        sent.append(send_json(srv, "cancer", m, take(5)))  # no id, no x-request-id
        sent.append(send_json(srv, "cancer", m, take(1), request_id="rid-json-noid"))
        http = httpclient.InferenceServerClient(url=f"127.0.0.1:{srv.port}", network_timeout=float(REQUEST_TIMEOUT))
        try:
            sent.append(send_http_binary(http, "cancer", m, take(1), "bin-1", "rid-bin-1"))
            sent.append(send_http_binary(http, "cancer", m, take(5), "bin-5", "rid-bin-5"))
        finally:
            http.close()
        grpc = grpcclient.InferenceServerClient(url=srv.grpc_url)
        try:
            sent.append(send_grpc(grpc, "cancer", m, take(1), "grpc-1", "rid-grpc-1"))
            sent.append(send_grpc(grpc, "cancer", m, take(5), "grpc-5", "rid-grpc-5"))
            sent.append(send_grpc(grpc, "cancer", m, take(1), "grpc-no-header"))
        finally:
            grpc.close()
        sent.append(send_invocations(srv, m, take(1), "rid-inv-1", "instances"))
        sent.append(send_invocations(srv, m, take(5), "rid-inv-5", "inputs"))
        metrics = scrape(srv)
        scraped = time.time()
        code = shut_down(srv)
    finally:
        srv.stop()
    return {"m": m, "sent": sent, "metrics": metrics, "scraped": scraped, "exit": code, "log": srv.final_log,
            "files": folder_log(logdir, "cancer"), "logdir": logdir}


def test_sigterm_writes_the_log_and_exits_zero(folder_run):
    assert folder_run["exit"] == 0, f"kiln serve exited with {folder_run['exit']} on SIGTERM:\n{folder_run['log']}"
    assert folder_run["files"], f"nothing written by the shutdown:\n{folder_run['log']}"
    assert os.listdir(folder_run["logdir"]) == ["cancer"], os.listdir(folder_run["logdir"])


def test_every_example_is_logged_once(folder_run):
    examples = sum(len(s.x) for s in folder_run["sent"])
    assert row_count(folder_run["files"]) == examples, (row_count(folder_run["files"]), examples)


def test_logged_rows_are_what_was_sent_and_answered(folder_run):
    check_requests(folder_run["files"], folder_run["sent"])


def test_request_ids(folder_run):
    """The x-request-id given, or the one the answer carried; gRPC's from its metadata, or a
    generated one of its own; every request's different."""
    rows = [r for f in folder_run["files"] for r in f.rows]
    by_id = {r["id"]: r["request_id"] for r in rows}
    assert by_id["grpc-1"] == "rid-grpc-1" and by_id["grpc-5"] == "rid-grpc-5"
    generated = by_id["grpc-no-header"]
    assert isinstance(generated, str) and generated.strip(), generated
    assert len({r["request_id"] for r in rows}) == len(folder_run["sent"])
    assert {r["id"] for r in rows if r["request_id"].startswith("rid-inv-")} == {None}  # /invocations: no id


def test_files_layout_and_columns(folder_run):
    files = folder_run["files"]
    check_files(files, "cancer", folder_run["m"], "1")
    assert {f.role for f in files} == {"primary"}
    # Nothing was due before SIGTERM: one file per partition, written at shutdown.
    partitions = [(f.date, f.hour, f.version, f.role) for f in files]
    assert len(partitions) == len(set(partitions)), f"more than one file per partition: {files}"
    first = min(s.t0 for s in folder_run["sent"])
    last = max(s.t1 for s in folder_run["sent"])
    hours = {datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d/%H")
             for t in (first, last)}
    assert {f"{f.date}/{f.hour}" for f in files} <= hours, (files, hours)


def test_types_are_the_tensors_own(folder_run):
    """breast_rf: input [n, 30] FP32 is a list of 30 float32, label [n] INT64 a plain int64
    column, probabilities [n, 2] FP32 a list of 2 float32."""
    schema = folder_run["files"][0].table.schema
    assert schema.field("input.input").type.value_type == pa.float32()
    assert schema.field("output.label").type == pa.int64()
    assert schema.field("output.probabilities").type.value_type == pa.float32()
    for f in folder_run["files"]:
        for r in f.rows:
            assert len(r["input.input"]) == 30 and len(r["output.probabilities"]) == 2, f
            assert isinstance(r["output.label"], int), f


def test_metrics_before_shutdown(folder_run):
    """With a flush interval of an hour nothing is written before SIGTERM: no rows written, none
    dropped (unless the hour turned, which writes its files)."""
    text = folder_run["metrics"]
    rows = role_counter(text, "kiln_inference_log_rows_total", "cancer", "primary")
    dropped = role_counter(text, "kiln_inference_log_dropped_total", "cancer", "primary")
    assert dropped == 0, [line for line in text.splitlines() if "inference_log" in line]
    first = min(s.t0 for s in folder_run["sent"])
    if int(first // 3600) == int(folder_run["scraped"] // 3600):
        assert rows == 0, [line for line in text.splitlines() if "inference_log" in line]
    else:
        assert rows <= row_count(folder_run["files"])


# ---------------------------------------------------------------------------
# Flushing while serving


def test_files_are_written_while_serving(models, tmp_path):
    """--inference-log-flush-seconds 0.5 (logging on through KILN_SERVE_LOG_INFERENCES): files
    appear while the server runs, /metrics counts their rows, a written file never changes, and
    later requests go to new files. The CNN's input [n, 1, 8, 8] is a list of 64 float32 in
    row-major order, its logits [n, 10] a list of 10."""
    c = models["cnn"]
    logdir = str(tmp_path / "log")
    srv = started(Serve({"digits": c.path}, "--inference-log-uri", logdir, "--inference-log-flush-seconds", QUICK_FLUSH,
                        env={"KILN_SERVE_LOG_INFERENCES": "true"}))
    try:
        take = Rows(c).take
        first = [send_json(srv, "digits", c, take(1), "a", "rid-a"), send_json(srv, "digits", c, take(5), "b", "rid-b")]
        files = wait_for_rows(logdir, "digits", 6)
        assert files, f"no file with the 6 rows within {WAIT}s:\n{srv.log()}"
        assert srv.proc.poll() is None, f"kiln serve exited ({srv.proc.returncode}):\n{srv.log()}"
        check_files(files, "digits", c, "1")
        check_requests(files, first)
        assert poll(lambda: log_series(srv, "kiln_inference_log_rows_total", "digits") == 6, timeout=5), \
            [line for line in scrape(srv).splitlines() if "inference_log" in line]
        assert log_series(srv, "kiln_inference_log_dropped_total", "digits") == 0
        written = {f.rel: f.data for f in files}
        later = [send_json(srv, "digits", c, take(3), "c", "rid-c")]
        files = wait_for_rows(logdir, "digits", 9)
        assert files, f"the later request was not written within {WAIT}s:\n{srv.log()}"
        now = {f.rel: f.data for f in files}
        assert all(now.get(rel) == data for rel, data in written.items()), "a written file changed or went away"
        assert len(now) > len(written), "the later request was not written to a new file"
        assert poll(lambda: log_series(srv, "kiln_inference_log_rows_total", "digits") == 9, timeout=5)
        code = shut_down(srv)
    finally:
        srv.stop()
    assert code == 0, srv.final_log
    files = folder_log(logdir, "digits")
    check_files(files, "digits", c, "1")
    check_requests(files, first + later)
    schema = files[0].table.schema
    assert schema.field("input.input").type.value_type == pa.float32()
    assert schema.field("output.logits").type.value_type == pa.float32()


# ---------------------------------------------------------------------------
# Failures to write are counted, and serving goes on


def test_unwritable_destination_counts_drops_and_keeps_serving(models):
    """The default destination is a tracking server that is not there (a closed loopback port):
    requests are answered, every record is counted as dropped, none as written."""
    m = models["breast_lr"]
    closed = f"http://127.0.0.1:{free_port()}"
    srv = started(Serve({"cancer": m.path}, "--log-inferences", "--inference-log-flush-seconds", 0.2,
                        tracking_uri=closed))
    try:
        take = Rows(m).take
        n = 4
        for i in range(n):
            send_json(srv, "cancer", m, take(1), f"drop-{i}", f"rid-drop-{i}")
        dropped = poll(lambda: log_series(srv, "kiln_inference_log_dropped_total", "cancer") >= n)
        text = scrape(srv)
        assert dropped, f"dropped_total did not reach {n} within {WAIT}s: " + \
            str([line for line in text.splitlines() if "inference_log" in line]) + "\n" + srv.log()
        time.sleep(1.0)  # several flush intervals, a retry included: nothing is counted twice
        text = scrape(srv)
        assert role_counter(text, "kiln_inference_log_dropped_total", "cancer", "primary") == n, \
            [line for line in text.splitlines() if "inference_log" in line]
        assert role_counter(text, "kiln_inference_log_rows_total", "cancer", "primary") == 0
        srv.assert_alive()
        send_json(srv, "cancer", m, take(1), "after", "rid-after")
    finally:
        srv.stop()


# ---------------------------------------------------------------------------
# Per model, from the config file


def test_config_file_logs_only_the_models_that_ask(models, tmp_path):
    """Two [[serve.model]] tables, log_inferences = true on one: only its folder has files.
    diabetes_rf's output variable [n, 1] is one element per example: a plain float32 column."""
    d, i = models["diabetes_rf"], models["iris_gb"]
    config = tmp_path / "serve.toml"
    config.write_text(
        "[[serve.model]]\n"
        f'name = "sugar"\nsource = "{d.path}"\nlog_inferences = true\n'
        "[[serve.model]]\n"
        f'name = "flowers"\nsource = "{i.path}"\n')
    logdir = str(tmp_path / "log")
    srv = started(Serve({}, "--config", str(config), "--inference-log-uri", logdir,
                        "--inference-log-flush-seconds", NEVER))
    try:
        dt, it = Rows(d).take, Rows(i).take
        sent = [send_json(srv, "sugar", d, dt(1), "s1", "rid-s1"), send_json(srv, "sugar", d, dt(4), "s4", "rid-s4")]
        send_json(srv, "flowers", i, it(3), "f3", "rid-f3")
        code = shut_down(srv)
    finally:
        srv.stop()
    assert code == 0, srv.final_log
    assert os.path.isdir(os.path.join(logdir, "sugar")), f"nothing for sugar:\n{srv.final_log}"
    assert sorted(os.listdir(logdir)) == ["sugar"], f"files for a model without log_inferences: {os.listdir(logdir)}"
    files = folder_log(logdir, "sugar")
    check_files(files, "sugar", d, "1")
    check_requests(files, sent)
    assert files[0].table.schema.field("output.variable").type == pa.float32()


# ---------------------------------------------------------------------------
# A shadow's copies are logged beside the primary's answers


def test_shadow_rows_beside_the_primary(models, tmp_path):
    rf, gb = models["breast_rf"], models["breast_gb"]
    logdir = str(tmp_path / "log")
    srv = started(Serve({"cancer": rf.path}, "--shadow", f"cancer:100={gb.path}", "--log-inferences",
                        "--inference-log-uri", logdir, "--inference-log-flush-seconds", NEVER))
    try:
        take = Rows(rf).take
        sent = [send_json(srv, "cancer", rf, take(n), f"sh-{k}", f"rid-sh-{k}") for k, n in enumerate((1, 5, 2))]
        shadowed = poll(lambda: log_series(srv, "kiln_inference_requests_total", "cancer", "shadow") >= len(sent))
        assert shadowed, f"the shadow did not get the {len(sent)} requests within {WAIT}s"
        code = shut_down(srv)
    finally:
        srv.stop()
    assert code == 0, srv.final_log
    files = folder_log(logdir, "cancer")
    assert {f.role for f in files} == {"primary", "shadow"}, files
    for role in ("primary", "shadow"):
        check_files([f for f in files if f.role == role], "cancer", rf, "1")
    check_requests(files, sent, "primary")
    check_requests(files, sent, "shadow", expected=lambda s: gb.reference(s.x), exact=False)
    assert row_count(files) == 2 * sum(len(s.x) for s in sent)


# ---------------------------------------------------------------------------
# The default destination: the tracking server's artifact store (every target)


def test_default_destination_is_the_tracking_server(server, client, models):
    """kiln serve --tracking-uri <the target's server> serving models:/<name>/2, no
    --inference-log-uri: after SIGTERM the files are listed and downloaded through the tracking
    server's proxied artifact API under inference-logs/<endpoint>/, version "2"."""
    import mlflow

    mlflow.set_experiment(unique("inference-log"))
    name = unique("logged")
    rf, lr = models["breast_rf"], models["breast_lr"]
    log_onnx(rf, name)
    _, version = log_onnx(lr, name)
    assert version == "2"
    endpoint = unique("scored")
    srv = started(Serve({endpoint: f"models:/{name}/2"}, "--log-inferences", "--inference-log-flush-seconds", NEVER,
                        tracking_uri=server.url))
    try:
        take = Rows(lr).take
        sent = [send_json(srv, endpoint, lr, take(1), "d1", "rid-d1"),
                send_json(srv, endpoint, lr, take(4), "d4", "rid-d4")]
        grpc = grpcclient.InferenceServerClient(url=srv.grpc_url)
        try:
            sent.append(send_grpc(grpc, endpoint, lr, take(2), "d2", "rid-d2"))
        finally:
            grpc.close()
        code = shut_down(srv)
    finally:
        srv.stop()
    assert code == 0, srv.final_log
    files = api_log(server.url, endpoint)
    assert files, f"nothing under inference-logs/{endpoint} on the {server.target} server:\n{srv.final_log}"
    check_files(files, endpoint, lr, "2")
    check_requests(files, sent)
    assert row_count(files) == 7


# ---------------------------------------------------------------------------
# kiln server --serve-log-inferences: into the server's own artifact store


def test_kiln_server_logs_into_its_artifact_store(target, models, tmp_path):
    """A model logged and registered to a kiln server of its own (on the target's kind of store,
    SQLite or PostgreSQL; SQLite beside mlflow, as test_serving.py runs kiln server --serve on
    every target), served again from it with --serve-model and --serve-log-inferences: after
    SIGTERM its files are in <artifacts>/inference-logs/<model>/."""
    import mlflow

    m = models["breast_rf"]
    previous = mlflow.get_tracking_uri()
    srv = KilnServerServing(target, str(tmp_path))
    try:
        srv.start(timeout=READY_TIMEOUT)
        mlflow.set_tracking_uri(srv.url)
        mlflow.set_experiment("serving")
        log_onnx(m, "cancer")
        srv.restart("--serve-model", "rf=models:/cancer/1", "--serve-log-inferences")
        srv.wait_ready()
        take = Rows(m).take
        sent = [send_json(srv, "rf", m, take(1), "k1", "rid-k1"), send_json(srv, "rf", m, take(5), "k5", "rid-k5")]
        code = terminate(srv.proc, srv.log_path)
    finally:
        mlflow.set_tracking_uri(previous)
        srv.close()
    assert code == 0, srv.log()
    root = os.path.join(str(tmp_path), "artifacts", "inference-logs")
    assert os.path.isdir(os.path.join(root, "rf")), f"no {root}/rf:\n{srv.log()}"
    files = folder_log(root, "rf")
    check_files(files, "rf", m, "1")
    check_requests(files, sent)


# ---------------------------------------------------------------------------
# The repository extension turns logging on and off per model


def load(srv, model, **parameters):
    return srv.post(f"/v2/repository/models/{model}/load", json={"parameters": parameters})


def test_repository_load_turns_logging_on_and_off(models, tmp_path):
    """A process with an inference log but no --log-inferences: a model loaded with
    log_inferences true is logged, loaded again with false it is not, and one given at start is
    logged once it is loaded again with true."""
    rf, lr = models["breast_rf"], models["breast_lr"]
    logdir = str(tmp_path / "log")
    srv = started(Serve({"base": rf.path}, "--inference-log-uri", logdir, "--inference-log-flush-seconds", NEVER))
    try:
        rt, lt = Rows(rf).take, Rows(lr).take
        send_json(srv, "base", rf, rt(2), "base-off", "rid-base-off")
        r = load(srv, "extra", uri=lr.path, log_inferences=True)
        assert r.status_code == 200, r.text
        extra_on = send_json(srv, "extra", lr, lt(3), "extra-on", "rid-extra-on")
        r = load(srv, "base", uri=rf.path, log_inferences=True)
        assert r.status_code == 200, r.text
        base_on = send_json(srv, "base", rf, rt(2), "base-on", "rid-base-on")
        r = load(srv, "extra", uri=lr.path, log_inferences=False)
        assert r.status_code == 200, r.text
        send_json(srv, "extra", lr, lt(1), "extra-off", "rid-extra-off")
        code = shut_down(srv)
    finally:
        srv.stop()
    assert code == 0, srv.final_log
    assert sorted(os.listdir(logdir)) == ["base", "extra"], os.listdir(logdir)
    extra = folder_log(logdir, "extra")
    check_files(extra, "extra", lr, "1")
    check_requests(extra, [extra_on])  # and not extra-off
    base = folder_log(logdir, "base")
    check_files(base, "base", rf, "1")
    check_requests(base, [base_on])  # and not base-off


def test_repository_load_refuses_logging_without_an_inference_log(models):
    """No --inference-log-uri, no --log-inferences: log_inferences true is a 400 with an OIP
    error, and nothing is loaded (neither a new model nor a replacement)."""
    rf, lr = models["breast_rf"], models["breast_lr"]
    srv = started(Serve({"base": rf.path}))
    try:
        x = rf.inputs[:3]
        assert_oip_error(load(srv, "fresh", uri=lr.path, log_inferences=True), 400)
        assert_oip_error(srv.get("/v2/models/fresh"), 404)
        index = srv.post("/v2/repository/index", json={})
        assert index.status_code == 200, index.text
        assert "fresh" not in [e["name"] for e in index.json()], index.json()
        assert_oip_error(load(srv, "base", uri=lr.path, log_inferences=True), 400)
        r = srv.infer("base", infer_body(rf, x))
        assert r.status_code == 200, r.text
        got = decode_json_outputs(r.json())["probabilities"]
        np.testing.assert_allclose(got, rf.reference(x)["probabilities"], rtol=RTOL, atol=ATOL,
                                   err_msg="base was replaced by a refused load")
        # Without log_inferences the same load is taken.
        r = load(srv, "fresh", uri=lr.path)
        assert r.status_code == 200, r.text
        srv.assert_alive()
    finally:
        srv.stop()


# ---------------------------------------------------------------------------
# Start-up errors


def start_and_fail(models, tmp_path, *flags, tracking_uri=None):
    """Runs kiln serve with `flags`; it must exit non-zero by itself: answers its output."""
    srv = Serve({"m": models["breast_lr"].path}, *flags, tracking_uri=tracking_uri)
    env = srv.environment()
    for key in ("KILN_SERVE_LOG_INFERENCES", "KILN_SERVE_INFERENCE_LOG_URI", "KILN_SERVE_CONFIG"):
        env.pop(key, None)
    try:
        done = subprocess.run(srv.command(), env=env, cwd=str(tmp_path), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"kiln serve {' '.join(map(str, flags))} kept running instead of refusing to start")
    finally:
        srv.stop()
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert done.returncode != 0, f"kiln serve {' '.join(map(str, flags))} exited 0:\n{output}"
    return output


def test_flush_interval_zero_is_refused(models, tmp_path):
    output = start_and_fail(models, tmp_path, "--log-inferences", "--inference-log-uri", str(tmp_path / "log"),
                            "--inference-log-flush-seconds", 0)
    assert "inference-log-flush-seconds" in output, output


def test_logging_without_a_destination_is_refused(models, tmp_path):
    output = start_and_fail(models, tmp_path, "--log-inferences")
    assert "--inference-log-uri" in output and "--tracking-uri" in output, output
