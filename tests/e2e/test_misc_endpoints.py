"""/health, /version, server-info, the /ajax-api prefix and routing errors."""

import pytest

from helpers import assert_error, new_experiment, ok


def test_health(api):
    r = api.raw("GET", "/health")
    assert r.status_code == 200
    assert r.text == "OK"


def test_version(api):
    r = api.raw("GET", "/version")
    assert r.status_code == 200
    # MLflow answers with its package version; a replacement answers with its own. Both are short text.
    text = r.text.strip()
    assert text and "\n" not in text and len(text) < 100


def test_server_info(api):
    r = api.raw("GET", "/api/3.0/mlflow/server-info")
    body = ok(r)
    assert r.headers["content-type"].startswith("application/json")
    # The Python client reads these two fields to decide how to talk to the server.
    assert isinstance(body["store_type"], str) and body["store_type"]
    assert body["workspaces_enabled"] is False


@pytest.mark.parametrize("path,params", [
    ("experiments/get", {"experiment_id": "0"}),
    ("experiments/search", {"max_results": 1}),
    ("metrics/get-history", {"run_id": "0" * 32, "metric_key": "m"}),
])
def test_api_answers_json(api, path, params):
    r = api.get(path, params)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")


def test_ajax_api_prefix_serves_the_same_handlers(api):
    eid = new_experiment(api, "ajax")
    r = api.raw("GET", "/ajax-api/2.0/mlflow/experiments/get", params={"experiment_id": eid})
    assert ok(r)["experiment"]["experiment_id"] == eid

    r = api.raw("POST", "/ajax-api/2.0/mlflow/runs/create", json={"experiment_id": eid, "run_name": "via-ajax"})
    run = ok(r)["run"]
    assert run["info"]["run_name"] == "via-ajax"

    r = api.raw("POST", "/ajax-api/2.0/mlflow/runs/log-metric",
                json={"run_id": run["info"]["run_id"], "key": "m", "value": 2.0, "timestamp": 5})
    assert ok(r) == {}
    r = api.raw("GET", "/ajax-api/2.0/mlflow/metrics/get-history",
                params={"run_id": run["info"]["run_id"], "metric_key": "m"})
    assert ok(r)["metrics"] == [{"key": "m", "value": 2.0, "timestamp": 5, "step": 0}]

    r = api.raw("POST", "/ajax-api/2.0/mlflow/experiments/search", json={"max_results": 1})
    assert len(ok(r)["experiments"]) == 1


def test_ajax_api_errors_have_the_same_shape(api):
    r = api.raw("GET", "/ajax-api/2.0/mlflow/runs/get", params={"run_id": "0" * 32})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_unknown_endpoint_is_404(api):
    assert api.get("no-such-endpoint").status_code == 404
    assert api.post("runs/no-such-endpoint", {}).status_code == 404


@pytest.mark.parametrize("method,path", [
    ("POST", "experiments/get"),
    ("GET", "experiments/create"),
    ("GET", "runs/search"),
    ("POST", "metrics/get-history"),
    ("GET", "runs/log-batch"),
])
def test_wrong_method_is_405(api, method, path):
    r = api.raw(method, f"/api/2.0/mlflow/{path}", json={} if method == "POST" else None)
    assert r.status_code == 405
