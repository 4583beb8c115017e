"""Small helpers shared by the differential suites (raw REST against any target)."""

import os
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


# ---------------------------------------------------------------------------
# Raw HTTP with the request target sent byte for byte (requests/urllib3 would
# normalise "..", re-quote "%" and "\", and drop "#").

ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"


class RawHttpResponse:
    def __init__(self, status_code, headers, content):
        self.status_code = status_code
        self.headers = headers  # lower-cased names
        self.content = content

    @property
    def text(self):
        return self.content.decode("utf-8", "replace")

    def json(self):
        import json

        return json.loads(self.content)


def files_under(folder):
    """{relative posix path: bytes} of every file below a local folder (downloads)."""
    out = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, folder).replace(os.sep, "/")
            with open(path, "rb") as f:
                out[rel] = f.read()
    return out


def raw_http(base_url, method, target, body=None, headers=None, timeout=60):
    """Send `method target` as is to base_url's host and port; no redirects are followed."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("Content-Length", str(len(body)))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        resp = conn.getresponse()
        content = resp.read()
        return RawHttpResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, content)
    finally:
        conn.close()
