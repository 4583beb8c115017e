"""Durability under SIGKILL.

The contract under test: a 2xx answer means the write is committed and survives
``kill -9`` of the server; ``runs/log-batch`` is all-or-nothing.

Client threads log recognisable batches (every metric, param and tag key names its
batch, every value is distinct) while the server is killed with SIGKILL at random
moments.  After every restart on the same store, every acknowledged write must be
there exactly, and every batch must be either whole or absent, whatever answer (or
lack of one) the client got.  The state is checked cumulatively: a batch
acknowledged in the first cycle must still be there after the last restart.

The run is driven by a seeded generator; the seed is printed and is part of every
failure message.  Replay one with ``KILN_E2E_SEED=<seed>``.
"""

import math
import os
import random
import signal
import struct
import threading
import time
from dataclasses import dataclass, field

import requests

from conftest import unique

API = "/api/2.0/mlflow"
REQUEST_TIMEOUT = 15


def kill_cycles(server):
    """How many SIGKILL/restart cycles to run, and the wall-clock budget for them."""
    if server.is_mlflow:
        # `mlflow server` takes tens of seconds to come back up; two cycles are enough
        # to check the test against the reference without taking many minutes.
        return 2, 300.0
    return 15, 45.0


def kill_delay(server, rng):
    """Seconds between starting the writers and the SIGKILL."""
    if server.is_mlflow:
        # A freshly started MLflow answers its first requests slowly; a longer window
        # makes sure some batches are acknowledged before the kill.
        return rng.uniform(1.5, 4.0)
    return rng.uniform(0.05, 0.5)


# ---------------------------------------------------------------------------
# Killing the process that owns the store


def _children(pid):
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(x) for x in f.read().split())
    except OSError:
        pass
    return kids


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def hard_kill(srv):
    """SIGKILL the process that serves requests and writes the store."""
    if srv.is_mlflow:
        # `mlflow server` is a launcher: requests are served, and the store written, by
        # its uvicorn child.  SIGKILL that one; the launcher then exits by itself and
        # its job runner follows within a second.
        workers = [pid for pid in _children(srv.proc.pid) if "uvicorn" in _cmdline(pid)]
        assert workers, f"no uvicorn child under mlflow server pid {srv.proc.pid}"
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        try:
            srv.proc.wait(timeout=60)
        except Exception:
            srv.kill()
    else:
        srv.kill()
    assert srv.proc.poll() is not None, "server still running after SIGKILL"


# ---------------------------------------------------------------------------
# What the client sent, and what it was told


@dataclass
class Batch:
    seq: int
    run_id: str
    metrics: list  # dicts: key, value, timestamp, step
    params: list  # dicts: key, value
    tags: list  # dicts: key, value
    outcome: str = "unsent"  # "ack", "http <status>", "no answer: <exception>"

    @property
    def acked(self):
        return self.outcome == "ack"

    def keys(self):
        return len(self.metrics) + len(self.params) + len(self.tags)


@dataclass
class Solo:
    """A single runs/log-parameter call."""
    run_id: str
    key: str
    value: str
    outcome: str = "unsent"


@dataclass
class RunCreate:
    name: str
    cycle: int
    outcome: str = "unsent"
    run_id: str | None = None


@dataclass
class Ledger:
    seed: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    batches: list = field(default_factory=list)
    solos: list = field(default_factory=list)
    creates: list = field(default_factory=list)
    unexpected_errors: list = field(default_factory=list)

    def add(self, kind, item):
        with self.lock:
            getattr(self, kind).append(item)


def outcome_of(call):
    """Send a request; return (outcome, response or None)."""
    try:
        r = call()
    except requests.RequestException as e:
        return f"no answer: {type(e).__name__}", None
    if 200 <= r.status_code < 300:
        return "ack", r
    return f"http {r.status_code}: {r.text[:200]}", r


def make_batch(rng, seq, run_id, tno):
    prefix = f"w{tno}.b{seq:06d}"
    n_metrics = rng.randint(50, 200)
    base_ts = 1_700_000_000_000 + seq * 10_000
    metrics = []
    for j in range(n_metrics):
        # Values with at most 15 significant digits, which any correct decimal reader
        # gets exactly; full 17-digit doubles have their own test below, so that a
        # precision bug does not hide a durability bug (or the other way round).
        kind = j % 3
        if kind == 0:
            value = rng.randint(-(10**10), 10**10) / 16
        elif kind == 1:
            value = float(rng.randint(-(10**12), 10**12))
        else:
            value = rng.randint(-(10**6), 10**6) / 1e6
        metrics.append({
            "key": f"{prefix}.m{j:03d}",
            "value": value,
            "timestamp": base_ts + j,
            "step": seq * 1000 + rng.randint(0, 999),
        })
    params = [{"key": f"{prefix}.p{i}", "value": f"p-{seq}-{i}-{rng.getrandbits(48):012x}"}
              for i in range(rng.randint(1, 5))]
    tags = [{"key": f"{prefix}.t{i}", "value": f"t-{seq}-{i}-{rng.getrandbits(48):012x}"}
            for i in range(rng.randint(1, 5))]
    return Batch(seq, run_id, metrics, params, tags)


def writer(base, ledger, experiment_id, cycle, tno, rng, seq_source, stop):
    http = requests.Session()
    create = RunCreate(name=f"dur-c{cycle:02d}-w{tno}", cycle=cycle)
    ledger.add("creates", create)
    create.outcome, r = outcome_of(lambda: http.post(
        f"{base}{API}/runs/create",
        json={"experiment_id": experiment_id, "run_name": create.name, "start_time": 1_700_000_000_000},
        timeout=REQUEST_TIMEOUT))
    if create.outcome != "ack":
        if r is not None:
            ledger.add("unexpected_errors", f"runs/create {create.name}: {create.outcome}")
        return
    create.run_id = r.json()["run"]["info"]["run_id"]
    while not stop.is_set():
        seq = next(seq_source)
        batch = make_batch(rng, seq, create.run_id, tno)
        ledger.add("batches", batch)
        batch.outcome, r = outcome_of(lambda: http.post(
            f"{base}{API}/runs/log-batch",
            json={"run_id": batch.run_id, "metrics": batch.metrics, "params": batch.params,
                  "tags": batch.tags},
            timeout=REQUEST_TIMEOUT))
        if r is None:
            return  # the server is gone
        if not batch.acked:
            ledger.add("unexpected_errors", f"log-batch seq={seq}: {batch.outcome}")
        if rng.random() < 0.3:
            solo = Solo(create.run_id, f"w{tno}.b{seq:06d}.solo", f"s-{seq}-{rng.getrandbits(32):08x}")
            ledger.add("solos", solo)
            solo.outcome, r = outcome_of(lambda: http.post(
                f"{base}{API}/runs/log-parameter",
                json={"run_id": solo.run_id, "key": solo.key, "value": solo.value},
                timeout=REQUEST_TIMEOUT))
            if r is None:
                return
            if solo.outcome != "ack":
                ledger.add("unexpected_errors", f"log-parameter {solo.key}: {solo.outcome}")


class SeqSource:
    """Batch numbers shared by all writers of a test, never reused."""

    def __init__(self):
        self._lock = threading.Lock()
        self._next = 0

    def __next__(self):
        with self._lock:
            self._next += 1
            return self._next


# ---------------------------------------------------------------------------
# Checking the store against the ledger


def search_runs(http, base, experiment_id):
    runs, token = [], None
    for _ in range(100):
        body = {"experiment_ids": [experiment_id], "max_results": 1000, "run_view_type": "ALL"}
        if token:
            body["page_token"] = token
        r = http.post(f"{base}{API}/runs/search", json=body, timeout=60)
        assert r.status_code == 200, r.text
        page = r.json()
        runs.extend(page.get("runs", []))
        token = page.get("next_page_token")
        if not token:
            return runs
    raise AssertionError("runs/search did not stop paginating")


def verify(base, ledger, experiment_id, rng, when, is_mlflow):
    ctx = f"[seed={ledger.seed}, {when}]"
    http = requests.Session()
    if is_mlflow:
        # MLflow's SQL store commits a log-batch in separate transactions (params, then
        # metrics, then tags: SqlAlchemyStore.log_batch calls _log_params, _log_metrics
        # and _set_tags, each with its own session), so a SIGKILL between them leaves a
        # batch with, e.g., its metrics but not its tags.  MLflow is only held to each
        # group being whole; Kiln is held to the whole batch.
        batch_atomic = False
    else:
        batch_atomic = True

    # Runs: an acknowledged runs/create exists; nothing exists that was never asked for;
    # no name was created twice.
    found = search_runs(http, base, experiment_id)
    by_name = {}
    for run in found:
        by_name.setdefault(run["info"].get("run_name"), []).append(run["info"]["run_id"])
    issued = {c.name: c for c in ledger.creates}
    for name, ids in by_name.items():
        assert name in issued, f"{ctx} run {name!r} {ids} was never requested"
        assert len(ids) == 1, f"{ctx} run {name!r} exists {len(ids)} times: {ids}"
    for c in ledger.creates:
        if c.outcome == "ack":
            assert by_name.get(c.name) == [c.run_id], \
                f"{ctx} acknowledged runs/create {c.name} ({c.run_id}) is missing after restart"

    # Batches, by run.
    batches_by_run, solos_by_run = {}, {}
    for b in ledger.batches:
        batches_by_run.setdefault(b.run_id, []).append(b)
    for s in ledger.solos:
        solos_by_run.setdefault(s.run_id, []).append(s)

    for run_id in sorted(set(batches_by_run) | set(solos_by_run)):
        r = http.get(f"{base}{API}/runs/get", params={"run_id": run_id}, timeout=60)
        assert r.status_code == 200, f"{ctx} runs/get {run_id}: {r.status_code} {r.text[:300]}"
        data = r.json()["run"].get("data", {})
        metrics = {m["key"]: m for m in data.get("metrics", [])}
        params = {p["key"]: p["value"] for p in data.get("params", [])}
        tags = {t["key"]: t["value"] for t in data.get("tags", [])}

        expected_keys = set()
        for b in batches_by_run.get(run_id, []):
            present, wrong = {}, []
            for kind, items, stored in (("metric", b.metrics, metrics), ("param", b.params, params),
                                        ("tag", b.tags, tags)):
                present[kind] = 0
                for item in items:
                    expected_keys.add(item["key"])
                    got = stored.get(item["key"])
                    if got is None:
                        continue
                    present[kind] += 1
                    if kind == "metric":
                        same = (got.get("value"), int(got.get("timestamp", 0)), int(got.get("step", 0))) \
                            == (item["value"], item["timestamp"], item["step"])
                    else:
                        same = got == item["value"]
                    if not same:
                        wrong.append(f"{kind} {item['key']}: sent {item}, stored {got!r}")
            assert not wrong, f"{ctx} batch {b.seq} ({b.outcome}) stored wrong values: {wrong[:5]}"
            total = {"metric": len(b.metrics), "param": len(b.params), "tag": len(b.tags)}
            counts = ", ".join(f"{present[k]}/{total[k]} {k}s" for k in total)
            if b.acked:
                assert present == total, (
                    f"{ctx} acknowledged batch {b.seq} on run {run_id} lost data: {counts} present")
            elif batch_atomic:
                assert sum(present.values()) in (0, b.keys()), (
                    f"{ctx} batch {b.seq} ({b.outcome}) is half there: {counts} present")
            else:
                assert all(present[k] in (0, total[k]) for k in total), (
                    f"{ctx} batch {b.seq} ({b.outcome}) has a partial group: {counts} present")

        for s in solos_by_run.get(run_id, []):
            expected_keys.add(s.key)
            if s.outcome == "ack":
                assert params.get(s.key) == s.value, (
                    f"{ctx} acknowledged param {s.key}={s.value!r} on run {run_id} "
                    f"is {params.get(s.key)!r} after restart")
            elif s.key in params:
                assert params[s.key] == s.value, f"{ctx} param {s.key} stored as {params[s.key]!r}"

        ours = [k for k in list(metrics) + list(params) + list(tags) if k.startswith("w")]
        phantom = sorted(set(ours) - expected_keys)
        assert not phantom, f"{ctx} run {run_id} holds keys nobody wrote: {phantom[:10]}"

    # The full history of a sample of metrics: each key was logged once, so it has
    # exactly one point if its batch is there, none otherwise.
    sample = [b for b in ledger.batches if b.outcome != "unsent"]
    for b in rng.sample(sample, min(len(sample), 12)):
        m = rng.choice(b.metrics)
        r = http.get(f"{base}{API}/metrics/get-history",
                     params={"run_id": b.run_id, "metric_key": m["key"]}, timeout=60)
        assert r.status_code == 200, f"{ctx} get-history {m['key']}: {r.status_code} {r.text[:300]}"
        points = [(p["value"], int(p["timestamp"]), int(p.get("step", 0)))
                  for p in r.json().get("metrics", [])]
        if b.acked:
            assert points == [(m["value"], m["timestamp"], m["step"])], \
                f"{ctx} history of acknowledged {m['key']}: {points}"
        else:
            assert points in ([], [(m["value"], m["timestamp"], m["step"])]), \
                f"{ctx} history of {m['key']} (batch {b.outcome}): {points}"


# ---------------------------------------------------------------------------


def test_acknowledged_writes_survive_sigkill(fresh_server):
    srv = fresh_server
    seed = int(os.environ.get("KILN_E2E_SEED") or random.SystemRandom().randrange(2**32))
    print(f"durability seed={seed} target={srv.target}")
    rng = random.Random(seed)
    ledger = Ledger(seed)
    cycles, budget = kill_cycles(srv)

    srv.start()
    r = requests.post(f"{srv.url}{API}/experiments/create", json={"name": unique("durability")},
                      timeout=60)
    assert r.status_code == 200, r.text
    experiment_id = r.json()["experiment_id"]

    seq_source = SeqSource()
    started = time.monotonic()
    done = 0
    for cycle in range(cycles):
        if cycle and time.monotonic() - started > budget:
            break
        n_threads = rng.randint(1, 4)
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=writer,
                args=(srv.url, ledger, experiment_id, cycle, tno,
                      random.Random(rng.getrandbits(64)), seq_source, stop),
                daemon=True)
            for tno in range(n_threads)
        ]
        for t in threads:
            t.start()
        time.sleep(kill_delay(srv, rng))
        hard_kill(srv)
        stop.set()
        for t in threads:
            t.join(timeout=REQUEST_TIMEOUT + 5)
        assert not any(t.is_alive() for t in threads), f"[seed={seed}] a writer hung after the kill"

        # Same backend URI, same data folder, same port.  The next cycle's writers
        # start against this freshly restarted process.
        srv.start()
        verify(srv.url, ledger, experiment_id, rng, f"after kill {cycle + 1} of {cycles}", srv.is_mlflow)
        done += 1
    srv.stop()

    acked = sum(b.acked for b in ledger.batches)
    cut = sum(b.outcome.startswith("no answer") for b in ledger.batches)
    print(f"durability seed={seed}: {done} kill cycles, {len(ledger.batches)} batches, "
          f"{acked} acknowledged, {cut} cut off by the kill, "
          f"{sum(s.outcome == 'ack' for s in ledger.solos)} acknowledged single params")

    assert done >= min(cycles, 3), f"[seed={seed}] only {done} kill cycles ran in the time budget"
    assert acked > 0, f"[seed={seed}] no batch was ever acknowledged; nothing was tested"
    assert not ledger.unexpected_errors, (
        f"[seed={seed}] valid requests were answered with errors while the server was up: "
        f"{ledger.unexpected_errors[:5]}")


def random_double(rng):
    """A finite double drawn from all bit patterns: any exponent, any 52-bit mantissa."""
    while True:
        x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if math.isfinite(x) and x != 0.0:
            return x


def test_metric_values_are_stored_bit_exact(server):
    """A metric comes back with the very double, timestamp and step that were sent."""
    seed = int(os.environ.get("KILN_E2E_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    ctx = f"[seed={seed}]"
    http = requests.Session()
    base = f"{server.url}{API}"
    r = http.post(f"{base}/experiments/create", json={"name": unique("bit-exact")}, timeout=60)
    assert r.status_code == 200, r.text
    r = http.post(f"{base}/runs/create", json={"experiment_id": r.json()["experiment_id"]}, timeout=60)
    assert r.status_code == 200, r.text
    run_id = r.json()["run"]["info"]["run_id"]

    values = [0.1, 1 / 3, 2 / 3, 0.12211025850028055, 7503992047652097.0, 2.0**53 - 1, 2.0**53 + 2,
              1.7976931348623157e308, 2.2250738585072014e-308, 5e-324, -1.0000000000000002]
    values += [rng.uniform(-1e9, 1e9) for _ in range(100)] + [random_double(rng) for _ in range(100)]
    metrics = [{"key": f"exact.m{j:03d}", "value": v,
                "timestamp": rng.choice([0, 2**63 - 1, rng.randint(0, 2**62)]),
                "step": rng.choice([0, 2**63 - 1, -(2**63), rng.randint(-(2**62), 2**62)])}
               for j, v in enumerate(values)]
    r = http.post(f"{base}/runs/log-batch", json={"run_id": run_id, "metrics": metrics}, timeout=60)
    assert r.status_code == 200, f"{ctx} {r.text[:300]}"

    r = http.get(f"{base}/runs/get", params={"run_id": run_id}, timeout=60)
    assert r.status_code == 200, r.text
    stored = {m["key"]: (m["value"], int(m["timestamp"]), int(m["step"])) for m in r.json()["run"]["data"]["metrics"]}
    wrong = [f"{m['key']}: sent {m['value']!r}@{m['timestamp']}/{m['step']}, got {stored.get(m['key'])}"
             for m in metrics if stored.get(m["key"]) != (m["value"], m["timestamp"], m["step"])]
    assert not wrong, f"{ctx} {len(wrong)} of {len(metrics)} metrics changed: {wrong[:6]}"

    for m in rng.sample(metrics, 10):
        r = http.get(f"{base}/metrics/get-history", params={"run_id": run_id, "metric_key": m["key"]},
                     timeout=60)
        assert r.status_code == 200, r.text
        points = [(p["value"], int(p["timestamp"]), int(p["step"])) for p in r.json().get("metrics", [])]
        assert points == [(m["value"], m["timestamp"], m["step"])], f"{ctx} history of {m['key']}: {points}"
