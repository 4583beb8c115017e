"""Hostile requests.

Every hostile request must get a 4xx with a JSON error body
(``{"error_code": "...", "message": "..."}``), never a 5xx; the server must stay up
(``/health`` after each); and nothing may change (the experiments, and every run of
the experiment under attack with its params, tags and metrics, are compared before
and after).

MLflow is the reference for the API, not for robustness: where MLflow 3.17 answers
a hostile request with a 5xx, or silently accepts it, the test branches on
``server.is_mlflow``, pins MLflow's answer (noted next to the case), and still holds
Kiln to a 4xx.
"""

import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import pytest
import requests

from conftest import Api, unique

API = "/api/2.0/mlflow"

# Error codes a rejection may carry (names from MLflow's databricks.ErrorCode).
REJECTION_CODES = {
    "INVALID_PARAMETER_VALUE",
    "BAD_REQUEST",
    "MALFORMED_REQUEST",
    "REQUEST_LIMIT_EXCEEDED",
    "RESOURCE_LIMIT_EXCEEDED",
    "SEARCH_QUERY_TOO_LONG",
    "RESOURCE_DOES_NOT_EXIST",
    "NOT_FOUND",
}

BIG = 100 * 2**20  # well above any sane limit for a tracking request
DEEP = 100_000


# ---------------------------------------------------------------------------
# Checks


def assert_rejected(r, what=""):
    """A 4xx with a JSON error body that says what is wrong."""
    text = r.text[:300]
    assert 400 <= r.status_code < 500, f"{what}: expected a 4xx, got {r.status_code}: {text}"
    ctype = r.headers.get("content-type", "")
    assert ctype.split(";")[0].strip() == "application/json", \
        f"{what}: error body is not JSON ({ctype!r}): {text}"
    body = r.json()
    assert isinstance(body, dict), f"{what}: error body is not an object: {text}"
    assert body.get("error_code") in REJECTION_CODES, f"{what}: unexpected error_code: {text}"
    assert isinstance(body.get("message"), str) and body["message"].strip(), \
        f"{what}: error without a message: {text}"


def assert_alive(server):
    assert server.proc.poll() is None, f"server exited:\n{server.log()}"
    r = requests.get(server.url + "/health", timeout=10)
    assert r.status_code == 200, f"/health answered {r.status_code}"


# ---------------------------------------------------------------------------
# The data under attack


class World:
    """An experiment with known runs, plus a snapshot of everything a request could touch."""

    def __init__(self, server):
        self.server = server
        self.api = Api(server.url)
        self.prefix = unique("hostile")
        self.exp = self._create_experiment(self.prefix)
        self.runs = {}
        self._make_run("A", params={"lr": "0.01", "batch_size": "32"},
                       metrics={"loss": [0.9, 0.5, 0.3], "acc": [0.7]}, tags={"x": "y", "team": "blue"})
        self._make_run("B", params={"lr": "0.1"}, metrics={"loss": [0.7]}, tags={"team": "red"})
        self._make_run("C", params={}, metrics={}, tags={"x": "z"})
        # A value that is itself an injection attempt, stored literally.
        self._make_run("D", params={"lr": "0.01' OR '1'='1"}, metrics={"loss": [0.1]}, tags={})
        self.label = {rid: label for label, rid in self.runs.items()}
        # Experiments to search among.
        self.exps = {
            "alpha": self._create_experiment(f"{self.prefix}-alpha"),
            "beta": self._create_experiment(f"{self.prefix}-beta"),
            "quote": self._create_experiment(f"{self.prefix}-quote' OR '1'='1"),
        }

    def _create_experiment(self, name):
        r = self.api.post("experiments/create", {"name": name})
        assert r.status_code == 200, r.text
        return r.json()["experiment_id"]

    def _make_run(self, label, params, metrics, tags):
        r = self.api.post("runs/create", {"experiment_id": self.exp, "run_name": f"run-{label}",
                                          "start_time": 1_700_000_000_000 + len(self.runs)})
        assert r.status_code == 200, r.text
        run_id = r.json()["run"]["info"]["run_id"]
        batch = {
            "run_id": run_id,
            "params": [{"key": k, "value": v} for k, v in params.items()],
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
            "metrics": [{"key": k, "value": v, "timestamp": 1_700_000_000_000 + i, "step": i}
                        for k, vs in metrics.items() for i, v in enumerate(vs)],
        }
        r = self.api.post("runs/log-batch", batch)
        assert r.status_code == 200, r.text
        self.runs[label] = run_id

    # -- snapshots

    def experiments(self):
        out, token = [], None
        for _ in range(1000):
            body = {"max_results": 1000, "view_type": "ALL"}
            if token:
                body["page_token"] = token
            r = self.api.post("experiments/search", body)
            assert r.status_code == 200, r.text
            page = r.json()
            out.extend((e["experiment_id"], e["name"], e.get("lifecycle_stage"),
                        json.dumps(e.get("tags", []), sort_keys=True))
                       for e in page.get("experiments", []))
            token = page.get("next_page_token")
            if not token:
                return sorted(out)
        raise AssertionError("experiments/search did not stop paginating")

    def search(self, experiment_ids, **extra):
        body = {"experiment_ids": experiment_ids, "max_results": 1000, "run_view_type": "ALL", **extra}
        return self.api.post("runs/search", body)

    def snapshot(self):
        runs = {}
        for exp in [self.exp, "0"]:
            r = self.search([exp])
            assert r.status_code == 200, r.text
            for run in r.json().get("runs", []):
                data = run.get("data", {})
                runs[run["info"]["run_id"]] = {
                    "info": run["info"],
                    "metrics": sorted(json.dumps(m, sort_keys=True) for m in data.get("metrics", [])),
                    "params": sorted(json.dumps(p, sort_keys=True) for p in data.get("params", [])),
                    "tags": sorted(json.dumps(t, sort_keys=True) for t in data.get("tags", [])),
                }
        history = self.api.get("metrics/get-history",
                               {"run_id": self.runs["A"], "metric_key": "loss"}).json()
        return {"experiments": self.experiments(), "runs": runs, "history": history}

    def run_data(self, run_id):
        r = self.api.get("runs/get", {"run_id": run_id})
        assert r.status_code == 200, r.text
        return r.json()["run"]


@pytest.fixture(scope="module")
def world(server):
    return World(server)


# ---------------------------------------------------------------------------
# Raw HTTP, for what requests will not send


@dataclass
class RawResponse:
    status_code: int
    headers: dict
    content: bytes

    @property
    def text(self):
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)


def _parse_response(buf):
    """A complete HTTP/1.1 response from buf, or None if more bytes are needed."""
    head, sep, rest = buf.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, pos = b"", 0
        while True:
            end = rest.find(b"\r\n", pos)
            if end < 0:
                return None
            size = int(rest[pos:end].split(b";")[0], 16)
            if size == 0:
                return RawResponse(status, headers, body)
            if len(rest) < end + 2 + size + 2:
                return None
            body += rest[end + 2:end + 2 + size]
            pos = end + 2 + size + 2
    length = int(headers.get("content-length", "0"))
    if len(rest) < length:
        return None
    return RawResponse(status, headers, rest[:length])


def raw_exchange(server, head, body_chunks=(), timeout=30.0):
    """Send a hand-made request and read the answer while still sending.

    A server may answer (413) before it has read a huge body and then close; reading
    concurrently catches that answer.  Returns a RawResponse, or None if the connection
    ended (or the timeout passed) without a complete answer.
    """
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    buf = bytearray()
    state = {"response": None}
    finished = threading.Event()

    def reader():
        try:
            while not finished.is_set():
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                buf.extend(chunk)
                state["response"] = _parse_response(bytes(buf))
                if state["response"] is not None:
                    break
        except OSError:
            pass
        finally:
            finished.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        sock.sendall(head)
        for chunk in body_chunks:
            if finished.is_set():
                break
            sock.sendall(chunk)
    except OSError:
        pass  # the server stopped reading; its answer, if any, is with the reader
    finished.wait(timeout)
    finished.set()
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
    t.join(5)
    return state["response"]


def request_head(server, method, target, headers):
    lines = [f"{method} ".encode() + target + b" HTTP/1.1",
             f"Host: 127.0.0.1:{server.port}".encode(), b"Connection: close"]
    lines += [f"{k}: {v}".encode() for k, v in headers.items()]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def chunks_of(data, size=1 << 20):
    for i in range(0, len(data), size):
        yield data[i:i + size]


# ---------------------------------------------------------------------------
# Table of hostile requests


@dataclass
class Case:
    id: str
    path: str
    body: object = None  # JSON-encodable; "{run}", "{exp}", "{name}" are filled in
    data: bytes | None = None  # a raw body instead, with the same placeholders
    method: str = "POST"
    query: str | None = None  # a raw query string, sent as is
    mlflow: int | None = None  # MLflow 3.17's status when it is not a 4xx
    mlflow_changes: bool = False  # MLflow's answer also changed stored data


def fill(obj, values):
    if isinstance(obj, str):
        for k, v in values.items():
            obj = obj.replace("{" + k + "}", v)
        return obj
    if isinstance(obj, list):
        return [fill(x, values) for x in obj]
    if isinstance(obj, dict):
        return {fill(k, values): fill(v, values) for k, v in obj.items()}
    return obj


def send(world, case):
    values = {"run": world.runs["A"], "exp": world.exp, "name": f"{world.prefix}-{uuid.uuid4().hex[:8]}"}
    url = f"{API}/{case.path}"
    if case.query is not None:
        url += "?" + fill(case.query, values)
    if case.data is not None:
        data = case.data
        for k, v in values.items():
            data = data.replace(b"{" + k.encode() + b"}", v.encode())
        return world.api.raw(case.method, url, data=data, headers={"Content-Type": "application/json"})
    if case.method == "GET":
        return world.api.raw("GET", url)
    return world.api.raw(case.method, url, json=fill(case.body, values))


def nest_list(n):
    return b"[" * n + b"]" * n


def nest_obj(n):
    return b'{"a":' * n + b"1" + b"}" * n


M = "runs/log-metric"
P = "runs/log-parameter"
RUN = {"run_id": "{run}"}
METRIC = {"run_id": "{run}", "key": "hostile_m", "value": 1.5, "timestamp": 1_700_000_000_000, "step": 0}

CASES = [
    # -- malformed JSON (each would create an experiment or touch run A if it were accepted)
    Case("json-truncated", "experiments/create", data=b'{"name": "{name}"'),
    Case("json-trailing-comma", "experiments/create", data=b'{"name": "{name}",}'),
    Case("json-single-quotes", "experiments/create", data=b"{'name': '{name}'}"),
    Case("json-not-json", "experiments/create", data=b"name={name}"),
    Case("json-empty-body", "experiments/create", data=b""),
    Case("json-trailing-garbage", "experiments/create", data=b'{"name": "{name}"} garbage'),
    Case("json-two-documents", "experiments/create", data=b'{"name": "{name}"}{"name": "{name}"}'),
    Case("json-raw-control-char", "experiments/create", data=b'{"name": "{name}\x01"}'),
    Case("json-bad-escape", "experiments/create", data=b'{"name": "{name}\\q"}'),
    Case("json-null-document", "experiments/create", data=b"null"),
    # MLflow: 500 text/html (Flask's generic error page), the handler assumes an object.
    Case("json-array-document", "experiments/create", data=b'["{name}"]', mlflow=500),
    Case("json-string-document", "experiments/create", data=b'"{name}"', mlflow=500),
    Case("json-number-document", "experiments/create", data=b"42", mlflow=500),
    # MLflow: 500 text/html for a malformed log-batch body (experiments/create gets a 400).
    Case("json-batch-truncated", "runs/log-batch",
         data=b'{"run_id": "{run}", "params": [{"key": "hostile_p", "value": "v"}', mlflow=500),
    Case("json-batch-trailing-comma", "runs/log-batch",
         data=b'{"run_id": "{run}", "params": [{"key": "hostile_p", "value": "v"},]}', mlflow=500),

    # -- wrong JSON types
    Case("type-metric-value-string", M, {**METRIC, "value": "abc"}),
    # MLflow: 500 text/html for an object or a list where a number is expected.
    Case("type-metric-value-object", M, {**METRIC, "value": {"a": 1}}, mlflow=500),
    Case("type-metric-value-list", M, {**METRIC, "value": [1.5]}, mlflow=500),
    Case("type-metric-timestamp-string", M, {**METRIC, "timestamp": "yesterday"}),
    Case("type-metric-step-string", M, {**METRIC, "step": "x"}),
    Case("type-metric-key-object", M, {**METRIC, "key": {"a": 1}}),
    Case("type-metric-run-id-number", M, {**METRIC, "run_id": 12345}),
    # MLflow: 200, a JSON boolean is taken as the number 1.0 (Python bool is an int).
    Case("type-metric-value-bool", M, {**METRIC, "value": True}, mlflow=200, mlflow_changes=True),
    # MLflow: 200, a fractional timestamp for an int64 field is accepted.
    Case("type-metric-timestamp-fraction", M, {**METRIC, "timestamp": 1.5}, mlflow=200,
         mlflow_changes=True),
    # MLflow: 200 and the out-of-range integer is silently stored as 0.
    Case("huge-metric-step", M, {**METRIC, "step": 10**30}, mlflow=200, mlflow_changes=True),
    Case("huge-metric-timestamp", M, {**METRIC, "timestamp": 2**63}, mlflow=200, mlflow_changes=True),
    Case("huge-metric-step-negative", M, {**METRIC, "step": -(2**63) - 1}, mlflow=200,
         mlflow_changes=True),
    # MLflow: 200 and the metric is stored with value 0.0 and timestamp 0.
    Case("huge-metric-value-1e400", M,
         data=b'{"run_id": "{run}", "key": "hostile_m", "value": 1e400, "timestamp": 1, "step": 0}',
         mlflow=200, mlflow_changes=True),
    Case("type-param-value-number", P, {**RUN, "key": "hostile_p", "value": 5}),
    Case("type-param-value-list", P, {**RUN, "key": "hostile_p", "value": ["v"]}),
    Case("type-param-key-number", P, {**RUN, "key": 5, "value": "v"}),
    Case("type-param-key-bool", P, {**RUN, "key": True, "value": "v"}),
    Case("type-batch-metrics-object", "runs/log-batch", {**RUN, "metrics": {"key": "hostile_m"}}),
    Case("type-batch-params-string", "runs/log-batch", {**RUN, "params": "hostile_p=v"}),
    # MLflow: 500 text/html, list items that are not objects crash the parser.
    Case("type-batch-params-numbers", "runs/log-batch", {**RUN, "params": [1, 2]}, mlflow=500),
    # MLflow: 200, and it stores the metric as value 0.0 at timestamp 0 and silently
    # drops the batch's params.
    Case("type-batch-metric-value-string", "runs/log-batch",
         {**RUN, "metrics": [{**METRIC, "value": "x"}], "params": [{"key": "hostile_p", "value": "v"}]},
         mlflow=200, mlflow_changes=True),
    Case("type-batch-tag-key-number", "runs/log-batch",
         {**RUN, "tags": [{"key": 5, "value": "v"}], "params": [{"key": "hostile_p", "value": "v"}]}),
    Case("type-search-max-results-negative", "runs/search", {"experiment_ids": ["{exp}"], "max_results": -1}),
    Case("type-search-max-results-zero", "runs/search", {"experiment_ids": ["{exp}"], "max_results": 0}),
    Case("type-search-max-results-string", "runs/search", {"experiment_ids": ["{exp}"], "max_results": "ten"}),
    Case("type-search-max-results-huge", "runs/search", {"experiment_ids": ["{exp}"], "max_results": 10**20}),
    Case("type-search-max-results-over-limit", "runs/search",
         {"experiment_ids": ["{exp}"], "max_results": 10**6}),
    # MLflow: 200, true is taken as max_results=1.
    Case("type-search-max-results-bool", "runs/search", {"experiment_ids": ["{exp}"], "max_results": True},
         mlflow=200),
    # MLflow: 200, 1.5 is truncated to 1.
    Case("type-search-max-results-fraction", "runs/search",
         {"experiment_ids": ["{exp}"], "max_results": 1.5}, mlflow=200),
    Case("type-search-experiment-ids-string", "runs/search", {"experiment_ids": "{exp}"}),
    Case("type-search-experiment-ids-object", "runs/search", {"experiment_ids": {"id": "{exp}"}}),
    # MLflow: 200 with no runs, the object in the list is ignored.
    Case("type-search-experiment-ids-list-of-objects", "runs/search", {"experiment_ids": [{"id": "{exp}"}]},
         mlflow=200),
    Case("type-search-filter-number", "runs/search", {"experiment_ids": ["{exp}"], "filter": 5}),
    Case("type-search-order-by-string", "runs/search",
         {"experiment_ids": ["{exp}"], "order_by": "metrics.loss"}),
    Case("type-experiments-search-max-results-negative", "experiments/search", {"max_results": -1}),
    Case("type-experiments-search-max-results-string", "experiments/search", {"max_results": "x"}),
    Case("type-experiments-search-max-results-huge", "experiments/search", {"max_results": 10**20}),
    Case("type-experiment-name-number", "experiments/create", {"name": 5}),
    Case("type-experiment-name-list", "experiments/create", {"name": ["{name}"]}),
    Case("type-experiment-name-object", "experiments/create", {"name": {"n": "{name}"}}),
    Case("type-run-experiment-id-object", "runs/create", {"experiment_id": {"id": "{exp}"}}),
    Case("type-run-start-time-string", "runs/create", {"experiment_id": "{exp}", "start_time": "yesterday"}),
    # MLflow: 200 and a run is created, the malformed tags are ignored.
    Case("type-run-tags-string", "runs/create", {"experiment_id": "{exp}", "tags": "a=b"}, mlflow=200,
         mlflow_changes=True),
    # MLflow: 200, an unknown status name is ignored.
    Case("type-update-status-unknown", "runs/update", {**RUN, "status": "EXPLODED"}, mlflow=200,
         mlflow_changes=True),
    # MLflow: 500 {"error_code": "INTERNAL_ERROR", "message": "Python int too large to convert to SQLite INTEGER"}.
    Case("huge-experiment-id", "experiments/get", method="GET", query="experiment_id=99999999999999999999999",
         mlflow=500),
    Case("type-experiment-id-not-a-number", "experiments/get", method="GET", query="experiment_id=abc"),
    Case("type-history-max-results-negative", "metrics/get-history", method="GET",
         query="run_id={run}&metric_key=loss&max_results=-1"),

    # -- missing required fields
    Case("missing-experiment-name", "experiments/create", {}),
    Case("missing-experiment-name-null", "experiments/create", {"name": None}),
    Case("missing-experiment-name-empty", "experiments/create", {"name": ""}),
    Case("missing-metric-key", M, {k: v for k, v in METRIC.items() if k != "key"}),
    Case("missing-metric-value", M, {k: v for k, v in METRIC.items() if k != "value"}),
    Case("missing-metric-run-id", M, {k: v for k, v in METRIC.items() if k != "run_id"}),
    Case("missing-param-key", P, {**RUN, "value": "v"}),
    # MLflow: 200 and the param is stored with an empty value, although its proto marks
    # `value` validate_required and its REST docs say "This field is required".
    Case("missing-param-value", P, {**RUN, "key": "hostile_p"}, mlflow=200, mlflow_changes=True),
    Case("missing-param-run-id", P, {"key": "hostile_p", "value": "v"}),
    Case("missing-tag-key", "runs/set-tag", {**RUN, "value": "v"}),
    # MLflow: 200 and the tag is stored with an empty value, although its proto marks
    # `value` validate_required and its REST docs say "This field is required".
    Case("missing-tag-value", "runs/set-tag", {**RUN, "key": "hostile_t"}, mlflow=200, mlflow_changes=True),
    Case("missing-batch-run-id", "runs/log-batch", {"params": [{"key": "hostile_p", "value": "v"}]}),
    Case("missing-update-run-id", "runs/update", {"status": "FINISHED"}),
    Case("missing-delete-run-id", "runs/delete", {}),
    Case("missing-delete-experiment-id", "experiments/delete", {}),
    Case("missing-update-new-name", "experiments/update", {"experiment_id": "{exp}"}),
    Case("missing-get-run-id", "runs/get", method="GET", query=""),
    Case("missing-history-metric-key", "metrics/get-history", method="GET", query="run_id={run}"),
    Case("missing-get-by-name", "experiments/get-by-name", method="GET", query=""),
    Case("missing-get-experiment-id", "experiments/get", method="GET", query=""),

    # -- 100k-deep nesting
    # MLflow: 500 text/html for all of these (the JSON decoder hits Python's recursion limit).
    Case("deep-list-document", "experiments/create", data=nest_list(DEEP), mlflow=500),
    Case("deep-object-document", "experiments/create", data=nest_obj(DEEP), mlflow=500),
    Case("deep-list-in-field", "experiments/create", data=b'{"name": ' + nest_list(DEEP) + b"}", mlflow=500),
    Case("deep-object-in-batch", "runs/log-batch",
         data=b'{"run_id": "{run}", "params": [{"key": "hostile_p", "value": "v", "x": '
              + nest_obj(DEEP) + b"}]}", mlflow=500),
    Case("deep-list-in-unknown-field", "runs/log-parameter",
         data=b'{"run_id": "{run}", "key": "hostile_p", "value": "v", "extra": ' + nest_list(DEEP) + b"}",
         mlflow=500),

    # -- invalid UTF-8 in the body
    Case("utf8-invalid-bytes", "experiments/create", data=b'{"name": "{name}\xff\xfe"}'),
    Case("utf8-truncated-sequence", "experiments/create", data=b'{"name": "{name}\xc3("}'),
    Case("utf8-overlong", "experiments/create", data=b'{"name": "{name}\xc0\xaf"}'),
    Case("utf8-encoded-surrogate", "experiments/create", data=b'{"name": "{name}\xed\xa0\x80"}'),
    Case("utf8-escaped-lone-surrogate", "experiments/create", data=b'{"name": "{name}\\ud800"}'),
    Case("utf8-invalid-param-value", P, data=b'{"run_id": "{run}", "key": "hostile_p", "value": "\xff"}'),
    Case("utf8-invalid-tag-key", "runs/set-tag", data=b'{"run_id": "{run}", "key": "\xfe\xff", "value": "v"}'),

    # -- invalid UTF-8 in query strings (percent-encoded: a valid request line)
    Case("utf8-query-get-by-name", "experiments/get-by-name", method="GET", query="experiment_name=%FF%FE"),
    Case("utf8-query-run-id", "runs/get", method="GET", query="run_id=%FF%FE"),
    # MLflow: 200 with an empty history.
    Case("utf8-query-metric-key", "metrics/get-history", method="GET", query="run_id={run}&metric_key=%C3%28",
         mlflow=200),

    # -- injection through identifiers that are looked up
    Case("sqli-run-id-get", "runs/get", method="GET", query="run_id=" + quote("x' OR '1'='1")),
    Case("sqli-run-id-delete", "runs/delete", {"run_id": "' OR 1=1 --"}),
    Case("sqli-run-id-tag", "runs/set-tag", {"run_id": "{run}' OR '1'='1", "key": "hostile_t", "value": "v"}),
    Case("sqli-experiment-id-delete", "experiments/delete", {"experiment_id": "{exp} OR 1=1"}),
    Case("sqli-experiment-name-get", "experiments/get-by-name", method="GET",
         query="experiment_name=" + quote("x' OR '1'='1")),
    Case("sqli-page-token-runs", "runs/search", {"experiment_ids": ["{exp}"], "page_token": "' OR 1=1 --"}),
    Case("sqli-page-token-experiments", "experiments/search", {"max_results": 10, "page_token": "' OR 1=1 --"}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_request_rejected(server, world, case):
    before = world.snapshot()
    r = send(world, case)
    if server.is_mlflow and case.mlflow is not None:
        # MLflow 3.17 answers this one with case.mlflow (see the comment on the case);
        # Kiln must answer it with a 4xx.
        assert r.status_code == case.mlflow, f"{case.id}: MLflow answered {r.status_code}: {r.text[:300]}"
    else:
        assert_rejected(r, case.id)
    assert_alive(server)
    if not (server.is_mlflow and case.mlflow_changes):
        assert world.snapshot() == before, f"{case.id} changed stored data"


# ---------------------------------------------------------------------------
# Bodies over any reasonable size limit


def test_oversized_body(server, world):
    before = world.snapshot()
    payload = json.dumps({"run_id": world.runs["A"], "key": "oversized", "value": "x" * BIG}).encode()
    head = request_head(server, "POST", f"{API}/runs/log-parameter".encode(),
                        {"Content-Type": "application/json", "Content-Length": len(payload)})
    started = time.monotonic()
    r = raw_exchange(server, head, chunks_of(payload), timeout=60)
    assert r is not None, "no answer to a 100 MB body (connection dropped or timed out)"
    if server.is_mlflow:
        # MLflow 3.17 has no request size limit: it reads all 100 MB, answers 200 and
        # stores the param cut to its first 6000 characters.
        assert r.status_code == 200, r.text[:300]
        params = {p["key"]: p["value"] for p in world.run_data(world.runs["A"])["data"]["params"]}
        assert params["oversized"] == "x" * 6000
    else:
        assert_rejected(r, "100 MB body")
        assert world.snapshot() == before
    assert_alive(server)
    print(f"100 MB body answered {r.status_code} in {time.monotonic() - started:.1f}s")


def test_oversized_chunked_body(server, world):
    """The limit must hold without a Content-Length too."""
    before = world.snapshot()
    payload = json.dumps({"run_id": world.runs["A"], "key": "oversized_chunked", "value": "x" * BIG}).encode()
    head = request_head(server, "POST", f"{API}/runs/log-parameter".encode(),
                        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})

    def chunked():
        for c in chunks_of(payload):
            yield b"%x\r\n" % len(c) + c + b"\r\n"
        yield b"0\r\n\r\n"

    r = raw_exchange(server, head, chunked(), timeout=60)
    assert r is not None, "no answer to a 100 MB chunked body (connection dropped or timed out)"
    # MLflow 3.17 answers 400 here too, but only because it ignores chunked bodies
    # altogether ("Missing value for required parameter 'run_id'").
    assert_rejected(r, "100 MB chunked body")
    assert_alive(server)
    assert world.snapshot() == before


def test_declared_length_over_limit_answered_without_the_body(server, world):
    """A Content-Length of 1 TB is refused from the header, without waiting for the body."""
    before = world.snapshot()
    head = request_head(server, "POST", f"{API}/experiments/create".encode(),
                        {"Content-Type": "application/json", "Content-Length": 10**12})
    prefix = json.dumps({"name": unique("hostile-length")}).encode()[:-1]
    if server.is_mlflow:
        # MLflow 3.17 does not look at the declared length: it waits for the rest of the
        # body and never answers.
        r = raw_exchange(server, head, [prefix], timeout=3)
        assert r is None, f"MLflow answered {r.status_code}"
    else:
        r = raw_exchange(server, head, [prefix], timeout=10)
        assert r is not None, "no answer within 10 s to a request declaring a 1 TB body"
        assert_rejected(r, "Content-Length: 10**12")
    assert_alive(server)
    assert world.snapshot() == before


# ---------------------------------------------------------------------------
# Invalid UTF-8 bytes in the request line itself


@pytest.mark.parametrize("request_target", [
    b"/experiments/get-by-name?experiment_name=\xff\xfe",
    b"/runs/get?run_id=\xc3\x28",
    b"/runs/search\xff",
])
def test_invalid_utf8_in_request_line(server, world, request_target):
    before = world.snapshot()
    head = request_head(server, "GET", API.encode() + request_target, {})
    r = raw_exchange(server, head, timeout=10)
    assert r is not None, "no answer to a request line with invalid UTF-8"
    # Raw non-ASCII bytes make the request line invalid HTTP/1.1, so the answer may
    # come from the HTTP layer before any API code: a 4xx is required, a JSON body is
    # not.  (MLflow 3.17: 400 text/plain "Invalid HTTP request received.")
    assert 400 <= r.status_code < 500, f"{r.status_code}: {r.text[:300]}"
    assert_alive(server)
    assert world.snapshot() == before


# ---------------------------------------------------------------------------
# SQL injection in search filters and orderings

REJECT = "4xx"
ALL = "every run of the experiment"

# Each case: (filter, acceptable answers).  An acceptable answer is REJECT or the exact
# set of runs (by label) a literal reading of the filter selects.  Where the filter is
# well-formed in MLflow's grammar the literal reading is the only acceptable answer.
RUN_FILTERS = [
    # controls: the search works and returns exactly what it should
    ("params.lr = '0.01'", [frozenset("A")]),
    ("params.lr LIKE '%'", [frozenset("ABD")]),
    ("tags.x ILIKE '%'", [frozenset("AC")]),
    ("metrics.loss < 0.5", [frozenset("AD")]),
    # injections that are not valid filters
    ("params.lr = '0.01' OR 1=1 --", [REJECT]),
    ("params.lr = '0.01' OR '1'='1'", [REJECT]),
    ("params.lr = '' OR 1=1", [REJECT]),
    ("metrics.loss < 0.5; DROP TABLE runs", [REJECT]),
    ("params.lr = '0.01'; DELETE FROM runs; --", [REJECT]),
    ("attributes.run_name = 'a' UNION SELECT * FROM runs --", [REJECT]),
    ("metrics.loss < (SELECT 1)", [REJECT]),
    ("metrics.loss < 0.5 OR 1=1", [REJECT]),
    ("params.lr IN ('a') OR 1=1", [REJECT]),
    ("tags.\"mlflow.runName\" = 'x' OR 1=1", [REJECT]),
    ("attributes.run_id IN ('x') OR 1=1", [REJECT]),
    ("1=1", [REJECT]),
    ("params.lr = '0.01' AND 1=1", [REJECT]),
    # injections inside quoted names and strings: literal, so they match nothing ...
    ("tags.\"x' OR '1'='1\" = 'y'", [frozenset()]),
    ("params.`lr' OR 1=1 --` = 'x'", [frozenset()]),
    ("params.`lr) OR (1=1` = 'x'", [frozenset()]),
    # ... or exactly the run whose value is literally that text
    ("params.lr = \"0.01' OR '1'='1\"", [frozenset("D")]),
    # ambiguous quoting: rejected, or read literally
    ("params.lr = '0.01'' OR ''1''=''1'", [REJECT, frozenset(), frozenset("D")]),
    ("params.lr = '0.01\\' OR 1=1 --'", [REJECT, frozenset()]),
]

RUN_ORDERINGS = [
    ("metrics.loss; DELETE FROM runs", [REJECT]),
    ("attributes.start_time DESC, (SELECT 1)", [REJECT]),
    ("metrics.loss DESC; DROP TABLE runs --", [REJECT]),
    ("(SELECT 1)", [REJECT]),
    ("attributes.start_time DESC LIMIT 1", [REJECT]),
    ("CASE WHEN 1=1 THEN 1 END", [REJECT]),
    ("params.`lr; DROP TABLE runs` ASC", [REJECT, ALL]),
    ("metrics.`loss' DESC` ASC", [REJECT, ALL]),
]


def check_search(server, world, r, acceptable, what, found_of):
    if r.status_code == 200:
        found = found_of(r.json())
        assert found in [a for a in acceptable if a != REJECT], \
            f"{what}: answered 200 with {sorted(found)}; acceptable: {acceptable}"
    else:
        assert REJECT in acceptable, f"{what}: expected rows {acceptable}, got {r.status_code}: {r.text[:300]}"
        assert_rejected(r, what)
    assert_alive(server)


def run_labels(world):
    def found_of(body):
        return frozenset(world.label.get(run["info"]["run_id"], run["info"]["run_id"])
                         for run in body.get("runs", []))
    return found_of


@pytest.mark.parametrize("flt,acceptable", RUN_FILTERS, ids=[f for f, _ in RUN_FILTERS])
def test_runs_search_filter_injection(server, world, flt, acceptable):
    before = world.snapshot()
    r = world.search([world.exp], filter=flt)
    check_search(server, world, r, acceptable, f"filter {flt!r}", run_labels(world))
    assert world.snapshot() == before


@pytest.mark.parametrize("order,acceptable", RUN_ORDERINGS, ids=[o for o, _ in RUN_ORDERINGS])
def test_runs_search_order_by_injection(server, world, order, acceptable):
    before = world.snapshot()
    everything = run_labels(world)(world.search([world.exp]).json())
    acceptable = [everything if a is ALL else a for a in acceptable]
    r = world.search([world.exp], order_by=[order])
    check_search(server, world, r, acceptable, f"order_by {order!r}", run_labels(world))
    assert world.snapshot() == before


@pytest.mark.parametrize("ids", [["{exp} OR 1=1"], ["{exp}; DROP TABLE runs"], ["{exp}' OR '1'='1"],
                                 ["0 UNION SELECT run_uuid FROM runs"]])
def test_runs_search_experiment_id_injection(server, world, ids):
    before = world.snapshot()
    r = world.search([i.replace("{exp}", world.exp) for i in ids])
    # Not an experiment id: rejected, or matching no experiment and so no runs.
    check_search(server, world, r, [REJECT, frozenset()], f"experiment_ids {ids}", run_labels(world))
    assert world.snapshot() == before


def experiment_filters(world):
    p = world.prefix
    return [
        (f"name LIKE '{p}-%'", [frozenset({"alpha", "beta", "quote"})]),
        (f"name = '{p}-alpha'", [frozenset({"alpha"})]),
        (f"name = '{p}-alpha' OR 1=1 --", [REJECT]),
        (f"name = '{p}-alpha' OR name = '{p}-beta'", [REJECT]),
        (f"name LIKE '{p}%' ; DROP TABLE experiments", [REJECT]),
        ("creation_time > 0; DELETE FROM experiments", [REJECT]),
        (f"name = '{p}-alpha' UNION SELECT * FROM experiments", [REJECT]),
        ("tags.\"x' OR '1'='1\" = 'y'", [frozenset()]),
        (f"name = \"{p}-quote' OR '1'='1\"", [frozenset({"quote"})]),
        (f"name = \"{p}-alpha' OR '1'='1\"", [frozenset()]),
    ]


EXPERIMENT_ORDERINGS = [
    "name; DELETE FROM experiments",
    "creation_time DESC, (SELECT 1)",
    "name ASC; DROP TABLE experiments --",
    "(SELECT 1)",
]


def test_experiments_search_injection(server, world):
    names = {eid: label for label, eid in world.exps.items()}

    def found_of(body):
        return frozenset(names.get(e["experiment_id"], e["name"]) for e in body.get("experiments", []))

    for flt, acceptable in experiment_filters(world):
        before = world.snapshot()
        r = world.api.post("experiments/search", {"filter": flt, "max_results": 1000})
        check_search(server, world, r, acceptable, f"experiments filter {flt!r}", found_of)
        assert world.snapshot() == before, f"experiments filter {flt!r} changed stored data"
    for order in EXPERIMENT_ORDERINGS:
        before = world.snapshot()
        r = world.api.post("experiments/search", {"order_by": [order], "max_results": 1000})
        check_search(server, world, r, [REJECT], f"experiments order_by {order!r}", found_of)
        assert world.snapshot() == before, f"experiments order_by {order!r} changed stored data"


# ---------------------------------------------------------------------------
# Injection through keys and values that are stored

INJECTION_KEYS = [
    "lr'); DROP TABLE params; --",
    "x' OR '1'='1",
    'a"; DELETE FROM runs; --',
    "k`) --",
    "p; DROP TABLE runs",
    "metrics.loss < 0 OR 1=1",
]


@pytest.mark.parametrize("endpoint", ["runs/log-parameter", "runs/set-tag"])
@pytest.mark.parametrize("key", INJECTION_KEYS)
def test_injection_in_keys_stored_literally_or_rejected(server, world, endpoint, key):
    run_id = world.runs["C"]
    kind = "params" if endpoint == "runs/log-parameter" else "tags"
    before = world.snapshot()
    r = world.api.post(endpoint, {"run_id": run_id, "key": key, "value": "literal"})
    assert_alive(server)
    if 200 <= r.status_code < 300:
        stored = {i["key"]: i["value"] for i in world.run_data(run_id)["data"].get(kind, [])}
        assert stored.get(key) == "literal", f"{key!r} accepted but stored as {stored}"
        after = world.snapshot()
        assert after["experiments"] == before["experiments"]
        assert set(after["runs"]) == set(before["runs"]), "the set of runs changed"
        for rid, run in before["runs"].items():
            if rid != run_id:
                assert after["runs"][rid] == run, f"{key!r} changed another run"
    else:
        # MLflow 3.17 rejects all of these keys: names are limited to alphanumerics,
        # _ - . space : and /.
        assert_rejected(r, f"{endpoint} key {key!r}")
        assert world.snapshot() == before


INJECTION_VALUES = [
    "'); DROP TABLE runs; --",
    "x' OR '1'='1",
    "\"; DELETE FROM params WHERE \"\"=\"",
    "1; UPDATE runs SET status='KILLED'",
]


def test_injection_in_values_stored_literally(server, world):
    api = world.api
    r = api.post("runs/create", {"experiment_id": world.exp, "run_name": "'); DROP TABLE runs; --"})
    assert r.status_code == 200, r.text
    run_id = r.json()["run"]["info"]["run_id"]
    batch = {"run_id": run_id,
             "params": [{"key": f"v{i}", "value": v} for i, v in enumerate(INJECTION_VALUES)],
             "tags": [{"key": f"v{i}", "value": v} for i, v in enumerate(INJECTION_VALUES)]}
    assert api.post("runs/log-batch", batch).status_code == 200
    run = world.run_data(run_id)
    assert run["info"]["run_name"] == "'); DROP TABLE runs; --"
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    for i, v in enumerate(INJECTION_VALUES):
        assert params[f"v{i}"] == v and tags[f"v{i}"] == v
    # The values are searchable as plain text, and only match their own run.
    r = world.search([world.exp], filter="params.v1 = \"x' OR '1'='1\"")
    assert r.status_code == 200, r.text
    assert [x["info"]["run_id"] for x in r.json().get("runs", [])] == [run_id]
    # And the rest of the experiment is intact.
    for label, rid in world.runs.items():
        assert world.run_data(rid)["info"]["lifecycle_stage"] == "active", label
    api.post("runs/delete", {"run_id": run_id})
    assert_alive(server)


# ---------------------------------------------------------------------------
# Very long filters and orderings

MB = 2**20


def long_run_filters():
    return [
        ("one 1 MB string literal", "params.lr = '" + "x" * MB + "'", [REJECT, frozenset()]),
        ("1 MB of AND-ed clauses", " and ".join(["params.lr = 'nope'"] * (MB // 23)), [REJECT, frozenset()]),
        ("1 MB of clauses matching A", " and ".join(["params.lr = '0.01'"] * (MB // 23)),
         [REJECT, frozenset("A")]),
        ("1 MB long key", "params.`" + "k" * MB + "` = 'x'", [REJECT, frozenset()]),
        # MLflow: 400, "Error on parsing filter".  Nested parentheses must not
        # exhaust a recursive parser's stack.
        ("100k open parentheses", "(" * DEEP, [REJECT]),
        ("100k nested parentheses", "(" * DEEP + "params.lr = '0.01'" + ")" * DEEP, [REJECT, frozenset("A")]),
        ("100k NOTs", "NOT " * DEEP + "params.lr = '0.01'", [REJECT]),
    ]


@pytest.mark.parametrize("what", [w for w, _, _ in long_run_filters()])
def test_long_filters(server, world, what):
    flt, acceptable = {w: (f, a) for w, f, a in long_run_filters()}[what]
    before = world.snapshot()
    r = world.search([world.exp], filter=flt)
    check_search(server, world, r, acceptable, what, run_labels(world))
    assert world.snapshot() == before


def test_long_experiments_filter(server, world):
    before = world.snapshot()
    r = world.api.post("experiments/search", {"filter": "name = '" + "x" * MB + "'", "max_results": 1000})
    check_search(server, world, r, [REJECT, frozenset()], "1 MB experiments filter",
                 lambda body: frozenset(e["experiment_id"] for e in body.get("experiments", [])))
    assert world.snapshot() == before


def test_ten_thousand_order_by_clauses(server, world):
    before = world.snapshot()
    r = world.search([world.exp], order_by=["metrics.loss"] * 10_000)
    if server.is_mlflow:
        # MLflow 3.17: 500 {"error_code": "INTERNAL_ERROR", "message": "`order_by` contains
        # duplicate fields: ..."}.
        assert r.status_code == 500, r.text[:300]
    else:
        assert_rejected(r, "10k order_by clauses")
    assert_alive(server)
    assert world.snapshot() == before


# ---------------------------------------------------------------------------
# Unicode round-trips exactly

UNICODE = {
    "emoji": "🔥🧪 👩‍🔬 ok",
    "cjk": "中文实验 日本語 한국어",
    "nfd": "e\u0301 a\u0308\u0323",  # combining marks: must not be normalised
    "nfc": "\u00e9 \u00e4",
    "rtl": "abc\u202edef\u200f",
    "invisible": "zwj\u200dzwnj\u200cbom\ufeff",
    "astral": "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0010fffd",
}


def test_unicode_round_trips(server, world):
    api = world.api
    name = f"{unique('hostile-unicode')} " + " | ".join(UNICODE.values())
    r = api.post("experiments/create", {"name": name})
    assert r.status_code == 200, r.text
    exp = r.json()["experiment_id"]
    assert api.get("experiments/get", {"experiment_id": exp}).json()["experiment"]["name"] == name
    r = api.get("experiments/get-by-name", {"experiment_name": name})
    assert r.status_code == 200 and r.json()["experiment"]["experiment_id"] == exp, r.text

    run_ids = {}
    for label in ("nfc", "nfd"):
        run_name = f"{UNICODE['emoji']} {UNICODE[label]}"
        r = api.post("runs/create", {"experiment_id": exp, "run_name": run_name})
        assert r.status_code == 200, r.text
        run_ids[label] = r.json()["run"]["info"]["run_id"]
        r = api.post("runs/log-batch", {
            "run_id": run_ids[label],
            "params": [{"key": f"p_{k}", "value": v} for k, v in UNICODE.items()],
            "tags": [{"key": f"t_{k}", "value": v} for k, v in UNICODE.items()]
                    + [{"key": "form", "value": UNICODE[label]}],
        })
        assert r.status_code == 200, r.text
        run = world.run_data(run_ids[label])
        assert run["info"]["run_name"] == run_name
        params = {p["key"]: p["value"] for p in run["data"]["params"]}
        tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
        for k, v in UNICODE.items():
            assert params[f"p_{k}"] == v, f"param {k}: sent {v!r}, got {params[f'p_{k}']!r}"
            assert tags[f"t_{k}"] == v, f"tag {k}: sent {v!r}, got {tags[f't_{k}']!r}"
        assert tags["form"] == UNICODE[label]

    # Search compares code points: NFC and NFD spellings are different strings.
    for label in ("nfc", "nfd"):
        r = api.post("runs/search", {"experiment_ids": [exp], "filter": f"tags.form = '{UNICODE[label]}'"})
        assert r.status_code == 200, r.text
        assert [x["info"]["run_id"] for x in r.json().get("runs", [])] == [run_ids[label]], label
    r = api.post("runs/search", {"experiment_ids": [exp], "filter": f"params.p_emoji = '{UNICODE['emoji']}'"})
    assert r.status_code == 200, r.text
    assert {x["info"]["run_id"] for x in r.json().get("runs", [])} == set(run_ids.values())

    # Keys: either accepted and returned exactly, or rejected with a 4xx.
    run_id = run_ids["nfc"]
    for label, key in [("cjk", "中文键"), ("astral", "𝔘𝔫𝔦"), ("emoji", "key🔥"), ("nfd", "cle\u0301")]:
        r = api.post("runs/log-metric", {"run_id": run_id, "key": key, "value": 2.5,
                                         "timestamp": 1_700_000_000_123, "step": 7})
        h = api.get("metrics/get-history", {"run_id": run_id, "metric_key": key})
        if r.status_code == 200:
            assert h.status_code == 200, h.text
            assert [(m["key"], m["value"], int(m["timestamp"]), int(m["step"])) for m in h.json()["metrics"]] \
                == [(key, 2.5, 1_700_000_000_123, 7)], f"metric key {label}"
        else:
            assert_rejected(r, f"metric key {label}")
        r = api.post("runs/set-tag", {"run_id": run_id, "key": key, "value": UNICODE[label]})
        tags = {t["key"]: t["value"] for t in world.run_data(run_id)["data"]["tags"]}
        if r.status_code == 200:
            assert tags.get(key) == UNICODE[label], f"tag key {label}: {tags.get(key)!r}"
        else:
            assert_rejected(r, f"tag key {label}")
            assert key not in tags
    assert_alive(server)


# ---------------------------------------------------------------------------
# NUL bytes: stored and returned exactly, or rejected; never a 5xx


def stored_or_rejected(r, what, read_back, expected):
    """A 2xx must mean the exact value reads back; anything else must be a clean 4xx."""
    if 200 <= r.status_code < 300:
        got = read_back()
        assert got == expected, f"{what}: accepted, but reads back as {got!r}"
        return True
    assert_rejected(r, what)
    return False


def _nul_experiment_name(world, run_id):
    name = unique("hostile-nul") + "-\x00-end"
    r = world.api.post("experiments/create", {"name": name})
    if not stored_or_rejected(r, "experiment name", lambda: world.api.get(
            "experiments/get", {"experiment_id": r.json()["experiment_id"]}).json()["experiment"]["name"], name):
        assert all(e[1] != name for e in world.experiments())


def _nul_run_name(world, run_id):
    r = world.api.post("runs/create", {"experiment_id": world.exp, "run_name": "nul-\x00-run"})
    stored_or_rejected(r, "run name", lambda: world.run_data(r.json()["run"]["info"]["run_id"])["info"]["run_name"],
                       "nul-\x00-run")


def _stored(world, run_id, kind, key):
    return {i["key"]: i["value"] for i in world.run_data(run_id)["data"].get(kind, [])}.get(key)


def _nul_item(endpoint, kind, key, value):
    def check(world, run_id):
        r = world.api.post(endpoint, {"run_id": run_id, "key": key, "value": value})
        if not stored_or_rejected(r, f"{kind} {key!r}={value!r}", lambda: _stored(world, run_id, kind, key), value):
            assert _stored(world, run_id, kind, key) is None
    return check


def _nul_metric_key(world, run_id):
    key = "m\x00x"
    r = world.api.post("runs/log-metric", {"run_id": run_id, "key": key, "value": 1.0,
                                           "timestamp": 1_700_000_000_000, "step": 0})
    stored_or_rejected(r, "metric key", lambda: _stored(world, run_id, "metrics", key) is not None, True)


NUL_CASES = {
    "experiment-name": _nul_experiment_name,
    "run-name": _nul_run_name,
    "param-value": _nul_item("runs/log-parameter", "params", "nul_value", "a\x00b"),
    "param-value-only-nul": _nul_item("runs/log-parameter", "params", "nul_only", "\x00"),
    "tag-value": _nul_item("runs/set-tag", "tags", "nul_value", "\x00\x00tail"),
    "param-key": _nul_item("runs/log-parameter", "params", "a\x00b", "v"),
    "tag-key": _nul_item("runs/set-tag", "tags", "\x00", "v"),
    "metric-key": _nul_metric_key,
}


@pytest.mark.parametrize("where", list(NUL_CASES))
def test_nul_bytes_stored_exactly_or_rejected(server, world, where):
    r = world.api.post("runs/create", {"experiment_id": world.exp, "run_name": f"nul-{where}"})
    assert r.status_code == 200, r.text
    run_id = r.json()["run"]["info"]["run_id"]
    NUL_CASES[where](world, run_id)
    assert_alive(server)


NUL_LOOKUPS = {
    "filter": lambda world: world.search([world.exp], filter="params.lr = '0.01\x00'"),
    "query-experiment-name": lambda world: world.api.raw(
        "GET", f"{API}/experiments/get-by-name?experiment_name=a%00b"),
    "query-run-id": lambda world: world.api.raw("GET", f"{API}/runs/get?run_id={world.runs['A']}%00"),
}


@pytest.mark.parametrize("where", list(NUL_LOOKUPS))
def test_nul_bytes_in_lookups(server, world, where):
    before = world.snapshot()
    r = NUL_LOOKUPS[where](world)
    if where == "filter":
        # Nothing has that value: no rows, or a rejection.
        check_search(server, world, r, [REJECT, frozenset()], "filter with NUL", run_labels(world))
    else:
        assert_rejected(r, f"NUL in {where}")
    assert_alive(server)
    assert world.snapshot() == before
