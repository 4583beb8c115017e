"""Experiments: create, get, get-by-name, update (rename), delete, restore and experiment tags."""

import time

import pytest
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from conftest import unique
from helpers import assert_error, get_experiment, kv, new_experiment, ok, tags_of

EXPERIMENT_KEYS = {"experiment_id", "name", "artifact_location", "lifecycle_stage", "last_update_time", "creation_time"}


# ---------------------------------------------------------------- Default experiment

def test_default_experiment_exists(api):
    exp = get_experiment(api, "0")
    assert exp["experiment_id"] == "0"
    assert exp["name"] == "Default"
    assert exp["lifecycle_stage"] == "active"
    assert exp["artifact_location"] == "mlflow-artifacts:/0"
    assert ok(api.get("experiments/get-by-name", {"experiment_name": "Default"}))["experiment"]["experiment_id"] == "0"


def test_default_experiment_through_client(client):
    exp = client.get_experiment_by_name("Default")
    assert exp.experiment_id == "0"
    assert exp.lifecycle_stage == "active"


# ---------------------------------------------------------------- create / get

def test_create_and_get_shape(api):
    before = int(time.time() * 1000)
    name = unique("shape")
    r = api.post("experiments/create", {"name": name})
    body = ok(r)
    assert set(body) == {"experiment_id"}
    eid = body["experiment_id"]
    assert isinstance(eid, str) and eid.isdigit()

    exp = get_experiment(api, eid)
    assert EXPERIMENT_KEYS <= set(exp)
    assert "tags" not in exp  # empty repeated fields are omitted
    assert exp["name"] == name
    assert exp["lifecycle_stage"] == "active"
    assert exp["artifact_location"] == f"mlflow-artifacts:/{eid}"
    assert isinstance(exp["creation_time"], int) and isinstance(exp["last_update_time"], int)
    assert before - 5000 <= exp["creation_time"] <= int(time.time() * 1000) + 5000
    assert exp["last_update_time"] == exp["creation_time"]


def test_experiment_ids_are_increasing_integers(api):
    a = int(new_experiment(api))
    b = int(new_experiment(api))
    assert b > a > 0


def test_create_with_tags_and_artifact_location(api):
    location = "s3://team-bucket/experiments/vision"
    eid = new_experiment(api, "tagged", tags=kv({"team": "vision", "note": ""}), artifact_location=location)
    exp = get_experiment(api, eid)
    assert tags_of(exp) == {"team": "vision", "note": ""}
    assert exp["artifact_location"] == location
    inside = "mlflow-artifacts:/shared/vision"
    assert get_experiment(api, new_experiment(api, "inside", artifact_location=inside))["artifact_location"] == inside


HOSTILE_LOCATIONS = [
    "/etc", "/tmp/../etc", "file:///etc/passwd", "../outside", "relative/folder", "//proc/self/root",
    "mlflow-artifacts:/../../etc", "mlflow-artifacts:/%2e%2e/%2e%2e/etc", "mlflow-artifacts:/a/%252e%252e/b",
    "mlflow-artifacts:/..\\..\\x", "mlflow-artifacts:/x?y=1", "mlflow-artifacts:/x#frag", "s3://bucket/../other",
    "http://169.254.169.254/latest",
]


@pytest.mark.parametrize("location", HOSTILE_LOCATIONS)
def test_hostile_artifact_locations(api, target, location):
    name = unique("hostile-location")
    r = api.post("experiments/create", {"name": name, "artifact_location": location})
    if target == "mlflow":
        # mlflow server records most of these as given (it never reads through them itself,
        # but clients then write there); Kiln refuses them.
        assert r.status_code in (200, 400), r.text[:300]
        return
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert api.get("experiments/get-by-name", {"experiment_name": name}).status_code == 404


@pytest.mark.parametrize("tag", [{"key": "", "value": "v"}, {"key": "bad!", "value": "v"}, {"key": "k" * 251, "value": "v"},
                                 {"key": "k", "value": "v" * 20001}], ids=["empty-key", "bad-key", "long-key", "long-value"])
def test_create_validates_tags(api, tag):
    name = unique("bad-tags")
    assert_error(api.post("experiments/create", {"name": name, "tags": [tag]}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(api.get("experiments/get-by-name", {"experiment_name": name}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_create_names_with_slashes_spaces_and_unicode(api):
    for name in [unique("a/b/c"), unique("with space"), unique("ünïcødé-🚀")]:
        eid = new_experiment(api, name)
        assert get_experiment(api, eid)["name"].startswith(name)


@pytest.mark.parametrize("body", [{}, {"name": ""}])
def test_create_requires_name(api, body):
    assert_error(api.post("experiments/create", body), 400, "INVALID_PARAMETER_VALUE", mentions="name")


def test_create_duplicate_name(api):
    name = unique("dup")
    ok(api.post("experiments/create", {"name": name}))
    assert_error(api.post("experiments/create", {"name": name}), 400, "RESOURCE_ALREADY_EXISTS")


def test_create_name_of_deleted_experiment_is_still_taken(api):
    name = unique("dup-deleted")
    eid = ok(api.post("experiments/create", {"name": name}))["experiment_id"]
    ok(api.post("experiments/delete", {"experiment_id": eid}))
    assert_error(api.post("experiments/create", {"name": name}), 400, "RESOURCE_ALREADY_EXISTS")


def test_get_unknown_experiment(api):
    assert_error(api.get("experiments/get", {"experiment_id": "987654321"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_get_non_integer_experiment_id(api):
    assert_error(api.get("experiments/get", {"experiment_id": "abc"}), 400, "INVALID_PARAMETER_VALUE")


def test_get_without_experiment_id(api):
    assert_error(api.get("experiments/get"), 400, "INVALID_PARAMETER_VALUE", mentions="experiment_id")


def test_get_by_name(api):
    name = unique("byname")
    eid = new_experiment(api, name)
    exp = ok(api.get("experiments/get-by-name", {"experiment_name": get_experiment(api, eid)["name"]}))["experiment"]
    assert exp["experiment_id"] == eid


def test_get_by_name_unknown(api):
    assert_error(api.get("experiments/get-by-name", {"experiment_name": unique("missing")}),
                 404, "RESOURCE_DOES_NOT_EXIST")


def test_get_by_name_requires_name(api):
    assert_error(api.get("experiments/get-by-name"), 400, "INVALID_PARAMETER_VALUE")


def test_client_create_and_get(client):
    name = unique("client")
    eid = client.create_experiment(name, tags={"k": "v"})
    exp = client.get_experiment(eid)
    assert exp.name == name
    assert exp.tags == {"k": "v"}
    assert exp.artifact_location == f"mlflow-artifacts:/{eid}"
    assert client.get_experiment_by_name(name).experiment_id == eid
    assert client.get_experiment_by_name(unique("nope")) is None
    with pytest.raises(MlflowException) as e:
        client.create_experiment(name)
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"


# ---------------------------------------------------------------- update (rename)

def test_rename(api):
    eid = new_experiment(api)
    new_name = unique("renamed")
    assert ok(api.post("experiments/update", {"experiment_id": eid, "new_name": new_name})) == {}
    assert get_experiment(api, eid)["name"] == new_name
    assert ok(api.get("experiments/get-by-name", {"experiment_name": new_name}))["experiment"]["experiment_id"] == eid


@pytest.mark.parametrize("extra", [{}, {"new_name": ""}])
def test_rename_requires_new_name(api, extra):
    eid = new_experiment(api)
    r = api.post("experiments/update", {"experiment_id": eid, **extra})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", mentions="new_name")


def test_rename_to_taken_name(api):
    taken = get_experiment(api, new_experiment(api))["name"]
    eid = new_experiment(api)
    r = api.post("experiments/update", {"experiment_id": eid, "new_name": taken})
    assert r.status_code == 400
    # MLflow surfaces its database error here (BAD_REQUEST); the dedicated code is just as valid.
    assert r.json()["error_code"] in ("BAD_REQUEST", "RESOURCE_ALREADY_EXISTS")


def test_rename_unknown_experiment(api):
    r = api.post("experiments/update", {"experiment_id": "987654321", "new_name": unique()})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_rename_deleted_experiment_is_invalid_state(api):
    eid = new_experiment(api)
    ok(api.post("experiments/delete", {"experiment_id": eid}))
    r = api.post("experiments/update", {"experiment_id": eid, "new_name": unique()})
    # MLflow maps INVALID_STATE to HTTP 500; the error code is what clients act on.
    assert r.status_code in (400, 500)
    assert r.json()["error_code"] == "INVALID_STATE"


# ---------------------------------------------------------------- delete / restore

def test_delete_and_restore_lifecycle(api):
    eid = new_experiment(api)
    created = get_experiment(api, eid)
    assert ok(api.post("experiments/delete", {"experiment_id": eid})) == {}
    deleted = get_experiment(api, eid)
    assert deleted["lifecycle_stage"] == "deleted"
    assert deleted["last_update_time"] >= created["last_update_time"]
    assert deleted["creation_time"] == created["creation_time"]
    # still reachable by name while deleted
    got = ok(api.get("experiments/get-by-name", {"experiment_name": created["name"]}))["experiment"]
    assert got["lifecycle_stage"] == "deleted"

    assert ok(api.post("experiments/restore", {"experiment_id": eid})) == {}
    assert get_experiment(api, eid)["lifecycle_stage"] == "active"


def test_delete_twice_is_not_found(api):
    eid = new_experiment(api)
    ok(api.post("experiments/delete", {"experiment_id": eid}))
    assert_error(api.post("experiments/delete", {"experiment_id": eid}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_restore_active_experiment_is_not_found(api):
    eid = new_experiment(api)
    assert_error(api.post("experiments/restore", {"experiment_id": eid}), 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("path", ["experiments/delete", "experiments/restore"])
def test_delete_restore_unknown(api, path):
    assert_error(api.post(path, {"experiment_id": "987654321"}), 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("path", ["experiments/delete", "experiments/restore"])
def test_delete_restore_require_id(api, path):
    assert_error(api.post(path, {}), 400, "INVALID_PARAMETER_VALUE", mentions="experiment_id")


def test_cannot_create_run_in_deleted_experiment(api):
    eid = new_experiment(api)
    ok(api.post("experiments/delete", {"experiment_id": eid}))
    assert_error(api.post("runs/create", {"experiment_id": eid}), 400, "INVALID_PARAMETER_VALUE")


def test_client_delete_restore(client):
    eid = client.create_experiment(unique("client-del"))
    client.delete_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == "deleted"
    deleted_ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)]
    assert eid in deleted_ids
    client.restore_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == "active"


# ---------------------------------------------------------------- experiment tags

def test_set_and_overwrite_experiment_tag(api):
    eid = new_experiment(api)
    assert ok(api.post("experiments/set-experiment-tag", {"experiment_id": eid, "key": "k", "value": "1"})) == {}
    ok(api.post("experiments/set-experiment-tag", {"experiment_id": eid, "key": "k", "value": "2"}))
    ok(api.post("experiments/set-experiment-tag", {"experiment_id": eid, "key": "empty", "value": ""}))
    assert tags_of(get_experiment(api, eid)) == {"k": "2", "empty": ""}


def test_experiment_tag_key_validation(api):
    eid = new_experiment(api)
    r = api.post("experiments/set-experiment-tag", {"experiment_id": eid, "key": "", "value": "v"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", mentions="key")
    r = api.post("experiments/set-experiment-tag", {"experiment_id": eid, "key": "k" * 251, "value": "v"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    ok(api.post("experiments/set-experiment-tag", {"experiment_id": eid, "key": "k" * 250, "value": "v"}))


def test_experiment_tag_value_limit_is_20000(api):
    eid = new_experiment(api)
    ok(api.post("experiments/set-experiment-tag", {"experiment_id": eid, "key": "big", "value": "v" * 20000}))
    assert len(tags_of(get_experiment(api, eid))["big"]) == 20000  # stored whole, not truncated
    r = api.post("experiments/set-experiment-tag", {"experiment_id": eid, "key": "big", "value": "v" * 20001})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert len(tags_of(get_experiment(api, eid))["big"]) == 20000


def test_set_tag_on_deleted_experiment(api):
    eid = new_experiment(api)
    ok(api.post("experiments/delete", {"experiment_id": eid}))
    r = api.post("experiments/set-experiment-tag", {"experiment_id": eid, "key": "k", "value": "v"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_set_tag_on_unknown_experiment(api):
    r = api.post("experiments/set-experiment-tag", {"experiment_id": "987654321", "key": "k", "value": "v"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_delete_experiment_tag(api):
    eid = new_experiment(api, tags=kv({"a": "1", "b": "2"}))
    assert ok(api.post("experiments/delete-experiment-tag", {"experiment_id": eid, "key": "a"})) == {}
    assert tags_of(get_experiment(api, eid)) == {"b": "2"}
    r = api.post("experiments/delete-experiment-tag", {"experiment_id": eid, "key": "a"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_client_experiment_tags(client):
    eid = client.create_experiment(unique("client-tags"))
    client.set_experiment_tag(eid, "stage", "dev")
    client.set_experiment_tag(eid, "stage", "prod")
    assert client.get_experiment(eid).tags == {"stage": "prod"}
    client.delete_experiment_tag(eid, "stage")
    assert client.get_experiment(eid).tags == {}


# ---------------------------------------------------------------- last_update_time

def test_last_update_time_follows_lifecycle_changes(api):
    eid = new_experiment(api)

    def last_update():
        # a few milliseconds between changes so each bump is visible at millisecond resolution
        time.sleep(0.005)
        return get_experiment(api, eid)["last_update_time"]

    created = last_update()
    ok(api.post("experiments/set-experiment-tag", {"experiment_id": eid, "key": "k", "value": "v"}))
    ok(api.post("runs/create", {"experiment_id": eid}))
    assert last_update() == created  # tags and runs do not touch it
    ok(api.post("experiments/update", {"experiment_id": eid, "new_name": unique("bumped")}))
    renamed = last_update()
    assert renamed > created
    ok(api.post("experiments/delete", {"experiment_id": eid}))
    deleted = last_update()
    assert deleted > renamed
    ok(api.post("experiments/restore", {"experiment_id": eid}))
    assert last_update() > deleted
