"""metrics/get-history (with pagination) and metrics/get-history-bulk-interval (sampling)."""

import pytest

from conftest import Api
from helpers import assert_error, metric, new_experiment, new_run, ok


@pytest.fixture(scope="module")
def runs(server):
    """Two runs: `loss` at steps 0..9 (value 10-step) and steps 0,3,..,12 (value 2*i)."""
    api = Api(server.url)
    eid = new_experiment(api, "history")
    first = new_run(api, eid)
    second = new_run(api, eid)
    ok(api.post("runs/log-batch", {"run_id": first, "metrics": [metric("loss", 10 - i, 1000 + i, i) for i in range(10)]}))
    ok(api.post("runs/log-batch", {"run_id": second, "metrics": [metric("loss", i * 2, 2000 + i, i * 3) for i in range(5)]}))
    return first, second


def steps(body):
    return [m["step"] for m in body.get("metrics", [])]


# ---------------------------------------------------------------- get-history

def test_full_history(api, runs):
    first, _ = runs
    body = ok(api.get("metrics/get-history", {"run_id": first, "metric_key": "loss"}))
    assert set(body) == {"metrics"}  # no page token without max_results
    assert body["metrics"] == [metric("loss", float(10 - i), 1000 + i, i) for i in range(10)]


def test_history_order_is_timestamp_then_step_then_value(api):
    eid = new_experiment(api, "history-order")
    rid = new_run(api, eid)
    points = [metric("m", 5, 300, 0), metric("m", 2, 100, 9), metric("m", 4, 100, 1), metric("m", 3, 100, 1),
              metric("m", 1, 200, 0)]
    ok(api.post("runs/log-batch", {"run_id": rid, "metrics": points}))
    got = ok(api.get("metrics/get-history", {"run_id": rid, "metric_key": "m"}))["metrics"]
    assert [(m["timestamp"], m["step"], m["value"]) for m in got] == [
        (100, 1, 3.0), (100, 1, 4.0), (100, 9, 2.0), (200, 0, 1.0), (300, 0, 5.0)]


def test_history_pagination(api, runs):
    first, _ = runs
    seen, token, pages = [], None, 0
    while True:
        params = {"run_id": first, "metric_key": "loss", "max_results": 4}
        if token:
            params["page_token"] = token
        body = ok(api.get("metrics/get-history", params))
        pages += 1
        seen += steps(body)
        token = body.get("next_page_token")
        if not token:
            break
        assert len(body["metrics"]) == 4
    assert pages == 3
    assert seen == list(range(10))


def test_history_exact_page_has_no_trailing_token(api, runs):
    first, _ = runs
    body = ok(api.get("metrics/get-history", {"run_id": first, "metric_key": "loss", "max_results": 5}))
    assert steps(body) == [0, 1, 2, 3, 4]
    body = ok(api.get("metrics/get-history", {"run_id": first, "metric_key": "loss", "max_results": 5,
                                              "page_token": body["next_page_token"]}))
    assert steps(body) == [5, 6, 7, 8, 9]
    assert "next_page_token" not in body


def test_history_large_max_results(api, runs):
    first, _ = runs
    body = ok(api.get("metrics/get-history", {"run_id": first, "metric_key": "loss", "max_results": 100000}))
    assert steps(body) == list(range(10))
    assert "next_page_token" not in body


@pytest.mark.parametrize("max_results", [0, -1])
def test_history_non_positive_max_results(api, runs, max_results):
    r = api.get("metrics/get-history", {"run_id": runs[0], "metric_key": "loss", "max_results": max_results})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", mentions="max_results")


def test_history_bad_page_token(api, runs):
    r = api.get("metrics/get-history", {"run_id": runs[0], "metric_key": "loss", "page_token": "not a token"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_history_unknown_key_or_run_is_empty(api, runs):
    assert ok(api.get("metrics/get-history", {"run_id": runs[0], "metric_key": "nope"})) == {}
    assert ok(api.get("metrics/get-history", {"run_id": "0" * 32, "metric_key": "loss"})) == {}


@pytest.mark.parametrize("missing", ["run_id", "metric_key"])
def test_history_required_params(api, runs, missing):
    params = {"run_id": runs[0], "metric_key": "loss"}
    del params[missing]
    assert_error(api.get("metrics/get-history", params), 400, "INVALID_PARAMETER_VALUE", mentions=missing)


def test_history_through_client(client, runs):
    first, _ = runs
    history = client.get_metric_history(first, "loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [(i, float(10 - i), 1000 + i) for i in range(10)]


def test_history_of_nan_and_inf(api):
    rid = new_run(api, new_experiment(api, "history-nan"))
    ok(api.post("runs/log-batch", {"run_id": rid, "metrics": [
        metric("m", "NaN", 1, 0), metric("m", "Infinity", 2, 1), metric("m", "-Infinity", 3, 2)]}))
    got = ok(api.get("metrics/get-history", {"run_id": rid, "metric_key": "m"}))["metrics"]
    assert [m["value"] for m in got] == ["NaN", 1.7976931348623157e308, -1.7976931348623157e308]


# ---------------------------------------------------------------- get-history-bulk-interval

def bulk(api, **params):
    return api.get("metrics/get-history-bulk-interval", params)


def test_bulk_interval_all_points(api, runs):
    first, _ = runs
    body = ok(bulk(api, run_ids=[first], metric_key="loss"))
    assert body["metrics"] == [{**metric("loss", float(10 - i), 1000 + i, i), "run_id": first} for i in range(10)]


@pytest.mark.parametrize("max_results,expected", [
    (1, [9]),
    (2, [0, 9]),
    (3, [0, 4, 9]),
    (4, [0, 3, 6, 9]),
    (7, [0, 2, 4, 6, 7, 8, 9]),
    (10, list(range(10))),
    (2500, list(range(10))),
])
def test_bulk_interval_sampling(api, runs, max_results, expected):
    first, _ = runs
    assert steps(ok(bulk(api, run_ids=[first], metric_key="loss", max_results=max_results))) == expected


def test_bulk_interval_several_runs_keep_request_order(api, runs):
    first, second = runs
    body = ok(bulk(api, run_ids=[second, first], metric_key="loss", max_results=3))
    got = [(m["run_id"], m["step"], m["value"]) for m in body["metrics"]]
    assert got == [(second, 0, 0.0), (second, 6, 4.0), (second, 12, 8.0),
                   (first, 0, 10.0), (first, 4, 6.0), (first, 9, 1.0)]


def test_bulk_interval_step_range(api, runs):
    first, _ = runs
    assert steps(ok(bulk(api, run_ids=[first], metric_key="loss", start_step=2, end_step=5))) == [2, 3, 4, 5]
    assert steps(ok(bulk(api, run_ids=[first], metric_key="loss", start_step=2, end_step=5, max_results=2))) == [2, 5]
    assert steps(ok(bulk(api, run_ids=[first], metric_key="loss", start_step=4, end_step=4))) == [4]
    assert ok(bulk(api, run_ids=[first], metric_key="loss", start_step=50, end_step=60)) == {}


def test_bulk_interval_unknown_run_or_key_is_empty(api, runs):
    assert ok(bulk(api, run_ids=["0" * 32], metric_key="loss")) == {}
    assert ok(bulk(api, run_ids=[runs[0]], metric_key="nope")) == {}


@pytest.mark.parametrize("params", [
    {"metric_key": "loss"},
    {"run_ids": "FIRST"},
    {"run_ids": "FIRST", "metric_key": "loss", "start_step": 2},
    {"run_ids": "FIRST", "metric_key": "loss", "end_step": 2},
    {"run_ids": "FIRST", "metric_key": "loss", "start_step": 5, "end_step": 2},
    {"run_ids": "FIRST", "metric_key": "loss", "max_results": 0},
    {"run_ids": "FIRST", "metric_key": "loss", "max_results": 2501},
    {"run_ids": [f"{i:032x}" for i in range(101)], "metric_key": "loss"},
], ids=["no-run-ids", "no-key", "only-start", "only-end", "start-after-end", "max-0", "max-2501", "101-runs"])
def test_bulk_interval_invalid(api, runs, params):
    params = {k: ([runs[0]] if v == "FIRST" else v) for k, v in params.items()}
    assert_error(bulk(api, **params), 400, "INVALID_PARAMETER_VALUE")


def ntile_sample(rows, k):
    """MLflow's sampling: NTILE(k) buckets over the ordered rows, first row of each, last row always kept."""
    n = len(rows)
    if n <= k:
        return list(rows)
    size, extra = divmod(n, k)
    picks, start = [], 0
    for bucket in range(k):
        picks.append(start)
        start += size + (1 if bucket < extra else 0)
    sample = [rows[i] for i in picks]
    if sample[-1] != rows[-1]:
        sample[-1] = rows[-1]
    return sample


@pytest.fixture(scope="module")
def odd_run(server):
    """One run whose points share steps and timestamps and include NaN and infinities."""
    api = Api(server.url)
    rid = new_run(api, new_experiment(api, "history-odd"))
    points = [(0, 1, 5), (0, 1, "NaN"), (0, 1, -1), (1, 1, 2), (1, 0, 3), (2, 5, "Infinity"), (2, 5, "-Infinity"),
              (3, 2, "NaN")]
    ok(api.post("runs/log-batch", {"run_id": rid, "metrics": [metric("k", v, ts, st) for st, ts, v in points]}))
    return rid


BIG = 1.7976931348623157e308
# (step, timestamp, value) ordered by step, timestamp, value; NaN is stored as 0 and sorts there
BY_STEP = [(0, 1, -1.0), (0, 1, "NaN"), (0, 1, 5.0), (1, 0, 3.0), (1, 1, 2.0), (2, 5, -BIG), (2, 5, BIG), (3, 2, "NaN")]


def test_history_with_nan_and_ties(api, odd_run):
    got = ok(api.get("metrics/get-history", {"run_id": odd_run, "metric_key": "k"}))["metrics"]
    # ordered by timestamp, then step, then value
    assert [(m["timestamp"], m["step"], m["value"]) for m in got] == [
        (0, 1, 3.0), (1, 0, -1.0), (1, 0, "NaN"), (1, 0, 5.0), (1, 1, 2.0), (2, 3, "NaN"), (5, 2, -BIG), (5, 2, BIG)]


@pytest.mark.parametrize("max_results", [1, 2, 3, 4, 5, 7, 8])
def test_bulk_interval_sampling_with_nan_and_ties(api, odd_run, max_results):
    body = ok(bulk(api, run_ids=[odd_run], metric_key="k", max_results=max_results))
    got = [(m["step"], m["timestamp"], m["value"]) for m in body["metrics"]]
    assert got == ntile_sample(BY_STEP, max_results)


def test_latest_value_with_nan_at_last_step(api, odd_run):
    [latest] = ok(api.get("runs/get", {"run_id": odd_run}))["run"]["data"]["metrics"]
    assert latest == metric("k", "NaN", 2, 3)
