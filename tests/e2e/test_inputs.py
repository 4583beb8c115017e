"""runs/log-inputs (datasets with context tags), dataset search clauses and runs/outputs."""

import pytest

from conftest import Api
from helpers import assert_error, get_run, new_experiment, new_run, ok, search_runs


def dataset(name, digest, source="s3://bucket/data.csv", **extra):
    return {"name": name, "digest": digest, "source_type": "s3", "source": source, **extra}


def dataset_input(ds, context=None, **tags):
    item = {"dataset": ds}
    all_tags = dict(tags)
    if context is not None:
        all_tags["mlflow.data.context"] = context
    if all_tags:
        item["tags"] = [{"key": k, "value": v} for k, v in all_tags.items()]
    return item


def log_inputs(api, rid, *items):
    return ok(api.post("runs/log-inputs", {"run_id": rid, "datasets": list(items)}))


# ---------------------------------------------------------------- log-inputs

def test_log_inputs_shape(api):
    rid = new_run(api, new_experiment(api, "inputs"))
    full = dataset("iris", "abc123", schema='{"mlflow_colspec": []}', profile='{"num_rows": 3}')
    assert log_inputs(api, rid, dataset_input(full, "train")) == {}
    assert log_inputs(api, rid, dataset_input(dataset("wine", "def456"))) == {}
    assert get_run(api, rid)["inputs"] == {"dataset_inputs": [
        {"tags": [{"key": "mlflow.data.context", "value": "train"}], "dataset": full},
        {"dataset": dataset("wine", "def456")},
    ]}


def test_log_inputs_several_at_once_with_extra_tags(api):
    rid = new_run(api, new_experiment(api, "inputs"))
    log_inputs(api, rid, dataset_input(dataset("a", "1"), "train", extra="yes"),
               dataset_input(dataset("b", "2"), "eval"))
    got = get_run(api, rid)["inputs"]["dataset_inputs"]
    assert [(i["dataset"]["name"], {t["key"]: t["value"] for t in i["tags"]}) for i in got] == [
        ("a", {"extra": "yes", "mlflow.data.context": "train"}),
        ("b", {"mlflow.data.context": "eval"}),
    ]


def test_log_inputs_without_datasets(api):
    rid = new_run(api, new_experiment(api, "inputs"))
    assert ok(api.post("runs/log-inputs", {"run_id": rid})) == {}
    assert get_run(api, rid)["inputs"] == {}


def test_relogging_same_dataset_to_a_run_is_a_no_op(api):
    rid = new_run(api, new_experiment(api, "inputs"))
    ds = dataset("iris", "abc")
    log_inputs(api, rid, dataset_input(ds, "train"))
    log_inputs(api, rid, dataset_input(ds, "train"))
    # even with another context, the existing input (and its tags) stays as it was
    log_inputs(api, rid, dataset_input(ds, "eval"))
    assert get_run(api, rid)["inputs"] == {"dataset_inputs": [
        {"tags": [{"key": "mlflow.data.context", "value": "train"}], "dataset": ds}]}


def test_dataset_is_shared_within_an_experiment_by_name_and_digest(api):
    eid = new_experiment(api, "inputs-shared")
    first, second = new_run(api, eid), new_run(api, eid)
    log_inputs(api, first, dataset_input(dataset("iris", "abc", source="first-source"), "train"))
    log_inputs(api, second, dataset_input(dataset("iris", "abc", source="second-source"), "eval"))
    got = get_run(api, second)["inputs"]["dataset_inputs"]
    # the dataset stored first wins; the input tags belong to the run
    assert got == [{"tags": [{"key": "mlflow.data.context", "value": "eval"}],
                    "dataset": dataset("iris", "abc", source="first-source")}]


def test_log_inputs_unknown_run(api):
    r = api.post("runs/log-inputs", {"run_id": "0" * 32, "datasets": [dataset_input(dataset("a", "b"))]})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_log_inputs_requires_run_id(api):
    r = api.post("runs/log-inputs", {"datasets": [dataset_input(dataset("a", "b"))]})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", mentions="run_id")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_log_input_through_client(client, api, tmp_path):
    import pandas as pd

    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    eid = new_experiment(api, "inputs-client")
    rid = new_run(api, eid)
    ds = from_pandas(pd.DataFrame({"x": [1, 2, 3]}), source=str(tmp_path / "frame.csv"), name="frame")
    client.log_inputs(rid, [mlflow.entities.DatasetInput(ds._to_mlflow_entity(), tags=[
        mlflow.entities.InputTag("mlflow.data.context", "training")])])
    run = client.get_run(rid)
    [item] = run.inputs.dataset_inputs
    assert item.dataset.name == "frame"
    assert item.dataset.digest == ds.digest
    assert {t.key: t.value for t in item.tags} == {"mlflow.data.context": "training"}
    found = client.search_runs([eid], filter_string="datasets.context = 'training'")
    assert [r.info.run_id for r in found] == [rid]


# ---------------------------------------------------------------- searching by dataset

@pytest.fixture(scope="module")
def ds_runs(server):
    api = Api(server.url)
    eid = new_experiment(api, "inputs-search")
    ids = {}
    for name, start in [("r1", 3), ("r2", 2), ("r3", 1)]:
        ids[name] = new_run(api, eid, run_name=name, start_time=start)
    log_inputs(api, ids["r1"], dataset_input(dataset("iris", "abc123"), "train"),
               dataset_input(dataset("wine", "def456"), "eval"))
    log_inputs(api, ids["r2"], dataset_input(dataset("iris", "abc123"), "eval"),
               dataset_input(dataset("min", "d0")))
    # r3 has no datasets
    return eid, ids


@pytest.mark.parametrize("filter_string,expected", [
    ("datasets.name = 'iris'", ["r1", "r2"]),
    ("datasets.name != 'iris'", ["r1", "r2"]),  # each has some dataset that is not iris
    ("datasets.name = 'wine'", ["r1"]),
    ("datasets.name LIKE 'i%'", ["r1", "r2"]),
    ("datasets.name LIKE 'I%'", []),
    ("datasets.name ILIKE 'I%'", ["r1", "r2"]),
    ("datasets.name IN ('wine', 'min')", ["r1", "r2"]),
    ("datasets.name IN ('min')", ["r2"]),
    ("datasets.name NOT IN ('iris', 'min')", ["r1"]),
    ("datasets.digest = 'abc123'", ["r1", "r2"]),
    ("datasets.digest IN ('def456')", ["r1"]),
    ("datasets.digest LIKE 'abc%'", ["r1", "r2"]),
    ("datasets.context = 'train'", ["r1"]),
    ("datasets.context = 'eval'", ["r1", "r2"]),
    ("datasets.context IN ('train')", ["r1"]),
    ("datasets.context != 'train'", ["r1", "r2"]),
    ("datasets.context LIKE 'tr%'", ["r1"]),
    ("datasets.`name` = 'iris'", ["r1", "r2"]),
    ("dataset.name = 'min'", ["r2"]),
    ("datasets.name = 'iris' AND datasets.context = 'eval'", ["r1", "r2"]),
    # clauses are matched independently, not against one and the same input
    ("datasets.name = 'wine' AND datasets.context = 'train'", ["r1"]),
    ("datasets.name = 'min' AND datasets.context = 'train'", []),
    ("datasets.name = 'iris' AND attributes.run_name = 'r2'", ["r2"]),
    ("datasets.name = 'nope'", []),
])
def test_dataset_filters(api, ds_runs, filter_string, expected):
    eid, ids = ds_runs
    names = {v: k for k, v in ids.items()}
    got = [names[r["info"]["run_id"]] for r in ok(search_runs(api, [eid], filter=filter_string)).get("runs", [])]
    assert got == expected


@pytest.mark.parametrize("filter_string", ["datasets.name > 'a'", "datasets.foo = 'x'", "datasets.name IS NULL"])
def test_invalid_dataset_filters(api, ds_runs, filter_string):
    assert_error(search_runs(api, [ds_runs[0]], filter=filter_string), 400, "INVALID_PARAMETER_VALUE")


def test_search_results_carry_inputs(api, ds_runs):
    eid, ids = ds_runs
    [run] = ok(search_runs(api, [eid], filter="datasets.name = 'wine'"))["runs"]
    assert [i["dataset"]["name"] for i in run["inputs"]["dataset_inputs"]] == ["iris", "wine"]


# ---------------------------------------------------------------- runs/outputs

def test_log_outputs(api):
    rid = new_run(api, new_experiment(api, "outputs"))
    assert ok(api.post("runs/outputs", {"run_id": rid, "models": [{"model_id": "m-123", "step": 3}]})) == {}
    assert get_run(api, rid)["outputs"] == {"model_outputs": [{"model_id": "m-123", "step": 3}]}


def test_log_outputs_unknown_run(api):
    r = api.post("runs/outputs", {"run_id": "0" * 32, "models": [{"model_id": "m-1", "step": 0}]})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_log_outputs_requires_run_id(api):
    assert_error(api.post("runs/outputs", {"models": []}), 400, "INVALID_PARAMETER_VALUE", mentions="run_id")
