"""Fixtures for the end-to-end suites.

Every suite runs against a real server process chosen with ``--target``:

* ``kiln``           ``kiln server`` on a fresh SQLite file (the embedded default)
* ``kiln-postgres``  ``kiln server`` on a fresh PostgreSQL database (created and dropped here)
* ``mlflow``         ``mlflow server`` from PyPI, the reference the differential tests agree with

and keeps its artifacts where ``--artifacts`` says:

* ``local``  a folder next to the server's database (the default)
* ``s3``     a fresh bucket per server on moto's S3 server (``moto_server`` from PyPI, next to
             this Python), ``--artifacts-destination s3://<bucket>/artifacts``
* ``azure``  a fresh container per server on Azurite (``azurite-blob`` from npm, installed in
             ``$KILN_AZURITE_DIR``, default /var/tmp/kiln-azurite), ``az://<container>/artifacts``

The emulator is started on a loopback port by the session itself and stopped at its end. Tests
look at what a server stored through ``server.stored_files()`` and friends, whatever the backend.

The kiln binary is taken from ``$KILN_BIN``, else from the cargo target dir.
``$KILN_E2E_URL`` points the session ``server`` at an already running server of that target instead.
PostgreSQL is reached at ``$KILN_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432``).
"""

import hashlib
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
ARTIFACT_BACKENDS = ("local", "s3", "azure")
# The folder, under the destination's bucket or container (or the server's folder), that
# holds the artifacts; everything beside it is outside the artifact root.
ROOT = "artifacts"


def pytest_addoption(parser):
    parser.addoption("--target", default=os.environ.get("KILN_E2E_TARGET", "kiln"), choices=TARGETS)
    parser.addoption("--artifacts", default=os.environ.get("KILN_E2E_ARTIFACTS", "local"), choices=ARTIFACT_BACKENDS,
                     help="where the servers keep their artifacts: a local folder, moto's S3 or Azurite")


def pytest_configure(config):
    backend = config.getoption("--artifacts")
    if backend == "local":
        return
    if os.environ.get("KILN_E2E_URL"):
        raise pytest.UsageError(f"--artifacts {backend} starts its own servers on a fresh store; unset KILN_E2E_URL")
    if config.getoption("--target") == "mlflow":
        # MLflow 3.17 does run on moto (MLFLOW_S3_ENDPOINT_URL), but it answers 18 of these
        # cases differently there than on a local folder, whose answers the suites pin as the
        # reference: a missing file is a 500 (HeadObject 404) instead of a 404, a PUT onto a
        # folder or with "?" / NUL in a name is accepted, "DELETE <folder>/." behaves otherwise.
        # Its Azure repository (wasbs:// URIs) would differ the same way.
        raise pytest.UsageError(f"--target mlflow --artifacts {backend} is not supported: the differential "
                                "reference is mlflow server on a local folder (--artifacts local)")
    # Fail the whole session up front, loudly, when the emulator is not installed.
    if backend == "s3":
        MotoS3.check()
    else:
        Azurite.check()


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


def tail(path, size=4000):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-size:]
    except OSError:
        return ""


# ---------------------------------------------------------------------------
# Emulators: one per session, on a free loopback port, with a data folder of its own



def stop_process(proc, grace=30):
    """SIGTERM to a process a test started (by its PID), SIGKILL after `grace` s; None is fine."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)

class Emulator:
    """A storage emulator process, stopped by its PID at the end of the session."""

    name = "emulator"

    def __init__(self, workdir):
        self.workdir = workdir
        self.data = os.path.join(workdir, "data")
        os.makedirs(self.data, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(workdir, f"{self.name}.log")
        self.proc = None

    def command(self):
        raise NotImplementedError

    def probe_url(self):
        return self.url + "/"

    def start(self, timeout=60):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.data, stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{tail(self.log_path)}")
            try:
                requests.get(self.probe_url(), timeout=1)  # any HTTP answer means it is up
                return self
            except requests.RequestException:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer on {self.url} within {timeout}s:\n{tail(self.log_path)}")

    def stop(self):
        stop_process(self.proc, grace=15)


class MotoS3(Emulator):
    """moto's S3 server (``moto[server]`` from PyPI); in memory, so its folder only holds the log."""

    name = "moto_server"
    KEY_ID = "kiln-e2e"
    SECRET = "kiln-e2e-secret"
    REGION = "us-east-1"

    @staticmethod
    def binary():
        return os.path.join(os.path.dirname(sys.executable), "moto_server")

    @classmethod
    def check(cls):
        if not os.access(cls.binary(), os.X_OK):
            raise pytest.UsageError(f"--artifacts s3 needs moto's S3 server at {cls.binary()}: "
                                    f"{sys.executable} -m pip install -r tests/e2e/requirements.txt")
        try:
            import boto3  # noqa: F401  (comes with moto)
        except ImportError as e:
            raise pytest.UsageError(f"--artifacts s3 needs boto3 ({e}): install tests/e2e/requirements.txt")

    def command(self):
        return [self.binary(), "-H", "127.0.0.1", "-p", str(self.port)]

    def start(self, timeout=60):
        super().start(timeout)
        import boto3
        from botocore.config import Config

        self.client = boto3.client("s3", endpoint_url=self.url, region_name=self.REGION,
                                   aws_access_key_id=self.KEY_ID, aws_secret_access_key=self.SECRET,
                                   config=Config(retries={"max_attempts": 1}))
        return self

    def new_store(self):
        return S3Store(self)


class Azurite(Emulator):
    """Azurite's blob service (``azurite`` from npm), its account devstoreaccount1."""

    name = "azurite-blob"
    ACCOUNT = "devstoreaccount1"
    # Azurite's well-known development key (public, the same in every installation).
    KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

    @staticmethod
    def binary():
        folder = os.environ.get("KILN_AZURITE_DIR", "/var/tmp/kiln-azurite")
        return os.path.join(folder, "node_modules", ".bin", "azurite-blob")

    @classmethod
    def check(cls):
        if not os.access(cls.binary(), os.X_OK):
            raise pytest.UsageError(
                f"--artifacts azure needs Azurite at {cls.binary()}: npm install --prefix "
                f"{os.path.dirname(os.path.dirname(os.path.dirname(cls.binary())))} azurite "
                "(or point KILN_AZURITE_DIR at an npm install folder that has it)")
        if not shutil.which("node"):
            raise pytest.UsageError("--artifacts azure needs node on the PATH to run Azurite")
        try:
            import azure.storage.blob  # noqa: F401
        except ImportError as e:
            raise pytest.UsageError(f"--artifacts azure needs azure-storage-blob ({e}): "
                                    "install tests/e2e/requirements.txt")

    def command(self):
        return [self.binary(), "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--location", self.data,
                "--silent", "--skipApiVersionCheck", "--loose",
                # No telemetry: nothing leaves the machine, and shutdown does not wait for it.
                "--disableTelemetry"]

    def probe_url(self):
        return f"{self.url}/{self.ACCOUNT}?comp=list"

    def start(self, timeout=60):
        super().start(timeout)
        from azure.storage.blob import BlobServiceClient

        self.client = BlobServiceClient.from_connection_string(
            f"DefaultEndpointsProtocol=http;AccountName={self.ACCOUNT};AccountKey={self.KEY};"
            f"BlobEndpoint={self.url}/{self.ACCOUNT};")
        return self

    def new_store(self):
        return AzureStore(self)


# ---------------------------------------------------------------------------
# Where a server's artifacts are. Keys are '/'-separated and relative to the place the artifact
# root lives in (the server's folder, or the bucket or container); the root is the key ROOT.


class DiskStore:
    """Artifacts in <server folder>/artifacts."""

    kind = "local"

    def __init__(self, workdir):
        self.workdir = workdir
        self.root = os.path.join(workdir, ROOT)
        self.destination = self.root

    def env(self):
        return {}

    def private_names(self):
        """What an error message must not show: the server's own paths."""
        return [os.path.abspath(self.root)]

    def describe(self, key):
        return os.path.join(self.workdir, key)

    def snapshot(self):
        """{key: (size, mtime, content hash)} of every file in the server's folder but its log and
        database, which the requests themselves change."""
        snap = {}
        for dirpath, _, names in os.walk(self.workdir):
            for name in names:
                path = os.path.join(dirpath, name)
                key = os.path.relpath(path, self.workdir).replace(os.sep, "/")
                if key == "server.log" or key.startswith("store.db"):
                    continue
                st = os.lstat(path)
                digest = None
                if st.st_size <= 65536:
                    with open(path, "rb") as f:
                        digest = hashlib.sha256(f.read()).hexdigest()
                snap[key] = (st.st_size, st.st_mtime_ns, digest)
        return snap

    def files(self, key):
        """{path relative to key: bytes} of every file under the folder `key`."""
        folder = os.path.join(self.workdir, *key.split("/"))
        out = {}
        for dirpath, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(dirpath, name)
                with open(path, "rb") as f:
                    out[os.path.relpath(path, folder).replace(os.sep, "/")] = f.read()
        return out

    def read(self, key):
        try:
            with open(os.path.join(self.workdir, *key.split("/")), "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def size(self, key):
        return os.path.getsize(os.path.join(self.workdir, *key.split("/")))

    def write(self, key, data):
        path = os.path.join(self.workdir, *key.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    def exists(self, key):
        """A file or a folder (empty folders count: a local store can leave them behind)."""
        return os.path.lexists(os.path.join(self.workdir, *key.split("/")))


class ObjectStore:
    """Artifacts in a fresh bucket or container of an emulator, under the prefix ROOT."""

    def describe(self, key):
        return f"{self.scheme}://{self.bucket}/{key}"

    def private_names(self):
        """What an error message must not show: the bucket or container and the endpoint."""
        return [self.bucket, f"127.0.0.1:{self.emulator.port}", f"localhost:{self.emulator.port}"]

    def files(self, key):
        prefix = key.rstrip("/") + "/"
        return {k[len(prefix):]: self.read(k) for k in self.listing(prefix)}

    def snapshot(self):
        """{key: (size, ETag, last modified)} of every object in the bucket or container (the
        ETag changes whenever an object is written)."""
        return self.listing("")

    def exists(self, key):
        return any(k == key or k.startswith(key.rstrip("/") + "/") for k in self.listing(key))

    def size(self, key):
        listed = self.listing(key)
        if key not in listed:
            raise FileNotFoundError(self.describe(key))
        return listed[key][0]


class S3Store(ObjectStore):
    kind = "s3"
    scheme = "s3"

    def __init__(self, emulator):
        self.emulator = emulator
        self.client = emulator.client
        self.bucket = "kiln-e2e-" + uuid.uuid4().hex[:16]
        self.client.create_bucket(Bucket=self.bucket)
        self.destination = f"s3://{self.bucket}/{ROOT}"

    def env(self):
        e = self.emulator
        return {"AWS_ACCESS_KEY_ID": e.KEY_ID, "AWS_SECRET_ACCESS_KEY": e.SECRET, "AWS_REGION": e.REGION,
                "AWS_ENDPOINT_URL": e.url, "AWS_ALLOW_HTTP": "true"}

    def listing(self, prefix):
        out = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                out[obj["Key"]] = (obj["Size"], obj["ETag"], obj["LastModified"].isoformat())
        return out

    def read(self, key):
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def write(self, key, data):
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)


class AzureStore(ObjectStore):
    kind = "azure"
    scheme = "az"

    def __init__(self, emulator):
        self.emulator = emulator
        self.bucket = "kiln-e2e-" + uuid.uuid4().hex[:16]
        self.container = emulator.client.create_container(self.bucket)
        self.destination = f"az://{self.bucket}/{ROOT}"

    def env(self):
        return {"AZURE_STORAGE_USE_EMULATOR": "true", "AZURITE_BLOB_STORAGE_URL": self.emulator.url}

    def listing(self, prefix):
        return {b.name: (b.size, b.etag, b.last_modified.isoformat())
                for b in self.container.list_blobs(name_starts_with=prefix or None)}

    def read(self, key):
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.container.download_blob(key).readall()
        except ResourceNotFoundError:
            return None

    def write(self, key, data):
        self.container.upload_blob(key, data, overwrite=True)


# ---------------------------------------------------------------------------
# Servers


# Settings of the environment that could send a server's store elsewhere than the emulator.
STORE_ENV_PREFIXES = ("AWS_", "AZURE_", "AZURITE_", "GOOGLE_")


class Server:
    """A server process on a loopback port with its own data folder, its artifacts in `store`
    (the server's folder, or a fresh bucket or container of `emulator`)."""

    def __init__(self, target, workdir, emulator=None):
        self.target = target
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.pg_db = None
        self.log_path = os.path.join(workdir, "server.log")
        self.store = emulator.new_store() if emulator else DiskStore(workdir)
        # Where the artifacts are: a local folder, or s3://<bucket>/artifacts, az://<container>/artifacts.
        self.artifacts = self.store.destination
        if target == "kiln-postgres":
            self.pg_db = "kiln_e2e_" + uuid.uuid4().hex[:12]
            psql(f"CREATE DATABASE {self.pg_db}")
            self.backend_uri = f"{pg_admin_url()}/{self.pg_db}"
        else:
            self.backend_uri = "sqlite:///" + os.path.join(workdir, "store.db")

    @property
    def is_mlflow(self):
        return self.target == "mlflow"

    @property
    def is_local(self):
        """Artifacts in a local folder (server.artifacts is its path)."""
        return self.store.kind == "local"

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

    def environment(self):
        env = dict(os.environ)
        if not self.is_local:
            env = {k: v for k, v in env.items() if not k.startswith(STORE_ENV_PREFIXES)}
            env.update(self.store.env())
        return env

    def start(self, timeout=120):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.environment(),
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
        return tail(self.log_path)

    def close(self):
        self.stop()
        if self.pg_db:
            psql(f"DROP DATABASE IF EXISTS {self.pg_db} WITH (FORCE)")

    # -- What the server stored, on any backend. `path` is relative to the artifact root, as in
    # the mlflow-artifacts endpoints ("<experiment>/<run>/artifacts/<file>").

    @staticmethod
    def _key(path):
        path = path.strip("/")
        return f"{ROOT}/{path}" if path else ROOT

    def stored_files(self, path=""):
        """{path relative to `path`: bytes} of every file stored under the artifact root's `path`."""
        return self.store.files(self._key(path))

    def stored_file(self, path):
        """The bytes stored at `path` under the artifact root, or None."""
        return self.store.read(self._key(path))

    def stored_size(self, path):
        return self.store.size(self._key(path))

    def stored_exists(self, path):
        """Whether anything (a file, or a folder, even an empty one on disk) is at `path`."""
        return self.store.exists(self._key(path))

    def is_inside_root(self, key):
        """Whether a key of store_snapshot() is under the artifact root."""
        return key.startswith(ROOT + "/")

    def store_snapshot(self):
        """{key: fingerprint} of everything the server could reach and write: on disk, its folder
        (but its log and database); on an object store, every object in its bucket or container,
        and its local folder too, every file of which is outside the root (keys 'disk:...')."""
        snap = self.store.snapshot()
        if not self.is_local:
            snap.update({f"disk:{k}": v for k, v in DiskStore(self.workdir).snapshot().items()})
        return snap

    def stored_outside(self):
        """{key: fingerprint} of everything stored outside the artifact root (see store_snapshot)."""
        return {k: v for k, v in self.store_snapshot().items() if not self.is_inside_root(k)}

    def plant_outside(self, key, data):
        """Writes `data` at `key` beside the artifact root: in the server's folder and, on an
        object store, in its bucket or container as well. Answers the places written."""
        places = [DiskStore(self.workdir)] + ([] if self.is_local else [self.store])
        for place in places:
            place.write(key, data)
        return {place.describe(key): place for place in places}

    def read_planted(self, key):
        """{place: bytes or None} of what plant_outside(key) wrote."""
        places = [DiskStore(self.workdir)] + ([] if self.is_local else [self.store])
        return {place.describe(key): place.read(key) for place in places}


@pytest.fixture(scope="session")
def target(request):
    return request.config.getoption("--target")


@pytest.fixture(scope="session")
def artifacts_backend(request):
    return request.config.getoption("--artifacts")


@pytest.fixture(scope="session")
def emulator(artifacts_backend, tmp_path_factory):
    """The session's storage emulator (None for local artifacts)."""
    if artifacts_backend == "local":
        yield None
        return
    kind = {"s3": MotoS3, "azure": Azurite}[artifacts_backend]
    emu = kind(str(tmp_path_factory.mktemp(artifacts_backend + "-emulator")))
    try:
        yield emu.start()
    finally:
        emu.stop()


@pytest.fixture(scope="session")
def server(target, tmp_path_factory, request):
    """One server for the whole session; tests make their own experiments with unique names."""
    external = os.environ.get("KILN_E2E_URL")
    if external:
        # Reuse a server that is already running (handy while writing tests); it is left running.
        srv = Server("mlflow" if target == "mlflow" else "kiln", str(tmp_path_factory.mktemp(target)))
        srv.target = target
        srv.url = external.rstrip("/")
        yield srv
        return
    srv = Server(target, str(tmp_path_factory.mktemp(target)), request.getfixturevalue("emulator"))
    srv.start()
    yield srv
    srv.close()


@pytest.fixture
def fresh_server(target, emulator):
    """A server of its own for a test that needs an empty store or kills the process."""
    workdir = tempfile.mkdtemp(prefix=f"kiln-e2e-{target}-")
    srv = Server(target, workdir, emulator)
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
