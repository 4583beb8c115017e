"""Logging: log-metric, log-parameter, set-tag, delete-tag and log-batch, with MLflow's validation and limits."""

import math

import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from conftest import Api
from helpers import (assert_error, get_run, kv, latest_metrics, metric, new_experiment, new_run, ok, params_of,
                     run_tags)

MAX_DOUBLE = 1.7976931348623157e308


@pytest.fixture(scope="module")
def eid(server):
    return new_experiment(Api(server.url), "logging")


@pytest.fixture
def rid(api, eid):
    return new_run(api, eid, start_time=1)


def history(api, rid, key):
    return ok(api.get("metrics/get-history", {"run_id": rid, "metric_key": key})).get("metrics", [])


# ---------------------------------------------------------------- log-metric

def test_log_metric(api, rid):
    assert ok(api.post("runs/log-metric", {"run_id": rid, "key": "m", "value": 1.5, "timestamp": 100, "step": 3})) == {}
    assert latest_metrics(get_run(api, rid)) == {"m": {"key": "m", "value": 1.5, "timestamp": 100, "step": 3}}


def test_log_metric_step_defaults_to_zero(api, rid):
    ok(api.post("runs/log-metric", {"run_id": rid, "key": "m", "value": 2, "timestamp": 7}))
    assert history(api, rid, "m") == [{"key": "m", "value": 2.0, "timestamp": 7, "step": 0}]


def test_log_metric_with_run_uuid(api, rid):
    ok(api.post("runs/log-metric", {"run_uuid": rid, "key": "m", "value": 1, "timestamp": 1}))
    assert "m" in latest_metrics(get_run(api, rid))


def test_log_metric_numeric_string_value(api, rid):
    ok(api.post("runs/log-metric", {"run_id": rid, "key": "m", "value": "3.5", "timestamp": 1}))
    assert latest_metrics(get_run(api, rid))["m"]["value"] == 3.5


def test_log_metric_negative_step(api, rid):
    ok(api.post("runs/log-metric", {"run_id": rid, "key": "m", "value": 1, "timestamp": 1, "step": -5}))
    assert history(api, rid, "m")[0]["step"] == -5


def test_log_metric_large_timestamp_and_step(api, rid):
    big = 2**62
    ok(api.post("runs/log-metric", {"run_id": rid, "key": "m", "value": 1, "timestamp": big, "step": big}))
    assert history(api, rid, "m") == [{"key": "m", "value": 1.0, "timestamp": big, "step": big}]


@pytest.mark.parametrize("missing", ["key", "value", "timestamp", "run_id"])
def test_log_metric_required_fields(api, rid, missing):
    body = {"run_id": rid, "key": "m", "value": 1.0, "timestamp": 1}
    del body[missing]
    assert_error(api.post("runs/log-metric", body), 400, "INVALID_PARAMETER_VALUE", mentions=missing)


@pytest.mark.parametrize("field,value", [("value", "abc"), ("timestamp", "abc"), ("timestamp", -1)])
def test_log_metric_bad_values(api, rid, field, value):
    body = {"run_id": rid, "key": "m", "value": 1.0, "timestamp": 1, field: value}
    assert_error(api.post("runs/log-metric", body), 400, "INVALID_PARAMETER_VALUE")
    assert "metrics" not in get_run(api, rid)["data"]


def test_log_metric_unknown_run(api):
    r = api.post("runs/log-metric", {"run_id": "0" * 32, "key": "m", "value": 1, "timestamp": 1})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_nan_and_infinities(api, rid):
    for key, value in [("nan", "NaN"), ("pinf", "Infinity"), ("ninf", "-Infinity")]:
        ok(api.post("runs/log-metric", {"run_id": rid, "key": key, "value": value, "timestamp": 1}))
    latest = latest_metrics(get_run(api, rid))
    # NaN comes back as the JSON string "NaN"; infinities come back clamped to the largest doubles.
    assert latest["nan"]["value"] == "NaN"
    assert latest["pinf"]["value"] == MAX_DOUBLE
    assert latest["ninf"]["value"] == -MAX_DOUBLE
    assert history(api, rid, "nan") == [{"key": "nan", "value": "NaN", "timestamp": 1, "step": 0}]


def test_nan_and_infinities_through_client(client, rid):
    client.log_metric(rid, "nan", float("nan"), timestamp=1)
    client.log_metric(rid, "inf", float("inf"), timestamp=1)
    client.log_metric(rid, "ninf", float("-inf"), timestamp=1)
    metrics = client.get_run(rid).data.metrics
    assert math.isnan(metrics["nan"])
    assert metrics["inf"] == MAX_DOUBLE
    assert metrics["ninf"] == -MAX_DOUBLE


def test_latest_metric_is_max_step_then_timestamp_then_value(api, rid):
    points = [(5, 100, 1), (3, 200, 1), (9, 50, 0), (1, 200, 1), (7, 10, 2), (6, 10, 2)]
    for value, ts, step in points:
        ok(api.post("runs/log-metric", {"run_id": rid, "key": "a", "value": value, "timestamp": ts, "step": step}))
    for value, ts, step in [(5, 100, 1), (3, 200, 1), (1, 200, 1)]:
        ok(api.post("runs/log-metric", {"run_id": rid, "key": "b", "value": value, "timestamp": ts, "step": step}))
    latest = latest_metrics(get_run(api, rid))
    assert latest["a"] == {"key": "a", "value": 7.0, "timestamp": 10, "step": 2}
    assert latest["b"] == {"key": "b", "value": 3.0, "timestamp": 200, "step": 1}


def test_nan_does_not_replace_latest_value_at_same_position(api, rid):
    ok(api.post("runs/log-metric", {"run_id": rid, "key": "c", "value": 1, "timestamp": 10, "step": 1}))
    ok(api.post("runs/log-metric", {"run_id": rid, "key": "c", "value": "NaN", "timestamp": 10, "step": 1}))
    assert latest_metrics(get_run(api, rid))["c"]["value"] == 1.0
    assert len(history(api, rid, "c")) == 2


def test_identical_metric_points_are_stored_once(api, rid):
    for _ in range(3):
        ok(api.post("runs/log-metric", {"run_id": rid, "key": "m", "value": 1, "timestamp": 5, "step": 2}))
    assert history(api, rid, "m") == [{"key": "m", "value": 1.0, "timestamp": 5, "step": 2}]


# ---------------------------------------------------------------- key names (all three kinds share the rules)

KEY_ENDPOINTS = [
    ("runs/log-metric", lambda k: {"key": k, "value": 1, "timestamp": 1}),
    ("runs/log-parameter", lambda k: {"key": k, "value": "v"}),
    ("runs/set-tag", lambda k: {"key": k, "value": "v"}),
]


@pytest.mark.parametrize("path,body", KEY_ENDPOINTS)
@pytest.mark.parametrize("key", ["a/b c-d_e.f:g", "UPPER.lower", "k" * 250, "1"])
def test_valid_keys(api, rid, path, body, key):
    ok(api.post(path, {"run_id": rid, **body(key)}))


@pytest.mark.parametrize("path,body", KEY_ENDPOINTS)
@pytest.mark.parametrize("key", ["bad!", "semi;colon", "../escape", "/absolute", "k" * 251])
def test_invalid_keys(api, rid, path, body, key):
    assert_error(api.post(path, {"run_id": rid, **body(key)}), 400, "INVALID_PARAMETER_VALUE")
    data = get_run(api, rid)["data"]
    assert "metrics" not in data and "params" not in data


@pytest.mark.parametrize("path,body", KEY_ENDPOINTS)
def test_empty_key(api, rid, path, body):
    assert_error(api.post(path, {"run_id": rid, **body("")}), 400, "INVALID_PARAMETER_VALUE", mentions="key")


# ---------------------------------------------------------------- log-parameter

def test_log_param(api, rid):
    assert ok(api.post("runs/log-parameter", {"run_id": rid, "key": "lr", "value": "0.1"})) == {}
    assert params_of(get_run(api, rid)) == {"lr": "0.1"}


def test_log_same_param_value_again_is_fine(api, rid):
    ok(api.post("runs/log-parameter", {"run_id": rid, "key": "lr", "value": "0.1"}))
    ok(api.post("runs/log-parameter", {"run_id": rid, "key": "lr", "value": "0.1"}))
    assert params_of(get_run(api, rid)) == {"lr": "0.1"}


def test_changing_param_value_is_rejected(api, rid):
    ok(api.post("runs/log-parameter", {"run_id": rid, "key": "lr", "value": "0.1"}))
    r = api.post("runs/log-parameter", {"run_id": rid, "key": "lr", "value": "0.2"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert params_of(get_run(api, rid)) == {"lr": "0.1"}


def test_param_empty_value_is_stored(api, rid):
    ok(api.post("runs/log-parameter", {"run_id": rid, "key": "empty", "value": ""}))
    assert params_of(get_run(api, rid)) == {"empty": ""}


def test_param_missing_value(api, server, rid):
    r = api.post("runs/log-parameter", {"run_id": rid, "key": "absent"})
    if server.is_mlflow:
        # MLflow stores "" although its API reference marks `value` as required.
        ok(r)
        assert params_of(get_run(api, rid)) == {"absent": ""}
    else:
        assert_error(r, 400, "INVALID_PARAMETER_VALUE", "value")
        assert params_of(get_run(api, rid)) == {}


def test_param_value_must_be_a_string(api, rid):
    assert_error(api.post("runs/log-parameter", {"run_id": rid, "key": "n", "value": 5}), 400,
                 "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("length,stored", [(6000, 6000), (6001, 6000), (8000, 6000), (8001, 6000), (20000, 6000)])
def test_param_value_is_truncated_to_6000(api, rid, length, stored):
    value = "".join(chr(ord("a") + i % 26) for i in range(length))
    ok(api.post("runs/log-parameter", {"run_id": rid, "key": "long", "value": value}))
    assert params_of(get_run(api, rid))["long"] == value[:stored]


def test_log_param_unknown_run(api):
    assert_error(api.post("runs/log-parameter", {"run_id": "0" * 32, "key": "k", "value": "v"}), 404,
                 "RESOURCE_DOES_NOT_EXIST")


# ---------------------------------------------------------------- set-tag / delete-tag

def test_set_and_overwrite_tag(api, server, rid):
    assert ok(api.post("runs/set-tag", {"run_id": rid, "key": "t", "value": "1"})) == {}
    ok(api.post("runs/set-tag", {"run_id": rid, "key": "t", "value": "2"}))
    ok(api.post("runs/set-tag", {"run_id": rid, "key": "empty", "value": ""}))
    r = api.post("runs/set-tag", {"run_id": rid, "key": "absent"})
    if server.is_mlflow:
        # MLflow stores "" although its API reference marks `value` as required.
        ok(r)
    else:
        assert_error(r, 400, "INVALID_PARAMETER_VALUE", "value")
    tags = run_tags(get_run(api, rid))
    assert tags["t"] == "2"
    assert tags["empty"] == ""
    assert ("absent" in tags) == server.is_mlflow


@pytest.mark.parametrize("length,stored", [(8000, 8000), (8001, 8000), (100000, 8000)])
def test_tag_value_is_truncated_to_8000(api, rid, length, stored):
    value = "".join(chr(ord("a") + i % 26) for i in range(length))
    ok(api.post("runs/set-tag", {"run_id": rid, "key": "long", "value": value}))
    assert run_tags(get_run(api, rid))["long"] == value[:stored]


def test_set_tag_unknown_run(api):
    assert_error(api.post("runs/set-tag", {"run_id": "0" * 32, "key": "k", "value": "v"}), 404,
                 "RESOURCE_DOES_NOT_EXIST")


def test_delete_tag(api, rid):
    ok(api.post("runs/set-tag", {"run_id": rid, "key": "t", "value": "1"}))
    assert ok(api.post("runs/delete-tag", {"run_id": rid, "key": "t"})) == {}
    assert "t" not in run_tags(get_run(api, rid))
    assert_error(api.post("runs/delete-tag", {"run_id": rid, "key": "t"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_delete_tag_unknown_run(api):
    assert_error(api.post("runs/delete-tag", {"run_id": "0" * 32, "key": "t"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_set_user_tag_does_not_change_user_id(api, eid):
    rid = new_run(api, eid, user_id="bob")
    ok(api.post("runs/set-tag", {"run_id": rid, "key": "mlflow.user", "value": "alice"}))
    run = get_run(api, rid)
    assert run["info"]["user_id"] == "bob"
    assert run_tags(run)["mlflow.user"] == "alice"


# ---------------------------------------------------------------- log-batch

def test_log_batch_all_kinds(api, rid):
    body = {"run_id": rid,
            "metrics": [metric("m", 1.0, 10, 0), metric("m", 2.0, 20, 1), metric("other", -3.5, 5, 0)],
            "params": kv({"p1": "a", "p2": "b"}),
            "tags": kv({"t1": "x"})}
    assert ok(api.post("runs/log-batch", body)) == {}
    run = get_run(api, rid)
    assert latest_metrics(run) == {"m": metric("m", 2.0, 20, 1), "other": metric("other", -3.5, 5, 0)}
    assert params_of(run) == {"p1": "a", "p2": "b"}
    assert run_tags(run)["t1"] == "x"
    assert history(api, rid, "m") == [metric("m", 1.0, 10, 0), metric("m", 2.0, 20, 1)]


def test_log_batch_empty(api, rid):
    ok(api.post("runs/log-batch", {"run_id": rid}))
    ok(api.post("runs/log-batch", {"run_id": rid, "metrics": [], "params": [], "tags": []}))


def test_log_batch_metric_step_defaults_to_zero(api, rid):
    ok(api.post("runs/log-batch", {"run_id": rid, "metrics": [{"key": "m", "value": 1, "timestamp": 3}]}))
    assert history(api, rid, "m") == [metric("m", 1.0, 3, 0)]


@pytest.mark.parametrize("missing", ["timestamp", "value"])
def test_log_batch_metric_required_fields(api, rid, missing):
    m = metric("m", 1.0, 3, 0)
    del m[missing]
    r = api.post("runs/log-batch", {"run_id": rid, "metrics": [m]})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", mentions=missing)


def test_log_batch_limits_at_the_edge(api, rid):
    ok(api.post("runs/log-batch", {"run_id": rid, "metrics": [metric("m", i, 1, i) for i in range(1000)]}))
    assert len(history(api, rid, "m")) == 1000
    ok(api.post("runs/log-batch", {"run_id": rid, "params": kv({f"p{i}": "v" for i in range(100)})}))
    ok(api.post("runs/log-batch", {"run_id": rid, "tags": kv({f"t{i}": "v" for i in range(100)})}))
    # 800 + 100 + 100 = 1000 in total is still allowed
    ok(api.post("runs/log-batch", {"run_id": rid, "metrics": [metric("n", i, 1, i) for i in range(800)],
                                   "params": kv({f"q{i}": "v" for i in range(100)}),
                                   "tags": kv({f"u{i}": "v" for i in range(100)})}))
    run = get_run(api, rid)
    assert len(params_of(run)) == 200
    assert len(history(api, rid, "n")) == 800


@pytest.mark.parametrize("body", [
    {"metrics": [metric("m", i, 1, i) for i in range(1001)]},
    {"params": kv({f"p{i}": "v" for i in range(101)})},
    {"tags": kv({f"t{i}": "v" for i in range(101)})},
    {"metrics": [metric("m", i, 1, i) for i in range(900)], "params": kv({f"p{i}": "v" for i in range(100)}),
     "tags": kv({"t": "v"})},
], ids=["1001-metrics", "101-params", "101-tags", "1001-total"])
def test_log_batch_limits_exceeded(api, rid, body):
    assert_error(api.post("runs/log-batch", {"run_id": rid, **body}), 400, "INVALID_PARAMETER_VALUE")
    data = get_run(api, rid)["data"]
    assert "metrics" not in data and "params" not in data
    assert set(run_tags(get_run(api, rid))) == {"mlflow.runName"}


def test_log_batch_duplicate_param_keys_rejected_even_with_same_value(api, rid):
    for params in ([("a", "1"), ("a", "1")], [("b", "1"), ("b", "2")]):
        body = {"run_id": rid, "params": [{"key": k, "value": v} for k, v in params]}
        assert_error(api.post("runs/log-batch", body), 400, "INVALID_PARAMETER_VALUE")
    assert params_of(get_run(api, rid)) == {}


def test_log_batch_duplicate_tag_keys_last_wins(api, rid):
    ok(api.post("runs/log-batch", {"run_id": rid, "tags": [{"key": "t", "value": "1"}, {"key": "t", "value": "2"}]}))
    assert run_tags(get_run(api, rid))["t"] == "2"


def test_log_batch_duplicate_metrics_stored_once(api, rid):
    ok(api.post("runs/log-batch", {"run_id": rid, "metrics": [metric("m", 1, 5, 0), metric("m", 1, 5, 0)]}))
    assert history(api, rid, "m") == [metric("m", 1.0, 5, 0)]


def test_log_batch_param_conflict_rejects_whole_batch(api, rid):
    ok(api.post("runs/log-parameter", {"run_id": rid, "key": "a", "value": "1"}))
    body = {"run_id": rid, "params": kv({"a": "2", "c": "3"}), "metrics": [metric("m", 1)], "tags": kv({"t": "x"})}
    assert_error(api.post("runs/log-batch", body), 400, "INVALID_PARAMETER_VALUE")
    run = get_run(api, rid)
    assert params_of(run) == {"a": "1"}
    assert "t" not in run_tags(run)
    # re-sending an already logged param with the same value is fine
    ok(api.post("runs/log-batch", {"run_id": rid, "params": kv({"a": "1", "c": "3"})}))
    assert params_of(get_run(api, rid)) == {"a": "1", "c": "3"}


def test_log_batch_invalid_key_writes_nothing(api, rid):
    body = {"run_id": rid, "metrics": [metric("good", 1), metric("bad!", 1)], "params": kv({"ok": "1"})}
    assert_error(api.post("runs/log-batch", body), 400, "INVALID_PARAMETER_VALUE")
    data = get_run(api, rid)["data"]
    assert "metrics" not in data and "params" not in data


def test_log_batch_truncates_long_values(api, rid):
    ok(api.post("runs/log-batch", {"run_id": rid, "params": kv({"p": "x" * 7000}), "tags": kv({"t": "y" * 9000})}))
    run = get_run(api, rid)
    assert params_of(run)["p"] == "x" * 6000
    assert run_tags(run)["t"] == "y" * 8000


def test_log_batch_nan_and_inf(api, rid):
    ok(api.post("runs/log-batch", {"run_id": rid, "metrics": [metric("nan", "NaN"), metric("inf", "Infinity"),
                                                              metric("ninf", "-Infinity")]}))
    latest = latest_metrics(get_run(api, rid))
    assert [latest[k]["value"] for k in ("nan", "inf", "ninf")] == ["NaN", MAX_DOUBLE, -MAX_DOUBLE]


def test_log_batch_unknown_run(api):
    assert_error(api.post("runs/log-batch", {"run_id": "0" * 32, "params": kv({"a": "1"})}), 404,
                 "RESOURCE_DOES_NOT_EXIST")


def test_log_batch_requires_run_id(api):
    assert_error(api.post("runs/log-batch", {"params": kv({"a": "1"})}), 400, "INVALID_PARAMETER_VALUE",
                 mentions="run_id")


def test_client_log_batch(client, rid):
    client.log_batch(rid, metrics=[Metric("m", 0.5, 1000, 0), Metric("m", 0.25, 1001, 1)],
                     params=[Param("lr", "0.01")], tags=[RunTag("phase", "train")])
    run = client.get_run(rid)
    assert run.data.metrics == {"m": 0.25}
    assert run.data.params == {"lr": "0.01"}
    assert run.data.tags["phase"] == "train"
    with pytest.raises(MlflowException) as e:
        client.log_param(rid, "lr", "0.02")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_client_log_batch_splits_large_batches(client, rid):
    # The client splits 2500 metrics into several requests that each respect the server's limits.
    client.log_batch(rid, metrics=[Metric("big", float(i), 1, i) for i in range(2500)])
    assert len(client.get_metric_history(rid, "big")) == 2500
