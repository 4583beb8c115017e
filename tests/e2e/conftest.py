"""Fixtures for the end-to-end suites.

Every suite runs against a real server process chosen with ``--target``:

* ``kiln``           ``kiln server`` on a fresh SQLite file (the embedded default)
* ``kiln-postgres``  ``kiln server`` on a fresh PostgreSQL database (created and dropped here)
* ``mlflow``         ``mlflow server`` from PyPI, the reference the differential tests agree with

The kiln binary is taken from ``$KILN_BIN``, else from the cargo target dir.
``$KILN_E2E_URL`` points the session ``server`` at an already running server of that target instead.
PostgreSQL is reached at ``$KILN_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432``).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
import requests

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGETS = ("kiln", "kiln-postgres", "mlflow")


def pytest_addoption(parser):
    parser.addoption("--target", default=os.environ.get("KILN_E2E_TARGET", "kiln"), choices=TARGETS)


def kiln_bin():
    path = os.environ.get("KILN_BIN")
    if path:
        return path
    target_dir = os.environ.get("CARGO_TARGET_DIR", "/var/tmp/kiln-target")
    candidate = os.path.join(target_dir, "debug", "kiln")
    if os.path.exists(candidate):
        return candidate
    raise RuntimeError("no kiln binary: build it with `cargo build -p kiln` or set KILN_BIN")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_admin_url():
    return os.environ.get("KILN_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def psql(sql):
    subprocess.run(
        ["psql", pg_admin_url() + "/postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        check=True,
        capture_output=True,
    )


class Server:
    """A server process on a loopback port with its own data folder."""

    def __init__(self, target, workdir):
        self.target = target
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.pg_db = None
        self.log_path = os.path.join(workdir, "server.log")
        self.artifacts = os.path.join(workdir, "artifacts")
        if target == "kiln-postgres":
            self.pg_db = "kiln_e2e_" + uuid.uuid4().hex[:12]
            psql(f"CREATE DATABASE {self.pg_db}")
            self.backend_uri = f"{pg_admin_url()}/{self.pg_db}"
        else:
            self.backend_uri = "sqlite:///" + os.path.join(workdir, "store.db")

    @property
    def is_mlflow(self):
        return self.target == "mlflow"

    def command(self):
        if self.is_mlflow:
            mlflow = os.path.join(os.path.dirname(sys.executable), "mlflow")
            return [
                mlflow, "server", "--host", "127.0.0.1", "--port", str(self.port),
                "--backend-store-uri", self.backend_uri,
                "--artifacts-destination", self.artifacts, "--workers", "1",
            ]
        return [
            kiln_bin(), "server", "--host", "127.0.0.1", "--port", str(self.port),
            "--backend-store-uri", self.backend_uri, "--artifacts-destination", self.artifacts,
        ]

    def start(self, timeout=120):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.workdir, stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.target} server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.target} server did not answer within {timeout}s:\n{self.log()}")

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)

    def stop(self):
        self.kill(signal.SIGTERM)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    def close(self):
        self.stop()
        if self.pg_db:
            psql(f"DROP DATABASE IF EXISTS {self.pg_db} WITH (FORCE)")


@pytest.fixture(scope="session")
def target(request):
    return request.config.getoption("--target")


@pytest.fixture(scope="session")
def server(target, tmp_path_factory):
    """One server for the whole session; tests make their own experiments with unique names."""
    external = os.environ.get("KILN_E2E_URL")
    if external:
        # Reuse a server that is already running (handy while writing tests); it is left running.
        srv = Server("mlflow" if target == "mlflow" else "kiln", str(tmp_path_factory.mktemp(target)))
        srv.target = target
        srv.url = external.rstrip("/")
        yield srv
        return
    srv = Server(target, str(tmp_path_factory.mktemp(target)))
    srv.start()
    yield srv
    srv.close()


@pytest.fixture
def fresh_server(target):
    """A server of its own for a test that needs an empty store or kills the process."""
    workdir = tempfile.mkdtemp(prefix=f"kiln-e2e-{target}-")
    srv = Server(target, workdir)
    yield srv
    srv.close()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def client(server, monkeypatch):
    import mlflow
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(server.url)
    return MlflowClient(server.url)


@pytest.fixture
def api(server):
    """Raw REST access, for what the client hides: statuses and error bodies."""
    return Api(server.url)


class Api:
    def __init__(self, base):
        self.base = base
        self.http = requests.Session()

    def post(self, path, body=None, **kw):
        return self.http.post(f"{self.base}/api/2.0/mlflow/{path}", json=body, timeout=60, **kw)

    def get(self, path, params=None, **kw):
        return self.http.get(f"{self.base}/api/2.0/mlflow/{path}", params=params, timeout=60, **kw)

    def raw(self, method, path, **kw):
        return self.http.request(method, f"{self.base}{path}", timeout=60, **kw)


def unique(prefix="e2e"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
