"""The model registry: registered models, model versions, stages, aliases and their searches.

Every test makes its own registered models with unique names, so the suite shares one server;
only the empty-store test starts a server of its own. Raw REST is used where the client hides
what the server answers (statuses, error codes, which keys a response carries); the MLflow
client is used where it exposes the call.

Where MLflow 3.17 answers a client mistake with a 500, the test pins MLflow's answer and holds
Kiln to a 4xx (``server.is_mlflow`` branches, with the reason next to them).
"""

import json
import time
import uuid

import pytest
from mlflow.exceptions import MlflowException

from conftest import Api, unique
from helpers import assert_error, kv, new_experiment, new_run, ok, tags_of

VERSION_KEYS = {"name", "version", "creation_timestamp", "last_updated_timestamp", "current_stage",
                "description", "source", "run_id", "status", "run_link"}


# ---------------------------------------------------------------------------
# Helpers


def call(api, method, path, body=None):
    """GET sends the body as query parameters; POST, PATCH and DELETE send it as JSON (as the client does)."""
    if method == "GET":
        return api.get(path, body)
    return api.raw(method, f"/api/2.0/mlflow/{path}", json=body)


def new_model(api, prefix="rm", **extra):
    name = unique(prefix)
    ok(api.post("registered-models/create", {"name": name, **extra}))
    return name


def get_model(api, name):
    return ok(api.get("registered-models/get", {"name": name}))["registered_model"]


class Source:
    """A run whose artifact folder model versions can point into."""

    def __init__(self, api):
        self.eid = new_experiment(api, "reg-src")
        info = ok(api.post("runs/create", {"experiment_id": self.eid}))["run"]["info"]
        self.run_id = info["run_id"]
        self.artifact_uri = info["artifact_uri"]
        self.source = self.artifact_uri + "/model"


def new_version(api, name, src, **extra):
    body = {"name": name, "source": src.source, "run_id": src.run_id, **extra}
    return ok(api.post("model-versions/create", body))["model_version"]


def get_version(api, name, version):
    return ok(api.get("model-versions/get", {"name": name, "version": str(version)}))["model_version"]


def delete_version(api, name, version):
    return ok(call(api, "DELETE", "model-versions/delete", {"name": name, "version": str(version)}))


def transition(api, name, version, stage, archive=False):
    body = {"name": name, "version": str(version), "stage": stage, "archive_existing_versions": archive}
    return ok(api.post("model-versions/transition-stage", body))["model_version"]


def stages(api, name, versions):
    return {str(v): get_version(api, name, v)["current_stage"] for v in versions}


def latest_set(versions):
    return {(v["version"], v["current_stage"]) for v in versions}


def now_ms():
    return int(time.time() * 1000)


@pytest.fixture(scope="module")
def src(server):
    return Source(Api(server.url))


# ---------------------------------------------------------------------------
# Registered models: create / get


def test_create_and_get_shape(api):
    before = now_ms()
    name = unique("rm-shape")
    body = ok(api.post("registered-models/create",
                       {"name": name, "description": "the description", "tags": kv({"team": "vision", "empty": ""})}))
    assert set(body) == {"registered_model"}
    rm = body["registered_model"]
    assert set(rm) == {"name", "creation_timestamp", "last_updated_timestamp", "description", "tags"}
    assert rm["name"] == name
    assert rm["description"] == "the description"
    assert tags_of(rm) == {"team": "vision", "empty": ""}
    assert isinstance(rm["creation_timestamp"], int)
    assert before - 5000 <= rm["creation_timestamp"] <= now_ms() + 5000
    assert rm["last_updated_timestamp"] == rm["creation_timestamp"]
    # No versions and no aliases yet: neither key is present.
    assert get_model(api, name) == rm


def test_create_without_description_or_tags_omits_them(api):
    name = unique("rm-bare")
    rm = ok(api.post("registered-models/create", {"name": name}))["registered_model"]
    assert set(rm) == {"name", "creation_timestamp", "last_updated_timestamp"}
    assert get_model(api, name) == rm


def test_create_names_with_spaces_unicode_and_punctuation(api):
    for name in [unique("with space"), unique("ünïcødé-🚀"), unique("q?x#y%2fz")]:
        rm = ok(api.post("registered-models/create", {"name": name}))["registered_model"]
        assert rm["name"] == name
        assert get_model(api, name)["name"] == name


def test_create_duplicate(api, client):
    name = new_model(api, "rm-dup")
    assert_error(api.post("registered-models/create", {"name": name}), 400, "RESOURCE_ALREADY_EXISTS")
    with pytest.raises(MlflowException) as e:
        client.create_registered_model(name)
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"


@pytest.mark.parametrize("body", [{}, {"name": ""}])
def test_create_requires_name(api, body):
    assert_error(api.post("registered-models/create", body), 400, "INVALID_PARAMETER_VALUE", mentions="name")


@pytest.mark.parametrize("name", ["a/b", "a:b", ".", "..", "../x"])
def test_create_rejects_bad_names(api, name):
    # "/" and ":" would break models:/ URIs; "." and ".." segments could be taken for paths.
    r = api.post("registered-models/create", {"name": name + ("" if name in (".", "..") else uuid.uuid4().hex[:6])})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("tag", [{"key": "", "value": "v"}, {"key": "bad!", "value": "v"},
                                 {"key": "k" * 251, "value": "v"}, {"key": "k", "value": "v" * 100001}],
                         ids=["empty-key", "bad-key", "long-key", "long-value"])
def test_create_validates_tags(api, tag):
    name = unique("rm-bad-tag")
    assert_error(api.post("registered-models/create", {"name": name, "tags": [tag]}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(api.get("registered-models/get", {"name": name}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_registered_model_tag_value_may_be_100000_chars(api):
    name = new_model(api, "rm-big-tag", tags=[{"key": "big", "value": "v" * 100000}])
    assert len(tags_of(get_model(api, name))["big"]) == 100000


def test_get_missing(api, client):
    assert_error(api.get("registered-models/get", {"name": unique("missing")}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.get("registered-models/get"), 400, "INVALID_PARAMETER_VALUE", mentions="name")
    with pytest.raises(MlflowException) as e:
        client.get_registered_model(unique("missing"))
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_ajax_api_prefix_serves_the_registry(server, api):
    """The UI calls the same handlers under /ajax-api/2.0/mlflow/."""
    name = new_model(api, "rm-ajax")
    r = api.raw("GET", "/ajax-api/2.0/mlflow/registered-models/get", params={"name": name})
    assert ok(r)["registered_model"]["name"] == name
    r = api.raw("GET", "/ajax-api/2.0/mlflow/registered-models/search", params={"filter": f"name = '{name}'"})
    assert [m["name"] for m in ok(r)["registered_models"]] == [name]


# ---------------------------------------------------------------------------
# Registered models: rename / update / delete / tags


def test_rename_moves_versions_and_aliases(api, src):
    old = new_model(api, "rm-old", description="d")
    new_version(api, old, src)
    new_version(api, old, src)
    ok(api.post("registered-models/alias", {"name": old, "alias": "champ", "version": "1"}))
    created = get_model(api, old)
    time.sleep(0.005)

    new = unique("rm-new")
    body = ok(api.post("registered-models/rename", {"name": old, "new_name": new}))
    rm = body["registered_model"]
    assert rm["name"] == new
    assert rm["description"] == "d"
    assert rm["creation_timestamp"] == created["creation_timestamp"]
    assert rm["last_updated_timestamp"] > created["last_updated_timestamp"]

    assert_error(api.get("registered-models/get", {"name": old}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.get("model-versions/get", {"name": old, "version": "1"}), 404, "RESOURCE_DOES_NOT_EXIST")
    for v in ("1", "2"):
        assert get_version(api, new, v)["name"] == new
    mv = ok(api.get("registered-models/alias", {"name": new, "alias": "champ"}))["model_version"]
    assert (mv["name"], mv["version"]) == (new, "1")
    assert get_model(api, new)["aliases"] == [{"alias": "champ", "version": "1"}]
    found = ok(api.get("model-versions/search", {"filter": f"name = '{new}'"}))["model_versions"]
    assert sorted(v["version"] for v in found) == ["1", "2"]
    assert ok(api.get("model-versions/search", {"filter": f"name = '{old}'"})) == {}
    # The next version continues the numbering.
    assert new_version(api, new, src)["version"] == "3"


def test_rename_to_taken_name(api):
    taken = new_model(api, "rm-taken")
    name = new_model(api, "rm-renamed")
    r = api.post("registered-models/rename", {"name": name, "new_name": taken})
    assert_error(r, 400, "RESOURCE_ALREADY_EXISTS")
    assert get_model(api, name)["name"] == name
    assert get_model(api, taken)["name"] == taken


@pytest.mark.parametrize("extra", [{}, {"new_name": ""}])
def test_rename_requires_new_name(api, extra):
    name = new_model(api, "rm-rename-req")
    r = api.post("registered-models/rename", {"name": name, **extra})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", mentions="new_name")


def test_rename_to_bad_name(api):
    name = new_model(api, "rm-rename-bad")
    r = api.post("registered-models/rename", {"name": name, "new_name": "a/b" + uuid.uuid4().hex[:6]})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert get_model(api, name)["name"] == name


def test_update_description(api, client):
    name = new_model(api, "rm-update", description="first")
    created = get_model(api, name)
    time.sleep(0.005)
    rm = ok(call(api, "PATCH", "registered-models/update", {"name": name, "description": "second"}))["registered_model"]
    assert rm["description"] == "second"
    assert rm["last_updated_timestamp"] > created["last_updated_timestamp"]
    assert get_model(api, name)["description"] == "second"
    # An update without a description clears it (proto semantics: the field is simply unset).
    rm = ok(call(api, "PATCH", "registered-models/update", {"name": name}))["registered_model"]
    assert "description" not in rm
    assert "description" not in get_model(api, name)

    client.update_registered_model(name, description="through the client")
    assert client.get_registered_model(name).description == "through the client"


def test_delete_takes_versions_and_aliases(api, src, client):
    name = new_model(api, "rm-delete")
    for _ in range(2):
        new_version(api, name, src)
    ok(api.post("registered-models/alias", {"name": name, "alias": "champ", "version": "2"}))

    assert ok(call(api, "DELETE", "registered-models/delete", {"name": name})) == {}
    assert_error(api.get("registered-models/get", {"name": name}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.get("model-versions/get", {"name": name, "version": "1"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.get("registered-models/alias", {"name": name, "alias": "champ"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert ok(api.get("model-versions/search", {"filter": f"name = '{name}'"})) == {}
    assert ok(api.get("registered-models/search", {"filter": f"name = '{name}'"})) == {}
    assert_error(call(api, "DELETE", "registered-models/delete", {"name": name}), 404, "RESOURCE_DOES_NOT_EXIST")

    # The name is free again, and the new model starts from version 1 with no aliases.
    ok(api.post("registered-models/create", {"name": name}))
    assert new_version(api, name, src)["version"] == "1"
    assert "aliases" not in get_model(api, name)
    # A missing alias on an existing model is INVALID_PARAMETER_VALUE in MLflow, not a 404.
    assert_error(api.get("registered-models/alias", {"name": name, "alias": "champ"}), 400, "INVALID_PARAMETER_VALUE")

    # The source run is untouched.
    assert ok(api.get("runs/get", {"run_id": src.run_id}))["run"]["info"]["lifecycle_stage"] == "active"
    client.delete_registered_model(name)
    with pytest.raises(MlflowException) as e:
        client.get_registered_model(name)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_registered_model_tags(api, client):
    name = new_model(api, "rm-tags")
    assert ok(api.post("registered-models/set-tag", {"name": name, "key": "k", "value": "1"})) == {}
    ok(api.post("registered-models/set-tag", {"name": name, "key": "k", "value": "2"}))
    ok(api.post("registered-models/set-tag", {"name": name, "key": "other", "value": ""}))
    assert tags_of(get_model(api, name)) == {"k": "2", "other": ""}

    assert ok(call(api, "DELETE", "registered-models/delete-tag", {"name": name, "key": "k"})) == {}
    assert tags_of(get_model(api, name)) == {"other": ""}
    # Deleting a tag that is not there is not an error for registered models.
    assert ok(call(api, "DELETE", "registered-models/delete-tag", {"name": name, "key": "k"})) == {}

    r = api.post("registered-models/set-tag", {"name": name, "key": "", "value": "v"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", mentions="key")
    r = api.post("registered-models/set-tag", {"name": name, "key": "k" * 251, "value": "v"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")

    client.set_registered_model_tag(name, "stage", "dev")
    client.delete_registered_model_tag(name, "other")
    assert client.get_registered_model(name).tags == {"stage": "dev"}


# ---------------------------------------------------------------------------
# Registered models: search


# (suffix, tags); created in this order, then "a" is updated so that it is the most recent.
RM_SEARCH = [("b", {"grp": "even"}), ("a", {"grp": "odd", "k": "1"}), ("C", {"grp": "even"}), ("d", {})]


class ModelSearch:
    def __init__(self, api):
        self.api = api
        self.prefix = unique("rms") + "-"
        for suffix, tags in RM_SEARCH:
            ok(api.post("registered-models/create", {"name": self.prefix + suffix, "tags": kv(tags)}))
            time.sleep(0.01)
        ok(call(api, "PATCH", "registered-models/update", {"name": self.prefix + "a", "description": "bumped"}))
        self.mine = f"name LIKE '{self.prefix}%'"

    def search(self, **params):
        return self.api.get("registered-models/search", params)

    def names(self, resp):
        return [m["name"][len(self.prefix):] for m in ok(resp).get("registered_models", [])]


@pytest.fixture(scope="module")
def rms(server):
    return ModelSearch(Api(server.url))


@pytest.mark.parametrize("filter_string,expected", [
    ("name = '{p}a'", ["a"]),
    ("name = \"{p}a\"", ["a"]),
    ("attribute.name = '{p}a'", ["a"]),
    ("name LIKE '{p}%'", ["C", "a", "b", "d"]),
    ("name like '{p}%'", ["C", "a", "b", "d"]),
    ("name LIKE '{P}%'", []),  # LIKE is case-sensitive
    ("name ILIKE '{P}%'", ["C", "a", "b", "d"]),
    ("name ILIKE '{p}c'", ["C"]),
    ("name != '{p}a' AND name LIKE '{p}%'", ["C", "b", "d"]),
    ("name IN ('{p}a', '{p}d')", ["a", "d"]),
    ("name NOT IN ('{p}a', '{p}d') AND name LIKE '{p}%'", ["C", "b"]),
    ("tags.grp = 'even' AND name LIKE '{p}%'", ["C", "b"]),
    ("tag.grp = 'even' AND name LIKE '{p}%'", ["C", "b"]),
    ("tags.`grp` = 'even' AND name LIKE '{p}%'", ["C", "b"]),
    ("tags.grp LIKE 'ev%' AND name LIKE '{p}%'", ["C", "b"]),
    ("tags.grp ILIKE 'EVEN' AND name LIKE '{p}%'", ["C", "b"]),
    # A model without the tag matches no tag comparison, != included.
    ("tags.grp != 'even' AND name LIKE '{p}%'", ["a"]),
    ("tags.grp = 'odd' AND tags.k = '1' AND name LIKE '{p}%'", ["a"]),
    ("tags.missing = 'x' AND name LIKE '{p}%'", []),
])
def test_search_filter(rms, filter_string, expected):
    f = filter_string.format(p=rms.prefix, P=rms.prefix.upper())
    assert rms.names(rms.search(filter=f)) == expected


@pytest.mark.parametrize("filter_string", [
    "name = ",
    "name = 'x' OR name = 'y'",
    "nme = 'x'",
    "creation_timestamp > 0",  # only name is an attribute here
    "name > 'a'",
    "name = 5",
    "tags.grp IN ('a')",
    "params.x = 'a'",
    "name = 'x' name",
])
def test_search_invalid_filter(api, filter_string):
    assert_error(api.get("registered-models/search", {"filter": filter_string}), 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("order_by,expected", [
    (None, ["C", "a", "b", "d"]),  # name ASC by default
    (["name"], ["C", "a", "b", "d"]),
    (["name ASC"], ["C", "a", "b", "d"]),
    (["name DESC"], ["d", "b", "a", "C"]),
    (["last_updated_timestamp"], ["b", "C", "d", "a"]),
    (["last_updated_timestamp ASC"], ["b", "C", "d", "a"]),
    (["last_updated_timestamp DESC"], ["a", "d", "C", "b"]),
    (["timestamp DESC"], ["a", "d", "C", "b"]),  # "timestamp" is last_updated_timestamp
    (["last_updated_timestamp DESC", "name ASC"], ["a", "d", "C", "b"]),
])
def test_search_order_by(rms, order_by, expected):
    params = {"filter": rms.mine}
    if order_by:
        params["order_by"] = order_by
    assert rms.names(rms.search(**params)) == expected


@pytest.mark.parametrize("order_by", [["creation_timestamp DESC"], ["name sideways"], ["tags.grp"], ["nope"]])
def test_search_invalid_order_by(rms, order_by):
    # MLflow accepts only name, timestamp and last_updated_timestamp: not even creation_timestamp.
    assert_error(rms.search(filter=rms.mine, order_by=order_by), 400, "INVALID_PARAMETER_VALUE")


def test_search_duplicate_order_by(rms, server):
    r = rms.search(filter=rms.mine, order_by=["name DESC", "name ASC"])
    if server.is_mlflow:
        # MLflow raises an untyped exception and answers 500 INTERNAL_ERROR: a server bug, not a contract.
        assert r.status_code == 500
    else:
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("page_size,pages", [(1, 4), (2, 2), (3, 2), (4, 1), (5, 1)])
def test_search_pagination(rms, page_size, pages):
    seen, token, count = [], None, 0
    while True:
        params = {"filter": rms.mine, "max_results": page_size, "order_by": ["name ASC"]}
        if token:
            params["page_token"] = token
        body = ok(rms.search(**params))
        count += 1
        seen += [m["name"][len(rms.prefix):] for m in body.get("registered_models", [])]
        token = body.get("next_page_token")
        if not token:
            break
        assert isinstance(token, str)
        assert len(body["registered_models"]) == page_size
    assert seen == ["C", "a", "b", "d"]
    assert count == pages


def test_search_bad_page_token(rms):
    assert_error(rms.search(filter=rms.mine, page_token="not a token"), 400, "INVALID_PARAMETER_VALUE")


def test_search_max_results_limits(rms, server):
    assert rms.names(rms.search(filter=rms.mine, max_results=1000)) == ["C", "a", "b", "d"]
    for bad in (1001, "abc"):
        assert_error(rms.search(filter=rms.mine, max_results=bad), 400, "INVALID_PARAMETER_VALUE",
                     mentions="max_results")
    for bad in (0, -1):
        r = rms.search(filter=rms.mine, max_results=bad)
        if server.is_mlflow:
            # MLflow answers an empty page whose next_page_token points at offset 0 (or -1): a client
            # that follows it loops forever. Kiln refuses, as model-versions/search does for 0.
            body = ok(r)
            assert "registered_models" not in body
            assert body["next_page_token"]
        else:
            assert_error(r, 400, "INVALID_PARAMETER_VALUE", mentions="max_results")


def test_search_default_max_results_is_100(api):
    prefix = unique("rm-many") + "-"
    for i in range(101):
        ok(api.post("registered-models/create", {"name": f"{prefix}{i:03d}"}))
    body = ok(api.get("registered-models/search", {"filter": f"name LIKE '{prefix}%'"}))
    assert [m["name"] for m in body["registered_models"]] == [f"{prefix}{i:03d}" for i in range(100)]
    assert body["next_page_token"]
    rest = ok(api.get("registered-models/search", {"filter": f"name LIKE '{prefix}%'",
                                                   "page_token": body["next_page_token"]}))
    assert [m["name"] for m in rest["registered_models"]] == [f"{prefix}100"]
    assert "next_page_token" not in rest


def test_search_results_carry_tags_versions_and_aliases(api, src):
    name = new_model(api, "rm-full", tags=kv({"t": "1"}), description="desc")
    new_version(api, name, src)
    new_version(api, name, src)
    transition(api, name, 1, "Production")
    ok(api.post("registered-models/alias", {"name": name, "alias": "champ", "version": "2"}))
    [rm] = ok(api.get("registered-models/search", {"filter": f"name = '{name}'"}))["registered_models"]
    assert rm["description"] == "desc"
    assert tags_of(rm) == {"t": "1"}
    assert rm["aliases"] == [{"alias": "champ", "version": "2"}]
    assert latest_set(rm["latest_versions"]) == {("1", "Production"), ("2", "None")}
    got = get_model(api, name)
    assert latest_set(got["latest_versions"]) == latest_set(rm["latest_versions"])
    assert {k: v for k, v in got.items() if k != "latest_versions"} == {
        k: v for k, v in rm.items() if k != "latest_versions"}


def test_search_nothing_is_empty_object(api):
    assert ok(api.get("registered-models/search", {"filter": f"name = '{unique('none')}'"})) == {}


def test_client_search_registered_models(client, rms):
    got = client.search_registered_models(filter_string=rms.mine, order_by=["name DESC"])
    assert [m.name[len(rms.prefix):] for m in got] == ["d", "b", "a", "C"]
    page = client.search_registered_models(filter_string=rms.mine, max_results=3)
    assert len(page) == 3 and page.token
    rest = client.search_registered_models(filter_string=rms.mine, max_results=3, page_token=page.token)
    assert [m.name[len(rms.prefix):] for m in rest] == ["d"]
    assert not rest.token
    [a] = client.search_registered_models(filter_string=f"name = '{rms.prefix}a'")
    assert a.tags == {"grp": "odd", "k": "1"}
    assert a.description == "bumped"


def test_search_on_an_empty_store(fresh_server):
    server = fresh_server.start()
    api = Api(server.url)
    assert ok(api.get("registered-models/search")) == {}
    assert ok(api.get("model-versions/search")) == {}
    for name in ("z", "y", "x"):
        ok(api.post("registered-models/create", {"name": name}))
    body = ok(api.get("registered-models/search"))
    assert [m["name"] for m in body["registered_models"]] == ["x", "y", "z"]
    assert "next_page_token" not in body
    assert ok(api.get("model-versions/search")) == {}


# ---------------------------------------------------------------------------
# Model versions: create / get / update / delete / tags


def test_create_versions_in_order(api, src):
    name = new_model(api, "mv-order")
    created = get_model(api, name)
    before = now_ms()
    time.sleep(0.005)
    versions = [new_version(api, name, src) for _ in range(3)]
    assert [v["version"] for v in versions] == ["1", "2", "3"]
    v1 = versions[0]
    assert set(v1) == VERSION_KEYS
    assert v1["name"] == name
    assert v1["source"] == src.artifact_uri + "/model"
    assert v1["run_id"] == src.run_id
    assert v1["current_stage"] == "None"
    assert v1["status"] == "READY"
    assert v1["description"] == ""
    assert v1["run_link"] == ""
    assert before <= v1["creation_timestamp"] <= now_ms() + 5000
    assert v1["last_updated_timestamp"] == v1["creation_timestamp"]
    assert get_version(api, name, 1) == v1
    # Creating a version bumps the registered model's last_updated_timestamp.
    rm = get_model(api, name)
    assert rm["last_updated_timestamp"] >= versions[-1]["creation_timestamp"] > created["last_updated_timestamp"]
    assert latest_set(rm["latest_versions"]) == {("3", "None")}


def test_create_version_with_tags_and_description(api, src):
    name = new_model(api, "mv-extra")
    v = new_version(api, name, src, description="about", tags=kv({"a": "1", "b": ""}), run_link="http://x/y")
    assert v["description"] == "about"
    assert tags_of(v) == {"a": "1", "b": ""}
    assert v["run_link"] == "http://x/y"
    assert get_version(api, name, 1) == v


def test_version_numbers_are_never_reused(api, src):
    name = new_model(api, "mv-reuse")
    for _ in range(3):
        new_version(api, name, src)
    assert delete_version(api, name, 3) == {}
    assert_error(api.get("model-versions/get", {"name": name, "version": "3"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert new_version(api, name, src)["version"] == "4"
    delete_version(api, name, 4)
    delete_version(api, name, 1)
    assert new_version(api, name, src)["version"] == "5"
    found = ok(api.get("model-versions/search", {"filter": f"name = '{name}'"}))["model_versions"]
    assert sorted(v["version"] for v in found) == ["2", "5"]
    assert latest_set(get_model(api, name)["latest_versions"]) == {("5", "None")}


def test_delete_version(api, src, client):
    name = new_model(api, "mv-delete")
    for _ in range(2):
        new_version(api, name, src)
    before = get_model(api, name)["last_updated_timestamp"]
    time.sleep(0.005)
    assert delete_version(api, name, 2) == {}
    assert get_model(api, name)["last_updated_timestamp"] > before
    assert_error(call(api, "DELETE", "model-versions/delete", {"name": name, "version": "2"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(call(api, "DELETE", "model-versions/delete", {"name": name, "version": "abc"}),
                 400, "INVALID_PARAMETER_VALUE")
    assert latest_set(get_model(api, name)["latest_versions"]) == {("1", "None")}
    client.delete_model_version(name, "1")
    assert "latest_versions" not in get_model(api, name)


def test_create_version_errors(api, src):
    name = new_model(api, "mv-errors")
    missing = unique("missing")
    assert_error(api.post("model-versions/create", {"name": missing, "source": src.source, "run_id": src.run_id}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.post("model-versions/create", {"name": name, "run_id": src.run_id}),
                 400, "INVALID_PARAMETER_VALUE", mentions="source")
    assert_error(api.post("model-versions/create", {"source": src.source, "run_id": src.run_id}),
                 400, "INVALID_PARAMETER_VALUE", mentions="name")
    # A source inside a run's artifacts needs that run's id: no run_id, another run, an unknown run.
    other = new_run(api, src.eid)
    for run_id in (None, other, uuid.uuid4().hex):
        body = {"name": name, "source": src.source}
        if run_id:
            body["run_id"] = run_id
        assert_error(api.post("model-versions/create", body), 400, "INVALID_PARAMETER_VALUE")
    assert ok(api.get("model-versions/search", {"filter": f"name = '{name}'"})) == {}


def test_get_version_errors(api, src):
    name = new_model(api, "mv-get")
    new_version(api, name, src)
    assert_error(api.get("model-versions/get", {"name": name, "version": "2"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.get("model-versions/get", {"name": unique("missing"), "version": "1"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.get("model-versions/get", {"name": name, "version": "x"}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(api.get("model-versions/get", {"name": name}), 400, "INVALID_PARAMETER_VALUE", mentions="version")
    assert_error(api.get("model-versions/get", {"version": "1"}), 400, "INVALID_PARAMETER_VALUE", mentions="name")


def test_update_version_description(api, src, client):
    name = new_model(api, "mv-update")
    v = new_version(api, name, src)
    time.sleep(0.005)
    mv = ok(call(api, "PATCH", "model-versions/update",
                 {"name": name, "version": "1", "description": "hello"}))["model_version"]
    assert mv["description"] == "hello"
    assert mv["last_updated_timestamp"] > v["last_updated_timestamp"]
    assert get_version(api, name, 1)["description"] == "hello"
    client.update_model_version(name, "1", description="from the client")
    assert client.get_model_version(name, "1").description == "from the client"


def test_model_version_tags(api, src, client):
    name = new_model(api, "mv-tags")
    new_version(api, name, src)
    base = {"name": name, "version": "1"}
    assert ok(api.post("model-versions/set-tag", {**base, "key": "k", "value": "1"})) == {}
    ok(api.post("model-versions/set-tag", {**base, "key": "k", "value": "2"}))
    ok(api.post("model-versions/set-tag", {**base, "key": "e", "value": ""}))
    assert tags_of(get_version(api, name, 1)) == {"k": "2", "e": ""}
    assert ok(call(api, "DELETE", "model-versions/delete-tag", {**base, "key": "k"})) == {}
    assert tags_of(get_version(api, name, 1)) == {"e": ""}
    # Deleting a tag that is not there is not an error.
    assert ok(call(api, "DELETE", "model-versions/delete-tag", {**base, "key": "k"})) == {}
    assert_error(api.post("model-versions/set-tag", {**base, "key": "", "value": "v"}),
                 400, "INVALID_PARAMETER_VALUE", mentions="key")

    client.set_model_version_tag(name, "1", "via", "client")
    client.delete_model_version_tag(name, "1", "e")
    assert client.get_model_version(name, "1").tags == {"via": "client"}


def test_get_download_uri(api, src, client):
    name = new_model(api, "mv-uri")
    new_version(api, name, src)
    body = ok(api.get("model-versions/get-download-uri", {"name": name, "version": "1"}))
    assert body == {"artifact_uri": src.source}
    assert client.get_model_version_download_uri(name, "1") == src.source
    assert_error(api.get("model-versions/get-download-uri", {"name": name, "version": "2"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.get("model-versions/get-download-uri", {"name": name}), 400, "INVALID_PARAMETER_VALUE")


# ---------------------------------------------------------------------------
# Model versions: search


class VersionSearch:
    """Models <p>a and <p>b with versions 1..3 each (runs r0, r1, r0; tag i = 0, 1, 2); <p>a v2 deleted.

    Created in the order a1 a2 a3 b1 b2 b3, a few milliseconds apart, so last_updated_timestamp
    orders them.
    """

    def __init__(self, api):
        self.api = api
        self.prefix = unique("mvs") + "-"
        self.eid = new_experiment(api, "mvs")
        self.runs = [ok(api.post("runs/create", {"experiment_id": self.eid}))["run"]["info"] for _ in range(2)]
        for model in ("a", "b"):
            ok(api.post("registered-models/create", {"name": self.prefix + model}))
            for i in range(3):
                run = self.runs[i % 2]
                ok(api.post("model-versions/create", {"name": self.prefix + model,
                                                      "source": run["artifact_uri"] + "/model",
                                                      "run_id": run["run_id"], "tags": kv({"i": str(i)})}))
                time.sleep(0.01)
        delete_version(api, self.prefix + "a", 2)
        self.mine = f"name LIKE '{self.prefix}%'"

    def fill(self, text):
        return text.format(p=self.prefix, P=self.prefix.upper(), r0=self.runs[0]["run_id"], r1=self.runs[1]["run_id"],
                           s0=self.runs[0]["artifact_uri"] + "/model")

    def search(self, **params):
        return self.api.get("model-versions/search", params)

    def names(self, resp):
        return [v["name"][len(self.prefix):] + v["version"] for v in ok(resp).get("model_versions", [])]


@pytest.fixture(scope="module")
def mvs(server):
    return VersionSearch(Api(server.url))


@pytest.mark.parametrize("filter_string,expected", [
    # The default order is last_updated_timestamp DESC, then name ASC, then version DESC.
    ("name = '{p}a'", ["a3", "a1"]),
    ("name='{p}b'", ["b3", "b2", "b1"]),
    ("name LIKE '{p}%'", ["b3", "b2", "b1", "a3", "a1"]),
    ("name ILIKE '{P}%'", ["b3", "b2", "b1", "a3", "a1"]),
    ("name IN ('{p}a')", ["a3", "a1"]),
    ("run_id = '{r0}'", ["b3", "b1", "a3", "a1"]),
    ("run_id='{r1}'", ["b2"]),
    ("run_id IN ('{r1}')", ["b2"]),
    ("run_id IN ('{r0}', '{r1}') AND name LIKE '{p}%'", ["b3", "b2", "b1", "a3", "a1"]),
    ("run_id != '{r0}' AND name LIKE '{p}%'", ["b2"]),
    ("tags.i = '1' AND name LIKE '{p}%'", ["b2"]),  # a2 had it, but a2 is deleted
    ("tags.i != '0' AND name LIKE '{p}%'", ["b3", "b2", "a3"]),
    ("tags.i LIKE '%' AND name = '{p}a'", ["a3", "a1"]),
    ("version_number > 1 AND name LIKE '{p}%'", ["b3", "b2", "a3"]),
    ("version_number = 2 AND name LIKE '{p}%'", ["b2"]),
    ("source_path = '{s0}' AND name LIKE '{p}%'", ["b3", "b1", "a3", "a1"]),
    ("source_path LIKE '%{r1}%'", ["b2"]),
])
def test_search_versions_filter(mvs, filter_string, expected):
    assert mvs.names(mvs.search(filter=mvs.fill(filter_string))) == expected


@pytest.mark.parametrize("filter_string", [
    "name = ",
    "name = 'x' OR name = 'y'",
    "creation_timestamp > 0",
    "current_stage = 'None'",
    "source_path IN ('x')",
    "tags.i IN ('1')",
    "params.x = '1'",
    "version_number = 'x'",
])
def test_search_versions_invalid_filter(api, filter_string):
    assert_error(api.get("model-versions/search", {"filter": filter_string}), 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("order_by,expected", [
    (["version_number ASC"], ["a1", "b1", "b2", "a3", "b3"]),
    (["version_number"], ["a1", "b1", "b2", "a3", "b3"]),
    (["version_number DESC", "name DESC"], ["b3", "a3", "b2", "b1", "a1"]),
    (["name DESC"], ["b3", "b2", "b1", "a3", "a1"]),
    (["name ASC"], ["a3", "a1", "b3", "b2", "b1"]),
    (["creation_timestamp DESC"], ["b3", "b2", "b1", "a3", "a1"]),
    (["creation_timestamp ASC"], ["a1", "a3", "b1", "b2", "b3"]),
    (["last_updated_timestamp ASC"], ["a1", "a3", "b1", "b2", "b3"]),
])
def test_search_versions_order_by(mvs, order_by, expected):
    assert mvs.names(mvs.search(filter=mvs.mine, order_by=order_by)) == expected


@pytest.mark.parametrize("order_by", [["run_id ASC"], ["version_number sideways"], ["tags.i"]])
def test_search_versions_invalid_order_by(mvs, order_by):
    assert_error(mvs.search(filter=mvs.mine, order_by=order_by), 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("page_size,pages", [(1, 5), (2, 3), (4, 2), (5, 1), (6, 1)])
def test_search_versions_pagination(mvs, page_size, pages):
    seen, token, count = [], None, 0
    while True:
        params = {"filter": mvs.mine, "max_results": page_size}
        if token:
            params["page_token"] = token
        body = ok(mvs.search(**params))
        count += 1
        seen += [v["name"][len(mvs.prefix):] + v["version"] for v in body.get("model_versions", [])]
        token = body.get("next_page_token")
        if not token:
            break
        assert len(body["model_versions"]) == page_size
    assert seen == ["b3", "b2", "b1", "a3", "a1"]
    assert count == pages


def test_search_versions_limits(mvs):
    assert mvs.names(mvs.search(filter=mvs.mine, max_results=200000)) == ["b3", "b2", "b1", "a3", "a1"]
    for bad in (0, -1, 200001):
        assert_error(mvs.search(filter=mvs.mine, max_results=bad), 400, "INVALID_PARAMETER_VALUE")
    assert_error(mvs.search(filter=mvs.mine, page_token="not a token"), 400, "INVALID_PARAMETER_VALUE")


def test_search_versions_result_shape(mvs):
    [v] = ok(mvs.search(filter=mvs.fill("name = '{p}b' AND version_number = 2")))["model_versions"]
    assert set(v) == VERSION_KEYS | {"tags"}
    assert tags_of(v) == {"i": "1"}
    assert v["run_id"] == mvs.runs[1]["run_id"]
    assert v["source"] == mvs.runs[1]["artifact_uri"] + "/model"
    assert ok(mvs.search(filter=mvs.fill("name = '{p}nothing'"))) == {}


def test_client_search_model_versions(client, mvs):
    got = client.search_model_versions(mvs.fill("name = '{p}a'"))
    assert [v.version for v in got] == ["3", "1"]
    got = client.search_model_versions(mvs.fill("run_id = '{r1}'"), order_by=["version_number ASC"])
    assert [(v.name[len(mvs.prefix):], v.version) for v in got] == [("b", "2")]
    page = client.search_model_versions(mvs.mine, max_results=2)
    assert len(page) == 2 and page.token


# ---------------------------------------------------------------------------
# Stages


def test_transition_stages_and_archive_existing_versions(api, src):
    name = new_model(api, "mv-stages")
    versions = ["1", "2", "3", "4"]
    for _ in versions:
        new_version(api, name, src)

    mv = transition(api, name, 1, "Staging")
    assert mv["current_stage"] == "Staging"
    assert mv["version"] == "1"
    transition(api, name, 2, "Staging", archive=False)
    assert stages(api, name, versions) == {"1": "Staging", "2": "Staging", "3": "None", "4": "None"}

    before = get_version(api, name, 1)["last_updated_timestamp"]
    time.sleep(0.005)
    transition(api, name, 3, "Staging", archive=True)
    assert stages(api, name, versions) == {"1": "Archived", "2": "Archived", "3": "Staging", "4": "None"}
    assert get_version(api, name, 1)["last_updated_timestamp"] > before

    transition(api, name, 1, "Production", archive=False)
    # Archiving only touches versions in the target stage: version 3 stays in Staging.
    transition(api, name, 4, "Production", archive=True)
    assert stages(api, name, versions) == {"1": "Archived", "2": "Archived", "3": "Staging", "4": "Production"}

    transition(api, name, 3, "Archived", archive=False)
    transition(api, name, 2, "None", archive=False)
    assert stages(api, name, versions) == {"1": "Archived", "2": "None", "3": "Archived", "4": "Production"}
    assert latest_set(get_model(api, name)["latest_versions"]) == {("2", "None"), ("3", "Archived"),
                                                                   ("4", "Production")}


@pytest.mark.parametrize("given,canonical", [("staging", "Staging"), ("PRODUCTION", "Production"),
                                             ("archived", "Archived"), ("none", "None")])
def test_stage_names_are_case_insensitive(api, src, given, canonical):
    name = new_model(api, "mv-stage-case")
    new_version(api, name, src)
    assert transition(api, name, 1, given)["current_stage"] == canonical
    assert get_version(api, name, 1)["current_stage"] == canonical


def test_transition_errors(api, src, server):
    name = new_model(api, "mv-stage-err")
    new_version(api, name, src)
    base = {"name": name, "version": "1", "archive_existing_versions": False}
    assert_error(api.post("model-versions/transition-stage", {**base, "stage": "bogus"}),
                 400, "INVALID_PARAMETER_VALUE", mentions="stage")
    assert_error(api.post("model-versions/transition-stage", {**base, "stage": ""}),
                 400, "INVALID_PARAMETER_VALUE", mentions="stage")
    assert_error(api.post("model-versions/transition-stage", {**base, "version": "2", "stage": "Staging"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    for stage in ("Archived", "None"):
        r = api.post("model-versions/transition-stage", {**base, "stage": stage, "archive_existing_versions": True})
        if server.is_mlflow:
            # archive_existing_versions is only valid for Staging and Production; MLflow raises
            # without an error code, so the client mistake comes back as 500 INTERNAL_ERROR.
            assert r.status_code == 500
            assert r.json()["error_code"] == "INTERNAL_ERROR"
        else:
            assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert get_version(api, name, 1)["current_stage"] == "None"


def test_get_latest_versions(api, src):
    name = new_model(api, "mv-latest")
    for _ in range(4):
        new_version(api, name, src)
    transition(api, name, 1, "Production")
    transition(api, name, 2, "Staging")
    ok(api.post("registered-models/alias", {"name": name, "alias": "champ", "version": "1"}))

    def latest(stages_=None, method="POST"):
        body = {"name": name}
        if stages_ is not None:
            body["stages"] = stages_
        if method == "GET":
            return ok(api.get("registered-models/get-latest-versions", body)).get("model_versions", [])
        return ok(api.post("registered-models/get-latest-versions", body)).get("model_versions", [])

    everything = latest()
    assert latest_set(everything) == {("1", "Production"), ("2", "Staging"), ("4", "None")}
    # get-latest-versions (unlike registered-models/get) carries the versions' aliases.
    assert {v["version"]: v.get("aliases", []) for v in everything} == {"1": ["champ"], "2": [], "4": []}
    assert latest_set(latest([])) == latest_set(everything)
    assert latest_set(latest(["Staging"])) == {("2", "Staging")}
    assert latest_set(latest(["staging", "PRODUCTION"])) == {("1", "Production"), ("2", "Staging")}
    assert latest_set(latest(["None"])) == {("4", "None")}
    assert latest(["Archived"]) == []
    assert ok(api.post("registered-models/get-latest-versions", {"name": name, "stages": ["Archived"]})) == {}
    assert latest_set(latest(["Staging"], method="GET")) == {("2", "Staging")}

    assert_error(api.post("registered-models/get-latest-versions", {"name": name, "stages": ["bogus"]}),
                 400, "INVALID_PARAMETER_VALUE")
    assert_error(api.post("registered-models/get-latest-versions", {"name": unique("missing")}),
                 404, "RESOURCE_DOES_NOT_EXIST")

    # Deleted versions drop out: the latest "None" version becomes 3.
    delete_version(api, name, 4)
    assert latest_set(latest(["None"])) == {("3", "None")}
    assert latest_set(get_model(api, name)["latest_versions"]) == {("1", "Production"), ("2", "Staging"),
                                                                   ("3", "None")}


def test_latest_versions_of_a_model_without_versions(api):
    name = new_model(api, "mv-latest-none")
    assert ok(api.post("registered-models/get-latest-versions", {"name": name})) == {}
    assert "latest_versions" not in get_model(api, name)


@pytest.mark.filterwarnings("ignore:.*is deprecated since 2.9.0:FutureWarning")
def test_client_stages(client, api, src):
    name = new_model(api, "mv-client-stages")
    for _ in range(2):
        new_version(api, name, src)
    client.transition_model_version_stage(name, "1", "Production")
    mv = client.transition_model_version_stage(name, "2", "Production", archive_existing_versions=True)
    assert mv.current_stage == "Production"
    assert client.get_model_version(name, "1").current_stage == "Archived"
    assert [v.version for v in client.get_latest_versions(name, stages=["Production"])] == ["2"]


# ---------------------------------------------------------------------------
# Aliases


def test_aliases(api, src, client):
    name = new_model(api, "alias")
    for _ in range(3):
        new_version(api, name, src)

    assert ok(api.post("registered-models/alias", {"name": name, "alias": "champion", "version": "1"})) == {}
    ok(api.post("registered-models/alias", {"name": name, "alias": "challenger", "version": "2"}))
    ok(api.post("registered-models/alias", {"name": name, "alias": "backup", "version": "2"}))

    body = ok(api.get("registered-models/alias", {"name": name, "alias": "champion"}))
    assert set(body) == {"model_version"}
    mv = body["model_version"]
    assert (mv["name"], mv["version"], mv["aliases"]) == (name, "1", ["champion"])
    assert set(mv) == VERSION_KEYS | {"aliases"}
    two = get_version(api, name, 2)
    assert sorted(two["aliases"]) == ["backup", "challenger"]
    assert "aliases" not in get_version(api, name, 3)
    rm = get_model(api, name)
    assert sorted(rm["aliases"], key=lambda a: a["alias"]) == [
        {"alias": "backup", "version": "2"}, {"alias": "challenger", "version": "2"},
        {"alias": "champion", "version": "1"}]

    # Moving an alias: it leaves its old version.
    ok(api.post("registered-models/alias", {"name": name, "alias": "champion", "version": "3"}))
    moved = ok(api.get("registered-models/alias", {"name": name, "alias": "champion"}))["model_version"]
    assert moved["version"] == "3"
    assert "aliases" not in get_version(api, name, 1)
    assert get_version(api, name, 3)["aliases"] == ["champion"]

    # Deleting an alias; deleting it again is not an error.
    assert ok(call(api, "DELETE", "registered-models/alias", {"name": name, "alias": "challenger"})) == {}
    assert ok(call(api, "DELETE", "registered-models/alias", {"name": name, "alias": "challenger"})) == {}
    assert get_version(api, name, 2)["aliases"] == ["backup"]
    assert_error(api.get("registered-models/alias", {"name": name, "alias": "challenger"}),
                 400, "INVALID_PARAMETER_VALUE")

    # Through the client.
    client.set_registered_model_alias(name, "prod", "1")
    assert client.get_model_version_by_alias(name, "prod").version == "1"
    assert client.get_registered_model(name).aliases == {"backup": "2", "champion": "3", "prod": "1"}
    client.delete_registered_model_alias(name, "prod")
    with pytest.raises(MlflowException) as e:
        client.get_model_version_by_alias(name, "prod")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_alias_names_are_case_sensitive(api, src):
    name = new_model(api, "alias-case")
    new_version(api, name, src)
    ok(api.post("registered-models/alias", {"name": name, "alias": "Champ", "version": "1"}))
    assert ok(api.get("registered-models/alias", {"name": name, "alias": "Champ"}))["model_version"]["version"] == "1"
    assert_error(api.get("registered-models/alias", {"name": name, "alias": "champ"}), 400, "INVALID_PARAMETER_VALUE")


def test_deleting_a_version_drops_its_aliases(api, src):
    name = new_model(api, "alias-del")
    for _ in range(2):
        new_version(api, name, src)
    ok(api.post("registered-models/alias", {"name": name, "alias": "gone", "version": "2"}))
    ok(api.post("registered-models/alias", {"name": name, "alias": "kept", "version": "1"}))
    delete_version(api, name, 2)
    assert get_model(api, name)["aliases"] == [{"alias": "kept", "version": "1"}]
    assert_error(api.get("registered-models/alias", {"name": name, "alias": "gone"}), 400, "INVALID_PARAMETER_VALUE")
    # The deleted version cannot take an alias again.
    assert_error(api.post("registered-models/alias", {"name": name, "alias": "gone", "version": "2"}),
                 404, "RESOURCE_DOES_NOT_EXIST")


def test_alias_on_missing_version_or_model(api, src):
    name = new_model(api, "alias-missing")
    new_version(api, name, src)
    assert_error(api.post("registered-models/alias", {"name": name, "alias": "a", "version": "9"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.post("registered-models/alias", {"name": unique("missing"), "alias": "a", "version": "1"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.get("registered-models/alias", {"name": unique("missing"), "alias": "a"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(call(api, "DELETE", "registered-models/alias", {"name": unique("missing"), "alias": "a"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.post("registered-models/alias", {"name": name, "alias": "a", "version": "abc"}),
                 400, "INVALID_PARAMETER_VALUE")
    assert "aliases" not in get_model(api, name)


@pytest.mark.parametrize("alias", [
    "latest", "LATEST", "Latest",  # reserved, case-insensitively
    "v1", "V2", "v0123",  # v<digits> would read as a version
    "a/b", "with.dot", "with space", "a@b", "x" * 256,
])
def test_invalid_alias_names(api, src, alias):
    name = new_model(api, "alias-bad")
    new_version(api, name, src)
    assert_error(api.post("registered-models/alias", {"name": name, "alias": alias, "version": "1"}),
                 400, "INVALID_PARAMETER_VALUE")
    assert "aliases" not in get_model(api, name)


@pytest.mark.parametrize("alias", ["v1a", "vx", "latest2", "champion_2-b", "ünï", "x" * 255, "1"])
def test_valid_alias_names(api, src, alias):
    name = new_model(api, "alias-good")
    new_version(api, name, src)
    ok(api.post("registered-models/alias", {"name": name, "alias": alias, "version": "1"}))
    assert get_model(api, name)["aliases"] == [{"alias": alias, "version": "1"}]


# ---------------------------------------------------------------------------
# Error shapes: missing parameters (400) and unknown models or versions (404)


@pytest.fixture(scope="module")
def stocked(server, src):
    api = Api(server.url)
    name = new_model(api, "err")
    new_version(api, name, src)
    return {"n": name, "src": src.source, "run": src.run_id}


MISSING_PARAMETER = [
    ("GET", "registered-models/get", {}),
    ("POST", "registered-models/create", {"tags": []}),
    ("POST", "registered-models/rename", {"new_name": "x"}),
    ("POST", "registered-models/rename", {"name": "{n}"}),
    ("PATCH", "registered-models/update", {"description": "x"}),
    ("DELETE", "registered-models/delete", {}),
    ("POST", "registered-models/set-tag", {"key": "k", "value": "v"}),
    ("POST", "registered-models/set-tag", {"name": "{n}", "value": "v"}),
    ("DELETE", "registered-models/delete-tag", {"key": "k"}),
    ("DELETE", "registered-models/delete-tag", {"name": "{n}"}),
    ("POST", "registered-models/get-latest-versions", {}),
    ("POST", "model-versions/create", {"source": "{src}", "run_id": "{run}"}),
    ("POST", "model-versions/create", {"name": "{n}", "run_id": "{run}"}),
    ("GET", "model-versions/get", {"name": "{n}"}),
    ("GET", "model-versions/get", {"version": "1"}),
    ("PATCH", "model-versions/update", {"name": "{n}", "description": "x"}),
    ("DELETE", "model-versions/delete", {"name": "{n}"}),
    ("DELETE", "model-versions/delete", {"version": "1"}),
    ("POST", "model-versions/transition-stage", {"name": "{n}", "stage": "Staging"}),
    ("POST", "model-versions/transition-stage", {"name": "{n}", "version": "1"}),
    ("GET", "model-versions/get-download-uri", {"name": "{n}"}),
    ("POST", "model-versions/set-tag", {"name": "{n}", "key": "k", "value": "v"}),
    ("POST", "model-versions/set-tag", {"name": "{n}", "version": "1", "value": "v"}),
    ("DELETE", "model-versions/delete-tag", {"name": "{n}", "key": "k"}),
    ("POST", "registered-models/alias", {"name": "{n}", "alias": "a"}),
    ("POST", "registered-models/alias", {"name": "{n}", "version": "1"}),
    ("POST", "registered-models/alias", {"alias": "a", "version": "1"}),
    ("DELETE", "registered-models/alias", {"alias": "a"}),
    ("DELETE", "registered-models/alias", {"name": "{n}"}),
    ("GET", "registered-models/alias", {"name": "{n}"}),
    ("GET", "registered-models/alias", {"alias": "a"}),
    ("GET", "model-versions/get", {"name": "{n}", "version": "x"}),
    ("GET", "model-versions/get", {"name": "{n}", "version": "1.5"}),
]


def fill(body, values):
    return {k: (v.format(**values) if isinstance(v, str) else v) for k, v in body.items()}


@pytest.mark.parametrize("method,path,body", MISSING_PARAMETER,
                         ids=[f"{m}-{p}-{'-'.join(sorted(b)) or 'empty'}" for m, p, b in MISSING_PARAMETER])
def test_missing_parameter(api, stocked, method, path, body):
    assert_error(call(api, method, path, fill(body, stocked)), 400, "INVALID_PARAMETER_VALUE")


NOT_FOUND = [
    ("GET", "registered-models/get", {"name": "{missing}"}),
    ("POST", "registered-models/rename", {"name": "{missing}", "new_name": "{missing}-2"}),
    ("PATCH", "registered-models/update", {"name": "{missing}", "description": "x"}),
    ("DELETE", "registered-models/delete", {"name": "{missing}"}),
    ("POST", "registered-models/set-tag", {"name": "{missing}", "key": "k", "value": "v"}),
    ("DELETE", "registered-models/delete-tag", {"name": "{missing}", "key": "k"}),
    ("POST", "registered-models/get-latest-versions", {"name": "{missing}"}),
    ("POST", "model-versions/create", {"name": "{missing}", "source": "{src}", "run_id": "{run}"}),
    ("GET", "model-versions/get", {"name": "{missing}", "version": "1"}),
    ("GET", "model-versions/get", {"name": "{n}", "version": "99"}),
    ("PATCH", "model-versions/update", {"name": "{n}", "version": "99", "description": "x"}),
    ("DELETE", "model-versions/delete", {"name": "{n}", "version": "99"}),
    ("POST", "model-versions/transition-stage", {"name": "{n}", "version": "99", "stage": "Staging",
                                                 "archive_existing_versions": False}),
    ("POST", "model-versions/transition-stage", {"name": "{missing}", "version": "1", "stage": "Staging",
                                                 "archive_existing_versions": False}),
    ("GET", "model-versions/get-download-uri", {"name": "{n}", "version": "99"}),
    ("POST", "model-versions/set-tag", {"name": "{n}", "version": "99", "key": "k", "value": "v"}),
    ("DELETE", "model-versions/delete-tag", {"name": "{n}", "version": "99", "key": "k"}),
    ("POST", "registered-models/alias", {"name": "{n}", "alias": "a", "version": "99"}),
    ("POST", "registered-models/alias", {"name": "{missing}", "alias": "a", "version": "1"}),
    ("DELETE", "registered-models/alias", {"name": "{missing}", "alias": "a"}),
    ("GET", "registered-models/alias", {"name": "{missing}", "alias": "a"}),
]


def not_found_id(method, path, body):
    keys = "-".join(f"{k}={v}" for k, v in sorted(body.items()) if k in ("name", "version"))
    return f"{method}-{path}-{keys}"


@pytest.mark.parametrize("method,path,body", NOT_FOUND, ids=[not_found_id(*case) for case in NOT_FOUND])
def test_not_found(api, stocked, method, path, body):
    values = {**stocked, "missing": unique("missing")}
    assert_error(call(api, method, path, fill(body, values)), 404, "RESOURCE_DOES_NOT_EXIST")


# ---------------------------------------------------------------------------
# The client, end to end over the registry (no model files involved)


def test_client_registry_roundtrip(client, src):
    name = unique("client-reg")
    rm = client.create_registered_model(name, tags={"t": "1"}, description="d")
    assert (rm.name, rm.tags, rm.description) == (name, {"t": "1"}, "d")
    mv = client.create_model_version(name, src.source, run_id=src.run_id, tags={"v": "1"}, description="first")
    assert (mv.version, mv.source, mv.run_id) == ("1", src.source, src.run_id)
    assert (mv.status, mv.current_stage) == ("READY", "None")
    assert mv.tags == {"v": "1"}
    client.create_model_version(name, src.source, run_id=src.run_id)
    client.set_registered_model_alias(name, "champion", "2")
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    got = client.get_registered_model(name)
    assert got.aliases == {"champion": "2"}
    assert {v.version for v in got.latest_versions} == {"2"}
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == ["2", "1"]

    new = unique("client-reg-new")
    client.rename_registered_model(name, new)
    assert client.get_model_version(new, "1").description == "first"
    assert client.get_model_version_by_alias(new, "champion").version == "2"
    client.delete_model_version(new, "2")
    assert client.get_registered_model(new).aliases == {}
    client.delete_registered_model(new)
    assert client.search_registered_models(filter_string=f"name = '{new}'") == []


def test_model_version_json_is_plain(api, src):
    """The version JSON is what the UI and clients parse: strings for versions and ids, ints for times."""
    name = new_model(api, "mv-json")
    v = new_version(api, name, src)
    raw = json.loads(api.get("model-versions/get", {"name": name, "version": "1"}).text)["model_version"]
    assert raw == v
    assert isinstance(raw["version"], str)
    assert isinstance(raw["creation_timestamp"], int)
    assert isinstance(raw["last_updated_timestamp"], int)
