"""MLflow 3 logged models, and a model's whole life through the real client.

The first half drives ``/api/2.0/mlflow/logged-models`` raw: create, get, finalize, tags,
params, delete, search (filters, ordering, pagination), metrics linked to a model, run
outputs, the artifact routes of logged models and model versions, and model-version
sources that point outside the run or model they claim (each must be refused).

The second half trains a scikit-learn model on iris, logs and registers it with
``mlflow.sklearn.log_model`` and loads it back through every kind of model URI; the
predictions must be exactly those of the trained model.

Where MLflow 3.17 answers a client mistake with a 500, or accepts something Kiln refuses on
purpose, the test pins MLflow's answer (noted next to it) and holds Kiln to a 4xx.
"""

import json
import os
import re
import time
import uuid

import pytest
import requests

from conftest import Api, unique
from helpers import ARTIFACTS_API, assert_error, get_experiment, get_run, kv, new_experiment, new_run, ok, tags_of

MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
INFO_KEYS = {"model_id", "experiment_id", "name", "creation_timestamp_ms", "last_updated_timestamp_ms",
             "artifact_uri", "status", "model_type", "source_run_id"}
# Error codes a rejection may carry (names from MLflow's databricks.ErrorCode).
REJECTION_CODES = {"INVALID_PARAMETER_VALUE", "BAD_REQUEST", "RESOURCE_DOES_NOT_EXIST", "PERMISSION_DENIED"}


# ---------------------------------------------------------------------------
# Helpers


def call(api, method, path, body=None, params=None):
    return api.raw(method, f"/api/2.0/mlflow/{path}", json=body, params=params)


def create_model(api, experiment_id, **extra):
    return ok(api.post("logged-models", {"experiment_id": experiment_id, **extra}))["model"]


def get_model(api, model_id):
    return ok(api.get(f"logged-models/{model_id}"))["model"]


def finalize(api, model_id, status="LOGGED_MODEL_READY"):
    return call(api, "PATCH", f"logged-models/{model_id}", {"model_id": model_id, "status": status})


def params_of(model):
    return {p["key"]: p["value"] for p in model["data"].get("params", [])}


def model_tags(model):
    return tags_of(model["info"])


def artifact_path(artifact_uri):
    """The path under the mlflow-artifacts endpoints of an ``mlflow-artifacts:/...`` URI."""
    assert artifact_uri.startswith("mlflow-artifacts:/"), artifact_uri
    return artifact_uri[len("mlflow-artifacts:/"):]


def put(server, path, data):
    r = requests.put(f"{server.url}{ARTIFACTS_API}/{path}", data=data, timeout=60)
    assert r.status_code == 200, f"PUT {path}: {r.status_code} {r.text[:300]}"


def now_ms():
    return int(time.time() * 1000)


# ---------------------------------------------------------------------------
# Create / get


def test_create_and_get_shape(api):
    eid = new_experiment(api, "lm-shape")
    rid = new_run(api, eid)
    before = now_ms()
    body = ok(api.post("logged-models", {
        "experiment_id": eid, "name": "my-model", "source_run_id": rid, "model_type": "classifier",
        "params": kv({"alpha": "0.5", "depth": "3"}), "tags": kv({"team": "vision"})}))
    assert set(body) == {"model"}
    model = body["model"]
    assert set(model) == {"info", "data"}
    info = model["info"]
    assert set(info) == INFO_KEYS | {"tags"}
    mid = info["model_id"]
    assert MODEL_ID.match(mid), mid
    assert info["experiment_id"] == eid
    assert info["name"] == "my-model"
    assert info["source_run_id"] == rid
    assert info["model_type"] == "classifier"
    assert info["status"] == "LOGGED_MODEL_PENDING"
    location = get_experiment(api, eid)["artifact_location"]
    assert info["artifact_uri"] == f"{location}/models/{mid}/artifacts"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{eid}/models/{mid}/artifacts"
    assert before - 5000 <= info["creation_timestamp_ms"] <= now_ms() + 5000
    assert info["last_updated_timestamp_ms"] == info["creation_timestamp_ms"]
    assert model_tags(model) == {"team": "vision"}
    assert params_of(model) == {"alpha": "0.5", "depth": "3"}
    assert set(model["data"]) == {"params"}
    assert get_model(api, mid) == model


def test_create_with_only_an_experiment(api):
    eid = new_experiment(api, "lm-bare")
    model = create_model(api, eid)
    info = model["info"]
    assert set(info) == INFO_KEYS
    # A name is made up (like a run name); type and source run are empty strings.
    assert isinstance(info["name"], str) and info["name"]
    assert info["model_type"] == ""
    assert info["source_run_id"] == ""
    assert model["data"] == {}
    other = create_model(api, eid)["info"]
    assert other["model_id"] != info["model_id"]


def test_create_errors(api):
    assert_error(api.post("logged-models", {"name": "x"}), 400, "INVALID_PARAMETER_VALUE", mentions="experiment_id")
    assert_error(api.post("logged-models", {"experiment_id": "987654321"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.post("logged-models", {"experiment_id": "abc"}), 400, "INVALID_PARAMETER_VALUE")
    eid = new_experiment(api, "lm-deleted-exp")
    ok(api.post("experiments/delete", {"experiment_id": eid}))
    assert_error(api.post("logged-models", {"experiment_id": eid}), 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("model_id", ["m-" + "0" * 32, "m-doesnotexist", "0" * 32])
def test_get_missing(api, model_id):
    assert_error(api.get(f"logged-models/{model_id}"), 404, "RESOURCE_DOES_NOT_EXIST")


# ---------------------------------------------------------------------------
# Finalize / tags / params / delete


def test_finalize(api):
    eid = new_experiment(api, "lm-final")
    mid = create_model(api, eid)["info"]["model_id"]
    created = get_model(api, mid)["info"]
    time.sleep(0.005)
    body = ok(finalize(api, mid))
    info = body["model"]["info"]
    assert info["status"] == "LOGGED_MODEL_READY"
    assert info["last_updated_timestamp_ms"] > created["last_updated_timestamp_ms"]
    assert info["creation_timestamp_ms"] == created["creation_timestamp_ms"]
    assert get_model(api, mid) == body["model"]

    failed = create_model(api, eid)["info"]["model_id"]
    info = ok(finalize(api, failed, "LOGGED_MODEL_UPLOAD_FAILED"))["model"]["info"]
    assert info["status"] == "LOGGED_MODEL_UPLOAD_FAILED"

    assert_error(finalize(api, "m-" + uuid.uuid4().hex), 404, "RESOURCE_DOES_NOT_EXIST")
    r = call(api, "PATCH", f"logged-models/{mid}", {"model_id": mid})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", mentions="status")


def test_finalize_with_unknown_status(api, server):
    eid = new_experiment(api, "lm-final-bad")
    mid = create_model(api, eid)["info"]["model_id"]
    r = finalize(api, mid, "LOGGED_MODEL_BOGUS")
    if server.is_mlflow:
        # MLflow parses an unknown enum name as 0 and stores LOGGED_MODEL_STATUS_UNSPECIFIED.
        assert ok(r)["model"]["info"]["status"] == "LOGGED_MODEL_STATUS_UNSPECIFIED"
    else:
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
        assert get_model(api, mid)["info"]["status"] == "LOGGED_MODEL_PENDING"


def test_tags(api):
    eid = new_experiment(api, "lm-tags")
    mid = create_model(api, eid, tags=kv({"a": "1"}))["info"]["model_id"]
    assert ok(call(api, "PATCH", f"logged-models/{mid}/tags", {"tags": kv({"b": "2", "c": ""})})) == {}
    ok(call(api, "PATCH", f"logged-models/{mid}/tags", {"tags": kv({"a": "changed"})}))
    assert model_tags(get_model(api, mid)) == {"a": "changed", "b": "2", "c": ""}

    assert ok(call(api, "DELETE", f"logged-models/{mid}/tags/b")) == {}
    assert model_tags(get_model(api, mid)) == {"a": "changed", "c": ""}
    # Unlike registered-model tags, deleting a tag that is not there is a 404.
    assert_error(call(api, "DELETE", f"logged-models/{mid}/tags/b"), 404, "RESOURCE_DOES_NOT_EXIST")

    missing = "m-" + uuid.uuid4().hex
    assert_error(call(api, "PATCH", f"logged-models/{missing}/tags", {"tags": kv({"x": "1"})}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(call(api, "DELETE", f"logged-models/{missing}/tags/a"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_params(api):
    eid = new_experiment(api, "lm-params")
    mid = create_model(api, eid, params=kv({"p": "1"}))["info"]["model_id"]
    # The client sends the model id in the body as well as in the path.
    r = api.post(f"logged-models/{mid}/params", {"model_id": mid, "params": kv({"q": "2", "r": ""})})
    assert ok(r) == {}
    assert params_of(get_model(api, mid)) == {"p": "1", "q": "2", "r": ""}

    # Logged-model params are write-once: logging a key again fails, even with the same value.
    for value in ("other", "1"):
        r = api.post(f"logged-models/{mid}/params", {"model_id": mid, "params": kv({"p": value})})
        assert r.status_code == 400, r.text[:300]
        assert r.json()["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")
    assert params_of(get_model(api, mid)) == {"p": "1", "q": "2", "r": ""}

    missing = "m-" + uuid.uuid4().hex
    assert_error(api.post(f"logged-models/{missing}/params", {"model_id": missing, "params": kv({"x": "1"})}),
                 404, "RESOURCE_DOES_NOT_EXIST")


def test_delete(api):
    eid = new_experiment(api, "lm-delete")
    mid = create_model(api, eid, name="doomed")["info"]["model_id"]
    keep = create_model(api, eid, name="kept")["info"]["model_id"]
    assert ok(call(api, "DELETE", f"logged-models/{mid}")) == {}
    assert_error(api.get(f"logged-models/{mid}"), 404, "RESOURCE_DOES_NOT_EXIST")
    found = ok(api.post("logged-models/search", {"experiment_ids": [eid]}))["models"]
    assert [m["info"]["model_id"] for m in found] == [keep]
    # Still there for whoever asks for deleted models.
    got = ok(api.get(f"logged-models/{mid}", {"allow_deleted": "true"}))["model"]["info"]
    assert (got["model_id"], got["name"]) == (mid, "doomed")
    # Deleting a deleted model is not an error; deleting an unknown one is.
    assert ok(call(api, "DELETE", f"logged-models/{mid}")) == {}
    assert_error(call(api, "DELETE", f"logged-models/m-{uuid.uuid4().hex}"), 404, "RESOURCE_DOES_NOT_EXIST")


# ---------------------------------------------------------------------------
# Search


# (name, params, tags, metric "acc" or None); created in this order a few milliseconds apart.
LM_SEARCH = [
    ("alpha", {"p": "0"}, {"t": "even"}, 0.9),
    ("beta", {"p": "1"}, {"t": "odd"}, 0.3),
    ("gamma", {"p": "0"}, {"t": "even"}, 0.7),
    ("delta", {"p": "1"}, {"t": "odd"}, None),
]
DEFAULT_ORDER = ["delta", "gamma", "beta", "alpha"]  # creation_timestamp DESC


class LoggedModelSearch:
    def __init__(self, api):
        self.api = api
        self.eid = new_experiment(api, "lm-search")
        self.other_eid = new_experiment(api, "lm-search-other")
        self.run_id = new_run(api, self.eid)
        self.ids = {}
        for i, (name, params, tags, acc) in enumerate(LM_SEARCH):
            extra = {"source_run_id": self.run_id} if i % 2 == 0 else {}
            mid = create_model(api, self.eid, name=name, params=kv(params), tags=kv(tags), **extra)["info"]["model_id"]
            self.ids[name] = mid
            if acc is not None:
                ok(api.post("runs/log-metric", {"run_id": self.run_id, "key": "acc", "value": acc, "timestamp": 1000,
                                                "step": 0, "model_id": mid}))
            time.sleep(0.01)
        self.ids["other"] = create_model(api, self.other_eid, name="other")["info"]["model_id"]
        self.names = {v: k for k, v in self.ids.items()}

    def search(self, experiment_ids=None, **body):
        return self.api.post("logged-models/search", {"experiment_ids": experiment_ids or [self.eid], **body})

    def names_of(self, resp):
        return [self.names[m["info"]["model_id"]] for m in ok(resp).get("models", [])]


@pytest.fixture(scope="module")
def lms(server):
    return LoggedModelSearch(Api(server.url))


def test_search_default_order_and_shape(lms):
    body = ok(lms.search())
    assert set(body) == {"models"}
    assert [lms.names[m["info"]["model_id"]] for m in body["models"]] == DEFAULT_ORDER
    # A result is the same object that GET answers.
    alpha = next(m for m in body["models"] if m["info"]["name"] == "alpha")
    assert alpha == get_model(lms.api, lms.ids["alpha"])


def test_search_several_experiments(lms):
    assert lms.names_of(lms.search([lms.eid, lms.other_eid])) == ["other"] + DEFAULT_ORDER
    assert lms.names_of(lms.search([lms.other_eid])) == ["other"]


@pytest.mark.parametrize("filter_string,expected", [
    ("name = 'beta'", ["beta"]),
    ("name != 'alpha'", ["delta", "gamma", "beta"]),
    ("name LIKE '%ta'", ["delta", "beta"]),
    ("name like 'a%'", ["alpha"]),
    ("name ILIKE 'ALP%'", ["alpha"]),
    ("name IN ('alpha', 'beta')", ["beta", "alpha"]),
    ("name NOT IN ('alpha', 'beta')", ["delta", "gamma"]),
    ("attributes.name = 'beta'", ["beta"]),
    ("params.p = '1'", ["delta", "beta"]),
    ("params.p != '1'", ["gamma", "alpha"]),
    ("params.p LIKE '%'", DEFAULT_ORDER),
    ("params.missing = '1'", []),
    ("tags.t = 'even'", ["gamma", "alpha"]),
    ("tags.t LIKE 'ev%'", ["gamma", "alpha"]),
    ("tags.t = 'even' AND params.p = '0'", ["gamma", "alpha"]),
    ("tags.t = 'even' AND params.p = '1'", []),
    ("metrics.acc > 0.5", ["gamma", "alpha"]),
    ("metrics.acc >= 0.3", ["gamma", "beta", "alpha"]),
    ("metrics.acc < 0.5", ["beta"]),
    ("metrics.acc = 0.7", ["gamma"]),
    ("metrics.acc != 0.7", ["beta", "alpha"]),
    ("metrics.acc > 0.5 AND name != 'alpha'", ["gamma"]),
    ("source_run_id = '{run}'", ["gamma", "alpha"]),
    ("model_id = '{beta}'", ["beta"]),
    ("creation_timestamp > 0", DEFAULT_ORDER),
    ("creation_time > 0", DEFAULT_ORDER),
    ("last_updated_timestamp > 0", DEFAULT_ORDER),
])
def test_search_filter(lms, filter_string, expected):
    f = filter_string.format(run=lms.run_id, beta=lms.ids["beta"])
    assert lms.names_of(lms.search(filter=f)) == expected


@pytest.mark.parametrize("filter_string", [
    "name = ",
    "name = 'a' OR name = 'b'",
    "params.p > '0'",
    "metrics.acc LIKE '0'",
    "foo.bar = 'x'",
])
def test_search_invalid_filter(lms, filter_string):
    assert_error(lms.search(filter=filter_string), 400, "INVALID_PARAMETER_VALUE")


def test_search_unknown_attribute(lms, server):
    r = lms.search(filter="bogus = 'x'")
    if server.is_mlflow:
        # MLflow looks the attribute up on its ORM class and answers 500 INTERNAL_ERROR.
        assert r.status_code == 500
    else:
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("order_by,expected", [
    ([{"field_name": "name", "ascending": True}], ["alpha", "beta", "delta", "gamma"]),
    ([{"field_name": "name", "ascending": False}], ["gamma", "delta", "beta", "alpha"]),
    ([{"field_name": "name"}], ["alpha", "beta", "delta", "gamma"]),  # ascending by default
    ([{"field_name": "creation_timestamp", "ascending": True}], ["alpha", "beta", "gamma", "delta"]),
    ([{"field_name": "creation_time", "ascending": True}], ["alpha", "beta", "gamma", "delta"]),
    ([{"field_name": "creation_timestamp", "ascending": False}], DEFAULT_ORDER),
    ([{"field_name": "last_updated_timestamp", "ascending": True}], ["alpha", "beta", "gamma", "delta"]),
    # By the latest value of a metric; models without it come last either way.
    ([{"field_name": "metrics.acc", "ascending": False}], ["alpha", "gamma", "beta", "delta"]),
    ([{"field_name": "metrics.acc", "ascending": True}], ["beta", "gamma", "alpha", "delta"]),
    ([{"field_name": "metrics.missing", "ascending": True}], DEFAULT_ORDER),
])
def test_search_order_by(lms, order_by, expected):
    assert lms.names_of(lms.search(order_by=order_by)) == expected


@pytest.mark.parametrize("order_by", [[{"field_name": "params.p"}], [{"field_name": "tags.t"}],
                                      [{"field_name": "bogus"}]])
def test_search_invalid_order_by(lms, order_by):
    assert_error(lms.search(order_by=order_by), 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("page_size,pages", [(1, 4), (2, 2), (3, 2), (4, 1), (5, 1)])
def test_search_pagination(lms, page_size, pages):
    seen, token, count = [], None, 0
    while True:
        extra = {"page_token": token} if token else {}
        body = ok(lms.search(max_results=page_size, **extra))
        count += 1
        seen += [lms.names[m["info"]["model_id"]] for m in body.get("models", [])]
        token = body.get("next_page_token")
        if not token:
            break
        assert len(body["models"]) == page_size
    assert seen == DEFAULT_ORDER
    assert count == pages


def test_search_pagination_with_filter_and_order(lms):
    order = [{"field_name": "name", "ascending": True}]
    first = ok(lms.search(filter="tags.t = 'odd'", order_by=order, max_results=1))
    assert [lms.names[m["info"]["model_id"]] for m in first["models"]] == ["beta"]
    second = ok(lms.search(filter="tags.t = 'odd'", order_by=order, max_results=1, page_token=first["next_page_token"]))
    assert [lms.names[m["info"]["model_id"]] for m in second["models"]] == ["delta"]
    assert "next_page_token" not in second
    # A page token only continues the search it came from.
    r = lms.search(filter="tags.t = 'even'", order_by=order, max_results=1, page_token=first["next_page_token"])
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_search_bad_page_token(lms, server):
    r = lms.search(page_token="not a token")
    if server.is_mlflow:
        # MLflow fails to decode the token and answers a bare HTML 500.
        assert r.status_code == 500
    else:
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_search_max_results(lms):
    # 0 means "the default"; there is no upper limit.
    assert lms.names_of(lms.search(max_results=0)) == DEFAULT_ORDER
    assert lms.names_of(lms.search(max_results=100000)) == DEFAULT_ORDER


def test_search_default_max_results_is_50(api):
    eid = new_experiment(api, "lm-many")
    for i in range(51):
        create_model(api, eid, name=f"m{i:02d}")
    body = ok(api.post("logged-models/search", {"experiment_ids": [eid]}))
    assert len(body["models"]) == 50
    assert body["next_page_token"]
    rest = ok(api.post("logged-models/search", {"experiment_ids": [eid], "page_token": body["next_page_token"]}))
    assert len(rest["models"]) == 1
    names = [m["info"]["name"] for m in body["models"] + rest["models"]]
    assert sorted(names) == [f"m{i:02d}" for i in range(51)]


def test_search_experiment_ids(lms, api):
    assert_error(api.post("logged-models/search", {}), 400, "INVALID_PARAMETER_VALUE", mentions="experiment_ids")
    assert ok(api.post("logged-models/search", {"experiment_ids": []})) == {}
    assert ok(api.post("logged-models/search", {"experiment_ids": ["987654321"]})) == {}
    assert_error(api.post("logged-models/search", {"experiment_ids": ["abc"]}), 400, "INVALID_PARAMETER_VALUE")


def test_client_search_logged_models(client, lms):
    import mlflow

    got = mlflow.search_logged_models(experiment_ids=[lms.eid], filter_string="params.p = '0'", output_format="list")
    assert [m.name for m in got] == ["gamma", "alpha"]
    got = client.search_logged_models([lms.eid], filter_string="metrics.acc > 0.5",
                                      order_by=[{"field_name": "metrics.acc", "ascending": True}])
    assert [m.name for m in got] == ["gamma", "alpha"]
    page = client.search_logged_models([lms.eid], max_results=3)
    assert [m.name for m in page] == DEFAULT_ORDER[:3] and page.token
    rest = client.search_logged_models([lms.eid], max_results=3, page_token=page.token)
    assert [m.name for m in rest] == ["alpha"] and not rest.token
    model = mlflow.get_logged_model(lms.ids["alpha"])
    assert (model.name, model.params, model.tags["t"]) == ("alpha", {"p": "0"}, "even")
    assert [(m.key, m.value) for m in model.metrics] == [("acc", 0.9)]


# ---------------------------------------------------------------------------
# Metrics linked to a model, and run outputs


def test_metrics_logged_with_a_model_id(api):
    eid = new_experiment(api, "lm-metrics")
    rid = new_run(api, eid)
    mid = create_model(api, eid, source_run_id=rid)["info"]["model_id"]
    other = create_model(api, eid)["info"]["model_id"]
    ok(api.post("runs/log-metric", {"run_id": rid, "key": "acc", "value": 0.5, "timestamp": 1000, "step": 2,
                                    "model_id": mid}))
    ok(api.post("runs/log-metric", {"run_id": rid, "key": "acc", "value": 0.6, "timestamp": 2000, "step": 3,
                                    "model_id": mid}))
    ok(api.post("runs/log-metric", {"run_id": rid, "key": "loss", "value": 0.1, "timestamp": 2000, "step": 3}))
    ok(api.post("runs/log-batch", {"run_id": rid, "metrics": [
        {"key": "f1", "value": 0.4, "timestamp": 5, "step": 0, "model_id": other}]}))

    # The model holds every value logged against it (not only the latest), with model and run ids.
    metrics = get_model(api, mid)["data"]["metrics"]
    assert sorted(metrics, key=lambda m: m["step"]) == [
        {"key": "acc", "value": 0.5, "timestamp": 1000, "step": 2, "model_id": mid, "run_id": rid},
        {"key": "acc", "value": 0.6, "timestamp": 2000, "step": 3, "model_id": mid, "run_id": rid},
    ]
    assert get_model(api, other)["data"]["metrics"] == [
        {"key": "f1", "value": 0.4, "timestamp": 5, "step": 0, "model_id": other, "run_id": rid}]
    # The run keeps its usual latest values, without the model id.
    run_metrics = {m["key"]: m for m in get_run(api, rid)["data"]["metrics"]}
    assert run_metrics["acc"] == {"key": "acc", "value": 0.6, "timestamp": 2000, "step": 3}
    assert set(run_metrics) == {"acc", "loss", "f1"}
    history = ok(api.get("metrics/get-history", {"run_id": rid, "metric_key": "acc"}))["metrics"]
    assert sorted(m["value"] for m in history) == [0.5, 0.6]


def test_metric_for_a_missing_model_changes_nothing(api):
    eid = new_experiment(api, "lm-metric-missing")
    rid = new_run(api, eid)
    r = api.post("runs/log-metric", {"run_id": rid, "key": "zz", "value": 1.0, "timestamp": 1, "step": 0,
                                     "model_id": "m-" + uuid.uuid4().hex})
    # MLflow: 400 BAD_REQUEST (a foreign-key failure); a 404 would do as well.
    assert r.status_code in (400, 404), r.text[:300]
    assert r.json()["error_code"] in REJECTION_CODES
    assert "metrics" not in get_run(api, rid)["data"]


def test_run_outputs(api):
    eid = new_experiment(api, "lm-outputs")
    rid = new_run(api, eid)
    a = create_model(api, eid, name="a")["info"]["model_id"]
    b = create_model(api, eid, name="b", source_run_id=rid)["info"]["model_id"]
    assert ok(api.post("runs/outputs", {"run_id": rid, "models": [{"model_id": a, "step": 3}]})) == {}
    ok(api.post("runs/outputs", {"run_id": rid, "models": [{"model_id": b, "step": 0}]}))
    run = get_run(api, rid)
    assert sorted(run["outputs"]["model_outputs"], key=lambda o: o["model_id"]) == sorted(
        [{"model_id": a, "step": 3}, {"model_id": b, "step": 0}], key=lambda o: o["model_id"])
    assert run["inputs"] == {}
    found = ok(api.post("runs/search", {"experiment_ids": [eid]}))["runs"]
    assert found[0]["outputs"] == run["outputs"]
    # A run without outputs answers an empty object.
    assert get_run(api, new_run(api, eid))["outputs"] == {}

    # The same output twice: MLflow answers 400 BAD_REQUEST (a unique-constraint failure).
    r = api.post("runs/outputs", {"run_id": rid, "models": [{"model_id": a, "step": 3}]})
    assert r.status_code == 400, r.text[:300]
    assert r.json()["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS")
    assert len(get_run(api, rid)["outputs"]["model_outputs"]) == 2

    assert_error(api.post("runs/outputs", {"run_id": uuid.uuid4().hex, "models": [{"model_id": a, "step": 0}]}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.post("runs/outputs", {"models": [{"model_id": a, "step": 0}]}),
                 400, "INVALID_PARAMETER_VALUE", mentions="run_id")
    assert_error(api.post("runs/outputs", {"run_id": rid}), 400, "INVALID_PARAMETER_VALUE", mentions="models")


def test_client_logged_model_with_metrics(client):
    import mlflow

    eid = client.create_experiment(unique("lm-client"))
    with mlflow.start_run(experiment_id=eid) as run:
        model = mlflow.initialize_logged_model(name="net", params={"lr": "0.1"}, tags={"k": "v"}, model_type="nn")
        mlflow.log_metric("acc", 0.8, step=1, model_id=model.model_id)
        mlflow.log_metric("acc", 0.9, step=2, model_id=model.model_id)
        mlflow.log_metrics({"f1": 0.5}, model_id=model.model_id)
    assert MODEL_ID.match(model.model_id)
    assert model.source_run_id == run.info.run_id
    assert model.model_uri == f"models:/{model.model_id}"
    assert model.artifact_location == f"mlflow-artifacts:/{eid}/models/{model.model_id}/artifacts"

    got = mlflow.get_logged_model(model.model_id)
    assert (got.name, got.model_type, got.params) == ("net", "nn", {"lr": "0.1"})
    assert got.tags["k"] == "v"
    assert got.status.to_proto() == 1  # PENDING
    assert sorted((m.key, m.step, m.value) for m in got.metrics) == [("acc", 1, 0.8), ("acc", 2, 0.9), ("f1", 0, 0.5)]
    assert {m.model_id for m in got.metrics} == {model.model_id}
    assert {m.run_id for m in got.metrics} == {run.info.run_id}
    # Logging a metric against a model makes the model an input of the run (runs/log-inputs "models").
    raw_run = get_run(Api(client.tracking_uri), run.info.run_id)
    assert raw_run["inputs"]["model_inputs"] == [{"model_id": model.model_id}]
    assert client.get_run(run.info.run_id).data.metrics == {"acc": 0.9, "f1": 0.5}

    mlflow.finalize_logged_model(model.model_id, "READY")
    assert mlflow.get_logged_model(model.model_id).status.to_proto() == 2  # READY
    mlflow.set_logged_model_tags(model.model_id, {"a": "b"})
    mlflow.delete_logged_model_tag(model.model_id, "k")
    tags = mlflow.get_logged_model(model.model_id).tags
    assert tags["a"] == "b" and "k" not in tags


# ---------------------------------------------------------------------------
# Artifact routes of logged models and model versions (files uploaded raw)


MLMODEL = b"artifact_path: model\nflavors:\n  python_function:\n    loader_module: none\n"


class Stored:
    """A logged model with MLmodel and sub/weights.bin uploaded, registered as version 1 of a model."""

    def __init__(self, server):
        self.api = api = Api(server.url)
        self.eid = new_experiment(api, "lm-art")
        self.rid = new_run(api, self.eid)
        info = create_model(api, self.eid, name="stored", source_run_id=self.rid)["info"]
        self.mid = info["model_id"]
        self.artifact_uri = info["artifact_uri"]
        base = artifact_path(self.artifact_uri)
        put(server, f"{base}/MLmodel", MLMODEL)
        put(server, f"{base}/sub/weights.bin", b"\x00\x01\x02\x03")
        ok(finalize(api, self.mid))
        self.name = unique("lm-art")
        ok(api.post("registered-models/create", {"name": self.name}))
        self.version = ok(api.post("model-versions/create", {"name": self.name, "source": f"models:/{self.mid}",
                                                             "model_id": self.mid}))["model_version"]


@pytest.fixture(scope="module")
def stored(server):
    return Stored(server)


def test_version_from_a_logged_model(stored, api):
    v = stored.version
    assert v["source"] == f"models:/{stored.mid}"
    # The run comes from the logged model.
    assert v["run_id"] == stored.rid
    # The download URI is the logged model's artifact folder, not the models:/ source.
    assert ok(api.get("model-versions/get-download-uri", {"name": stored.name, "version": "1"})) == {
        "artifact_uri": stored.artifact_uri}
    # The server records the registration on the logged model.
    tag = model_tags(get_model(api, stored.mid))["mlflow.modelVersions"]
    assert {"name": stored.name, "version": 1} in json.loads(tag)


def test_version_from_a_logged_model_needs_its_id(stored, api):
    r = api.post("model-versions/create", {"name": stored.name, "source": f"models:/{stored.mid}"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    other = create_model(api, stored.eid)["info"]["model_id"]
    r = api.post("model-versions/create", {"name": stored.name, "source": f"models:/{stored.mid}", "model_id": other})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_model_version_artifact_route(server, stored):
    url = f"{server.url}/model-versions/get-artifact"
    r = requests.get(url, params={"name": stored.name, "version": "1", "path": "MLmodel"}, timeout=60)
    assert r.status_code == 200, r.text[:300]
    assert r.content == MLMODEL
    assert r.headers["content-type"].startswith("text/plain")
    r = requests.get(url, params={"name": stored.name, "version": "1", "path": "sub/weights.bin"}, timeout=60)
    assert r.status_code == 200
    assert r.content == b"\x00\x01\x02\x03"
    assert_error(requests.get(url, params={"name": stored.name, "version": "1", "path": "missing.txt"}, timeout=60),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(requests.get(url, params={"name": stored.name, "version": "2", "path": "MLmodel"}, timeout=60),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(requests.get(url, params={"name": unique("missing"), "version": "1", "path": "MLmodel"}, timeout=60),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(requests.get(url, params={"version": "1", "path": "MLmodel"}, timeout=60),
                 400, "INVALID_PARAMETER_VALUE")
    # No path at all: MLflow answers a bare 400 (an HTML page from Flask).
    assert requests.get(url, params={"name": stored.name, "version": "1"}, timeout=60).status_code == 400


HOSTILE_ARTIFACT_PATHS = ["../MLmodel", "..%2fMLmodel", "%2e%2e/MLmodel", "a/../MLmodel", "/etc/passwd",
                          "../../../../../../etc/passwd", "sub/../../MLmodel"]


@pytest.mark.parametrize("path", HOSTILE_ARTIFACT_PATHS)
def test_model_version_artifact_route_refuses_traversal(server, stored, path):
    r = requests.get(f"{server.url}/model-versions/get-artifact",
                     params={"name": stored.name, "version": "1", "path": path}, timeout=60)
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert b"root:" not in r.content


def test_logged_model_artifact_files_route(server, stored):
    url = f"{server.url}/ajax-api/2.0/mlflow/logged-models/{stored.mid}/artifacts/files"
    r = requests.get(url, params={"artifact_file_path": "MLmodel"}, timeout=60)
    assert r.status_code == 200, r.text[:300]
    assert r.content == MLMODEL
    r = requests.get(url, params={"artifact_file_path": "sub/weights.bin"}, timeout=60)
    assert r.status_code == 200
    assert r.content == b"\x00\x01\x02\x03"
    assert_error(requests.get(url, params={"artifact_file_path": "missing.txt"}, timeout=60),
                 404, "RESOURCE_DOES_NOT_EXIST")
    for params in ({}, {"artifact_file_path": ""}):
        # MLflow's code for this one is BAD_REQUEST.
        assert_error(requests.get(url, params=params, timeout=60), 400, "BAD_REQUEST", mentions="artifact_file_path")
    r = requests.get(f"{server.url}/ajax-api/2.0/mlflow/logged-models/m-{uuid.uuid4().hex}/artifacts/files",
                     params={"artifact_file_path": "MLmodel"}, timeout=60)
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("path", HOSTILE_ARTIFACT_PATHS)
def test_logged_model_artifact_files_route_refuses_traversal(server, stored, path):
    r = requests.get(f"{server.url}/ajax-api/2.0/mlflow/logged-models/{stored.mid}/artifacts/files",
                     params={"artifact_file_path": path}, timeout=60)
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert b"root:" not in r.content


@pytest.mark.parametrize("prefix", ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"])
def test_logged_model_artifact_directories_route(server, stored, prefix):
    url = f"{server.url}{prefix}/logged-models/{stored.mid}/artifacts/directories"
    body = ok(requests.get(url, timeout=60))
    assert body["root_uri"] == stored.artifact_uri
    assert sorted(body["files"], key=lambda f: f["path"]) == [
        {"path": "MLmodel", "is_dir": False, "file_size": len(MLMODEL)},
        {"path": "sub", "is_dir": True},
    ]
    assert ok(requests.get(url, params={"artifact_directory_path": ""}, timeout=60)) == body
    # Paths are relative to the model's folder, including the listed folder.
    assert ok(requests.get(url, params={"artifact_directory_path": "sub"}, timeout=60)) == {
        "root_uri": stored.artifact_uri, "files": [{"path": "sub/weights.bin", "is_dir": False, "file_size": 4}]}
    assert ok(requests.get(url, params={"artifact_directory_path": "missing"}, timeout=60)) == {
        "root_uri": stored.artifact_uri}
    for path in ("..", "../..", "/etc", "sub/../.."):
        assert_error(requests.get(url, params={"artifact_directory_path": path}, timeout=60),
                     400, "INVALID_PARAMETER_VALUE")
    r = requests.get(f"{server.url}{prefix}/logged-models/m-{uuid.uuid4().hex}/artifacts/directories", timeout=60)
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_client_lists_and_downloads_logged_model_artifacts(client, stored, tmp_path):
    import mlflow

    got = mlflow.artifacts.download_artifacts(f"models:/{stored.mid}", dst_path=str(tmp_path / "by-id"))
    with open(os.path.join(got, "MLmodel"), "rb") as f:
        assert f.read() == MLMODEL
    with open(os.path.join(got, "sub", "weights.bin"), "rb") as f:
        assert f.read() == b"\x00\x01\x02\x03"
    got = mlflow.artifacts.download_artifacts(f"models:/{stored.name}/1", dst_path=str(tmp_path / "by-version"))
    assert {"MLmodel", "sub"} <= set(os.listdir(got))


# ---------------------------------------------------------------------------
# Model-version sources outside the run or model they claim


class Sources:
    def __init__(self, server):
        api = Api(server.url)
        self.eid = new_experiment(api, "lm-src")
        info = ok(api.post("runs/create", {"experiment_id": self.eid}))["run"]["info"]
        self.rid, self.root = info["run_id"], info["artifact_uri"]
        other = ok(api.post("runs/create", {"experiment_id": self.eid}))["run"]["info"]
        self.other_rid, self.other_root = other["run_id"], other["artifact_uri"]
        self.mid = create_model(api, self.eid, source_run_id=self.rid)["info"]["model_id"]
        self.name = unique("lm-src")
        ok(api.post("registered-models/create", {"name": self.name}))

    def fill(self, text):
        return text.format(root=self.root, rel=artifact_path(self.root), eid=self.eid, rid=self.rid,
                           other_root=self.other_root, other_rid=self.other_rid, mid=self.mid)


@pytest.fixture(scope="module")
def sources(server):
    return Sources(server)


# MLflow 3.17 refuses all of these with 400 INVALID_PARAMETER_VALUE, with or without run_id.
REFUSED_SOURCES = [
    "/etc",
    "file:///etc/passwd",
    "mlflow-artifacts:/../../etc",
    "../x",
    "relative/path",
    "{root}/../../../etc",
    "{root}/model/../../..",
    "{root}/%2e%2e/%2e%2e/%2e%2e",
    "{root}/model%00",
    "{other_root}/model",  # another run's folder
    "mlflow-artifacts:/{eid}",  # the experiment's folder, above the run
    "mlflow-artifacts://evil.example/{rel}/model",  # another host
    "http://evil.example/x",
    "file:{root}",
    "runs:/{other_rid}/model",
]
# MLflow accepts these (remote stores it would read with its own credentials); Kiln refuses
# every source outside its artifact root.
ACCEPTED_BY_MLFLOW = ["s3://bucket/x", "dbfs:/x"]


@pytest.mark.parametrize("with_run_id", [True, False], ids=["run_id", "no-run_id"])
@pytest.mark.parametrize("source", REFUSED_SOURCES + ACCEPTED_BY_MLFLOW)
def test_hostile_model_version_source(server, api, sources, source, with_run_id):
    body = {"name": sources.name, "source": sources.fill(source)}
    if with_run_id:
        body["run_id"] = sources.rid
    r = api.post("model-versions/create", body)
    if server.is_mlflow and source in ACCEPTED_BY_MLFLOW:
        assert ok(r)["model_version"]["source"] == source
        return
    if server.is_mlflow:
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    else:
        # Kiln refuses sources outside the artifact root, and does not show server paths.
        assert 400 <= r.status_code < 500, f"{source}: {r.status_code} {r.text[:300]}"
        assert r.json()["error_code"] in REJECTION_CODES, r.text[:300]
        for private in [server.workdir] + server.store.private_names():
            assert private not in r.text, r.text[:300]
    mine = f"name = '{sources.name}' AND source_path = '{body['source']}'"
    assert ok(api.get("model-versions/search", {"filter": mine})) == {}, f"{source} was registered"


@pytest.mark.parametrize("source,extra", [
    ("{root}/model", {"run_id": "{rid}"}),
    ("{root}", {"run_id": "{rid}"}),
    ("{root}/deep/er/model", {"run_id": "{rid}"}),
    ("runs:/{rid}/model", {"run_id": "{rid}"}),
    ("models:/{mid}", {"model_id": "{mid}"}),
    ("mlflow-artifacts:/{eid}/models/{mid}/artifacts", {"model_id": "{mid}"}),
])
def test_accepted_model_version_sources(api, sources, source, extra):
    body = {"name": sources.name, "source": sources.fill(source), **{k: sources.fill(v) for k, v in extra.items()}}
    mv = ok(api.post("model-versions/create", body))["model_version"]
    assert mv["source"] == body["source"]
    assert mv["run_id"] == sources.rid


# ---------------------------------------------------------------------------
# The real client: train, log, register, load


class Trained:
    """An iris LogisticRegression logged with mlflow.sklearn.log_model and registered as version 1."""

    def __init__(self, server):
        import mlflow
        import mlflow.sklearn
        from mlflow import MlflowClient
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression

        self.X, y = load_iris(return_X_y=True)
        self.estimator = LogisticRegression(max_iter=1000).fit(self.X, y)
        self.expected = self.estimator.predict(self.X)
        self.name = unique("iris")
        self.eid = mlflow.create_experiment(unique("iris"))
        with mlflow.start_run(experiment_id=self.eid) as run:
            self.info = mlflow.sklearn.log_model(self.estimator, name="model", registered_model_name=self.name,
                                                 input_example=self.X[:2])
        self.run_id = run.info.run_id
        self.model_id = self.info.model_id
        MlflowClient().set_registered_model_alias(self.name, "champion", "1")


@pytest.fixture(scope="module")
def trained(server):
    import mlflow

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", server.url)
        mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        mlflow.set_tracking_uri(server.url)
        return Trained(server)


def predicts_like_the_trained_model(trained, uri):
    import mlflow.pyfunc
    import numpy as np

    model = mlflow.pyfunc.load_model(uri)
    got = np.asarray(model.predict(trained.X))
    assert np.array_equal(got, trained.expected), f"{uri}: {got[:10]} != {trained.expected[:10]}"


def test_log_model_records(trained, api):
    info = trained.info
    assert MODEL_ID.match(trained.model_id)
    assert info.model_uri == f"models:/{trained.model_id}"
    assert str(info.registered_model_version) == "1"
    assert info.run_id == trained.run_id

    model = get_model(api, trained.model_id)["info"]
    assert model["status"] == "LOGGED_MODEL_READY"
    assert model["name"] == "model"
    assert model["source_run_id"] == trained.run_id
    assert model["artifact_uri"] == f"mlflow-artifacts:/{trained.eid}/models/{trained.model_id}/artifacts"
    registered = json.loads(tags_of(model)["mlflow.modelVersions"])
    assert {(r["name"], str(r["version"])) for r in registered} == {(trained.name, "1")}

    mv = ok(api.get("model-versions/get", {"name": trained.name, "version": "1"}))["model_version"]
    assert mv["source"] == f"models:/{trained.model_id}"
    assert mv["run_id"] == trained.run_id
    assert mv["status"] == "READY"
    assert mv["aliases"] == ["champion"]
    assert ok(api.get("model-versions/get-download-uri", {"name": trained.name, "version": "1"})) == {
        "artifact_uri": model["artifact_uri"]}

    run = get_run(api, trained.run_id)
    assert run["outputs"]["model_outputs"] == [{"model_id": trained.model_id, "step": 0}]
    assert run["info"]["status"] == "FINISHED"
    # The model's files live under the experiment's models/ folder, not in the run's artifacts.
    assert ok(api.get("artifacts/list", {"run_id": trained.run_id})) == {
        "root_uri": f"mlflow-artifacts:/{trained.eid}/{trained.run_id}/artifacts"}


@pytest.mark.parametrize("kind", ["alias", "version", "model-id", "runs"])
def test_load_model(client, trained, kind):
    uri = {
        "alias": f"models:/{trained.name}@champion",
        "version": f"models:/{trained.name}/1",
        "model-id": trained.info.model_uri,
        # runs:/<run>/<name> still works for a model logged with name=...: the client finds the
        # logged model through logged-models/search (name filter) and matches its source_run_id.
        "runs": f"runs:/{trained.run_id}/model",
    }[kind]
    predicts_like_the_trained_model(trained, uri)


@pytest.mark.filterwarnings("ignore:.*is deprecated since 2.9.0:FutureWarning")
def test_load_model_by_stage(client, trained):
    client.transition_model_version_stage(trained.name, "1", "Production")
    predicts_like_the_trained_model(trained, f"models:/{trained.name}/Production")
    assert [v.version for v in client.get_latest_versions(trained.name, stages=["Production"])] == ["1"]


def test_client_sees_the_logged_model(client, trained):
    import mlflow

    model = mlflow.get_logged_model(trained.model_id)
    assert (model.name, model.source_run_id, model.experiment_id) == ("model", trained.run_id, trained.eid)
    assert str(model.status) in ("READY", "LoggedModelStatus.READY")
    found = mlflow.search_logged_models(experiment_ids=[trained.eid], output_format="list")
    assert [m.model_id for m in found] == [trained.model_id]
    found = mlflow.search_logged_models(experiment_ids=[trained.eid], filter_string="name = 'model'",
                                        output_format="list")
    assert [m.model_id for m in found] == [trained.model_id]
    assert mlflow.search_logged_models(experiment_ids=[trained.eid], filter_string="name = 'other'",
                                       output_format="list") == []


def test_download_registered_version(client, trained, server, tmp_path):
    import mlflow

    got = mlflow.artifacts.download_artifacts(f"models:/{trained.name}/1", dst_path=str(tmp_path))
    files = set(os.listdir(got))
    assert {"MLmodel", "requirements.txt", "input_example.json"} <= files
    with open(os.path.join(got, "MLmodel"), "rb") as f:
        mlmodel = f.read()
    assert b"sklearn" in mlmodel
    assert f"model_id: {trained.model_id}".encode() in mlmodel
    # The UI's route serves the same file.
    r = requests.get(f"{server.url}/model-versions/get-artifact",
                     params={"name": trained.name, "version": "1", "path": "MLmodel"}, timeout=60)
    assert r.status_code == 200
    assert r.content == mlmodel
    r = requests.get(f"{server.url}/ajax-api/2.0/mlflow/logged-models/{trained.model_id}/artifacts/files",
                     params={"artifact_file_path": "MLmodel"}, timeout=60)
    assert r.status_code == 200
    assert r.content == mlmodel
