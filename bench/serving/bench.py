#!/usr/bin/env python3
"""Model-serving benchmark: `kiln serve` vs MLServer vs a FastAPI + onnxruntime server.

Trains one random forest (100 trees, scikit-learn's breast-cancer data, 30 features), saves it
for each server (joblib for MLServer's scikit-learn runtime, ONNX inside an MLflow model
directory for Kiln and the FastAPI server), starts each server in turn on a loopback port and
sends it the same Open Inference Protocol (V2) REST requests: single rows from `wrk` at 1, 8 and
32 connections, then 1,000-row batches from one client. The same model's compute time in
ONNX Runtime in this process is the limit every server is compared with. Prints a Markdown
table with each server's figures and Kiln's ratio to each peer (see bench/README.md).

Runs in the virtualenv that bench/serving/run prepares (scikit-learn, skl2onnx, onnxruntime,
MLServer, FastAPI, uvicorn). The keep-alive HTTP client and the /proc helpers come from
bench/tracking/bench.py.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import glob
import http.client
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tracking"))
import bench as tracking  # noqa: E402  (bench/tracking/bench.py)

log = tracking.log

ALL_SERVERS = ("kiln", "kiln-batch", "mlserver", "fastapi")
KILN_VARIANTS = ("kiln", "kiln-batch")
PEERS = ("mlserver", "fastapi")
MODEL_NAME = "rf"
INFER_PATH = f"/v2/models/{MODEL_NAME}/infer"
READY_PATH = "/v2/health/ready"
CONCURRENCY = (1, 8, 32)
N_FEATURES = 30
SINGLE_ROWS = 64          # distinct rows the single-row load cycles through
BATCH_ROWS = 1000
KILN_BATCH_FLAGS = ["--max-batch-size", "64", "--max-batch-delay-us", "200"]

SIZES = {
    "full": dict(load_s=15, warmup_s=2, ceiling_s=3, batch_s=5.0, inproc_single=20000, inproc_batch=200),
    "quick": dict(load_s=3, warmup_s=1, ceiling_s=1, batch_s=2.0, inproc_single=3000, inproc_batch=30),
}

# Hard caps so that no loop can run away, whatever a server does.
CAP_STARTUP_S = 180.0
CAP_SETTLE_S = 60.0
CAP_INPROC_S = 30.0           # each in-process series
CAP_BATCH_REQUESTS = 100_000
REQUEST_TIMEOUT_S = 120.0
WRK_TIMEOUT_S = 30
STOP_GRACE_S = 15.0

# From the issue, used only when the FastAPI server is not part of the run.
ISSUE_FASTAPI_RPS = 900.0


# --------------------------------------------------------------------------
# The model and the requests
# --------------------------------------------------------------------------


MLFLOW_LAYOUT = "3.17.2"  # the MLflow version whose `mlflow.onnx.save_model` output is reproduced


def _mlmodel_text(onnx_version: str, size: int) -> str:
    """The MLmodel file `mlflow.onnx.save_model` writes (MLflow 3.17.2, checked against it):
    the same keys, and dumped the same way (yaml.safe_dump, block style, which sorts the keys
    and folds the long signature strings over several lines)."""
    import yaml

    def spec(name: str, dtype: str, shape: list[int]) -> dict:
        return {"name": name, "type": "tensor", "tensor-spec": {"dtype": dtype, "shape": shape}}

    doc = {
        "flavors": {
            "onnx": {"code": None, "data": "model.onnx", "onnx_session_options": None,
                     "onnx_version": onnx_version, "providers": ["CPUExecutionProvider"]},
            "python_function": {"data": "model.onnx",
                                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                                "loader_module": "mlflow.onnx", "python_version": platform.python_version()},
        },
        "is_signature_from_type_hint": False,
        "mlflow_version": MLFLOW_LAYOUT,
        "model_id": None,
        "model_size_bytes": size,
        "model_uuid": uuid.uuid4().hex,
        "prompts": None,
        "signature": {
            "inputs": json.dumps([spec("input", "float32", [-1, N_FEATURES])]),
            "outputs": json.dumps([spec("label", "int64", [-1]), spec("probabilities", "float32", [-1, 2])]),
            "params": None,
        },
        "type_hint_from_example": False,
        "utc_time_created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"),
    }
    return yaml.safe_dump(doc, default_flow_style=False)


def _pkg(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def build_model(workdir: str) -> dict:
    """Trains the forest once and writes every server's copy of it and the request bodies."""
    import joblib
    import numpy as np
    import onnx
    import onnxruntime as ort
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    X, _y = load_breast_cancer(return_X_y=True)
    rf = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, _y)
    pred = rf.predict(X)
    proba = rf.predict_proba(X)
    mdir = os.path.join(workdir, "model")

    # (a) MLServer's scikit-learn runtime: a folder per model with model-settings.json.
    ms_root = os.path.join(mdir, "mlserver")
    ms_model = os.path.join(ms_root, MODEL_NAME)
    os.makedirs(ms_model, exist_ok=True)
    joblib.dump(rf, os.path.join(ms_model, "model.joblib"))
    with open(os.path.join(ms_model, "model-settings.json"), "w") as f:
        json.dump({"name": MODEL_NAME, "implementation": "mlserver_sklearn.SKLearnModel",
                   "parameters": {"uri": "./model.joblib"}}, f, indent=2)

    # (b) ONNX in an MLflow model directory, as mlflow.onnx.save_model lays it out.
    onx = convert_sklearn(rf, initial_types=[("input", FloatTensorType([None, N_FEATURES]))],
                          options={id(rf): {"zipmap": False}})
    mlflow_dir = os.path.join(mdir, "mlflow")
    os.makedirs(mlflow_dir, exist_ok=True)
    onnx_path = os.path.join(mlflow_dir, "model.onnx")
    onnx.save_model(onx, onnx_path)
    pins = [f"mlflow=={MLFLOW_LAYOUT}", f"onnx=={_pkg('onnx')}", f"onnxruntime=={_pkg('onnxruntime')}"]
    with open(os.path.join(mlflow_dir, "requirements.txt"), "w") as f:
        f.write("\n".join(pins))
    with open(os.path.join(mlflow_dir, "python_env.yaml"), "w") as f:
        f.write(f"python: {platform.python_version()}\nbuild_dependencies:\n- pip\n- setuptools\n- wheel\n"
                "dependencies:\n- -r requirements.txt\n")
    with open(os.path.join(mlflow_dir, "conda.yaml"), "w") as f:
        f.write(f"channels:\n- conda-forge\ndependencies:\n- python={platform.python_version()}\n- pip\n- pip:\n"
                + "".join(f"  - {p}\n" for p in pins) + "name: mlflow-env\n")
    # MLflow counts the model file only: it writes MLmodel before the environment files.
    size = os.path.getsize(onnx_path)
    with open(os.path.join(mlflow_dir, "MLmodel"), "w") as f:
        f.write(_mlmodel_text(onnx.__version__, size))

    # The ONNX model must give sklearn's labels on the whole data set.
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    onnx_labels = sess.run(["label"], {"input": X.astype(np.float32)})[0]
    disagree = int((onnx_labels != pred).sum())

    # Single-row requests: the first SINGLE_ROWS rows whose vote is not close (|p - 0.5| >= 0.1),
    # so that float32 vs float64 arithmetic cannot flip the label.
    rows = [i for i in range(len(X)) if abs(proba[i, 1] - 0.5) >= 0.1][:SINGLE_ROWS]
    bodies_dir = os.path.join(workdir, "bodies")
    os.makedirs(bodies_dir, exist_ok=True)

    def body(indices) -> str:
        data = [float(v) for i in indices for v in X[i]]
        return json.dumps({"inputs": [{"name": "input", "shape": [len(indices), N_FEATURES],
                                       "datatype": "FP32", "data": data}]}, separators=(",", ":"))

    singles = [body([i]) for i in rows]
    single_file = os.path.join(bodies_dir, "single.jsonl")
    with open(single_file, "w") as f:
        f.write("\n".join(singles) + "\n")
    batch_idx = [i % len(X) for i in range(BATCH_ROWS)]
    batch_body = body(batch_idx)
    with open(os.path.join(bodies_dir, "batch.json"), "w") as f:
        f.write(batch_body)

    # The same rows in the binary tensor extension: a JSON header, then the float32 bytes.
    raw = np.ascontiguousarray(X[batch_idx].astype(np.float32)).tobytes()
    header = json.dumps({"inputs": [{"name": "input", "shape": [BATCH_ROWS, N_FEATURES], "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(raw)}}],
                         "parameters": {"binary_data_output": True}}, separators=(",", ":")).encode()

    info = {
        "batch_binary": (header + raw, len(header)),
        "dir": mdir, "mlflow_dir": mlflow_dir, "onnx_path": onnx_path, "mlserver_dir": ms_root,
        "onnx_bytes": os.path.getsize(onnx_path), "onnx_sklearn_disagree": disagree,
        "rows": len(X), "single_file": single_file,
        "singles": [(s, int(pred[i])) for s, i in zip(singles, rows)],
        "batch_body": batch_body.encode(), "batch_labels": [int(pred[i]) for i in batch_idx],
        "X": X,
    }
    log(f"model: RandomForestClassifier(100 trees) on {len(X)} rows; ONNX {info['onnx_bytes']:,} bytes, "
        f"{disagree} labels differ from sklearn; {mdir}")
    return info


def measure_inprocess(model: dict, cfg: dict) -> dict:
    """ONNX Runtime's own time for the model, in this process, one call after another."""
    import numpy as np
    import onnxruntime as ort

    X = model["X"]
    single = X[:1].astype(np.float32)
    batch = X[[i % len(X) for i in range(BATCH_ROWS)]].astype(np.float32)
    out: dict = {}
    busy0, own0, t0 = machine_busy_s(), time.process_time(), time.perf_counter()
    for key, threads in (("default", 0), ("one_thread", 1)):
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        sess = ort.InferenceSession(model["onnx_path"], opts, providers=["CPUExecutionProvider"])
        for _ in range(200):
            sess.run(None, {"input": single})
        lat = []
        deadline = time.perf_counter() + CAP_INPROC_S
        for _ in range(cfg["inproc_single"]):
            t = time.perf_counter_ns()
            sess.run(None, {"input": single})
            lat.append(time.perf_counter_ns() - t)
            if time.perf_counter() > deadline:
                break
        for _ in range(3):
            sess.run(None, {"input": batch})
        blat = []
        deadline = time.perf_counter() + CAP_INPROC_S
        for _ in range(cfg["inproc_batch"]):
            t = time.perf_counter_ns()
            sess.run(None, {"input": batch})
            blat.append(time.perf_counter_ns() - t)
            if time.perf_counter() > deadline:
                break
        b50 = tracking.percentile(blat, 50) / 1e3
        out[key] = {
            "single_calls": len(lat),
            "single_p50_us": tracking.percentile(lat, 50) / 1e3,
            "single_p99_us": tracking.percentile(lat, 99) / 1e3,
            "batch_calls": len(blat),
            "batch_p50_ms": b50 / 1e3,
            "batch_per_row_us": b50 / BATCH_ROWS,
            "batch_rows_per_s": BATCH_ROWS / (b50 / 1e6),
        }
        log(f"in-process ({key}): single row {out[key]['single_p50_us']:.1f} µs, "
            f"1,000-row batch {out[key]['batch_per_row_us']:.2f} µs/row")
    wall = time.perf_counter() - t0
    out["other_cpu_pct"] = max(0.0, 100.0 * ((machine_busy_s() - busy0) - (time.process_time() - own0)) / wall)
    # The limit is the faster of the two session settings.
    out["single_us"] = min(out[k]["single_p50_us"] for k in ("default", "one_thread"))
    out["batch_per_row_us"] = min(out[k]["batch_per_row_us"] for k in ("default", "one_thread"))
    out["single_rps"] = 1e6 / out["single_us"]
    out["batch_rows_per_s"] = 1e6 / out["batch_per_row_us"]
    return out


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------


def find_kiln(args) -> str | None:
    return args.kiln_bin or tracking.find_kiln_bin()


def kiln_serve_support(binary: str | None) -> tuple[bool, bool, str, bool]:
    """(has `serve`, has the batching flags, why not, has --grpc-port)."""
    if not binary:
        return False, False, ("no kiln binary (--kiln-bin, $KILN_BIN, /var/tmp/kiln-target/release/kiln "
                              "and /var/tmp/kiln-target/debug/kiln all missing)"), False
    try:
        out = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, False, f"`{binary} serve --help` failed: {exc}", False
    if out.returncode != 0:
        return (False, False,
                f"`{binary} serve --help` exited with {out.returncode}: this kiln has no `serve` subcommand", False)
    text = out.stdout + out.stderr
    grpc = "--grpc-port" in text
    missing = [f for f in KILN_BATCH_FLAGS if f.startswith("--") and f not in text]
    if missing:
        return True, False, f"`{binary} serve --help` does not list {', '.join(missing)}", grpc
    return True, True, "", grpc


def onnxruntime_library() -> str:
    """libonnxruntime.so.<version> inside this virtualenv's onnxruntime package."""
    import onnxruntime

    found = sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so*")))
    if not found:
        raise SystemExit("the onnxruntime package in this virtualenv has no libonnxruntime.so")
    return found[-1]


def uvicorn_config() -> str:
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"loop {loop}, http {http}"


def server_spec(name: str, args, model: dict, sdir: str, port: int,
                support: dict) -> tuple[list[str], dict, str, str]:
    """(argv, extra environment, configuration, version) for one server."""
    bindir = os.path.dirname(sys.executable)
    if name in KILN_VARIANTS:
        binary = find_kiln(args)
        argv = [binary, "serve", "--model", f"{MODEL_NAME}={model['mlflow_dir']}",
                "--host", "127.0.0.1", "--port", str(port)]
        if support["kiln"][3]:
            # Its gRPC listener, when it has one, goes on a free port too.
            argv += ["--grpc-port", str(tracking.free_port())]
        conf = "defaults"
        if name == "kiln-batch":
            argv += KILN_BATCH_FLAGS
            conf = " ".join(KILN_BATCH_FLAGS)
        try:
            out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
            version = (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, subprocess.TimeoutExpired, IndexError):
            version = "?"
        # The same ONNX Runtime the other servers and the in-process figures use.
        env = {"ORT_DYLIB_PATH": onnxruntime_library()}
        return argv, env, f"{conf}; {binary}; ONNX Runtime {env['ORT_DYLIB_PATH']}", version
    if name == "mlserver":
        # A copy of the model folder plus settings.json with free ports. Everything else is
        # MLServer's default (parallel_workers 1, debug logging); the metrics server is off.
        root = os.path.join(sdir, "models")
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(model["mlserver_dir"], root)
        settings = {"host": "127.0.0.1", "http_port": port, "grpc_port": tracking.free_port(),
                    "metrics_port": tracking.free_port(), "metrics_endpoint": None}
        with open(os.path.join(root, "settings.json"), "w") as f:
            json.dump(settings, f, indent=2)
        argv = [os.path.join(bindir, "mlserver"), "start", root]
        conf = ("mlserver_sklearn.SKLearnModel, defaults (parallel_workers 1, debug on), "
                f"metrics endpoint off; uvicorn {uvicorn_config()}")
        return argv, {}, conf, f"mlserver {_pkg('mlserver')}, mlserver-sklearn {_pkg('mlserver-sklearn')}"
    if name == "fastapi":
        argv = [sys.executable, "-m", "uvicorn", "fastapi_server:app", "--app-dir", HERE,
                "--host", "127.0.0.1", "--port", str(port)]
        env = {"MODEL_PATH": model["onnx_path"], "MODEL_NAME": MODEL_NAME}
        conf = f"uvicorn defaults: 1 worker, {uvicorn_config()}, access log on; bench/serving/fastapi_server.py"
        return argv, env, conf, (f"fastapi {_pkg('fastapi')}, uvicorn {_pkg('uvicorn')}, "
                                 f"onnxruntime {_pkg('onnxruntime')}")
    raise ValueError(name)


def machine_busy_s() -> float:
    """CPU time spent by everything on the machine so far (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / tracking.CLK_TCK


def group_pids(pgid: int) -> list[int]:
    """Every process whose process group is `pgid`."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if int(fields[2]) == pgid:
            out.append(int(name))
    return out


class Server:
    def __init__(self, name: str, args, model: dict, workdir: str, support: dict):
        self.name = name
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = tracking.free_port()
        self.argv, self.env, self.config, self.version = server_spec(name, args, model, self.dir, self.port,
                                                                     support)
        self.proc: subprocess.Popen | None = None
        self.startup_s: float | None = None

    def start(self) -> None:
        env = dict(os.environ, DO_NOT_TRACK="true", MLFLOW_DISABLE_TELEMETRY="true", **self.env)
        logf = open(os.path.join(self.dir, "server.log"), "wb")
        log(f"{self.name}: starting on 127.0.0.1:{self.port}: {' '.join(self.argv)}")
        t0 = time.perf_counter()
        # New session: the server and everything it forks share one process group whose id
        # is the child's pid, so stop() signals exactly that group.
        self.proc = subprocess.Popen(self.argv, cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        _RUNNING.append(self)
        deadline = t0 + CAP_STARTUP_S
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.dir}/server.log")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.connect()
                conn.sock.settimeout(max(1.0, deadline - time.perf_counter()))
                conn.request("GET", READY_PATH)
                resp = conn.getresponse()
                resp.read()
                conn.close()
                if resp.status == 200:
                    self.startup_s = time.perf_counter() - t0
                    log(f"{self.name}: ready after {self.startup_s:.2f} s")
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} was not ready ({READY_PATH}) within {CAP_STARTUP_S:.0f} s")

    def cpu_seconds(self) -> float:
        return sum(tracking._cpu_seconds(p) for p in group_pids(self.proc.pid))

    def rss_mb(self) -> float:
        return sum(tracking._status_kb(p, "VmRSS") for p in group_pids(self.proc.pid)) / 1024.0

    def settle(self, window: float = 0.5, idle_share: float = 0.1) -> float:
        """Waits until the server's processes use under `idle_share` of a core over `window`."""
        t0 = time.perf_counter()
        last = self.cpu_seconds()
        while time.perf_counter() - t0 < CAP_SETTLE_S:
            time.sleep(window)
            cur = self.cpu_seconds()
            if cur - last < idle_share * window:
                break
            last = cur
        return time.perf_counter() - t0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        pgid = self.proc.pid
        if self.proc.poll() is None:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        # Workers that outlived the parent get a few seconds to exit on their own, then
        # whatever is left of the group we created is killed.
        deadline = time.perf_counter() + 5.0
        try:
            while True:
                os.killpg(pgid, 0)
                if time.perf_counter() >= deadline:
                    os.killpg(pgid, signal.SIGKILL)
                    log(f"{self.name}: process group {pgid} still there after SIGTERM; sent SIGKILL")
                    break
                time.sleep(0.1)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self in _RUNNING:
            _RUNNING.remove(self)
        self.proc = None


_RUNNING: list[Server] = []


def _cleanup() -> None:
    for srv in list(_RUNNING):
        try:
            srv.stop()
        except Exception:  # noqa: BLE001
            pass


def _on_signal(signum, _frame) -> None:
    _cleanup()
    sys.exit(128 + signum)


# --------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------


def answer_labels(body: bytes) -> list[int]:
    """The predicted labels in a V2 response: the output named `label` (ONNX) or `predict`
    (MLServer's scikit-learn runtime), else the first integer output."""
    resp = json.loads(body)
    outs = resp.get("outputs") or []
    pick = next((o for o in outs if o.get("name") in ("label", "predict")), None)
    if pick is None:
        pick = next((o for o in outs if str(o.get("datatype", "")).upper().startswith(("INT", "UINT"))), None)
    if pick is None:
        raise ValueError(f"no label output in {body[:300]!r}")
    flat, todo = [], [pick.get("data")]
    while todo:
        cur = todo.pop()
        if isinstance(cur, list):
            todo.extend(reversed(cur))
        else:
            flat.append(int(cur))
    return flat


def check_singles(srv: Server, model: dict) -> list[str]:
    """Every single-row body once: the server's label must be sklearn's."""
    c = tracking.Client(srv.port, timeout=REQUEST_TIMEOUT_S)
    problems = []
    try:
        for k, (body, expected) in enumerate(model["singles"]):
            status, data = c.request("POST", INFER_PATH, body.encode())
            if status != 200:
                raise RuntimeError(f"POST {INFER_PATH} -> {status}: {data[:300]!r}")
            got = answer_labels(data)
            if got != [expected]:
                problems.append(f"single row {k}: label {got}, sklearn {expected}")
    finally:
        c.close()
    return problems


def run_wrk(srv: Server, model: dict, conns: int, seconds: float, path: str = INFER_PATH) -> dict:
    """wrk, one thread, `conns` connections: single-row inference calls, or GETs of `path`."""
    wrk = shutil.which("wrk")
    if not wrk:
        raise RuntimeError("wrk not found (apt-get install -y wrk)")
    env = dict(os.environ, BENCH_PATH=path)
    env.pop("BENCH_BODIES", None)
    if path == INFER_PATH:
        env["BENCH_BODIES"] = model["single_file"]
    argv = [wrk, "-t1", f"-c{conns}", f"-d{max(1, int(round(seconds)))}s", "--timeout", f"{WRK_TIMEOUT_S}s",
            "-s", os.path.join(HERE, "wrk.lua"), f"http://127.0.0.1:{srv.port}{path}"]
    cpu0 = srv.cpu_seconds()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0 = machine_busy_s()
    t0 = time.perf_counter()
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + WRK_TIMEOUT_S + 60)
    wall = time.perf_counter() - t0
    busy1 = machine_busy_s()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu1 = srv.cpu_seconds()
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result: rc={out.returncode} {out.stdout[-500:]} {out.stderr[-500:]}")
    r = json.loads(line[len("BENCHJSON "):])
    secs = r["duration_us"] / 1e6
    errors = sum(r[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
    client_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "connections": conns, "requests": r["requests"], "seconds": round(secs, 3),
        "rps": r["requests"] / secs if secs else 0.0,
        "p50_ms": r["p50_us"] / 1e3, "p90_ms": r["p90_us"] / 1e3, "p99_ms": r["p99_us"] / 1e3,
        "p999_ms": r["p999_us"] / 1e3, "max_ms": r["lat_max_us"] / 1e3, "mean_ms": r["lat_mean_us"] / 1e3,
        "errors": errors, "err_status": r["err_status"], "err_timeout": r["err_timeout"],
        "server_cpu_pct": 100.0 * (cpu1 - cpu0) / wall, "client_cpu_pct": 100.0 * client_cpu / wall,
        "client_cpu_us_per_req": 1e6 * client_cpu / max(1, r["requests"]),
        # Whatever else ran on the machine meanwhile (another build, say) took this much.
        "other_cpu_pct": max(0.0, 100.0 * ((busy1 - busy0) - (cpu1 - cpu0) - client_cpu) / wall),
    }


def binary_answer_labels(body: bytes) -> list[int]:
    """The INT64 `label` output of an answer in the binary tensor extension (its JSON header is
    found by decoding one JSON value from the start; the binary outputs follow it)."""
    import numpy as np

    header, offset = json.JSONDecoder().raw_decode(body.decode("latin-1"))
    for o in header["outputs"]:
        size = (o.get("parameters") or {}).get("binary_data_size")
        if o["name"] == "label":
            if size is None:
                return [int(v) for v in o["data"]]
            return np.frombuffer(body[offset:offset + size], dtype=np.int64).tolist()
        offset += size or 0
    raise ValueError(f"no label output in {body[:300]!r}")


def batch_load(srv: Server, model: dict, seconds: float, binary: bool = False) -> dict:
    """1,000-row requests from one client, one after the other, for `seconds`; in JSON, or
    (`binary`) in the binary tensor extension with binary outputs."""
    c = tracking.Client(srv.port, timeout=REQUEST_TIMEOUT_S)
    if binary:
        body, header_length = model["batch_binary"]
        extra = b"Inference-Header-Content-Length: %d\r\n" % header_length
    else:
        body, extra = model["batch_body"], b""
    checks = []
    try:
        # Untimed first request: warms the server and checks all 1,000 labels.
        status, data = c.request("POST", INFER_PATH, body, extra)
        if status != 200:
            raise RuntimeError(f"1,000-row POST -> {status}: {data[:300]!r}")
        got = binary_answer_labels(data) if binary else answer_labels(data)
        if got != model["batch_labels"]:
            wrong = sum(1 for a, b in zip(got, model["batch_labels"]) if a != b)
            checks.append(f"1,000-row batch: {len(got)} labels back, {wrong} differ from sklearn")
        lat, errors, n = [], 0, 0
        cpu0 = srv.cpu_seconds()
        busy0, own0 = machine_busy_s(), time.process_time()
        t0 = time.perf_counter()
        deadline = t0 + seconds
        while n < CAP_BATCH_REQUESTS:
            t = time.perf_counter()
            status, _ = c.request("POST", INFER_PATH, body, extra)
            lat.append(time.perf_counter() - t)
            n += 1
            if status != 200:
                errors += 1
            if t + lat[-1] >= deadline:
                break
        wall = time.perf_counter() - t0
        busy1, own1 = machine_busy_s(), time.process_time()
        cpu1 = srv.cpu_seconds()
    finally:
        c.close()
    ok = n - errors
    return {"requests": n, "rows": ok * BATCH_ROWS, "wall_s": round(wall, 3),
            "rows_per_s": ok * BATCH_ROWS / wall, "p50_ms": tracking.percentile(lat, 50) * 1e3,
            "p99_ms": tracking.percentile(lat, 99) * 1e3, "errors": errors, "checks": checks,
            "body_bytes": len(body), "server_cpu_pct": 100.0 * (cpu1 - cpu0) / wall,
            "client_cpu_pct": 100.0 * (own1 - own0) / wall,
            "other_cpu_pct": max(0.0, 100.0 * ((busy1 - busy0) - (cpu1 - cpu0) - (own1 - own0)) / wall)}


def bench_server(name: str, args, model: dict, cfg: dict, workdir: str, support: dict) -> dict:
    res: dict = {"server": name, "errors": [], "checks": []}
    if name in KILN_VARIANTS:
        has_serve, has_batch, why, _grpc = support["kiln"]
        if not has_serve or (name == "kiln-batch" and not has_batch):
            res["skipped"] = why
            log(f"{name}: SKIPPED: {why}")
            return res
    try:
        srv = Server(name, args, model, workdir, support)
    except Exception as exc:  # noqa: BLE001
        res["errors"].append(f"setup: {exc}")
        log(f"{name}: {exc}")
        return res
    res["config"], res["version"] = srv.config, srv.version
    try:
        srv.start()
        res["startup_s"] = srv.startup_s
        res["settle_s"] = round(srv.settle(), 2)
        res["procs"] = len(group_pids(srv.proc.pid))
        run_loads(srv, name, model, cfg, res)
        if srv.alive():
            res["rss_mb"] = srv.rss_mb()
            res["procs"] = max(res["procs"], len(group_pids(srv.proc.pid)))
    except Exception as exc:  # noqa: BLE001
        res["errors"].append(f"start: {exc}")
        log(f"{name}: FAILED to start: {exc}")
    finally:
        srv.stop()
    return res


def run_loads(srv: Server, name: str, model: dict, cfg: dict, res: dict) -> None:
    try:
        res["checks"] = check_singles(srv, model)
    except Exception as exc:  # noqa: BLE001 - a server that cannot answer is not loaded
        res["errors"].append(f"check: {exc}")
        log(f"{name}: single-row check FAILED, no loads: {exc}")
        return
    log(f"{name}: {len(model['singles'])} single-row answers checked, {len(res['checks'])} wrong")
    # The client's ceiling: wrk against the server's cheapest route.
    try:
        res["ready_c8"] = run_wrk(srv, model, 8, cfg["ceiling_s"], READY_PATH)
        r = res["ready_c8"]
        log(f"{name}: GET {READY_PATH}, c=8: {r['rps']:,.0f} req/s, "
            f"wrk {r['client_cpu_us_per_req']:.1f} µs CPU per request")
    except Exception as exc:  # noqa: BLE001
        res["errors"].append(f"ready_c8: {exc}")
    try:
        run_wrk(srv, model, 8, cfg["warmup_s"])  # untimed warm-up
    except Exception as exc:  # noqa: BLE001
        res["errors"].append(f"warm-up: {exc}")
    for conns in CONCURRENCY:
        if not srv.alive():
            res["errors"].append(f"server exited with {srv.proc.returncode} before c={conns}")
            return
        time.sleep(0.5)
        key = f"c{conns}"
        try:
            res[key] = run_wrk(srv, model, conns, cfg["load_s"])
            r = res[key]
            log(f"{name}: c={conns}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.3f} ms, "
                f"p99 {r['p99_ms']:.3f} ms, {r['errors']} errors, server CPU {r['server_cpu_pct']:.0f}%, "
                f"wrk CPU {r['client_cpu_pct']:.0f}%")
        except Exception as exc:  # noqa: BLE001 - keep going with the other loads
            res["errors"].append(f"{key}: {exc}")
            log(f"{name}: c={conns} FAILED: {exc}")
    if not srv.alive():
        res["errors"].append(f"server exited with {srv.proc.returncode} before the batches")
        return
    time.sleep(0.5)
    try:
        res["batch"] = batch_load(srv, model, cfg["batch_s"])
        b = res["batch"]
        log(f"{name}: 1,000-row batches: {b['rows_per_s']:,.0f} rows/s, p50 {b['p50_ms']:.1f} ms, "
            f"{b['requests']} requests, {b['errors']} errors")
    except Exception as exc:  # noqa: BLE001
        res["errors"].append(f"batch: {exc}")
        log(f"{name}: batch FAILED: {exc}")
    if name in KILN_VARIANTS:
        # Only Kiln speaks the binary tensor extension (MLServer and the FastAPI server do not).
        time.sleep(0.5)
        try:
            res["batch_binary"] = batch_load(srv, model, cfg["batch_s"], binary=True)
            b = res["batch_binary"]
            log(f"{name}: 1,000-row batches, binary tensors: {b['rows_per_s']:,.0f} rows/s, "
                f"p50 {b['p50_ms']:.1f} ms, {b['requests']} requests, {b['errors']} errors")
        except Exception as exc:  # noqa: BLE001
            res["errors"].append(f"binary batch: {exc}")
            log(f"{name}: binary batch FAILED: {exc}")


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def fmt(v, kind: str) -> str:
    if v is None:
        return "–"
    if kind == "rate":
        return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"
    if kind == "ms":
        if v >= 100:
            return f"{v:,.0f}"
        return f"{v:.1f}" if v >= 10 else (f"{v:.2f}" if v >= 1 else f"{v:.3f}")
    if kind == "us":
        return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"
    if kind == "s":
        return f"{v:.1f}" if v >= 10 else f"{v:.2f}"
    if kind == "pct":
        return f"{v:.0f}%"
    return str(v)


def ratio_text(r: float) -> str:
    return f"{r:,.1f}×" if r >= 10 else f"{r:.2f}×"


def dig(d: dict | None, path: str):
    cur = d
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


# (label, path, higher is better, kind, in-process limit key)
ROWS = [
    ("c=1 throughput (req/s)", "c1.rps", True, "rate", "single_rps"),
    ("c=1 p50 (ms)", "c1.p50_ms", False, "ms", "single_ms"),
    ("c=1 p99 (ms)", "c1.p99_ms", False, "ms", None),
    ("c=8 throughput (req/s)", "c8.rps", True, "rate", "single_rps"),
    ("c=8 p50 (ms)", "c8.p50_ms", False, "ms", "single_ms"),
    ("c=8 p99 (ms)", "c8.p99_ms", False, "ms", None),
    ("c=32 throughput (req/s)", "c32.rps", True, "rate", "single_rps"),
    ("c=32 p50 (ms)", "c32.p50_ms", False, "ms", "single_ms"),
    ("c=32 p99 (ms)", "c32.p99_ms", False, "ms", None),
    ("1,000-row batches, 1 client (rows/s)", "batch.rows_per_s", True, "rate", "batch_rows_per_s"),
    ("1,000-row batch p50 (ms)", "batch.p50_ms", False, "ms", "batch_ms"),
    ("1,000-row batches, binary tensors (rows/s)", "batch_binary.rows_per_s", True, "rate", "batch_rows_per_s"),
    ("1,000-row binary batch p50 (ms)", "batch_binary.p50_ms", False, "ms", "batch_ms"),
]


def target_for(path: str, results: dict, inproc: dict | None):
    """(text, predicate on a Kiln value) for a row, or None."""
    if path in ("c8.rps", "c32.rps"):
        base = dig(results.get("fastapi"), path)
        if base:
            return f"≥ 10× fastapi ({fmt(10 * base, 'rate')})", (lambda v, b=base: v >= 10 * b)
        return f"≥ 10× fastapi (issue: {fmt(10 * ISSUE_FASTAPI_RPS, 'rate')})", (lambda v: v >= 10 * ISSUE_FASTAPI_RPS)
    if path in ("c1.p50_ms", "c8.p50_ms"):
        return "< 1 ms", lambda v: v < 1.0
    if path == "c8.p99_ms":
        return "< 5 ms", lambda v: v < 5.0
    if path in ("batch.rows_per_s", "batch_binary.rows_per_s") and inproc:
        floor = inproc["batch_rows_per_s"] / 1.5
        return f"≥ in-process ÷ 1.5 ({fmt(floor, 'rate')})", (lambda v, f=floor: v >= f)
    return None


def render_markdown(results: dict, inproc: dict | None, meta: dict) -> str:
    names = [n for n in ALL_SERVERS if n in results]
    ran = {n for n in names if "skipped" not in results[n]}
    kilns = [n for n in KILN_VARIANTS if n in ran]
    peers = [n for n in PEERS if n in ran]
    any_kiln = any(n in names for n in KILN_VARIANTS)
    limits = {}
    if inproc:
        limits = {"single_rps": inproc["single_rps"], "single_ms": inproc["single_us"] / 1e3,
                  "batch_rows_per_s": inproc["batch_rows_per_s"],
                  "batch_ms": inproc["batch_per_row_us"] * BATCH_ROWS / 1e3}
    ratio_cols = [(k, p) for k in kilns for p in peers]
    head = (["Workload"] + names + ["in-process ORT"] + [f"{k} vs {p}" for k, p in ratio_cols]
            + (["Kiln target"] if any_kiln else []))
    lines = [f"Mode: `{meta['mode']}` ({meta['load_s']} s per load), {meta['date']}, {meta['host']}.", ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for label, path, higher, kind, lim in ROWS:
        vals = {n: (None if n not in ran else dig(results[n], path)) for n in names}
        row = [label] + ["skipped" if n not in ran else fmt(vals[n], kind) for n in names]
        row.append(fmt(limits.get(lim), kind) if lim else "")
        for k, p in ratio_cols:
            kv, pv = vals.get(k), vals.get(p)
            row.append(ratio_text(kv / pv if higher else pv / kv) if kv and pv else "–")
        if any_kiln:
            t = target_for(path, results, inproc)
            if t is None:
                row.append("")
            else:
                text, pred = t
                # Batching is on in both Kiln variants (kiln's default merges requests that queue
                # while the sessions are busy; kiln-batch also waits up to 200 µs for them).
                judged = kilns
                marks = [f"{k} {'met' if pred(vals[k]) else 'missed'}"
                         for k in kilns if k in judged and vals.get(k) is not None]
                row.append(text + (": " + ", ".join(marks) if marks else ""))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Ratios are speed-ups: Kiln ÷ peer for rates, peer ÷ Kiln for times; above 1× means Kiln "
                 "is better. \"in-process ORT\" is the limit: the same model in ONNX Runtime's Python API "
                 "in the harness before the servers start, one `session.run` after another, the faster of "
                 "the two session settings below (single rows: 1 ÷ the median call; batches: the median "
                 "1,000-row call).")
    lines.append("")

    # Load, CPU and setup.
    lines.append("| Load and setup | " + " | ".join(names) + " |")
    lines.append("|---|" + "|".join(["---:"] * len(names)) + "|")

    def setup_row(label: str, fn) -> None:
        cells = []
        for n in names:
            if n not in ran:
                cells.append("skipped")
                continue
            try:
                cells.append(fn(results[n]))
            except (TypeError, KeyError):
                cells.append("–")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    def pcts(r: dict, field: str) -> str:
        parts = [f"c={c} {r[f'c{c}'][field]:.0f}%" for c in CONCURRENCY if f"c{c}" in r]
        if "batch" in r:
            parts.append(f"batch {r['batch'][field]:.0f}%")
        if "batch_binary" in r:
            parts.append(f"binary batch {r['batch_binary'][field]:.0f}%")
        return ", ".join(parts) or "–"

    setup_row("Server CPU (% of one core)", lambda r: pcts(r, "server_cpu_pct"))
    setup_row("Client CPU: wrk; the harness for batches (% of one core)", lambda r: pcts(r, "client_cpu_pct"))
    setup_row("Other processes' CPU meanwhile (% of one core)", lambda r: pcts(r, "other_cpu_pct"))
    setup_row("wrk CPU per request at c=1, 8, 32 (µs)",
              lambda r: ", ".join(f"{r[f'c{c}']['client_cpu_us_per_req']:.0f}" if f"c{c}" in r else "–"
                                  for c in CONCURRENCY))
    setup_row(f"Client ceiling: GET {READY_PATH}, wrk c=8 (req/s; wrk µs CPU per request)",
              lambda r: f"{r['ready_c8']['rps']:,.0f}; {r['ready_c8']['client_cpu_us_per_req']:.0f}")
    setup_row("Requests timed (c=1, 8, 32; batches)",
              lambda r: ", ".join(f"{r[f'c{c}']['requests']:,}" if f"c{c}" in r else "–" for c in CONCURRENCY)
              + (f"; {r['batch']['requests']:,}" if "batch" in r else ""))
    setup_row("Failed requests", lambda r: str(sum(r[f"c{c}"]["errors"] for c in CONCURRENCY if f"c{c}" in r)
                                               + (r["batch"]["errors"] if "batch" in r else 0)))
    setup_row("Time to ready (s)", lambda r: fmt(r.get("startup_s"), "s"))
    setup_row("Processes; RSS after the loads (MB)", lambda r: f"{r['procs']}; {r['rss_mb']:,.0f}")
    lines.append("")

    if inproc:
        d, o = inproc["default"], inproc["one_thread"]
        lines.append("| In-process ONNX Runtime (Python API, same model) | default session | intra_op_num_threads=1 |")
        lines.append("|---|---:|---:|")
        lines.append(f"| single row, median `session.run` (µs) | {fmt(d['single_p50_us'], 'us')} | {fmt(o['single_p50_us'], 'us')} |")
        lines.append(f"| single row, p99 (µs) | {fmt(d['single_p99_us'], 'us')} | {fmt(o['single_p99_us'], 'us')} |")
        lines.append(f"| 1,000-row batch, per row (µs) | {d['batch_per_row_us']:.2f} | {o['batch_per_row_us']:.2f} |")
        lines.append(f"| 1,000-row batch (rows/s) | {fmt(d['batch_rows_per_s'], 'rate')} | {fmt(o['batch_rows_per_s'], 'rate')} |")
        lines.append("")
        lines.append(f"Other processes used {inproc['other_cpu_pct']:.0f}% of one core while these were measured.")
        lines.append("")

    lines.append("Servers:")
    for n in names:
        r = results[n]
        if "skipped" in r:
            lines.append(f"- {n}: skipped: {r['skipped']}.")
        elif "config" in r:
            lines.append(f"- {n}: {r.get('version', '?')}; {r['config']}.")
        else:
            lines.append(f"- {n}: not run.")
    lines.append(f"- model: {meta['model']}.")
    problems = []
    for n in names:
        r = results[n]
        problems += [f"- {n}: {e}" for e in r.get("errors", [])]
        problems += [f"- {n}: check: {c}" for c in r.get("checks", [])]
        problems += [f"- {n}: check: {c}" for c in dig(r, "batch.checks") or []]
        for c in CONCURRENCY:
            e = dig(r, f"c{c}.errors")
            if e:
                problems.append(f"- {n}: c={c}: {e} failed requests "
                                f"({dig(r, f'c{c}.err_status')} non-2xx, {dig(r, f'c{c}.err_timeout')} timeouts)")
        if dig(r, "batch.errors"):
            problems.append(f"- {n}: batch: {dig(r, 'batch.errors')} failed requests")
    if meta.get("onnx_sklearn_disagree"):
        problems.append(f"- model: ONNX and sklearn disagree on {meta['onnx_sklearn_disagree']} rows")
    if problems:
        lines.append("")
        lines.append("Problems:")
        lines.extend(problems)
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default=",".join(ALL_SERVERS),
                    help="comma-separated subset of: " + ",".join(ALL_SERVERS))
    ap.add_argument("--quick", action="store_true", help="3 s per load, to check the harness")
    ap.add_argument("--workdir", default="",
                    help="model, logs and results (default /var/tmp/kiln-bench-serving-runs/<time>)")
    ap.add_argument("--out", default="", help="also write the Markdown table to this file")
    ap.add_argument("--kiln-bin", default="", help="kiln binary (default $KILN_BIN, then /var/tmp/kiln-target/...)")
    args = ap.parse_args()

    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    bad = [s for s in servers if s not in ALL_SERVERS]
    if bad:
        ap.error(f"unknown server(s): {', '.join(bad)}")
    servers = [s for s in ALL_SERVERS if s in servers]
    mode = "quick" if args.quick else "full"
    cfg = SIZES[mode]
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = os.path.abspath(args.workdir or os.path.join("/var/tmp/kiln-bench-serving-runs", stamp))
    os.makedirs(workdir, exist_ok=True)
    if not shutil.which("wrk"):
        log("wrk not found (Debian: apt-get install wrk); bench/serving/run installs it")
        return 2

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_signal)

    log(f"mode {mode}; servers {','.join(servers)}; workdir {workdir}")
    support = {}
    if any(s in KILN_VARIANTS for s in servers):
        binary = find_kiln(args)
        support["kiln"] = kiln_serve_support(binary)
        if not support["kiln"][0]:
            log(f"kiln: `kiln serve` unavailable, kiln is skipped: {support['kiln'][2]}")
        elif not support["kiln"][1] and "kiln-batch" in servers:
            log(f"kiln-batch: batching flags unavailable, kiln-batch is skipped: {support['kiln'][2]}")

    model = build_model(workdir)
    inproc = measure_inprocess(model, cfg)
    results: dict = {}
    meta = {"mode": "--quick" if args.quick else "full", "load_s": cfg["load_s"],
            "date": time.strftime("%Y-%m-%d"),
            "host": f"{os.cpu_count()} cores, {tracking._mem_gib():.0f} GiB",
            "model": (f"RandomForestClassifier(n_estimators=100, random_state=0) on breast_cancer "
                      f"({model['rows']} rows × {N_FEATURES}); scikit-learn {_pkg('scikit-learn')}, "
                      f"skl2onnx {_pkg('skl2onnx')}, onnx {_pkg('onnx')}, onnxruntime {_pkg('onnxruntime')}, "
                      f"ONNX file {model['onnx_bytes']:,} bytes; Python {platform.python_version()}"),
            "onnx_sklearn_disagree": model["onnx_sklearn_disagree"]}

    def save() -> None:
        with open(os.path.join(workdir, "results.json"), "w") as f:
            json.dump({"meta": meta, "cfg": cfg, "inprocess": inproc, "results": results}, f, indent=2)

    try:
        for name in servers:
            results[name] = bench_server(name, args, model, cfg, workdir, support)
            save()
    finally:
        _cleanup()

    md = render_markdown(results, inproc, meta)
    with open(os.path.join(workdir, "results.md"), "w") as f:
        f.write(md)
    if args.out:
        with open(args.out, "w") as f:
            f.write(md)
    sys.stdout.write(md)
    skipped = [n for n in servers if "skipped" in results.get(n, {})]
    if skipped:
        log(f"skipped: {', '.join(skipped)} (see 'Servers' under the table)")
    log(f"results: {workdir}/results.md, {workdir}/results.json")
    failed = any(r.get("errors") or r.get("checks") or dig(r, "batch.checks") for r in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
