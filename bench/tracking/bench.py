#!/usr/bin/env python3
"""Tracking-server benchmark: Kiln vs `mlflow server` vs FastTrackML.

Starts each server on a fresh SQLite store on a loopback port, runs the same
client load against each (workloads W1-W5, see bench/README.md), and prints a
Markdown table with each server's figures and Kiln's ratio to each peer.

Standard library only; W3 and the concurrent /health ceiling use `wrk`.
Normally started through bench/tracking/run, which prepares the virtualenvs.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import http.client
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
API = "/api/2.0/mlflow"
ALL_SERVERS = ("kiln", "mlflow", "fasttrackml")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

# Workload sizes. "full" is what the README reports; "quick" only checks the harness.
SIZES = {
    "full": dict(
        w1_runs=1000,
        w2_seconds=10.0,
        w3_seconds=10,
        w4_runs=10000,
        w4_queries=50,
        w5_points=100000,
        w5_reads=5,
        ceiling_seconds=3.0,
    ),
    "quick": dict(
        w1_runs=100,
        w2_seconds=2.0,
        w3_seconds=2,
        w4_runs=500,
        w4_queries=10,
        w5_points=10000,
        w5_reads=3,
        ceiling_seconds=1.0,
    ),
}

# Hard caps so that no loop can run away, whatever the server does.
CAP_STARTUP_S = 180.0
CAP_W1_S = 600.0
CAP_W2_BATCHES_PER_CLIENT = 20000
CAP_W4_SEED_S = 3600.0
CAP_W4_QUERIES_S = 300.0
CAP_W5_INGEST_S = 900.0
CAP_W5_READS_S = 300.0
CAP_HISTORY_PAGES = 10000
REQUEST_TIMEOUT_S = 120.0

# Targets from the issue. "x FML" targets are relative to FastTrackML measured
# in the same run; the figure after "or" is used when FastTrackML was not run.
ISSUE_FML = {"w1": 515.0, "w2_1": 28000.0, "w2_8": 64000.0, "w3_rps": 600.0}


def log(msg: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------
# HTTP client (one persistent keep-alive connection per thread)
# --------------------------------------------------------------------------


class HTTPError(Exception):
    pass


class Client:
    """Minimal HTTP/1.1 keep-alive client over one socket.

    http.client spends ~100 us of CPU per request parsing headers with the
    email package; this client writes each request with one sendall() and reads
    the response with a few recv() calls, so that the sequential workloads
    measure the server rather than the client. Handles Content-Length, chunked
    bodies and "Connection: close".
    """

    def __init__(self, port: int, timeout: float = REQUEST_TIMEOUT_S):
        self.port = port
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.errors = 0
        self.host = f"Host: 127.0.0.1:{port}\r\n".encode()

    def _connect(self) -> None:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        self.buf = bytearray()

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 18)
        if not chunk:
            raise ConnectionError("connection closed by server")
        self.buf += chunk

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _line(self) -> bytes:
        while (i := self.buf.find(b"\r\n")) < 0:
            self._fill()
        out = bytes(self.buf[:i])
        del self.buf[: i + 2]
        return out

    def _read_response(self, method: str) -> tuple[int, bytes]:
        while True:
            while (i := self.buf.find(b"\r\n\r\n")) < 0:
                self._fill()
            head = bytes(self.buf[:i]).split(b"\r\n")
            del self.buf[: i + 4]
            status = int(head[0].split(None, 2)[1])
            if status != 100:
                break
        length, chunked, close = None, False, head[0].startswith(b"HTTP/1.0")
        for line in head[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"connection":
                close = value == b"close" or (close and value != b"keep-alive")
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif chunked:
            parts = []
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():  # trailers end with an empty line
                        pass
                    break
                parts.append(self._take(size))
                self._take(2)
            body = b"".join(parts)
        elif length is not None:
            body = self._take(length)
        else:  # body delimited by the end of the connection
            try:
                while True:
                    self._fill()
            except ConnectionError:
                pass
            body, close = bytes(self.buf), True
        if close:
            self.close()
        return status, body

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: bytes = b"") -> tuple[int, bytes]:
        """`headers` are extra header lines, each ending in CRLF."""
        head = f"{method} {path} HTTP/1.1\r\n".encode() + self.host + headers
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        msg = head + b"\r\n" + (body or b"")
        for attempt in (0, 1):
            fresh = self.sock is None
            if fresh:
                self._connect()
            try:
                self.sock.sendall(msg)
                return self._read_response(method)
            except (ConnectionError, socket.timeout, OSError):
                self.close()
                # A kept-alive connection may have been closed by the server
                # while idle: retry once on a new one. Never retry a fresh one.
                if fresh or attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, body: bytes | None = None) -> bytes:
        """Request that must succeed; counts and raises on a non-2xx status."""
        status, data = self.request(method, path, body)
        if not 200 <= status < 300:
            self.errors += 1
            raise HTTPError(f"{method} {path} -> {status}: {data[:300]!r}")
        return data

    def post_json(self, path: str, obj) -> dict:
        data = self.call("POST", API + path, json.dumps(obj).encode())
        return json.loads(data) if data else {}

    def get_json(self, path: str) -> dict:
        data = self.call("GET", API + path)
        return json.loads(data) if data else {}

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        self.buf = bytearray()


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def now_ms() -> int:
    return int(time.time() * 1000)


# --------------------------------------------------------------------------
# Process tree accounting (RSS high-water marks and CPU time)
# --------------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        kids.setdefault(int(fields[1]), []).append(int(name))
    return kids


def process_tree(root: int) -> list[int]:
    kids = _children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(b")") + 2 :].split()
    # utime, stime, cutime, cstime are fields 14-17 (1-based); after the comm they start at index 11.
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


class TreeSampler(threading.Thread):
    """Samples the server's process tree every `interval` seconds.

    Keeps, for every process ever seen in the tree, its VmHWM (peak resident set)
    and its CPU time, so that workers that exit early are still counted.
    """

    def __init__(self, root: int, interval: float = 0.5, rescan_every: int = 4):
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.rescan_every = rescan_every
        self._pids: list[int] = []
        self._n = 0
        self.own_cpu = 0.0
        self.hwm_kb: dict[int, int] = {}
        self.cpu_s: dict[int, float] = {}
        self.peak_sum_rss_kb = 0
        self.max_procs = 0
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def sample(self, rescan: bool = False) -> None:
        # Walking the whole of /proc costs a few ms; the tree is re-walked only
        # every few samples (and on request), the known pids are read each time.
        if rescan or self._n % self.rescan_every == 0 or not self._pids:
            self._pids = process_tree(self.root)
        self._n += 1
        pids = self._pids
        total_rss = 0
        with self._lock:
            for pid in pids:
                hwm = _status_kb(pid, "VmHWM")
                if hwm:
                    self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), hwm)
                total_rss += _status_kb(pid, "VmRSS")
                cpu = _cpu_seconds(pid)
                if cpu:
                    self.cpu_s[pid] = max(self.cpu_s.get(pid, 0.0), cpu)
            self.peak_sum_rss_kb = max(self.peak_sum_rss_kb, total_rss)
            self.max_procs = max(self.max_procs, len(pids))

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.sample()
            # This thread's own CPU time, which Measure takes out of the client's.
            self.own_cpu = time.thread_time()

    def stop(self) -> None:
        self._halt.set()

    def peak_rss_mb(self) -> float:
        with self._lock:
            return sum(self.hwm_kb.values()) / 1024.0

    def cpu_total(self) -> float:
        self.sample(rescan=True)
        with self._lock:
            return sum(self.cpu_s.values())


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_kiln_bin() -> str | None:
    for cand in (
        os.environ.get("KILN_BIN"),
        "/var/tmp/kiln-target/release/kiln",
        "/var/tmp/kiln-target/debug/kiln",
    ):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def server_command(name: str, args, port: int, db: str, art: str) -> tuple[list[str], str]:
    """Returns (argv, description of the configuration)."""
    if name == "kiln":
        binary = args.kiln_bin or find_kiln_bin()
        if not binary:
            raise RuntimeError(
                "no kiln binary: set KILN_BIN or build to /var/tmp/kiln-target/{release,debug}/kiln"
            )
        argv = [binary, "server", "--host", "127.0.0.1", "--port", str(port),
                "--backend-store-uri", f"sqlite:///{db}", "--artifacts-destination", art]
        return argv, f"{binary}"
    if name == "mlflow":
        argv = [os.path.join(args.mlflow_venv, "bin", "mlflow"), "server",
                "--host", "127.0.0.1", "--port", str(port),
                "--backend-store-uri", f"sqlite:///{db}", "--artifacts-destination", art]
        desc = "defaults (uvicorn, 4 workers)"
        if args.mlflow_workers:
            argv += ["--workers", str(args.mlflow_workers)]
            desc = f"uvicorn, --workers {args.mlflow_workers}"
        return argv, desc
    if name == "fasttrackml":
        argv = [os.path.join(args.fml_venv, "bin", "fml"), "server",
                "--listen-address", f"127.0.0.1:{port}",
                "--database-uri", f"sqlite://{db}",
                "--default-artifact-root", art]
        return argv, "defaults (log level info, pool 20)"
    raise ValueError(name)


def server_version(name: str, args) -> str:
    try:
        if name == "kiln":
            binary = args.kiln_bin or find_kiln_bin()
            out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"
        if name == "mlflow":
            out = subprocess.run([os.path.join(args.mlflow_venv, "bin", "python"), "-c",
                                  "import importlib.metadata as m; print(m.version('mlflow'))"],
                                 capture_output=True, text=True, timeout=60)
            return "mlflow " + out.stdout.strip()
        if name == "fasttrackml":
            out = subprocess.run([os.path.join(args.fml_venv, "bin", "fml"), "--version"],
                                 capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"
    except Exception as exc:  # noqa: BLE001 - informational only
        return f"? ({exc})"
    return "?"


class Server:
    def __init__(self, name: str, args, workdir: str):
        self.name = name
        self.args = args
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.db = os.path.join(self.dir, "store.db")
        self.art = os.path.join(self.dir, "artifacts")
        for p in (self.db, self.db + "-wal", self.db + "-shm", self.db + "-journal"):
            if os.path.exists(p):
                os.remove(p)
        shutil.rmtree(self.art, ignore_errors=True)
        os.makedirs(self.art)
        self.port = free_port()
        self.argv, self.config = server_command(name, args, self.port, self.db, self.art)
        self.proc: subprocess.Popen | None = None
        self.sampler: TreeSampler | None = None
        self.startup_s: float | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env.update(DO_NOT_TRACK="true", MLFLOW_DISABLE_TELEMETRY="true")
        logf = open(os.path.join(self.dir, "server.log"), "wb")
        log(f"{self.name}: starting on 127.0.0.1:{self.port}: {' '.join(self.argv)}")
        t0 = time.perf_counter()
        # New session: the server and everything it forks share one process group
        # whose id is the child's pid, so stop() can signal exactly that group.
        self.proc = subprocess.Popen(self.argv, cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        _RUNNING.append(self)
        self.sampler = TreeSampler(self.proc.pid)
        self.sampler.start()
        deadline = t0 + CAP_STARTUP_S
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.dir}/server.log")
            try:
                # Connecting fails at once until the server listens. Once it
                # listens, wait for the answer on that same connection rather
                # than piling up abandoned ones in the listen backlog.
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.connect()
                conn.sock.settimeout(max(1.0, deadline - time.perf_counter()))
                conn.request("GET", "/health")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    self.startup_s = time.perf_counter() - t0
                    log(f"{self.name}: first 200 on /health after {self.startup_s:.3f} s")
                    self.sampler.sample(rescan=True)
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.005)
        raise RuntimeError(f"{self.name} did not answer /health within {CAP_STARTUP_S:.0f} s")

    def settle(self, window: float = 0.5, idle_share: float = 0.1, cap: float = 120.0) -> float:
        """Waits until the server tree uses under `idle_share` of a core over `window`.

        MLflow answers its first request as soon as one of its workers is up,
        while the others are still importing; the workloads should not pay for that.
        """
        t0 = time.perf_counter()
        last = self.sampler.cpu_total()
        while time.perf_counter() - t0 < cap:
            time.sleep(window)
            cur = self.sampler.cpu_total()
            if cur - last < idle_share * window:
                break
            last = cur
        return time.perf_counter() - t0

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.sampler:
            self.sampler.sample(rescan=True)
            self.sampler.stop()
        pgid = self.proc.pid
        if self.proc.poll() is None:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        # Reap stragglers (e.g. workers) of the group we created.
        try:
            os.killpg(pgid, 0)
            time.sleep(0.5)
            os.killpg(pgid, signal.SIGKILL)
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


def _cleanup(*_a) -> None:
    for srv in list(_RUNNING):
        try:
            srv.stop()
        except Exception:  # noqa: BLE001
            pass


def _on_signal(signum, _frame) -> None:
    _cleanup()
    sys.exit(128 + signum)


# --------------------------------------------------------------------------
# Helpers shared by workloads
# --------------------------------------------------------------------------

RUN_TAGS = [
    {"key": "mlflow.user", "value": "bench"},
    {"key": "mlflow.source.name", "value": "bench.py"},
    {"key": "mlflow.source.type", "value": "LOCAL"},
]


def create_experiment(c: Client, name: str) -> str:
    return c.post_json("/experiments/create", {"name": f"{name}-{random.randrange(1 << 30)}"})["experiment_id"]


def create_run(c: Client, exp_id: str, name: str) -> str:
    body = {"experiment_id": exp_id, "start_time": now_ms(), "run_name": name, "tags": RUN_TAGS}
    run = c.post_json("/runs/create", body)["run"]
    return run["info"]["run_id"]


class BatchTemplate:
    """Pre-rendered log-batch body of `n` metric points; each render gets new steps and
    new timestamps, as a training job's client stamps each call with its clock.

    Entry i has key keys[i % len(keys)], step B*per_key + i//len(keys) and timestamp
    (ts // 10**w + B) * 10**w + i (w digits hold i: with n = 1,000 each batch is one
    second after the one before, its points a millisecond apart), where B is the
    (1-based) batch number. Rendering is two str.replace calls so that body
    construction costs microseconds, not milliseconds.
    """

    def __init__(self, run_id: str, n: int, keys: list[str], ts: int, seed: int):
        rng = random.Random(seed)
        nk = len(keys)
        per_key = n // nk
        width = len(str(per_key - 1)) if per_key > 1 else 1
        if per_key != 10 ** width:
            # Steps are formed as str(B) + zero-padded offset, which needs per_key = 10**k.
            raise ValueError("points per key must be a power of ten")
        ts_width = len(str(n - 1))
        parts = []
        for i in range(n):
            off = str(i // nk).zfill(width)
            parts.append('{"key":"%s","value":%.6f,"timestamp":@T@%s,"step":@B@%s}'
                         % (keys[i % nk], rng.random(), str(i).zfill(ts_width), off))
        self.per_key = per_key
        self.ts_base = ts // 10 ** ts_width
        self.template = '{"run_id":"%s","metrics":[%s]}' % (run_id, ",".join(parts))

    def render(self, batch_no: int) -> bytes:
        body = self.template.replace("@B@", str(batch_no)).replace("@T@", str(self.ts_base + batch_no))
        return body.encode()


def run_wrk(port: int, path: str, seconds: float, conns: int, threads: int, env_extra: dict) -> dict:
    wrk = shutil.which("wrk")
    if not wrk:
        raise RuntimeError("wrk not found (apt-get install -y wrk)")
    env = dict(os.environ, BENCH_THREADS=str(threads), **env_extra)
    argv = [wrk, f"-t{threads}", f"-c{conns}", f"-d{max(1, int(round(seconds)))}s",
            "--timeout", "30s", "-s", os.path.join(HERE, "wrk.lua"), f"http://127.0.0.1:{port}{path}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result: rc={out.returncode} {out.stdout[-500:]} {out.stderr[-500:]}")
    res = json.loads(line[len("BENCHJSON "):])
    res["client_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    res["seconds"] = res["duration_us"] / 1e6
    res["rps"] = res["requests"] / res["seconds"] if res["seconds"] else 0.0
    res["errors"] = sum(res[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
    return res


class Measure:
    """Wall time, driver CPU time and server CPU time over a block."""

    def __init__(self, srv: Server):
        self.srv = srv

    def __enter__(self):
        # Reading the server's CPU time walks /proc; keep that out of both clocks.
        self.scpu0 = self.srv.sampler.cpu_total()
        self.cpu0 = time.process_time() - self.srv.sampler.own_cpu
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        self.client_cpu = time.process_time() - self.srv.sampler.own_cpu - self.cpu0
        self.server_cpu = self.srv.sampler.cpu_total() - self.scpu0
        return False

    def info(self) -> dict:
        return {"wall_s": round(self.wall, 4), "client_cpu_s": round(self.client_cpu, 4),
                "server_cpu_s": round(self.server_cpu, 4)}


# --------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------


def ceiling(srv: Server, cfg: dict) -> dict:
    """How fast can the clients go against this server's trivial /health endpoint?"""
    c = Client(srv.port)
    n, lat = 0, []
    with Measure(srv) as m:
        deadline = time.perf_counter() + cfg["ceiling_seconds"]
        while time.perf_counter() < deadline and n < 1_000_000:
            t = time.perf_counter()
            c.call("GET", "/health")
            lat.append(time.perf_counter() - t)
            n += 1
    c.close()
    # The client's own CPU per request bounds what it can drive on one core.
    seq = {"rps": n / m.wall, "p50_ms": percentile(lat, 50) * 1e3,
           "client_cpu_us_per_req": 1e6 * m.client_cpu / n, **m.info()}
    w = run_wrk(srv.port, "/health", max(1.0, cfg["ceiling_seconds"]), 8, 1, {"BENCH_MODE": "health"})
    return {"python_seq": seq, "wrk_c8": {"rps": w["rps"], "p50_ms": w["p50_us"] / 1e3,
                                          "p99_ms": w["p99_us"] / 1e3, "errors": w["errors"],
                                          "client_cpu_s": w["client_cpu_s"], "seconds": w["seconds"],
                                          "client_cpu_us_per_req": 1e6 * w["client_cpu_s"] / max(1, w["requests"])}}


def w1(srv: Server, cfg: dict) -> dict:
    c = Client(srv.port)
    exp = create_experiment(c, "w1")
    create_run(c, exp, "w1-warmup")  # untimed: first-request costs stay out of the figure
    n, lat, errors = cfg["w1_runs"], [], 0
    done = 0
    with Measure(srv) as m:
        deadline = time.perf_counter() + CAP_W1_S
        for i in range(n):
            body = json.dumps({"experiment_id": exp, "start_time": now_ms(), "run_name": f"w1-{i}",
                               "tags": RUN_TAGS}).encode()
            t = time.perf_counter()
            status, _ = c.request("POST", API + "/runs/create", body)
            lat.append(time.perf_counter() - t)
            if status != 200:
                errors += 1
            done += 1
            if time.perf_counter() > deadline:
                break
    c.close()
    return {"runs": done, "runs_per_s": done / m.wall, "p50_ms": percentile(lat, 50) * 1e3,
            "p99_ms": percentile(lat, 99) * 1e3, "errors": errors, "capped": done < n, **m.info()}


def w2(srv: Server, cfg: dict, clients: int) -> dict:
    setup = Client(srv.port)
    exp = create_experiment(setup, f"w2-c{clients}")
    ts = now_ms()
    templates = [BatchTemplate(create_run(setup, exp, f"w2-{k}"), 1000, [f"m{j}" for j in range(10)], ts, k)
                 for k in range(clients)]
    setup.close()
    counts = [0] * clients
    errors = [0] * clients
    failures: list[str] = []
    # ready: every client has sent its warm-up batch; go: the measured window starts.
    ready = threading.Barrier(clients + 1, timeout=REQUEST_TIMEOUT_S + 30)
    go = threading.Barrier(clients + 1, timeout=REQUEST_TIMEOUT_S + 30)
    seconds = cfg["w2_seconds"]

    def worker(k: int) -> None:
        c = Client(srv.port)
        tpl = templates[k]
        b = 1
        try:
            c.call("POST", API + "/runs/log-batch", tpl.render(b))  # untimed warm-up batch
        except Exception as exc:  # noqa: BLE001
            failures.append(f"warm-up: {exc!r}")
        try:
            ready.wait()
            go.wait()
        except threading.BrokenBarrierError:
            c.close()
            return
        deadline = time.perf_counter() + seconds
        try:
            while time.perf_counter() < deadline and b < CAP_W2_BATCHES_PER_CLIENT:
                b += 1
                status, data = c.request("POST", API + "/runs/log-batch", tpl.render(b))
                if status == 200:
                    counts[k] += 1
                else:
                    errors[k] += 1
                    if len(failures) < 3:
                        failures.append(f"{status}: {data[:200]!r}")
        except Exception as exc:  # noqa: BLE001
            errors[k] += 1
            failures.append(repr(exc))
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    ready.wait()
    with Measure(srv) as m:
        go.wait()
        for t in threads:
            t.join(timeout=seconds + REQUEST_TIMEOUT_S + 30)
    points = sum(counts) * 1000
    return {"clients": clients, "batches": sum(counts), "points": points, "points_per_s": points / m.wall,
            "errors": sum(errors), "failures": failures, **m.info()}


def w3(srv: Server, cfg: dict) -> dict:
    c = Client(srv.port)
    exp = create_experiment(c, "w3")
    run_ids = [create_run(c, exp, f"w3-{k}") for k in range(8)]
    c.close()
    # Warm the path once so that the first-request costs do not land in the window.
    wc = Client(srv.port)
    wc.post_json("/runs/log-metric", {"run_id": run_ids[0], "key": "warm", "value": 0.0,
                                      "timestamp": now_ms(), "step": 0})
    wc.close()
    with Measure(srv) as m:
        res = run_wrk(srv.port, API + "/runs/log-metric", cfg["w3_seconds"], 8, 1,
                      {"BENCH_MODE": "log-metric", "BENCH_RUN_IDS": ",".join(run_ids), "BENCH_TS": str(now_ms())})
    out = {"rps": res["rps"], "p50_ms": res["p50_us"] / 1e3, "p99_ms": res["p99_us"] / 1e3,
           "requests": res["requests"], "errors": res["errors"], "err_status": res["err_status"],
           "wrk_seconds": res["seconds"], **m.info()}
    out["client_cpu_s"] = round(res["client_cpu_s"], 4)  # wrk's own CPU time
    return out


def w4(srv: Server, cfg: dict) -> dict:
    setup = Client(srv.port)
    exp = create_experiment(setup, "w4")
    setup.close()
    n = cfg["w4_runs"]
    lrs = ["0.01", "0.1", "0.001", "0.05"]
    rng = random.Random(42)
    plan = [(lrs[i % len(lrs)], rng.random()) for i in range(n)]
    expected = sorted(loss for lr, loss in plan if lr == "0.01" and loss < 0.5)
    seeded = [0] * 8
    seed_errors: list[str] = []
    ts = now_ms()

    def seeder(k: int) -> None:
        c = Client(srv.port)
        deadline = time.perf_counter() + CAP_W4_SEED_S
        try:
            for i in range(k, n, 8):
                if time.perf_counter() > deadline:
                    seed_errors.append("seeding time cap reached")
                    return
                lr, loss = plan[i]
                run_id = create_run(c, exp, f"w4-{i}")
                c.post_json("/runs/log-batch", {
                    "run_id": run_id,
                    "params": [{"key": "lr", "value": lr}],
                    "metrics": [{"key": "loss", "value": loss, "timestamp": ts + i, "step": 0}],
                })
                seeded[k] += 1
        except Exception as exc:  # noqa: BLE001
            seed_errors.append(repr(exc))
        finally:
            c.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=seeder, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=CAP_W4_SEED_S + REQUEST_TIMEOUT_S)
    seed_s = time.perf_counter() - t0
    if seed_errors:
        raise RuntimeError(f"W4 seeding failed: {seed_errors[:3]}")
    log(f"{srv.name}: W4 seeded {sum(seeded)} runs in {seed_s:.1f} s")

    c = Client(srv.port)
    filtered = {"experiment_ids": [exp], "filter": "metrics.loss < 0.5 and params.lr = '0.01'",
                "order_by": ["metrics.loss ASC"], "max_results": 100}
    unfiltered = {"experiment_ids": [exp], "max_results": 1000}
    out = {"seeded_runs": sum(seeded), "seed_s": round(seed_s, 2), "checks": []}
    for label, body, want in (("filtered", filtered, min(100, len(expected))),
                              ("unfiltered", unfiltered, min(1000, n))):
        raw = json.dumps(body).encode()
        # One untimed query to check the answer.
        first = json.loads(c.call("POST", API + "/runs/search", raw) or b"{}")
        runs = first.get("runs", [])
        if len(runs) != want:
            out["checks"].append(f"{label}: {len(runs)} runs returned, expected {want}")
        if label == "filtered" and runs:
            got = [next((mm["value"] for mm in r["data"].get("metrics", []) if mm["key"] == "loss"), None)
                   for r in runs]
            if [round(x, 6) for x in got if x is not None] != [round(x, 6) for x in expected[:len(got)]]:
                out["checks"].append("filtered: runs not in ascending metrics.loss order or wrong runs")
        lat = []
        deadline = time.perf_counter() + CAP_W4_QUERIES_S
        with Measure(srv) as m:
            for _ in range(cfg["w4_queries"]):
                t = time.perf_counter()
                c.call("POST", API + "/runs/search", raw)
                lat.append(time.perf_counter() - t)
                if time.perf_counter() > deadline:
                    break
        out[label] = {"queries": len(lat), "p50_ms": percentile(lat, 50) * 1e3,
                      "p99_ms": percentile(lat, 99) * 1e3, "returned": len(runs), **m.info()}
    c.close()
    return out


def w5(srv: Server, cfg: dict) -> dict:
    c = Client(srv.port)
    exp = create_experiment(c, "w5")
    run_id = create_run(c, exp, "w5")
    total = cfg["w5_points"]
    batches = total // 1000
    tpl = BatchTemplate(run_id, 1000, ["loss"], now_ms(), 5)
    done = 0
    with Measure(srv) as m:
        deadline = time.perf_counter() + CAP_W5_INGEST_S
        for b in range(1, batches + 1):
            c.call("POST", API + "/runs/log-batch", tpl.render(b))
            done += 1000
            if time.perf_counter() > deadline:
                break
    ingest = {"points": done, "points_per_s": done / m.wall, "capped": done < batches * 1000, **m.info()}

    path0 = f"{API}/metrics/get-history?run_id={run_id}&metric_key=loss"
    lat, got, pages, checks = [], 0, 0, []
    deadline = time.perf_counter() + CAP_W5_READS_S
    with Measure(srv) as m:
        for _ in range(cfg["w5_reads"]):
            t = time.perf_counter()
            pages, token = 0, None
            bodies = []
            while pages < CAP_HISTORY_PAGES:
                path = path0 + (f"&page_token={token}" if token else "")
                data = c.call("GET", path)
                pages += 1
                # Only the page token is needed to continue; the points are
                # counted after the clock stops.
                bodies.append(data)
                token = _next_token(data)
                if not token:
                    break
            lat.append(time.perf_counter() - t)
            if not lat[1:]:
                got = sum(len(json.loads(b).get("metrics", [])) for b in bodies)
            if time.perf_counter() > deadline:
                break
    if got != done:
        checks.append(f"history returned {got} points, expected {done}")
    c.close()
    return {"ingest": ingest, "history": {"reads": len(lat), "p50_ms": percentile(lat, 50) * 1e3,
                                          "max_ms": max(lat) * 1e3, "points": got, "pages": pages,
                                          **m.info()}, "checks": checks}


def _next_token(data: bytes) -> str | None:
    # The token is a short field; avoid decoding a 100k-point body inside the timed loop.
    idx = data.rfind(b'"next_page_token"')
    if idx < 0:
        return None
    tail = data[idx:]
    try:
        start = tail.index(b'"', len(b'"next_page_token"') + 1) + 1
        end = tail.index(b'"', start)
    except ValueError:
        return None
    tok = tail[start:end].decode()
    return tok or None


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def bench_server(name: str, args, cfg: dict, workdir: str) -> dict:
    res: dict = {"server": name, "errors": []}
    try:
        srv = Server(name, args, workdir)
    except Exception as exc:  # noqa: BLE001
        res["errors"].append(f"setup: {exc}")
        log(f"{name}: {exc}")
        return res
    res["config"] = srv.config
    res["version"] = server_version(name, args)
    try:
        srv.start()
        res["startup_s"] = srv.startup_s
        res["settle_s"] = round(srv.settle(), 2)
        log(f"{name}: idle {res['settle_s']:.1f} s after the first answer")
        with open(os.path.join(srv.dir, "processes.txt"), "w") as f:
            for pid in process_tree(srv.proc.pid):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as c:
                        cmd = c.read().replace(b"\0", b" ").decode(errors="replace").strip()
                except OSError:
                    continue
                f.write(f"{pid} {_status_kb(pid, 'VmRSS') // 1024} MB {cmd[:200]}\n")
        res["procs_after_start"] = len(process_tree(srv.proc.pid))
        steps = [
            ("ceiling", lambda: ceiling(srv, cfg)),
            ("w1", lambda: w1(srv, cfg)),
            ("w2_1", lambda: w2(srv, cfg, 1)),
            ("w2_8", lambda: w2(srv, cfg, 8)),
            ("w3", lambda: w3(srv, cfg)),
            ("w4", lambda: w4(srv, cfg)),
            ("w5", lambda: w5(srv, cfg)),
        ]
        for key, fn in steps:
            if args.only and key.split("_")[0] not in args.only and key != "ceiling":
                continue
            log(f"{name}: {key} ...")
            try:
                res[key] = fn()
                log(f"{name}: {key} done: {_short(res[key])}")
            except Exception as exc:  # noqa: BLE001 - keep going with the other workloads
                res["errors"].append(f"{key}: {exc}")
                log(f"{name}: {key} FAILED: {exc}")
            if srv.proc.poll() is not None:
                res["errors"].append(f"server exited with {srv.proc.returncode} during {key}")
                break
    except Exception as exc:  # noqa: BLE001
        res["errors"].append(f"start: {exc}")
        log(f"{name}: FAILED to start: {exc}")
    finally:
        if srv.sampler is not None:
            srv.sampler.sample(rescan=True)
            res["peak_rss_mb"] = srv.sampler.peak_rss_mb()
            res["peak_sum_vmrss_mb"] = srv.sampler.peak_sum_rss_kb / 1024.0
            res["max_procs"] = srv.sampler.max_procs
            res["server_cpu_total_s"] = round(srv.sampler.cpu_total(), 3)
        srv.stop()
    return res


def _short(d: dict) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    flat = []
    for k, v in d.items():
        if isinstance(v, dict):
            flat.append(f"{k}={{" + ", ".join(f"{kk}={fmt(vv)}" for kk, vv in v.items()
                                               if not isinstance(vv, (dict, list))) + "}")
        elif not isinstance(v, list):
            flat.append(f"{k}={fmt(v)}")
    return ", ".join(flat)


def dig(res: dict, path: str):
    cur = res
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


# (label, path in results, higher_is_better, unit formatter)
ROWS = [
    ("W1 runs/create, 1 client (runs/s)", "w1.runs_per_s", True, "rate"),
    ("W2 log-batch ×1000, 1 client (points/s)", "w2_1.points_per_s", True, "rate"),
    ("W2 log-batch ×1000, 8 clients (points/s)", "w2_8.points_per_s", True, "rate"),
    ("W3 log-metric, 8 connections (req/s)", "w3.rps", True, "rate"),
    ("W3 p50 (ms)", "w3.p50_ms", False, "ms"),
    ("W3 p99 (ms)", "w3.p99_ms", False, "ms"),
    ("W4 filtered search p50 (ms)", "w4.filtered.p50_ms", False, "ms"),
    ("W4 filtered search p99 (ms)", "w4.filtered.p99_ms", False, "ms"),
    ("W4 unfiltered 1,000-run page p50 (ms)", "w4.unfiltered.p50_ms", False, "ms"),
    ("W4 unfiltered 1,000-run page p99 (ms)", "w4.unfiltered.p99_ms", False, "ms"),
    ("W5 ingest, log-batch ×1000 (points/s)", "w5.ingest.points_per_s", True, "rate"),
    ("W5 full history p50 (ms)", "w5.history.p50_ms", False, "ms"),
    ("Peak RSS (MB)", "peak_rss_mb", False, "mb"),
    ("Time to first answer (s)", "startup_s", False, "s"),
]

CEILING_ROWS = [
    ("/health, Python client, sequential (req/s)", "ceiling.python_seq.rps", "rate"),
    ("/health, wrk 8 connections (req/s)", "ceiling.wrk_c8.rps", "rate"),
    ("Python client CPU per /health request (µs)", "ceiling.python_seq.client_cpu_us_per_req", "us"),
    ("wrk CPU per /health request (µs)", "ceiling.wrk_c8.client_cpu_us_per_req", "us"),
    ("W4 seeding (runs/create + log-batch, 8 clients) (s)", "w4.seed_s", "s"),
    ("Server processes (most seen at once)", "max_procs", "int"),
    ("Peak of the summed VmRSS, sampled every 0.5 s (MB)", "peak_sum_vmrss_mb", "mb"),
]


def fmt_val(v, kind: str) -> str:
    if v is None:
        return "–"
    if kind == "rate":
        return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"
    if kind == "ms":
        return f"{v:,.0f}" if v >= 100 else (f"{v:.1f}" if v >= 10 else f"{v:.2f}")
    if kind == "int":
        return str(v)
    if kind == "us":
        return f"{v:,.0f}"
    if kind == "mb":
        return f"{v:,.0f}"
    if kind == "s":
        return f"{v:.1f}" if v >= 10 else (f"{v:.2f}" if v >= 0.1 else f"{v:.3f}")
    return str(v)


def target_for(path: str, results: dict) -> tuple[str, callable] | None:
    """Kiln's target for a row: (text, predicate on Kiln's value)."""
    fml = results.get("fasttrackml")

    def rel(key_path: str, issue: float | None, label: str):
        base = dig(fml, key_path) if fml else None
        if base:
            return f"≥ 3× FML ({fmt_val(3 * base, 'rate')})", (lambda v, b=base: v >= 3 * b)
        if issue:
            return f"≥ 3× FML (issue: {fmt_val(3 * issue, 'rate')})", (lambda v, b=issue: v >= 3 * b)
        return f"≥ 3× FML ({label})", None

    if path == "w1.runs_per_s":
        return rel(path, ISSUE_FML["w1"], "")
    if path == "w2_1.points_per_s":
        return rel(path, ISSUE_FML["w2_1"], "")
    if path == "w2_8.points_per_s":
        return rel(path, ISSUE_FML["w2_8"], "")
    if path == "w3.rps":
        return rel(path, ISSUE_FML["w3_rps"], "")
    if path == "w5.ingest.points_per_s":
        return rel(path, None, "not run")
    if path == "w4.filtered.p50_ms":
        return "< 5 ms", lambda v: v < 5
    if path == "w4.unfiltered.p50_ms":
        return "< 20 ms", lambda v: v < 20
    if path == "w5.history.p50_ms":
        return "< 150 ms", lambda v: v < 150
    if path == "peak_rss_mb":
        return "< 50 MB", lambda v: v < 50
    if path == "startup_s":
        return "< 0.2 s", lambda v: v < 0.2
    return None


def render_markdown(results: dict, meta: dict) -> str:
    names = [n for n in ALL_SERVERS if n in results]
    peers = [n for n in names if n != "kiln"] if "kiln" in names else []
    head = ["Workload"] + names + [f"Kiln vs {p}" for p in peers] + (["Kiln target"] if "kiln" in names else [])
    lines = []
    lines.append(f"Mode: `{meta['mode']}`, {meta['date']}, {meta['host']}.")
    lines.append("")
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for label, path, higher, kind in ROWS:
        vals = {n: dig(results[n], path) for n in names}
        if all(v is None for v in vals.values()):
            continue
        row = [label] + [fmt_val(vals[n], kind) for n in names]
        for p in peers:
            k, v = vals.get("kiln"), vals.get(p)
            if k and v:
                ratio = (k / v) if higher else (v / k)
                row.append(f"{ratio:,.1f}×" if ratio >= 10 else f"{ratio:.2f}×")
            else:
                row.append("–")
        if "kiln" in names:
            t = target_for(path, results)
            if t is None:
                row.append("")
            else:
                text, pred = t
                k = vals.get("kiln")
                mark = "" if (k is None or pred is None) else (": met" if pred(k) else ": missed")
                row.append(text + mark)
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Ratios are speed-ups: Kiln ÷ peer for rates, peer ÷ Kiln for times and memory; "
                 "above 1× means Kiln is better.")
    lines.append("")
    lines.append("| Client ceiling and setup | " + " | ".join(names) + " |")
    lines.append("|---|" + "|".join(["---:"] * len(names)) + "|")
    for label, path, kind in CEILING_ROWS:
        vals = [dig(results[n], path) for n in names]
        if all(v is None for v in vals):
            continue
        lines.append(f"| {label} | " + " | ".join(fmt_val(v, kind) for v in vals) + " |")
    # Load generator cost: client CPU seconds per wall second in the measured window.
    share = []
    for n in names:
        parts = []
        for key, path in (("W1", "w1"), ("W2×8", "w2_8"), ("W3 (wrk)", "w3")):
            d = dig(results[n], path)
            if d and d.get("wall_s"):
                parts.append(f"{key} {100 * d['client_cpu_s'] / d['wall_s']:.0f}%")
        share.append(", ".join(parts) or "–")
    lines.append("| Load generator CPU (% of one core) | " + " | ".join(share) + " |")
    sshare = []
    for n in names:
        parts = []
        for key, path in (("W1", "w1"), ("W2×8", "w2_8"), ("W3", "w3")):
            d = dig(results[n], path)
            if d and d.get("wall_s"):
                parts.append(f"{key} {100 * d['server_cpu_s'] / d['wall_s']:.0f}%")
        sshare.append(", ".join(parts) or "–")
    lines.append("| Server CPU (% of one core) | " + " | ".join(sshare) + " |")
    lines.append("")
    lines.append("Servers:")
    for n in names:
        r = results[n]
        if "config" in r:
            lines.append(f"- {n}: {r.get('version', '?')}; {r['config']}.")
        else:
            lines.append(f"- {n}: not run.")
    problems = []
    for n in names:
        r = results[n]
        for e in r.get("errors", []):
            problems.append(f"- {n}: {e}")
        for path in ("w1", "w2_1", "w2_8", "w3"):
            d = dig(r, path)
            if d and d.get("errors"):
                problems.append(f"- {n}: {path}: {d['errors']} failed requests")
        if dig(r, "w1.capped"):
            problems.append(f"- {n}: w1: stopped at the time cap after {dig(r, 'w1.runs')} runs")
        if dig(r, "w5.ingest.capped"):
            problems.append(f"- {n}: w5: ingest stopped at the time cap after {dig(r, 'w5.ingest.points')} points")
        for label in ("filtered", "unfiltered"):
            q = dig(r, f"w4.{label}.queries")
            if q is not None and q < SIZES[meta["size"]]["w4_queries"]:
                problems.append(f"- {n}: w4: {label} queries stopped at the time cap after {q}")
        q = dig(r, "w5.history.reads")
        if q is not None and q < SIZES[meta["size"]]["w5_reads"]:
            problems.append(f"- {n}: w5: history reads stopped at the time cap after {q}")
        for c in (dig(r, "w4.checks") or []) + (dig(r, "w5.checks") or []):
            problems.append(f"- {n}: check: {c}")
    if problems:
        lines.append("")
        lines.append("Problems:")
        lines.extend(problems)
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default=",".join(ALL_SERVERS),
                    help="comma-separated subset of: " + ",".join(ALL_SERVERS))
    ap.add_argument("--quick", action="store_true", help="small counts, for checking the harness")
    ap.add_argument("--only", default="",
                    help="comma-separated subset of workloads w1..w5 (the ceiling always runs)")
    ap.add_argument("--workdir", default="",
                    help="where stores, logs and results go (default /var/tmp/kiln-bench-tracking/<time>)")
    ap.add_argument("--out", default="", help="also write the Markdown table to this file")
    ap.add_argument("--kiln-bin", default="", help="kiln binary (default $KILN_BIN, then /var/tmp/kiln-target/...)")
    ap.add_argument("--mlflow-venv", default=os.environ.get("MLFLOW_VENV", "/var/tmp/kiln-venv"))
    ap.add_argument("--fml-venv", default=os.environ.get("FML_VENV", "/var/tmp/kiln-bench-fml"))
    ap.add_argument("--mlflow-workers", type=int, default=0,
                    help="pass --workers N to mlflow server (default: MLflow's own default, 4)")
    args = ap.parse_args()

    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    bad = [s for s in servers if s not in ALL_SERVERS]
    if bad:
        ap.error(f"unknown server(s): {', '.join(bad)}")
    args.only = {s.strip() for s in args.only.split(",") if s.strip()}
    mode = "quick" if args.quick else "full"
    cfg = SIZES[mode]
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = os.path.abspath(args.workdir or os.path.join("/var/tmp/kiln-bench-tracking", stamp))
    os.makedirs(workdir, exist_ok=True)

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)

    log(f"mode {mode}; servers {','.join(servers)}; workdir {workdir}")
    results: dict = {}
    try:
        for name in servers:
            results[name] = bench_server(name, args, cfg, workdir)
            with open(os.path.join(workdir, "results.json"), "w") as f:
                json.dump({"mode": mode, "cfg": cfg, "results": results}, f, indent=2)
    finally:
        _cleanup()

    meta = {"mode": "--quick" if args.quick else "full", "size": mode, "date": time.strftime("%Y-%m-%d"),
            "host": f"{os.cpu_count()} cores, {_mem_gib():.0f} GiB"}
    md = render_markdown(results, meta)
    with open(os.path.join(workdir, "results.md"), "w") as f:
        f.write(md)
    if args.out:
        with open(args.out, "w") as f:
            f.write(md)
    sys.stdout.write(md)
    log(f"results: {workdir}/results.md, {workdir}/results.json")
    return 1 if any(r.get("errors") for r in results.values()) else 0


def _mem_gib() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


if __name__ == "__main__":
    sys.exit(main())
