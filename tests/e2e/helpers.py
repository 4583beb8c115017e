"""Small helpers shared by the differential suites (raw REST against any target)."""

import re

from conftest import unique

RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def assert_error(resp, status, error_code, mentions=None):
    """An MLflow-style error: HTTP status, JSON body with error_code and a message."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text[:500]}"
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert body["error_code"] == error_code, body
    assert isinstance(body.get("message"), str) and body["message"], body
    if mentions:
        assert mentions in body["message"], body


def ok(resp):
    assert resp.status_code == 200, f"{resp.status_code}: {resp.text[:500]}"
    return resp.json()


def new_experiment(api, prefix="exp", **extra):
    body = {"name": unique(prefix)}
    body.update(extra)
    return ok(api.post("experiments/create", body))["experiment_id"]


def new_run(api, experiment_id, **extra):
    body = {"experiment_id": experiment_id}
    body.update(extra)
    return ok(api.post("runs/create", body))["run"]["info"]["run_id"]


def get_run(api, run_id):
    return ok(api.get("runs/get", {"run_id": run_id}))["run"]


def get_experiment(api, experiment_id):
    return ok(api.get("experiments/get", {"experiment_id": experiment_id}))["experiment"]


def metric(key, value, timestamp=1, step=0):
    return {"key": key, "value": value, "timestamp": timestamp, "step": step}


def kv(pairs):
    """[{"key": k, "value": v}, ...] from a dict."""
    return [{"key": k, "value": v} for k, v in pairs.items()]


def tags_of(entity):
    return {t["key"]: t["value"] for t in entity.get("tags", [])}


def params_of(run):
    return {p["key"]: p["value"] for p in run["data"].get("params", [])}


def run_tags(run):
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def latest_metrics(run):
    return {m["key"]: m for m in run["data"].get("metrics", [])}


def search_runs(api, experiment_ids, **body):
    body = {"experiment_ids": list(experiment_ids), **body}
    body.setdefault("max_results", 1000)
    return api.post("runs/search", body)
