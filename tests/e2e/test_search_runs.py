"""runs/search: the filter language, ordering (missing values and NaN), pagination and limits."""

import pytest
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from conftest import Api
from helpers import assert_error, kv, metric, new_experiment, new_run, ok, search_runs

# name, start_time, metrics, params, tags
RUNS = [
    ("a", 100, {"m": 1.0, "acc": 0.5}, {"p": "x", "lr": "0.1"}, {"t": "red", "grp": "A"}),
    ("b", 200, {"m": 2.0}, {"p": "y", "lr": "0.01"}, {"t": "Red", "grp": "B"}),
    ("c", 300, {"m": "NaN"}, {"p": "z"}, {"t": "blue"}),
    ("d", 400, {"m": "Infinity"}, {}, {}),
    ("e", 500, {}, {"lr": "1"}, {"t": "green"}),
    ("f", 600, {"m": -1.0}, {"p": "x"}, {"grp": "A"}),
]
DEFAULT_ORDER = "fedcba"  # start_time DESC


class Fixture:
    def __init__(self, api):
        self.api = api
        self.eid = new_experiment(api, "search-runs")
        self.ids = {}
        for name, start, metrics, params, tags in RUNS:
            rid = new_run(api, self.eid, run_name=name, start_time=start, user_id="alice" if name == "a" else "")
            self.ids[name] = rid
            ok(api.post("runs/log-batch", {"run_id": rid, "metrics": [metric(k, v) for k, v in metrics.items()],
                                           "params": kv(params), "tags": kv(tags)}))
        ok(api.post("runs/update", {"run_id": self.ids["b"], "status": "FINISHED", "end_time": 250}))
        ok(api.post("runs/update", {"run_id": self.ids["d"], "status": "FAILED", "end_time": 900}))
        self.names = {v: k for k, v in self.ids.items()}

    def search(self, **body):
        return search_runs(self.api, [self.eid], **body)

    def names_of(self, resp):
        return "".join(self.names[r["info"]["run_id"]] for r in ok(resp).get("runs", []))


@pytest.fixture(scope="module")
def fx(server):
    return Fixture(Api(server.url))


# ---------------------------------------------------------------- basic shape and defaults

def test_response_shape(fx):
    body = ok(fx.search())
    assert set(body) == {"runs"}
    run = body["runs"][-1]
    assert run["info"]["run_name"] == "a"
    assert set(run) >= {"info", "data", "inputs"}
    assert run["inputs"] == {}
    assert run.get("outputs", {}) == {}
    assert {m["key"]: m["value"] for m in run["data"]["metrics"]} == {"m": 1.0, "acc": 0.5}
    assert {p["key"]: p["value"] for p in run["data"]["params"]} == {"p": "x", "lr": "0.1"}
    assert {t["key"]: t["value"] for t in run["data"]["tags"]} == {"t": "red", "grp": "A", "mlflow.runName": "a"}


def test_default_order_is_start_time_desc(fx):
    assert fx.names_of(fx.search()) == DEFAULT_ORDER


def test_default_max_results(fx):
    body = ok(fx.api.post("runs/search", {"experiment_ids": [fx.eid]}))
    assert len(body["runs"]) == 6


def test_no_matching_runs_is_empty_object(fx):
    assert ok(fx.search(filter="params.p = 'none'")) == {}


def test_unknown_or_missing_experiments_give_nothing(api):
    assert ok(api.post("runs/search", {"experiment_ids": ["987654321"], "max_results": 10})) == {}
    assert ok(api.post("runs/search", {"max_results": 10})) == {}


def test_non_integer_experiment_id(api):
    assert_error(api.post("runs/search", {"experiment_ids": ["abc"], "max_results": 10}), 400, "INVALID_PARAMETER_VALUE")


def test_search_across_experiments(api, fx):
    other = new_experiment(api, "search-other")
    rid = new_run(api, other, start_time=700, run_name="other")
    body = ok(search_runs(api, [fx.eid, other]))
    assert [r["info"]["run_id"] for r in body["runs"]] == [rid] + [fx.ids[n] for n in DEFAULT_ORDER]


# ---------------------------------------------------------------- filters

FILTERS = [
    # metrics: numeric comparisons; NaN matches only !=, runs without the metric never match
    ("metrics.m > 0", "dba"),
    ("metrics.m >= 1", "dba"),
    ("metrics.m < 2", "fa"),
    ("metrics.m <= 2", "fba"),
    ("metrics.m = 1", "a"),
    ("metrics.m = 1.0", "a"),
    ("metrics.m != 1", "fdcb"),
    ("metrics.m = -1", "f"),
    ("metrics.m < -0.5", "f"),
    ("metrics.m > 1.5e0", "db"),
    ("metrics.m > 1e300", "d"),
    ("metrics.m >= -1 AND metrics.m <= 1", "fa"),
    ("metrics.acc = 0.5", "a"),
    ("metrics.`m` = 1", "a"),
    ('metrics."m" = 1', "a"),
    ("metric.m = 1", "a"),
    ("metrics.m>0", "dba"),
    # params: = != LIKE ILIKE IS NULL IS NOT NULL
    ("params.p = 'x'", "fa"),
    ('params.p = "x"', "fa"),
    ("params.p = 'X'", ""),
    ("params.p != 'x'", "cb"),
    ("params.p LIKE 'x%'", "fa"),
    ("params.p LIKE 'X%'", ""),
    ("params.p ILIKE 'X%'", "fa"),
    ("params.p LIKE '%'", "fcba"),
    ("params.p IS NULL", "ed"),
    ("params.p IS NOT NULL", "fcba"),
    ("params.lr = '0.1'", "a"),
    ("params.`lr` = '0.1'", "a"),
    ("param.p = 'x'", "fa"),
    ("parameter.p = 'x'", "fa"),
    ("parameters.p = 'x'", "fa"),
    ("params.missing = 'x'", ""),
    ("params.missing != 'x'", ""),
    ("params.p != 'x' AND params.p != 'y'", "c"),
    ("params.p = 'x' AND params.p = 'y'", ""),
    ("  params.p   =   'x'  ", "fa"),
    ("params.p='x'", "fa"),
    # tags
    ("tags.t = 'red'", "a"),
    ("tags.t != 'red'", "ecb"),
    ("tags.t != 'nonexistent'", "ecba"),
    ("tags.t LIKE 'r%'", "a"),
    ("tags.t LIKE 'R%'", "b"),
    ("tags.t ILIKE 'r%'", "ba"),
    ("tags.t ILIKE '%E%'", "ecba"),
    ("tags.t LIKE '%e%'", "ecba"),
    ("tags.t LIKE 'r_d'", "a"),
    ("tags.t IS NULL", "fd"),
    ("tags.t IS NOT NULL", "ecba"),
    ("tags.`t` = 'red'", "a"),
    ('tags."t" = \'red\'', "a"),
    ('tags.t = "red"', "a"),
    ("tag.t = 'red'", "a"),
    ("tags.mlflow.runName = 'b'", "b"),
    ("tags.`mlflow.runName` = 'b'", "b"),
    ("tags.grp = 'A'", "fa"),
    # attributes and their aliases
    ("attributes.run_name = 'a'", "a"),
    ('attributes.run_name = "a"', "a"),
    ("attributes.run_name = 'A'", ""),
    ("attributes.run_name != 'a'", "fedcb"),
    ("attributes.run_name LIKE 'a%'", "a"),
    ("attributes.run_name ILIKE 'A'", "a"),
    ("attributes.run_name != 'a' AND attributes.run_name != 'b'", "fedc"),
    ("attributes.`run_name` = 'a'", "a"),
    ("attributes.`run name` = 'a'", "a"),
    ("attributes.`Run name` = 'a'", "a"),
    ("attribute.run_name = 'a'", "a"),
    ("attr.run_name = 'a'", "a"),
    ("run.run_name = 'a'", "a"),
    ("run_name = 'a'", "a"),
    ("attributes.status = 'RUNNING'", "feca"),
    ("attributes.status != 'RUNNING'", "db"),
    ("attributes.status = 'running'", ""),
    ("attributes.status LIKE 'F%'", "db"),
    ("attributes.status ILIKE 'fin%'", "b"),
    ("run.status = 'FAILED'", "d"),
    ("attributes.user_id = 'alice'", "a"),
    ("attributes.user_id = ''", "fedcb"),
    ("attributes.start_time > 300", "fed"),
    ("attributes.start_time >= 300", "fedc"),
    ("attributes.start_time = 300", "c"),
    ("attributes.start_time != 300", "fedba"),
    ("attributes.start_time < 250.5", "ba"),
    ("attributes.start_time <= 100", "a"),
    ("attributes.created > 300", "fed"),
    ("attributes.Created > 300", "fed"),
    ("start_time > 300", "fed"),
    ("attributes.end_time > 0", "db"),
    ("attributes.end_time <= 250", "b"),
    ("attributes.end_time != 250", "d"),
    # combinations across entities
    ("metrics.m > 0 AND params.p = 'x'", "a"),
    ("metrics.m > 0 and params.p = 'x'", "a"),
    ("metrics.m > 0 AND params.p = 'y' AND tags.t = 'Red'", "b"),
    ("metrics.m = 2 AND attributes.start_time = 200", "b"),
    ("tags.grp = 'A' AND attributes.status = 'RUNNING' AND params.p LIKE 'x'", "fa"),
    ("tags.t = 'red' AND tags.t = 'red'", "a"),
    # MLflow skips empty clauses around AND; scripts that build filters in a loop rely on it
    ("params.p = 'x' AND", "fa"),
    ("params.p = 'x' and ", "fa"),
    ("AND params.p = 'x'", "fa"),
    ("params.p = 'x' AND AND metrics.m > 0", "a"),
    ("AND", "fedcba"),
]


@pytest.mark.parametrize("filter_string,expected", FILTERS)
def test_filter(fx, filter_string, expected):
    assert fx.names_of(fx.search(filter=filter_string)) == expected


def test_filter_run_id(fx):
    a, b = fx.ids["a"], fx.ids["b"]
    cases = [
        (f"attributes.run_id = '{a}'", "a"),
        (f"attributes.run_id != '{a}'", "fedcb"),
        (f"attributes.run_id IN ('{a}', '{b}')", "ba"),
        (f"attributes.run_id IN ('{a}','{b}')", "ba"),
        (f"attributes.run_id NOT IN ('{a}', '{b}')", "fedc"),
        (f"attr.run_id IN ('{a}')", "a"),
        (f"run_id = '{b}'", "b"),
        (f"attributes.run_id LIKE '{a[:8]}%'", "a"),
        (f"attributes.run_id IN ('{a}') AND metrics.m > 0", "a"),
        ("attributes.run_id = 'nope'", ""),
    ]
    for filter_string, expected in cases:
        assert fx.names_of(fx.search(filter=filter_string)) == expected, filter_string


INVALID_FILTERS = [
    "metrics.m = 'NaN'",
    "metrics.m > 'a'",
    "metrics.m LIKE '1'",
    "metrics.m IN (1, 2)",
    "metrics.m IS NULL",
    "metrics.m ~ 1",
    "metrics.m",
    "metrics.m >",
    "METRICS.m = 1",
    "params.p IN ('x','z')",
    "params.p NOT IN ('x')",
    "params.lr > '0.05'",
    "params.lr < '0.5'",
    "params.p > 5",
    "params.p = x",
    "params.p = 'x''",
    "tags.t IN ('red','blue')",
    "tags.t NOT IN ('red')",
    "attributes.run_name IN ('a','b')",
    "attributes.run_name NOT IN ('a')",
    "attributes.status IN ('RUNNING')",
    "attributes.start_time IN (100)",
    "attributes.start_time > '5'",
    "attributes.start_time LIKE '5'",
    "attributes.run_name IS NULL",
    "attributes.end_time IS NULL",
    "attributes.lifecycle_stage = 'active'",
    "attributes.experiment_id = '0'",
    "attributes.foo = 'x'",
    "foo.bar = 1",
    "metrics.m > 0 OR params.p = 'x'",
    "datasets.name > 'a'",
    "datasets.foo = 'x'",
]


@pytest.mark.parametrize("filter_string", INVALID_FILTERS)
def test_invalid_filter(fx, filter_string):
    assert_error(fx.search(filter=filter_string), 400, "INVALID_PARAMETER_VALUE")


# ---------------------------------------------------------------- ordering

ORDERS = [
    # metrics: numbers, then NaN, then runs without the metric, in both directions
    (["metrics.m"], "fabdce"),
    (["metrics.m ASC"], "fabdce"),
    (["metrics.m DESC"], "dbafce"),
    (["metrics.m desc"], "dbafce"),
    (["metrics.`m` DESC"], "dbafce"),
    (["metrics.acc"], "afedcb"),
    (["metrics.acc DESC"], "afedcb"),
    # params and tags: bytewise string order, missing last; ties by start_time DESC
    (["params.p"], "fabced"),
    (["params.p DESC"], "cbfaed"),
    (["params.lr"], "baefdc"),
    (["tags.t"], "bceafd"),
    (["tags.t DESC"], "aecbfd"),
    # attributes
    (["attributes.start_time"], "abcdef"),
    (["attributes.start_time ASC"], "abcdef"),
    (["attributes.start_time DESC"], "fedcba"),
    (["start_time DESC"], "fedcba"),
    (["attr.start_time"], "abcdef"),
    (["attributes.created"], "abcdef"),
    (["attributes.run_name"], "abcdef"),
    (["attributes.run_name DESC"], "fedcba"),
    (["run_name"], "abcdef"),
    (["attributes.status"], "dbfeca"),
    (["attributes.status DESC"], "fecabd"),
    (["attributes.end_time"], "bdfeca"),
    (["attributes.end_time DESC"], "dbfeca"),
    (["attributes.user_id"], "fedcba"),
    # several keys
    (["params.p DESC", "metrics.m ASC"], "cbfade"),
    (["tags.grp", "attributes.start_time DESC"], "fabedc"),
    (["tags.grp", "attributes.start_time"], "afbcde"),
    (["tags.t", "params.t"], "bceafd"),
]


@pytest.mark.parametrize("order_by,expected", ORDERS)
def test_order_by(fx, order_by, expected):
    assert fx.names_of(fx.search(order_by=order_by)) == expected


def test_order_by_with_filter(fx):
    assert fx.names_of(fx.search(filter="params.p IS NOT NULL", order_by=["metrics.m DESC"])) == "bafc"


def test_ties_are_broken_by_run_id(api):
    eid = new_experiment(api, "ties")
    ids = [new_run(api, eid, start_time=5) for _ in range(5)]
    got = [r["info"]["run_id"] for r in ok(search_runs(api, [eid]))["runs"]]
    assert got == sorted(ids)
    got = [r["info"]["run_id"] for r in ok(search_runs(api, [eid], order_by=["params.none"]))["runs"]]
    assert got == sorted(ids)


@pytest.mark.parametrize("order_by", [["foo.bar"], ["metrics.m UP"], ["attributes.experiment_id"], ["attributes.nope"]])
def test_invalid_order_by(fx, order_by):
    assert_error(fx.search(order_by=order_by), 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("order_by", [["metrics.x", "metrics.x"], ["params.a", "params.a DESC"],
                                      ["attributes.start_time", "start_time DESC"]])
def test_duplicate_order_by_field(fx, order_by, server):
    r = fx.search(order_by=order_by)
    if server.is_mlflow:
        # MLflow raises an untyped exception here and answers 500; that is a server bug, not a contract.
        assert r.status_code == 500
    else:
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")


# ---------------------------------------------------------------- pagination and limits

def collect_pages(fx, page_size, **body):
    names, token, pages = "", None, 0
    while True:
        extra = {"page_token": token} if token else {}
        resp = ok(fx.search(max_results=page_size, **body, **extra))
        pages += 1
        names += "".join(fx.names[r["info"]["run_id"]] for r in resp.get("runs", []))
        token = resp.get("next_page_token")
        if not token:
            return names, pages
        assert isinstance(token, str) and token
        assert len(resp["runs"]) == page_size


@pytest.mark.parametrize("page_size,pages", [(1, 6), (2, 3), (4, 2), (5, 2), (6, 1), (7, 1)])
def test_pagination(fx, page_size, pages):
    assert collect_pages(fx, page_size, order_by=["attributes.start_time"]) == ("abcdef", pages)


def test_pagination_with_filter_and_metric_order(fx):
    assert collect_pages(fx, 2, filter="params.p IS NOT NULL", order_by=["metrics.m DESC"]) == ("bafc", 2)


@pytest.mark.parametrize("order_by,expected", [(["metrics.m"], "fabdce"), (["metrics.m DESC"], "dbafce"),
                                               (["params.p DESC", "metrics.m ASC"], "cbfade")])
def test_pagination_across_nan_and_missing_values(fx, order_by, expected):
    for size in (1, 2, 4):
        assert collect_pages(fx, size, order_by=order_by)[0] == expected


def test_pagination_default_order(fx):
    assert collect_pages(fx, 4) == (DEFAULT_ORDER, 2)


def test_bad_page_token(fx):
    assert_error(fx.search(page_token="not a token"), 400, "INVALID_PARAMETER_VALUE")


def test_max_results_limits(fx):
    assert fx.names_of(fx.search(max_results=50000)) == DEFAULT_ORDER
    for bad in (50001, 0, -1):
        assert_error(fx.search(max_results=bad), 400, "INVALID_PARAMETER_VALUE")


# ---------------------------------------------------------------- run_view_type

def test_run_view_type(api):
    eid = new_experiment(api, "view-type")
    alive = new_run(api, eid, start_time=2)
    gone = new_run(api, eid, start_time=1)
    ok(api.post("runs/delete", {"run_id": gone}))

    def ids(**body):
        return [r["info"]["run_id"] for r in ok(search_runs(api, [eid], **body)).get("runs", [])]

    assert ids() == [alive]
    assert ids(run_view_type="ACTIVE_ONLY") == [alive]
    assert ids(run_view_type="DELETED_ONLY") == [gone]
    assert ids(run_view_type="ALL") == [alive, gone]
    assert ids(run_view_type="ALL", filter="attributes.start_time = 1") == [gone]


# ---------------------------------------------------------------- through the client

def test_client_search_runs(client, fx):
    runs = client.search_runs([fx.eid], filter_string="metrics.m > 0", order_by=["metrics.m DESC"])
    assert [r.info.run_name for r in runs] == ["d", "b", "a"]
    assert runs.token is None

    page = client.search_runs([fx.eid], order_by=["attributes.start_time ASC"], max_results=4)
    assert [r.info.run_name for r in page] == list("abcd")
    assert page.token
    rest = client.search_runs([fx.eid], order_by=["attributes.start_time ASC"], max_results=4, page_token=page.token)
    assert [r.info.run_name for r in rest] == list("ef")
    assert rest.token is None

    assert [r.info.run_name for r in client.search_runs([fx.eid], run_view_type=ViewType.ALL,
                                                         filter_string="tags.t ILIKE 'r%'")] == ["b", "a"]
    with pytest.raises(MlflowException) as e:
        client.search_runs([fx.eid], filter_string="metrics.m LIKE 'x'")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_fluent_search_runs_as_list(server, client, fx):
    import mlflow
    runs = mlflow.search_runs([fx.eid], filter_string="params.p = 'x'", output_format="list")
    assert sorted(r.info.run_name for r in runs) == ["a", "f"]


# ---------------------------------------------------------------- what filters look at

def test_filters_use_latest_metric_and_current_tags(api):
    eid = new_experiment(api, "search-latest")
    rid = new_run(api, eid, start_time=1)
    ok(api.post("runs/log-batch", {"run_id": rid, "metrics": [metric("m", 10, 1, 0), metric("m", 1, 1, 1)],
                                   "params": kv({"empty": ""}), "tags": kv({"gone": "x", "blank": ""})}))
    ok(api.post("runs/delete-tag", {"run_id": rid, "key": "gone"}))
    ok(api.post("runs/update", {"run_id": rid, "run_name": "renamed"}))

    def count(filter_string):
        return len(ok(search_runs(api, [eid], filter=filter_string)).get("runs", []))

    assert count("metrics.m > 5") == 0  # an older, larger value does not count
    assert count("metrics.m < 5") == 1
    assert count("tags.gone = 'x'") == 0
    assert count("tags.gone IS NULL") == 1
    assert count("params.empty = ''") == 1
    assert count("params.empty LIKE '%'") == 1
    assert count("tags.blank = ''") == 1
    assert count("tags.blank != ''") == 0
    assert count("attributes.run_name = 'renamed'") == 1
    assert count("tags.mlflow.runName = 'renamed'") == 1


def test_quoted_keys_with_spaces_and_symbols(api):
    eid = new_experiment(api, "search-keys")
    rid = new_run(api, eid)
    ok(api.post("runs/log-batch", {"run_id": rid, "metrics": [metric("val loss", 1), metric("a/b", 2), metric("x:y", 3)],
                                   "params": kv({"it": "it's", "q": 'say "hi"', "pct": "50%"}),
                                   "tags": kv({"my key": "v1"})}))

    def count(filter_string):
        return len(ok(search_runs(api, [eid], filter=filter_string)).get("runs", []))

    assert count("metrics.`val loss` < 1.5") == 1
    assert count('metrics."val loss" = 1') == 1
    assert count("metrics.`a/b` = 2") == 1
    assert count("metrics.`x:y` = 3") == 1
    assert count("tags.`my key` = 'v1'") == 1
    assert count('tags."my key" = \'v1\'') == 1
    assert count('params.it = "it\'s"') == 1
    assert count("params.q = 'say \"hi\"'") == 1
    assert count("params.pct = '50%'") == 1
    assert count("params.pct LIKE '50%'") == 1
    assert_error(search_runs(api, [eid], filter="tags.my key = 'v1'"), 400, "INVALID_PARAMETER_VALUE")
