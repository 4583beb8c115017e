"""Proxied artifacts: ``--artifacts-destination`` and the ``mlflow-artifacts`` endpoints.

Runs get ``artifact_uri = mlflow-artifacts:/<experiment>/<run>/artifacts``; the client then
uploads, lists, downloads and deletes through ``/api/2.0/mlflow-artifacts/artifacts/...``
(paths relative to the artifacts destination), and the server keeps the files at
``<destination>/<experiment>/<run>/artifacts/<path>``: a local folder, or objects under the
``artifacts/`` prefix of a bucket or container (``--artifacts s3`` / ``azure``).

The first half checks what the MLflow client sees and what lands in the store. The second half
sends hostile paths (traversal, encodings, absolute paths, NUL, ``?``/``#``) to every artifact
endpoint: each must be refused with a 4xx, and nothing outside the artifacts folder may be
read, written or deleted (a sentinel file and a look-alike sibling folder are planted next
to the artifacts folder, on disk and in the bucket or container, and everything the server
could reach is compared before and after). Where
MLflow 3.17 itself answers something other than a 4xx, the case pins MLflow's answer (noted
next to the case) and still holds Kiln to a 4xx.
"""

import hashlib
import os
import uuid

import mlflow
import pytest
import requests

from conftest import Api, unique
from helpers import (
    ARTIFACTS_API,
    assert_error,
    files_under,
    get_experiment,
    get_run,
    new_experiment,
    new_run,
    ok,
    raw_http,
)

# Error codes a rejection may carry (names from MLflow's databricks.ErrorCode).
REJECTION_CODES = {
    "INVALID_PARAMETER_VALUE",
    "BAD_REQUEST",
    "MALFORMED_REQUEST",
    "RESOURCE_DOES_NOT_EXIST",
    "NOT_FOUND",
    "PERMISSION_DENIED",
}


# ---------------------------------------------------------------------------
# Helpers


@pytest.fixture
def stored(server):
    """The session server, for tests that look at what it stored (server.stored_files() ...)."""
    if os.environ.get("KILN_E2E_URL"):
        pytest.skip("the artifact store of an external server is not known")
    return server


def run_folder(experiment_id, run_id):
    """A run's artifacts folder, relative to the artifact root."""
    return f"{experiment_id}/{run_id}/artifacts"


def listing(client, run_id, path=None):
    return [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id, path)]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def put(server, path, data):
    r = requests.put(f"{server.url}{ARTIFACTS_API}/{path}", data=data, timeout=120)
    assert r.status_code == 200, f"PUT {path}: {r.status_code} {r.text[:300]}"
    return r


def list_raw(server, path):
    r = requests.get(f"{server.url}{ARTIFACTS_API}", params={"path": path}, timeout=60)
    assert r.status_code == 200, f"list {path}: {r.status_code} {r.text[:300]}"
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    return r.json()


def by_path(files):
    return sorted(files, key=lambda f: f["path"])


def attachment_name(resp):
    """The filename of an `attachment` Content-Disposition (quoted or not: both are RFC 6266)."""
    value = resp.headers.get("content-disposition", "")
    kind, _, params = value.partition(";")
    assert kind.strip().lower() == "attachment", f"not an attachment: {value!r}"
    for param in params.split(";"):
        key, _, val = param.strip().partition("=")
        if key.lower() == "filename":
            return val[1:-1] if len(val) >= 2 and val[0] == val[-1] == '"' else val
    raise AssertionError(f"no filename in {value!r}")


def write_tree(folder, tree):
    for rel, data in tree.items():
        path = os.path.join(folder, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


# ---------------------------------------------------------------------------
# Locations


def test_artifact_locations_use_the_mlflow_artifacts_scheme(api):
    assert get_experiment(api, "0")["artifact_location"] == "mlflow-artifacts:/0"
    eid = new_experiment(api, "art-loc")
    assert get_experiment(api, eid)["artifact_location"] == f"mlflow-artifacts:/{eid}"
    info = ok(api.post("runs/create", {"experiment_id": eid}))["run"]["info"]
    rid = info["run_id"]
    assert info["artifact_uri"] == f"mlflow-artifacts:/{eid}/{rid}/artifacts"
    assert get_run(api, rid)["info"]["artifact_uri"] == f"mlflow-artifacts:/{eid}/{rid}/artifacts"


# ---------------------------------------------------------------------------
# The MLflow client, end to end


def test_log_artifact_text_file(client, stored, tmp_path):
    eid = client.create_experiment(unique("art-text"))
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello artifacts\n")
    with mlflow.start_run(experiment_id=eid) as run:
        mlflow.log_artifact(str(src))
        mlflow.log_artifact(str(src), artifact_path="notes/deeper")
    rid = run.info.run_id
    assert run.info.artifact_uri == f"mlflow-artifacts:/{eid}/{rid}/artifacts"

    # In the store, under the server's artifacts folder.
    assert stored.stored_files(run_folder(eid, rid)) == {
        "hello.txt": b"hello artifacts\n",
        "notes/deeper/hello.txt": b"hello artifacts\n",
    }

    assert listing(client, rid) == [("hello.txt", False, 16), ("notes", True, None)]
    assert listing(client, rid, "notes") == [("notes/deeper", True, None)]
    assert listing(client, rid, "notes/deeper") == [("notes/deeper/hello.txt", False, 16)]

    dst = tmp_path / "dl"
    dst.mkdir()
    got = client.download_artifacts(rid, "hello.txt", str(dst))
    assert os.path.normpath(got) == str(dst / "hello.txt")
    assert (dst / "hello.txt").read_bytes() == b"hello artifacts\n"
    got = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="notes/deeper/hello.txt",
                                              dst_path=str(tmp_path / "dl2"))
    with open(got, "rb") as f:
        assert f.read() == b"hello artifacts\n"


TREE = {
    "top.json": b'{"x": 1}',
    "a/mid.csv": b"a,b\n1,2\n",
    "a/b/deep.bin": bytes(range(256)),
    "a/b/c/d/leaf.txt": b"leaf\n",
    "plots/my plot.txt": b"plot\n",
}


def test_log_artifacts_nested_folder(client, stored, tmp_path):
    src = tmp_path / "tree"
    write_tree(str(src), TREE)
    (src / "empty").mkdir()  # empty folders are not uploaded
    eid = client.create_experiment(unique("art-tree"))
    with mlflow.start_run(experiment_id=eid) as run:
        mlflow.log_artifacts(str(src), artifact_path="model")
    rid = run.info.run_id

    root = run_folder(eid, rid)
    assert stored.stored_files(root) == {f"model/{k}": v for k, v in TREE.items()}
    assert not stored.stored_exists(f"{root}/model/empty")

    assert listing(client, rid) == [("model", True, None)]
    assert listing(client, rid, "model") == [
        ("model/a", True, None), ("model/plots", True, None), ("model/top.json", False, 8)]
    assert listing(client, rid, "model/a") == [("model/a/b", True, None), ("model/a/mid.csv", False, 8)]
    assert listing(client, rid, "model/a/b") == [
        ("model/a/b/c", True, None), ("model/a/b/deep.bin", False, 256)]
    assert listing(client, rid, "model/plots") == [("model/plots/my plot.txt", False, 5)]
    # A file, a missing path and a folder that was never uploaded all list as empty.
    assert listing(client, rid, "model/top.json") == []
    assert listing(client, rid, "model/missing") == []
    assert listing(client, rid, "model/empty") == []

    # A folder downloads recursively, byte for byte.
    dst = tmp_path / "dl"
    dst.mkdir()
    got = client.download_artifacts(rid, "model", str(dst))
    assert os.path.normpath(got) == str(dst / "model")
    assert files_under(str(dst / "model")) == TREE
    # A nested file, and a file whose name needs quoting in the URL.
    one = tmp_path / "one"
    one.mkdir()
    got = client.download_artifacts(rid, "model/a/b/deep.bin", str(one))
    with open(got, "rb") as f:
        assert f.read() == TREE["a/b/deep.bin"]
    got = client.download_artifacts(rid, "model/plots/my plot.txt", str(one))
    with open(got, "rb") as f:
        assert f.read() == TREE["plots/my plot.txt"]
    # A missing file is an error for the client.
    with pytest.raises(Exception):
        client.download_artifacts(rid, "model/missing.txt", str(one))


def test_non_ascii_file_names(client, server, stored, tmp_path):
    names = ["r\u00e9sum\u00e9 final.txt", "\u65e5\u672c\u8a9e.csv"]
    src = tmp_path / "src"
    src.mkdir()
    for name in names:
        (src / name).write_bytes(name.encode() + b"\n")
    eid = client.create_experiment(unique("art-utf8"))
    rid = client.create_run(eid).info.run_id
    for name in names:
        client.log_artifact(rid, str(src / name), artifact_path="d\u00eer")

    # The client percent-encodes the UTF-8 name in the URL; the server stores the decoded name.
    assert stored.stored_files(run_folder(eid, rid)) == {f"d\u00eer/{n}": n.encode() + b"\n" for n in names}
    assert listing(client, rid) == [("d\u00eer", True, None)]
    assert listing(client, rid, "d\u00eer") == sorted((f"d\u00eer/{n}", False, len(n.encode()) + 1) for n in names)
    dst = tmp_path / "dl"
    dst.mkdir()
    got = client.download_artifacts(rid, "d\u00eer", str(dst))
    assert files_under(got) == {n: n.encode() + b"\n" for n in names}
    r = requests.get(f"{server.url}{ARTIFACTS_API}/{eid}/{rid}/artifacts/d\u00eer/{names[0]}", timeout=60)
    assert r.status_code == 200
    assert r.content == names[0].encode() + b"\n"
    assert r.headers["content-disposition"].startswith("attachment")


def test_file_over_8_mb(client, server, stored, tmp_path):
    data = os.urandom(8 * 2**20 + 4099)
    src = tmp_path / "weights.bin"
    src.write_bytes(data)
    eid = client.create_experiment(unique("art-big"))
    rid = client.create_run(eid).info.run_id
    client.log_artifact(rid, str(src), artifact_path="big")

    assert stored.stored_files(f"{run_folder(eid, rid)}/big").keys() == {"weights.bin"}
    assert sha256(stored.stored_file(f"{run_folder(eid, rid)}/big/weights.bin")) == sha256(data)
    assert listing(client, rid, "big") == [("big/weights.bin", False, len(data))]

    dst = tmp_path / "dl"
    dst.mkdir()
    got = client.download_artifacts(rid, "big/weights.bin", str(dst))
    with open(got, "rb") as f:
        assert sha256(f.read()) == sha256(data)

    r = requests.get(f"{server.url}{ARTIFACTS_API}/{eid}/{rid}/artifacts/big/weights.bin", timeout=120)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/octet-stream")
    assert sha256(r.content) == sha256(data)


# ---------------------------------------------------------------------------
# The REST endpoints, raw


@pytest.fixture(scope="module")
def stocked(server):
    """A run with f.txt (5 bytes), empty.txt (0 bytes) and d/inner.bin (3 bytes), uploaded raw."""

    api = Api(server.url)
    eid = new_experiment(api, "art-raw")
    rid = new_run(api, eid)
    base = f"{eid}/{rid}/artifacts"
    put(server, f"{base}/f.txt", b"12345")
    put(server, f"{base}/empty.txt", b"")
    put(server, f"{base}/d/inner.bin", b"\x00\x01\x02")
    return {"eid": eid, "rid": rid, "base": base}


def test_list_endpoint_json(server, stocked):
    base = stocked["base"]
    body = list_raw(server, base)
    assert set(body) == {"files"}
    # Basenames only; folders and empty files carry no file_size.
    assert by_path(body["files"]) == [
        {"path": "d", "is_dir": True},
        {"path": "empty.txt", "is_dir": False},
        {"path": "f.txt", "is_dir": False, "file_size": 5},
    ]
    assert list_raw(server, f"{base}/d") == {"files": [{"path": "inner.bin", "is_dir": False, "file_size": 3}]}
    assert list_raw(server, f"{base}/d/") == {"files": [{"path": "inner.bin", "is_dir": False, "file_size": 3}]}
    # Going down from the destination root one level at a time.
    assert {"path": stocked["rid"], "is_dir": True} in list_raw(server, stocked["eid"])["files"]
    # A file, a missing path: an empty object, no "files" key.
    assert list_raw(server, f"{base}/f.txt") == {}
    assert list_raw(server, f"{base}/missing") == {}


def test_run_based_list_endpoint(api, stocked):
    eid, rid = stocked["eid"], stocked["rid"]
    root_uri = f"mlflow-artifacts:/{eid}/{rid}/artifacts"
    body = ok(api.get("artifacts/list", {"run_id": rid}))
    assert body["root_uri"] == root_uri
    assert set(body) == {"root_uri", "files"}
    assert by_path(body["files"]) == [
        {"path": "d", "is_dir": True},
        {"path": "empty.txt", "is_dir": False},
        {"path": "f.txt", "is_dir": False, "file_size": 5},
    ]
    # Paths are relative to the run, including the listed folder.
    assert ok(api.get("artifacts/list", {"run_id": rid, "path": "d"})) == {
        "root_uri": root_uri, "files": [{"path": "d/inner.bin", "is_dir": False, "file_size": 3}]}
    assert ok(api.get("artifacts/list", {"run_id": rid, "path": ""}))["files"] == body["files"]
    assert ok(api.get("artifacts/list", {"run_id": rid, "path": "f.txt"})) == {"root_uri": root_uri}
    assert ok(api.get("artifacts/list", {"run_id": rid, "path": "missing"})) == {"root_uri": root_uri}
    assert_error(api.get("artifacts/list", {"run_id": uuid.uuid4().hex}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.get("artifacts/list", {}), 400, "INVALID_PARAMETER_VALUE")


def test_get_file_and_missing_file(server, stocked):
    url = f"{server.url}{ARTIFACTS_API}/{stocked['base']}"
    r = requests.get(f"{url}/f.txt", timeout=60)
    assert r.status_code == 200
    assert r.content == b"12345"
    assert r.headers["content-type"].startswith("text/plain")
    assert attachment_name(r) == "f.txt"
    assert r.headers.get("x-content-type-options") == "nosniff"

    r = requests.get(f"{url}/d/inner.bin", timeout=60)
    assert r.status_code == 200
    assert r.content == b"\x00\x01\x02"
    assert r.headers["content-type"].startswith("application/octet-stream")
    assert attachment_name(r) == "inner.bin"

    r = requests.get(f"{url}/empty.txt", timeout=60)
    assert r.status_code == 200
    assert r.content == b""

    assert_error(requests.get(f"{url}/missing.txt", timeout=60), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(requests.get(f"{url}/d/missing/deeper.txt", timeout=60), 404, "RESOURCE_DOES_NOT_EXIST")
    # A folder is not a file (MLflow: 400 {"detail": "Artifact path refers to a directory ..."}).
    assert requests.get(f"{url}/d", timeout=60).status_code == 400


def test_get_artifact_endpoint(server, stocked):
    rid = stocked["rid"]
    r = requests.get(f"{server.url}/get-artifact", params={"run_id": rid, "path": "d/inner.bin"}, timeout=60)
    assert r.status_code == 200
    assert r.content == b"\x00\x01\x02"
    assert attachment_name(r) == "inner.bin"
    r = requests.get(f"{server.url}/get-artifact", params={"run_id": rid, "path": "missing.txt"}, timeout=60)
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = requests.get(f"{server.url}/get-artifact", params={"run_id": rid, "path": "d"}, timeout=60)
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = requests.get(f"{server.url}/get-artifact", params={"run_id": uuid.uuid4().hex, "path": "f.txt"},
                     timeout=60)
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_put_overwrite_and_delete(server, api, stored):
    eid = new_experiment(api, "art-put")
    rid = new_run(api, eid)
    base = f"{eid}/{rid}/artifacts"
    url = f"{server.url}{ARTIFACTS_API}/{base}"
    folder = run_folder(eid, rid)

    # PUT answers 200; a second PUT replaces the whole file (no append, no leftover tail).
    put(server, f"{base}/x.txt", b"a much longer first version")
    put(server, f"{base}/x.txt", b"short")
    assert requests.get(f"{url}/x.txt", timeout=60).content == b"short"
    assert stored.stored_files(folder) == {"x.txt": b"short"}

    # A chunked request body is accepted.
    r = requests.put(f"{url}/chunked.bin", data=iter([b"abc", b"", b"def" * 1000]), timeout=60)
    assert r.status_code == 200, r.text
    assert requests.get(f"{url}/chunked.bin", timeout=60).content == b"abc" + b"def" * 1000

    put(server, f"{base}/dir/one.txt", b"1")
    put(server, f"{base}/dir/sub/two.txt", b"2")
    assert stored.stored_files(folder) == {"x.txt": b"short", "chunked.bin": b"abc" + b"def" * 1000,
                                   "dir/one.txt": b"1", "dir/sub/two.txt": b"2"}

    # DELETE of a file, then of a folder (recursive); both answer 200 with an empty JSON object.
    r = requests.delete(f"{url}/x.txt", timeout=60)
    assert r.status_code == 200, r.text
    assert r.json() == {}
    assert_error(requests.get(f"{url}/x.txt", timeout=60), 404, "RESOURCE_DOES_NOT_EXIST")
    r = requests.delete(f"{url}/dir", timeout=60)
    assert r.status_code == 200, r.text
    assert stored.stored_files(folder) == {"chunked.bin": b"abc" + b"def" * 1000}
    assert not stored.stored_exists(f"{folder}/dir")
    assert list_raw(server, f"{base}/dir") == {}
    # Deleting what is not there is not an error.
    r = requests.delete(f"{url}/never/was.txt", timeout=60)
    assert r.status_code == 200, r.text
    assert r.json() == {}


def test_put_conflicting_with_existing_entries(server, api, stored):
    """PUT onto an existing folder, or below an existing file, fails and leaves the store as it was.

    MLflow 3.17 answers both with a bare 500 "Internal Server Error"; Kiln must answer a 4xx
    without leaving partial files behind and without showing server paths.
    """
    eid = new_experiment(api, "art-conflict")
    rid = new_run(api, eid)
    base = f"{eid}/{rid}/artifacts"
    put(server, f"{base}/dir/inner.txt", b"inner")
    put(server, f"{base}/file.txt", b"file")
    before = stored.stored_files()
    for path in (f"{base}/dir", f"{base}/file.txt/child.txt"):
        r = requests.put(f"{server.url}{ARTIFACTS_API}/{path}", data=b"conflict", timeout=60)
        assert stored.stored_files() == before, f"PUT {path} changed the store ({r.status_code})"
        if server.is_mlflow:
            assert r.status_code == 500, f"PUT {path}: {r.status_code} {r.text[:300]}"
        else:
            for private in stored.store.private_names():
                assert private not in r.text, f"PUT {path}: the error shows {private!r}: {r.text[:300]}"
            assert 400 <= r.status_code < 500, f"PUT {path}: {r.status_code} {r.text[:300]}"
            assert r.json().get("error_code") in REJECTION_CODES, r.text[:300]
    assert requests.get(f"{server.url}{ARTIFACTS_API}/{base}/file.txt", timeout=60).content == b"file"
    assert_alive(server)


# ---------------------------------------------------------------------------
# Hostile paths


class Hostile:
    """A run with one file, a sentinel next to the artifacts folder and a look-alike sibling folder.

    The sentinels are planted in the server's folder (beside a local artifacts folder, or where
    one would be) and, on an object store, beside the ``artifacts/`` prefix in its bucket or
    container as well: ``sentinel.txt`` and ``artifacts-evil/sentinel.txt``."""

    def __init__(self, server):
        self.server = server
        api = Api(server.url)
        self.eid = new_experiment(api, "art-hostile")
        self.rid = new_run(api, self.eid)
        self.run = f"{self.eid}/{self.rid}/artifacts"
        put(server, f"{self.run}/keep.txt", b"keep me")
        self.workdir = os.path.abspath(server.workdir)
        self.root = os.path.join(self.workdir, "artifacts")
        self.mark = "SENTINEL-" + uuid.uuid4().hex
        self.sentinel = os.path.join(self.workdir, "sentinel.txt")
        self.planted = ["sentinel.txt", "artifacts-evil/sentinel.txt"]
        for key in self.planted:
            server.plant_outside(key, self.mark.encode())

    def fill(self, template):
        return template.format(
            run=self.run,
            rid=self.rid,
            abs=self.sentinel,
            abs_rest=self.sentinel.lstrip("/"),
            absdir=self.workdir,
            sibling=os.path.basename(self.root) + "-evil",
        )

    def snapshot(self):
        """Everything the server could reach (see Server.store_snapshot): on disk, every file under
        its folder (not its log or database) with size, mtime and content hash; on an object store,
        every object of its bucket or container with size, ETag and time, and its local folder."""
        return self.server.store_snapshot()

    def sentinels_intact(self, what):
        for key in self.planted:
            for place, data in self.server.read_planted(key).items():
                assert data == self.mark.encode(), f"{what}: {place} was changed"

    def changes(self, before, after):
        return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


@pytest.fixture(scope="module")
def hostile(server):
    if os.environ.get("KILN_E2E_URL"):
        pytest.skip("the folder of an external server is not known")
    return Hostile(server)


def assert_alive(server):
    if server.proc is not None:
        assert server.proc.poll() is None, f"server exited:\n{server.log()}"
    assert requests.get(server.url + "/health", timeout=10).status_code == 200


def check_hostile(server, hostile, method, target, body, mlflow_status, raw_target):
    """Send one hostile request and check the answer, the store and that the server is up."""
    before = hostile.snapshot()
    r = raw_http(server.url, method, target, body=body)
    after = hostile.snapshot()
    what = f"{method} {target}"
    text = r.text[:300]

    # First what matters most: nothing outside the artifacts folder was read, written or deleted.
    assert hostile.mark.encode() not in r.content, f"{what}: the sentinel was read: {text}"
    if r.status_code == 200 and r.headers.get("content-type", "").startswith("application/json"):
        for name in (b"sentinel.txt", b"store.db", b"server.log", b"-evil"):
            assert name not in r.content, f"{what}: listed a file outside the artifacts folder: {text}"
    hostile.sentinels_intact(what)
    changed = hostile.changes(before, after)
    outside = [c for c in changed if not server.is_inside_root(c)]
    assert not outside, f"{what}: files outside the artifacts folder changed: {outside}"

    # Then the answer.
    if server.is_mlflow and mlflow_status is not None:
        assert r.status_code == mlflow_status, f"{what}: MLflow answered {r.status_code}: {text}"
    else:
        assert 400 <= r.status_code < 500, f"{what}: expected a 4xx, got {r.status_code}: {text}"
        # A request target the HTTP layer itself refuses may get a bare 4xx; the rest get a JSON error.
        if not server.is_mlflow and not raw_target:
            ctype = r.headers.get("content-type", "")
            assert ctype.split(";")[0].strip() == "application/json", f"{what}: not JSON ({ctype!r}): {text}"
            err = r.json()
            assert err.get("error_code") in REJECTION_CODES, f"{what}: {text}"
            assert isinstance(err.get("message"), str) and err["message"], f"{what}: {text}"

    if not (server.is_mlflow and mlflow_status is not None and mlflow_status < 300):
        # Only MLflow, where it accepts the request, may change anything inside.
        assert not changed, f"{what}: files in the artifacts folder changed: {changed}"
    assert_alive(server)


S = "sentinel.txt"
# Paths after /api/2.0/mlflow-artifacts/artifacts/ with MLflow 3.17's status per method
# (GET, PUT, DELETE) where it is not a 4xx; `raw` marks targets that are not valid URLs as sent.
PATH_CASES = [
    dict(id="dotdot", path="../" + S),
    dict(id="dotdot-from-run", path="{run}/../../../../" + S),
    dict(id="dotdot-sibling", path="../{sibling}/" + S),
    dict(id="dotdot-encoded", path="%2e%2e/" + S),
    dict(id="dotdot-slash-encoded", path="%2E%2E%2F" + S),
    dict(id="slash-encoded", path="..%2f" + S),
    dict(id="double-encoded", path="%252e%252e/" + S),
    dict(id="double-encoded-slash", path="%252e%252e%252f" + S),
    dict(id="double-encoded-from-run", path="{run}/%252e%252e%252f%252e%252e%252f%252e%252e%252f%252e%252e%252f" + S),
    # MLflow on Linux treats "\" as an ordinary character: GET finds nothing, PUT writes a
    # file literally named "..\sentinel.txt" inside the artifacts folder, DELETE says 200.
    dict(id="backslash-encoded", path="..%5c" + S, mlflow={"GET": 404, "PUT": 200, "DELETE": 200}),
    dict(id="backslash", path="..\\" + S, raw=True, mlflow={"GET": 404, "PUT": 200, "DELETE": 200}),
    dict(id="backslash-from-run", path="{run}%5c..%5c..%5c..%5c..%5c" + S,
         mlflow={"GET": 404, "PUT": 200, "DELETE": 200}),
    # MLflow's DELETE is a Flask route that merges "//" and answers a 308 redirect.
    dict(id="absolute", path="/{abs_rest}", mlflow={"DELETE": 308}),
    dict(id="absolute-encoded", path="%2f{abs_rest}", mlflow={"DELETE": 308}),
    dict(id="proc-self-root", path="/proc/self/root/{abs_rest}", mlflow={"DELETE": 308}),
    dict(id="file-uri", path="file://{abs}"),
    # MLflow keeps NUL as the literal text "%00": PUT creates a file named "a%00b".
    dict(id="nul", path="a%00b", mlflow={"GET": 404, "PUT": 200, "DELETE": 200}),
    dict(id="nul-after-file", path="{run}/keep.txt%00.png", mlflow={"GET": 404, "PUT": 200, "DELETE": 200}),
    # ... and "..%00" is not "..": PUT fails inside MLflow with a 500.
    dict(id="nul-dotdot", path="%2e%2e%00/" + S, mlflow={"GET": 404, "PUT": 500, "DELETE": 200}),
    # An encoded "?" stays in the name; PUT fails inside MLflow with a 500.
    dict(id="question-encoded", path="..%3f/" + S, mlflow={"GET": 404, "PUT": 500, "DELETE": 200}),
    dict(id="question", path="..?/" + S),
    dict(id="question-smuggle", path="{run}/x%3f/../../../../../" + S),
    dict(id="hash-encoded", path="..%23/" + S),
    dict(id="hash", path="..#/" + S, raw=True),
]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("case", PATH_CASES, ids=[c["id"] for c in PATH_CASES])
def test_hostile_artifact_path(server, hostile, case, method):
    target = f"{ARTIFACTS_API}/{hostile.fill(case['path'])}"
    body = f"PWNED-{uuid.uuid4().hex}".encode() if method == "PUT" else None
    check_hostile(server, hostile, method, target, body,
                  case.get("mlflow", {}).get(method), case.get("raw", False))


# `path` values (query string as sent) for the three listing/reading endpoints, with MLflow's
# status where it is not a 4xx.
LIST_CASES = [
    dict(id="dotdot", q=".."),
    dict(id="dotdot-slash", q="../"),
    dict(id="dotdot-from-run", q="{run}/../../../.."),
    dict(id="dotdot-encoded", q="%2e%2e"),
    dict(id="double-encoded", q="%252e%252e"),
    dict(id="double-encoded-slash", q="%252e%252e%252f%252e%252e"),
    # A literal "\" in a name: nothing there, so an empty listing.
    dict(id="backslash-encoded", q="..%5c", mlflow=200),
    dict(id="backslash", q="..\\", raw=True, mlflow=200),
    dict(id="absolute", q="{absdir}"),
    dict(id="absolute-double-slash", q="/{absdir}"),
    dict(id="proc-self-root", q="/proc/self/root{absdir}"),
    dict(id="file-uri", q="file://{absdir}"),
    dict(id="nul", q="a%00b", mlflow=200),
    dict(id="question-encoded", q="..%3f"),
    dict(id="hash-encoded", q="..%23"),
    dict(id="hash-smuggle", q="{rid}%23/../../../.."),
]


@pytest.mark.parametrize("case", LIST_CASES, ids=[c["id"] for c in LIST_CASES])
def test_hostile_list_path(server, hostile, case):
    target = f"{ARTIFACTS_API}?path={hostile.fill(case['q'])}"
    check_hostile(server, hostile, "GET", target, None, case.get("mlflow"), case.get("raw", False))


RUN_LIST_CASES = [
    dict(id="dotdot", q=".."),
    dict(id="dotdot-to-destination", q="../../.."),
    dict(id="dotdot-out", q="../../../.."),
    dict(id="dotdot-encoded", q="%2e%2e"),
    dict(id="double-encoded", q="%252e%252e%252f%252e%252e%252f%252e%252e%252f%252e%252e"),
    dict(id="absolute", q="{absdir}"),
    dict(id="backslash-encoded", q="..%5c..%5c..%5c..", mlflow=200),
    dict(id="nul", q="a%00b", mlflow=200),
    dict(id="hash-encoded", q="%23/../../../.."),
]


@pytest.mark.parametrize("case", RUN_LIST_CASES, ids=[c["id"] for c in RUN_LIST_CASES])
def test_hostile_run_list_path(server, hostile, case):
    target = f"/api/2.0/mlflow/artifacts/list?run_id={hostile.rid}&path={hostile.fill(case['q'])}"
    check_hostile(server, hostile, "GET", target, None, case.get("mlflow"), case.get("raw", False))


GET_ARTIFACT_CASES = [
    dict(id="dotdot", q="../../../../" + S),
    dict(id="dotdot-encoded", q="%2e%2e/%2e%2e/%2e%2e/%2e%2e/" + S),
    dict(id="double-encoded", q="%252e%252e%252f%252e%252e%252f%252e%252e%252f%252e%252e%252f" + S),
    dict(id="absolute", q="{abs}"),
    dict(id="proc-self-root", q="/proc/self/root{abs}"),
    dict(id="backslash-encoded", q="..%5c..%5c..%5c..%5c" + S),
    dict(id="nul", q="keep.txt%00"),
    dict(id="hash-encoded", q="keep.txt%23/../../../../../" + S),
]


@pytest.mark.parametrize("case", GET_ARTIFACT_CASES, ids=[c["id"] for c in GET_ARTIFACT_CASES])
def test_hostile_get_artifact_path(server, hostile, case):
    target = f"/get-artifact?run_id={hostile.rid}&path={hostile.fill(case['q'])}"
    check_hostile(server, hostile, "GET", target, None, case.get("mlflow"), case.get("raw", False))


def test_delete_dot_segments_do_not_wipe_the_store(fresh_server):
    """`DELETE .../artifacts/<folder>/.` must not empty the folder.

    MLflow 3.17 runs shutil.rmtree on "<folder>/.", which deletes everything inside and then
    fails on the final rmdir with a 500; on "." that is every artifact of every experiment.
    Kiln must refuse these with a 4xx and keep every file.
    """
    server = fresh_server.start()

    api = Api(server.url)
    eid = new_experiment(api, "art-dot")
    rid, other = new_run(api, eid), new_run(api, eid)
    put(server, f"{eid}/{rid}/artifacts/keep.txt", b"keep")
    put(server, f"{eid}/{other}/artifacts/other.txt", b"other")
    server.plant_outside("sentinel.txt", b"sentinel")
    everything = {f"{eid}/{rid}/artifacts/keep.txt": b"keep", f"{eid}/{other}/artifacts/other.txt": b"other"}
    assert server.stored_files() == everything

    if server.is_mlflow:
        r = raw_http(server.url, "DELETE", f"{ARTIFACTS_API}/{eid}/{rid}/artifacts/.")
        assert r.status_code == 500
        assert server.stored_files() == {f"{eid}/{other}/artifacts/other.txt": b"other"}
        r = raw_http(server.url, "DELETE", f"{ARTIFACTS_API}/.")
        assert r.status_code == 500
        assert server.stored_files() == {}
    else:
        for target in [f"{eid}/{rid}/artifacts/.", f"{eid}/{rid}/artifacts/./", f"{eid}/{rid}/artifacts/%2e",
                       f"{eid}/./{rid}/artifacts", ".", "./", "%2e", "%2e/", f"{eid}/.", f"{eid}/%2E"]:
            r = raw_http(server.url, "DELETE", f"{ARTIFACTS_API}/{target}")
            assert 400 <= r.status_code < 500, f"DELETE {target}: {r.status_code} {r.text[:300]}"
            assert server.stored_files() == everything, f"DELETE {target} deleted files"
        assert_alive(server)
    for place, data in server.read_planted("sentinel.txt").items():
        assert data == b"sentinel", f"{place} was changed"
