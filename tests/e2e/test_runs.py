"""Runs: create, get, update, delete, restore, naming and lifecycle."""

import time

import mlflow
import pytest
from mlflow.entities import RunStatus, ViewType
from mlflow.exceptions import MlflowException

from conftest import unique
from helpers import (RUN_ID, assert_error, get_experiment, get_run, kv, new_experiment, new_run, ok, run_tags,
                     search_runs)

INFO_KEYS = {"run_id", "run_uuid", "experiment_id", "run_name", "user_id", "status", "start_time", "artifact_uri",
             "lifecycle_stage"}


@pytest.fixture(scope="module")
def eid(server):
    from conftest import Api
    return new_experiment(Api(server.url), "runs")


# ---------------------------------------------------------------- create

def test_create_shape(api, eid):
    body = ok(api.post("runs/create", {"experiment_id": eid, "start_time": 1700000000123, "user_id": "alice",
                                        "run_name": "first", "tags": kv({"team": "a"})}))
    run = body["run"]
    info = run["info"]
    assert set(info) == INFO_KEYS  # end_time is omitted until set
    assert RUN_ID.match(info["run_id"])
    assert info["run_uuid"] == info["run_id"]
    assert info["experiment_id"] == eid
    assert info["run_name"] == "first"
    assert info["user_id"] == "alice"
    assert info["status"] == "RUNNING"
    assert info["start_time"] == 1700000000123
    assert info["lifecycle_stage"] == "active"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{eid}/{info['run_id']}/artifacts"
    assert run_tags(run) == {"team": "a", "mlflow.runName": "first"}
    assert "metrics" not in run["data"] and "params" not in run["data"]
    assert run["inputs"] == {}


def test_get_shape(api, eid):
    rid = new_run(api, eid, start_time=5, run_name="shape")
    run = get_run(api, rid)
    assert set(run) >= {"info", "data", "inputs"}
    assert run["inputs"] == {}
    assert run.get("outputs", {}) == {}
    assert set(run["info"]) == INFO_KEYS
    assert run["info"]["start_time"] == 5
    assert run["data"] == {"tags": [{"key": "mlflow.runName", "value": "shape"}]}


def test_create_without_start_time_and_user(api, eid):
    info = ok(api.post("runs/create", {"experiment_id": eid}))["run"]["info"]
    assert info["user_id"] == ""
    # MLflow stores what the client sends; without a start_time the run starts at 0.
    assert info["start_time"] == 0


def test_create_generates_a_run_name(api, eid):
    run = ok(api.post("runs/create", {"experiment_id": eid}))["run"]
    name = run["info"]["run_name"]
    assert name
    assert run_tags(run)["mlflow.runName"] == name


def test_run_name_from_tag(api, eid):
    run = ok(api.post("runs/create", {"experiment_id": eid, "tags": kv({"mlflow.runName": "from-tag"})}))["run"]
    assert run["info"]["run_name"] == "from-tag"
    assert run_tags(run) == {"mlflow.runName": "from-tag"}


def test_run_name_and_same_tag(api, eid):
    run = ok(api.post("runs/create", {"experiment_id": eid, "run_name": "same",
                                       "tags": kv({"mlflow.runName": "same"})}))["run"]
    assert run["info"]["run_name"] == "same"
    assert run_tags(run) == {"mlflow.runName": "same"}


def test_run_name_conflicting_with_tag(api, eid):
    r = api.post("runs/create", {"experiment_id": eid, "run_name": "a", "tags": kv({"mlflow.runName": "b"})})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_run_names_need_not_be_unique(api, eid):
    a = new_run(api, eid, run_name="twin")
    b = new_run(api, eid, run_name="twin")
    assert a != b
    assert get_run(api, a)["info"]["run_name"] == get_run(api, b)["info"]["run_name"] == "twin"


def test_run_name_with_slashes(api, eid):
    rid = new_run(api, eid, run_name="a/b c:d")
    assert get_run(api, rid)["info"]["run_name"] == "a/b c:d"


def test_create_in_unknown_experiment(api):
    assert_error(api.post("runs/create", {"experiment_id": "987654321"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_create_with_non_integer_experiment(api):
    assert_error(api.post("runs/create", {"experiment_id": "abc"}), 400, "INVALID_PARAMETER_VALUE")


def test_create_without_experiment(api):
    r = api.post("runs/create", {})
    # MLflow fails on the missing experiment with a raw database error (BAD_REQUEST).
    assert r.status_code == 400
    assert r.json()["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")


def test_create_in_default_experiment(api):
    rid = new_run(api, "0", run_name=unique("in-default"))
    assert get_run(api, rid)["info"]["experiment_id"] == "0"


# ---------------------------------------------------------------- get

def test_get_by_run_uuid(api, eid):
    rid = new_run(api, eid)
    assert ok(api.get("runs/get", {"run_uuid": rid}))["run"]["info"]["run_id"] == rid


def test_get_unknown_run(api):
    assert_error(api.get("runs/get", {"run_id": "0" * 32}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.get("runs/get", {"run_id": "not-a-run"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_get_requires_run_id(api):
    assert_error(api.get("runs/get"), 400, "INVALID_PARAMETER_VALUE", mentions="run_id")


# ---------------------------------------------------------------- update

def test_update_status_and_end_time(api, eid):
    rid = new_run(api, eid, start_time=10, run_name="upd")
    body = ok(api.post("runs/update", {"run_id": rid, "status": "FINISHED", "end_time": 5000}))
    assert set(body) == {"run_info"}
    info = body["run_info"]
    assert info["status"] == "FINISHED"
    assert info["end_time"] == 5000
    assert info["run_name"] == "upd"
    assert info["start_time"] == 10
    assert get_run(api, rid)["info"] == info


def test_update_without_end_time_leaves_it_unset(api, eid):
    rid = new_run(api, eid)
    info = ok(api.post("runs/update", {"run_id": rid, "status": "FAILED"}))["run_info"]
    assert info["status"] == "FAILED"
    assert "end_time" not in info


@pytest.mark.parametrize("status", ["SCHEDULED", "FINISHED", "FAILED", "KILLED", "RUNNING"])
def test_update_every_status(api, eid, status):
    rid = new_run(api, eid)
    ok(api.post("runs/update", {"run_id": rid, "status": "KILLED"}))
    assert ok(api.post("runs/update", {"run_id": rid, "status": status}))["run_info"]["status"] == status


def test_update_only_given_fields(api, eid):
    rid = new_run(api, eid, run_name="keep")
    ok(api.post("runs/update", {"run_id": rid, "status": "FINISHED", "end_time": 77}))
    info = ok(api.post("runs/update", {"run_id": rid}))["run_info"]
    assert (info["status"], info["end_time"], info["run_name"]) == ("FINISHED", 77, "keep")


def test_update_unknown_status_changes_nothing(api, eid):
    rid = new_run(api, eid)
    r = api.post("runs/update", {"run_id": rid, "status": "BOGUS"})
    # MLflow drops unknown enum values and answers 200; rejecting them is also acceptable.
    if r.status_code != 200:
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert get_run(api, rid)["info"]["status"] == "RUNNING"


def test_rename_run_updates_tag(api, eid):
    rid = new_run(api, eid, run_name="old")
    info = ok(api.post("runs/update", {"run_id": rid, "run_name": "new"}))["run_info"]
    assert info["run_name"] == "new"
    run = get_run(api, rid)
    assert run["info"]["run_name"] == "new"
    assert run_tags(run)["mlflow.runName"] == "new"


def test_rename_to_empty_is_ignored(api, eid):
    rid = new_run(api, eid, run_name="stays")
    assert ok(api.post("runs/update", {"run_id": rid, "run_name": ""}))["run_info"]["run_name"] == "stays"


def test_set_run_name_tag_renames_run(api, eid):
    rid = new_run(api, eid, run_name="before")
    ok(api.post("runs/set-tag", {"run_id": rid, "key": "mlflow.runName", "value": "after"}))
    run = get_run(api, rid)
    assert run["info"]["run_name"] == "after"
    assert run_tags(run)["mlflow.runName"] == "after"


def test_update_unknown_run(api):
    assert_error(api.post("runs/update", {"run_id": "0" * 32, "status": "FINISHED"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_update_requires_run_id(api):
    assert_error(api.post("runs/update", {"status": "FINISHED"}), 400, "INVALID_PARAMETER_VALUE")


# ---------------------------------------------------------------- delete / restore

def test_delete_and_restore(api, eid):
    rid = new_run(api, eid)
    assert ok(api.post("runs/delete", {"run_id": rid})) == {}
    assert get_run(api, rid)["info"]["lifecycle_stage"] == "deleted"
    # deleting again is accepted
    ok(api.post("runs/delete", {"run_id": rid}))
    assert ok(api.post("runs/restore", {"run_id": rid})) == {}
    assert get_run(api, rid)["info"]["lifecycle_stage"] == "active"
    # restoring an active run is accepted too
    ok(api.post("runs/restore", {"run_id": rid}))
    assert get_run(api, rid)["info"]["lifecycle_stage"] == "active"


@pytest.mark.parametrize("path", ["runs/delete", "runs/restore"])
def test_delete_restore_unknown_run(api, path):
    assert_error(api.post(path, {"run_id": "0" * 32}), 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("path", ["runs/delete", "runs/restore"])
def test_delete_restore_require_run_id(api, path):
    assert_error(api.post(path, {}), 400, "INVALID_PARAMETER_VALUE", mentions="run_id")


@pytest.mark.parametrize("path,body", [
    ("runs/log-metric", {"key": "m", "value": 1.0, "timestamp": 1}),
    ("runs/log-parameter", {"key": "p", "value": "1"}),
    ("runs/set-tag", {"key": "t", "value": "1"}),
    ("runs/delete-tag", {"key": "t"}),
    ("runs/log-batch", {"metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 0}]}),
    ("runs/update", {"status": "FINISHED"}),
    ("runs/log-inputs", {"datasets": [{"dataset": {"name": "d", "digest": "x", "source_type": "local", "source": "s"}}]}),
])
def test_writes_to_deleted_run_are_rejected(api, eid, path, body):
    rid = new_run(api, eid)
    ok(api.post("runs/set-tag", {"run_id": rid, "key": "t", "value": "0"}))
    ok(api.post("runs/delete", {"run_id": rid}))
    assert_error(api.post(path, {"run_id": rid, **body}), 400, "INVALID_PARAMETER_VALUE")
    run = get_run(api, rid)
    assert "metrics" not in run["data"] and "params" not in run["data"]
    assert run_tags(run)["t"] == "0"
    assert run["info"]["status"] == "RUNNING"


def test_deleting_experiment_deletes_and_restores_its_runs(api):
    eid = new_experiment(api, "cascade")
    early = new_run(api, eid, start_time=1)
    late = new_run(api, eid, start_time=2)
    ok(api.post("runs/delete", {"run_id": early}))
    ok(api.post("experiments/delete", {"experiment_id": eid}))
    assert get_run(api, late)["info"]["lifecycle_stage"] == "deleted"
    assert ok(search_runs(api, [eid])) == {}
    found = ok(search_runs(api, [eid], run_view_type="ALL"))["runs"]
    assert [r["info"]["run_id"] for r in found] == [late, early]

    ok(api.post("experiments/restore", {"experiment_id": eid}))
    # restoring the experiment brings back every run in it, including the one deleted before
    assert get_run(api, late)["info"]["lifecycle_stage"] == "active"
    assert get_run(api, early)["info"]["lifecycle_stage"] == "active"
    assert get_experiment(api, eid)["lifecycle_stage"] == "active"


# ---------------------------------------------------------------- through the client

def test_client_run_lifecycle(client, eid):
    run = client.create_run(eid, run_name="client-run", tags={"k": "v"})
    rid = run.info.run_id
    assert run.info.status == "RUNNING"
    assert run.info.run_name == "client-run"
    assert run.data.tags == {"k": "v", "mlflow.runName": "client-run"}
    assert abs(run.info.start_time - time.time() * 1000) < 60_000  # the client sends the start time

    client.set_terminated(rid, status="FINISHED", end_time=run.info.start_time + 10)
    got = client.get_run(rid)
    assert got.info.status == RunStatus.to_string(RunStatus.FINISHED)
    assert got.info.end_time == run.info.start_time + 10

    client.delete_run(rid)
    assert client.get_run(rid).info.lifecycle_stage == "deleted"
    assert rid in [r.info.run_id for r in client.search_runs([eid], run_view_type=ViewType.DELETED_ONLY)]
    client.restore_run(rid)
    assert client.get_run(rid).info.lifecycle_stage == "active"

    with pytest.raises(MlflowException) as e:
        client.get_run("0" * 32)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_fluent_run(server, client):
    name = unique("fluent")
    exp = mlflow.set_experiment(name)
    with mlflow.start_run(run_name="fluent-run") as active:
        mlflow.log_param("alpha", 0.5)
        mlflow.log_params({"beta": "x", "gamma": 3})
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.9})
        mlflow.set_tag("phase", "test")
        rid = active.info.run_id
    run = client.get_run(rid)
    assert run.info.experiment_id == exp.experiment_id
    assert run.info.status == "FINISHED"
    assert run.info.end_time is not None and run.info.end_time >= run.info.start_time
    assert run.data.params == {"alpha": "0.5", "beta": "x", "gamma": "3"}
    assert run.data.metrics == {"loss": 1.0 / 3, "acc": 0.9}
    assert run.data.tags["phase"] == "test"
    assert run.data.tags["mlflow.runName"] == "fluent-run"
    assert [m.value for m in client.get_metric_history(rid, "loss")] == [1.0, 0.5, 1.0 / 3]
