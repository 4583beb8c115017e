"""experiments/search: filters, order_by, view_type, pagination and limits."""

import shutil
import tempfile
import time
import uuid

import pytest
from mlflow.entities import ViewType

from conftest import Api, Server
from helpers import assert_error, kv, ok

NAMES = ["alpha", "Beta", "gamma", "delta"]  # created in this order; delta is deleted


class Fixture:
    def __init__(self, api):
        self.api = api
        # Digits only: the name filters below match letters case-insensitively, and a random
        # hex prefix would sometimes contain them.
        self.prefix = f"sx-{uuid.uuid4().int % 10**12:012d}-"
        tags = {"alpha": {"k": "1", "team": "x"}, "Beta": {"k": "2"}, "gamma": {}, "delta": {"team": "y"}}
        self.ids = {}
        for name in NAMES:
            # distinct creation_time milliseconds, so time orderings have no ties
            time.sleep(0.003)
            body = {"name": self.prefix + name, "tags": kv(tags[name])}
            self.ids[name] = ok(api.post("experiments/create", body))["experiment_id"]
        ok(api.post("experiments/delete", {"experiment_id": self.ids["delta"]}))
        self.names = {v: k for k, v in self.ids.items()}

    def search(self, filter=None, **body):
        """Search within this fixture's experiments (the extra clause scopes it)."""
        scoped = f"name LIKE '{self.prefix}%'" + (f" AND {filter}" if filter else "")
        body.setdefault("max_results", 1000)
        return self.api.post("experiments/search", {"filter": scoped, **body})

    def names_of(self, resp):
        return [self.names[e["experiment_id"]] for e in ok(resp).get("experiments", [])]


@pytest.fixture(scope="module")
def fx(server):
    return Fixture(Api(server.url))


# ---------------------------------------------------------------- a new store

@pytest.fixture(scope="module")
def empty_server(target):
    workdir = tempfile.mkdtemp(prefix=f"kiln-e2e-{target}-")
    srv = Server(target, workdir)
    srv.start()
    yield srv
    srv.close()
    shutil.rmtree(workdir, ignore_errors=True)


def test_new_store_has_only_default(empty_server):
    api = Api(empty_server.url)
    body = ok(api.post("experiments/search", {"max_results": 1000}))
    assert set(body) == {"experiments"}
    [exp] = body["experiments"]
    assert (exp["experiment_id"], exp["name"], exp["lifecycle_stage"]) == ("0", "Default", "active")
    assert exp["artifact_location"] == "mlflow-artifacts:/0"
    assert "tags" not in exp
    assert ok(api.post("experiments/search", {"max_results": 10, "view_type": "DELETED_ONLY"})) == {}
    assert ok(api.post("runs/search", {"experiment_ids": ["0"], "max_results": 10})) == {}


def test_new_store_ids_and_default_deletion(empty_server):
    api = Api(empty_server.url)
    first = ok(api.post("experiments/create", {"name": "first"}))["experiment_id"]
    assert first == "1"
    # the Default experiment can be deleted and restored like any other
    ok(api.post("experiments/delete", {"experiment_id": "0"}))
    body = ok(api.post("experiments/search", {"max_results": 10, "view_type": "ALL"}))
    assert [(e["experiment_id"], e["lifecycle_stage"]) for e in body["experiments"]] == [("1", "active"),
                                                                                        ("0", "deleted")]
    body = ok(api.post("experiments/search", {"max_results": 10}))
    assert [e["experiment_id"] for e in body["experiments"]] == ["1"]
    ok(api.post("experiments/restore", {"experiment_id": "0"}))
    assert ok(api.get("experiments/get", {"experiment_id": "0"}))["experiment"]["lifecycle_stage"] == "active"


# ---------------------------------------------------------------- filters

FILTERS = [
    (None, ["gamma", "Beta", "alpha"]),
    ("name != '{p}alpha'", ["gamma", "Beta"]),
    ("name = '{p}alpha'", ["alpha"]),
    ("name = \"{p}alpha\"", ["alpha"]),
    ("name LIKE '%a'", ["gamma", "Beta", "alpha"]),
    ("name LIKE '%ta'", ["Beta"]),
    ("name LIKE '%B%'", ["Beta"]),
    ("name ILIKE '%ETA'", ["Beta"]),
    ("name ILIKE '%A'", ["gamma", "Beta", "alpha"]),
    ("attribute.name = '{p}gamma'", ["gamma"]),
    ("tags.k = '1'", ["alpha"]),
    ("tags.k != '1'", ["Beta"]),
    ("tags.k LIKE '%'", ["Beta", "alpha"]),
    ("tags.team ILIKE 'X'", ["alpha"]),
    ("tags.`team` = 'x'", ["alpha"]),
    ("tag.team = 'x'", ["alpha"]),
    ("tags.k IS NULL", ["gamma"]),
    ("tags.k IS NOT NULL", ["Beta", "alpha"]),
    ("tags.k = '1' AND tags.team = 'x'", ["alpha"]),
    ("tags.k = '2' AND tags.team = 'x'", []),
    ("creation_time > 0", ["gamma", "Beta", "alpha"]),
    ("last_update_time >= 0", ["gamma", "Beta", "alpha"]),
    ("creation_time < 0", []),
    # empty clauses around AND are skipped, as in runs/search
    ("tags.k = '1' AND", ["alpha"]),
    ("tags.k = '1' AND AND tags.team = 'x'", ["alpha"]),
]


@pytest.mark.parametrize("filter_string,expected", FILTERS)
def test_filter(fx, filter_string, expected):
    f = filter_string.format(p=fx.prefix) if filter_string else None
    assert fx.names_of(fx.search(f)) == expected


def test_filter_experiment_id(fx):
    a, b = fx.ids["alpha"], fx.ids["Beta"]
    assert fx.names_of(fx.search(f"experiment_id = '{a}'")) == ["alpha"]
    assert fx.names_of(fx.search(f"experiment_id != '{a}'")) == ["gamma", "Beta"]
    assert fx.names_of(fx.search(f"experiment_id IN ('{a}', '{b}')")) == ["Beta", "alpha"]
    assert fx.names_of(fx.search(f"experiment_id NOT IN ('{a}')")) == ["gamma", "Beta"]


def test_filter_on_creation_time(fx):
    exps = ok(fx.search(view_type="ALL"))["experiments"]
    by_name = {fx.names[e["experiment_id"]]: e for e in exps}
    beta = by_name["Beta"]["creation_time"]
    got = fx.names_of(fx.search(f"creation_time >= {beta}"))
    assert got[-1] == "Beta" and "alpha" not in got


INVALID = [
    "attributes.name LIKE 'x%'",
    "attr.name = 'x'",
    "params.x = '1'",
    "name = alpha",
    "name > 'a'",
    "name IN ('a')",
    "foo = 'x'",
    "lifecycle_stage = 'active'",
    "experiment_id > '1'",
    "creation_time > 'x'",
    "name = 'a' OR name = 'b'",
]


@pytest.mark.parametrize("filter_string", INVALID)
def test_invalid_filter(api, filter_string):
    r = api.post("experiments/search", {"filter": filter_string, "max_results": 10})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


# ---------------------------------------------------------------- view_type

@pytest.mark.parametrize("view_type,expected", [
    ("ACTIVE_ONLY", ["gamma", "Beta", "alpha"]),
    ("DELETED_ONLY", ["delta"]),
    ("ALL", ["delta", "gamma", "Beta", "alpha"]),
    (1, ["gamma", "Beta", "alpha"]),
    (2, ["delta"]),
    (3, ["delta", "gamma", "Beta", "alpha"]),
])
def test_view_type(fx, view_type, expected):
    assert fx.names_of(fx.search(view_type=view_type)) == expected


# ---------------------------------------------------------------- order_by

@pytest.mark.parametrize("order_by,expected", [
    (["name"], ["Beta", "alpha", "gamma"]),  # bytewise: upper case first
    (["name ASC"], ["Beta", "alpha", "gamma"]),
    (["name DESC"], ["gamma", "alpha", "Beta"]),
    (["attribute.name DESC"], ["gamma", "alpha", "Beta"]),
    (["experiment_id"], ["alpha", "Beta", "gamma"]),
    (["experiment_id DESC"], ["gamma", "Beta", "alpha"]),
    (["creation_time"], ["alpha", "Beta", "gamma"]),
    (["creation_time DESC"], ["gamma", "Beta", "alpha"]),
    (["last_update_time DESC"], ["gamma", "Beta", "alpha"]),
])
def test_order_by(fx, order_by, expected):
    assert fx.names_of(fx.search(order_by=order_by)) == expected


@pytest.mark.parametrize("order_by", [["tags.k"], ["foo"], ["attributes.name"], ["name UP"]])
def test_invalid_order_by(fx, order_by):
    assert_error(fx.search(order_by=order_by), 400, "INVALID_PARAMETER_VALUE")


def test_experiment_ids_increase_with_creation(fx):
    ids = [int(fx.ids[n]) for n in NAMES]
    assert ids == sorted(ids)


# ---------------------------------------------------------------- pagination and limits

@pytest.mark.parametrize("page_size,pages", [(1, 4), (2, 2), (3, 2), (4, 1), (5, 1)])
def test_pagination(fx, page_size, pages):
    seen, token, count = [], None, 0
    while True:
        extra = {"page_token": token} if token else {}
        body = ok(fx.search(order_by=["name"], view_type="ALL", max_results=page_size, **extra))
        count += 1
        seen += [fx.names[e["experiment_id"]] for e in body.get("experiments", [])]
        token = body.get("next_page_token")
        if not token:
            break
        assert len(body["experiments"]) == page_size
    assert seen == ["Beta", "alpha", "delta", "gamma"]
    assert count == pages


def test_bad_page_token(fx):
    assert_error(fx.search(page_token="not a token"), 400, "INVALID_PARAMETER_VALUE")


def test_max_results_limits(fx):
    # There is no 1000 cap for experiments; the ceiling is 50000.
    assert fx.names_of(fx.search(max_results=1001)) == ["gamma", "Beta", "alpha"]
    assert fx.names_of(fx.search(max_results=50000)) == ["gamma", "Beta", "alpha"]
    for bad in (50001, 0, -1):
        assert_error(fx.search(max_results=bad), 400, "INVALID_PARAMETER_VALUE", mentions="max_results")


def test_search_with_get_and_query_parameters(fx):
    r = fx.api.get("experiments/search", {"filter": f"name LIKE '{fx.prefix}%'", "max_results": 2,
                                          "order_by": ["name DESC"], "view_type": "ALL"})
    body = ok(r)
    assert [fx.names[e["experiment_id"]] for e in body["experiments"]] == ["gamma", "delta"]
    assert body["next_page_token"]


def test_results_carry_tags(fx):
    exps = ok(fx.search("tags.k = '1'"))["experiments"]
    assert {t["key"]: t["value"] for t in exps[0]["tags"]} == {"k": "1", "team": "x"}
    assert exps[0]["name"] == fx.prefix + "alpha"


# ---------------------------------------------------------------- through the client

def test_client_search_experiments(client, fx):
    got = client.search_experiments(filter_string=f"name LIKE '{fx.prefix}%'", order_by=["name ASC"])
    assert [e.name[len(fx.prefix):] for e in got] == ["Beta", "alpha", "gamma"]
    got = client.search_experiments(view_type=ViewType.DELETED_ONLY, filter_string=f"name LIKE '{fx.prefix}%'")
    assert [e.experiment_id for e in got] == [fx.ids["delta"]]
    page = client.search_experiments(filter_string=f"name LIKE '{fx.prefix}%'", max_results=2, order_by=["name"])
    assert len(page) == 2 and page.token
    rest = client.search_experiments(filter_string=f"name LIKE '{fx.prefix}%'", max_results=2, order_by=["name"],
                                     page_token=page.token)
    assert [e.name[len(fx.prefix):] for e in rest] == ["gamma"]
    assert rest.token is None
