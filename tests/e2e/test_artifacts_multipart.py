"""Multipart uploads through the proxied artifact API (the client's
MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD): create, parts, complete, abort.

mlflow server answers "multipart upload is not supported" for a local artifact store and the
client falls back to a single upload; Kiln takes the parts. Both end with the same file.
"""

import hashlib
import os

import pytest
import requests

from helpers import assert_error, get_run, new_experiment, new_run, ok

CHUNK = 5 * 1024 * 1024


@pytest.fixture
def multipart_client(client, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", "1024")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(CHUNK))
    return client


def artifact_root(api, run_id):
    uri = get_run(api, run_id)["info"]["artifact_uri"]
    assert uri.startswith("mlflow-artifacts:/")
    return uri[len("mlflow-artifacts:/"):]


def test_client_logs_a_large_file_in_parts(multipart_client, api, tmp_path, target):
    import mlflow

    data = os.urandom(2 * CHUNK + 4321)
    local = tmp_path / "weights.bin"
    local.write_bytes(data)
    sent = []
    original = requests.put

    def counting_put(url, *args, **kwargs):
        sent.append(url)
        return original(url, *args, **kwargs)

    mlflow.set_experiment(new_experiment_name := f"mpu-{os.urandom(4).hex()}")
    with mlflow.start_run() as run:
        requests.put = counting_put
        try:
            mlflow.log_artifact(str(local), "model")
        finally:
            requests.put = original
    got = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="model/weights.bin",
                                              dst_path=str(tmp_path / "back"))
    with open(got, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert mlflow.get_experiment_by_name(new_experiment_name)
    parts = [u for u in sent if "/mpu/upload/" in u]
    if target == "mlflow":
        # mlflow server refuses multipart on a local store; the client sent the file whole.
        assert parts == []
    else:
        assert len(parts) == 3, sent


def raw(server):
    return f"{server.url}/api/2.0/mlflow-artifacts"


def create(server, folder, body):
    return requests.post(f"{raw(server)}/mpu/create/{folder}", json=body, timeout=60)


@pytest.fixture
def kiln_only(target, server):
    """Kiln's side of the protocol; mlflow server refuses it on a local store, which is checked
    instead so the test still asserts something on that target."""
    if target == "mlflow":
        r = create(server, "0/run", {"path": "x.bin", "num_parts": 1})
        assert r.status_code >= 400 and "not supported" in r.text.lower(), r.text[:300]
        return False
    return True


def test_parts_complete_in_order(kiln_only, server, api):
    if not kiln_only:
        return
    outside = server.stored_outside()
    run_id = new_run(api, new_experiment(api, "mpu"))
    folder = artifact_root(api, run_id)
    made = ok(create(server, folder, {"path": "/tmp/client/data.csv", "num_parts": 3}))
    assert len(made["upload_id"]) == 32
    assert [c["part_number"] for c in made["credentials"]] == [1, 2, 3]
    chunks = {1: b"a,b\n", 2: b"1,2\n", 3: b"3,4\n"}
    etags = {}
    for credential in reversed(made["credentials"]):
        r = requests.put(credential["url"], data=chunks[credential["part_number"]], timeout=60)
        assert r.status_code == 200, r.text
        etags[credential["part_number"]] = r.headers["ETag"]
    parts = [{"part_number": n, "etag": etags[n]} for n in (1, 2, 3)]
    # Nothing is visible until the upload completes.
    listing = ok(api.get("artifacts/list", {"run_id": run_id}))
    assert listing.get("files", []) == []
    r = requests.post(f"{raw(server)}/mpu/complete/{folder}",
                      json={"path": "data.csv", "upload_id": made["upload_id"], "parts": parts}, timeout=60)
    assert r.status_code == 200, r.text
    got = requests.get(f"{raw(server)}/artifacts/{folder}/data.csv", timeout=60)
    assert got.content == b"a,b\n1,2\n3,4\n"
    again = requests.post(f"{raw(server)}/mpu/complete/{folder}",
                          json={"path": "data.csv", "upload_id": made["upload_id"], "parts": parts}, timeout=60)
    assert again.status_code == 404
    # The parts waited inside the store's root and are gone; nothing was written outside it.
    assert not [k for k in server.stored_files() if k.startswith(".kiln-uploads/" + made["upload_id"])]
    assert server.stored_outside() == outside


def test_a_bad_completion_changes_nothing(kiln_only, server, api):
    if not kiln_only:
        return
    folder = artifact_root(api, new_run(api, new_experiment(api, "mpu")))
    made = ok(create(server, folder, {"path": "x.bin", "num_parts": 2}))
    first = requests.put(made["credentials"][0]["url"], data=b"one", timeout=60)
    complete = f"{raw(server)}/mpu/complete/{folder}"
    missing = requests.post(complete, json={"path": "x.bin", "upload_id": made["upload_id"],
                                            "parts": [{"part_number": 1, "etag": first.headers["ETag"]}]}, timeout=60)
    assert_error(missing, 400, "INVALID_PARAMETER_VALUE")
    second = requests.put(made["credentials"][1]["url"], data=b"two", timeout=60)
    wrong = requests.post(complete, json={"path": "x.bin", "upload_id": made["upload_id"], "parts": [
        {"part_number": 1, "etag": first.headers["ETag"]}, {"part_number": 2, "etag": "\"2-99\""}]}, timeout=60)
    assert_error(wrong, 400, "INVALID_PARAMETER_VALUE")
    elsewhere = requests.post(complete, json={"path": "other.bin", "upload_id": made["upload_id"], "parts": [
        {"part_number": 1, "etag": first.headers["ETag"]}, {"part_number": 2, "etag": second.headers["ETag"]}]}, timeout=60)
    assert_error(elsewhere, 400, "INVALID_PARAMETER_VALUE")
    assert requests.get(f"{raw(server)}/artifacts/{folder}/x.bin", timeout=60).status_code == 404
    abort = requests.post(f"{raw(server)}/mpu/abort/{folder}", json={"path": "x.bin", "upload_id": made["upload_id"]},
                          timeout=60)
    assert abort.status_code == 200, abort.text
    late = requests.put(made["credentials"][0]["url"], data=b"late", timeout=60)
    assert late.status_code == 404
    assert requests.get(f"{raw(server)}/artifacts/{folder}/x.bin", timeout=60).status_code == 404


@pytest.mark.parametrize("folder,name", [
    ("../../etc", "passwd"),
    ("%2e%2e/%2e%2e/etc", "passwd"),
    (".kiln-uploads", "x.bin"),
    ("0/run", ".."),
])
def test_hostile_destinations_are_refused(kiln_only, server, folder, name):
    if not kiln_only:
        return
    before = server.stored_outside()
    r = create(server, folder, {"path": name, "num_parts": 1})
    assert 400 <= r.status_code < 500, r.text
    assert server.stored_outside() == before


@pytest.mark.parametrize("name", ["../../../escape.bin", "..\\..\\escape.bin", "/abs/escape.bin"])
def test_the_local_name_is_only_a_file_name(kiln_only, server, api, name):
    if not kiln_only:
        return
    folder = artifact_root(api, new_run(api, new_experiment(api, "mpu")))
    made = ok(create(server, folder, {"path": name, "num_parts": 1}))
    etag = requests.put(made["credentials"][0]["url"], data=b"inside", timeout=60).headers["ETag"]
    done = requests.post(f"{raw(server)}/mpu/complete/{folder}", json={
        "path": name, "upload_id": made["upload_id"], "parts": [{"part_number": 1, "etag": etag}]}, timeout=60)
    assert done.status_code == 200, done.text
    assert requests.get(f"{raw(server)}/artifacts/{folder}/escape.bin", timeout=60).content == b"inside"
    assert server.stored_file(f"{folder}/escape.bin") == b"inside"
    assert not [k for k in server.stored_outside() if "escape.bin" in k]


@pytest.mark.parametrize("upload_id", ["..%2f..%2fetc", "0123", "zz" * 16])
def test_hostile_upload_ids_are_refused(kiln_only, server, upload_id):
    if not kiln_only:
        return
    r = requests.put(f"{raw(server)}/mpu/upload/{upload_id}/1", data=b"x", timeout=60)
    assert 400 <= r.status_code < 500, r.text


def test_part_numbers_are_checked(kiln_only, server, api):
    if not kiln_only:
        return
    folder = artifact_root(api, new_run(api, new_experiment(api, "mpu")))
    for parts in (0, 10001, -1):
        assert_error(create(server, folder, {"path": "x.bin", "num_parts": parts}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(create(server, folder, {"num_parts": 1}), 400, "INVALID_PARAMETER_VALUE", mentions="path")
    made = ok(create(server, folder, {"path": "x.bin", "num_parts": 1}))
    base = made["credentials"][0]["url"].rsplit("/", 1)[0]
    for n in ("0", "2"):
        r = requests.put(f"{base}/{n}", data=b"x", timeout=60)
        assert r.status_code == 400, r.text
