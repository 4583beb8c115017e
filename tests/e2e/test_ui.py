"""The web UI served at ``/``, driven in headless Chromium by Selenium.

Kiln only: mlflow server serves a UI of its own, not this one. CI runs this module on its own
(``pytest tests/e2e/test_ui.py --target kiln``) and leaves it out of the other runs with --ignore.

Needs Debian's ``chromium`` and ``chromium-driver`` (/usr/bin/chromium, /usr/bin/chromedriver) and
``selenium`` from tests/e2e/requirements.txt; Selenium is told where both are and to stay offline,
so it never downloads a browser or a driver.

The data is logged through the real mlflow client (runs with params, metric histories, tags and
artifacts, a deleted run, a registered scikit-learn model with an alias); the performance cases
seed 10,000 runs and a 1,000,000-point metric over raw REST. Every page is checked for SEVERE
console entries (errors, uncaught exceptions, failed requests) but the ones a test provokes.
Screenshots of the main pages go to $KILN_UI_SCREENSHOTS (default
/var/tmp/kiln-ui-screenshots/<timestamp>); the folder is printed at the start of the session.
"""

import base64
import datetime
import io
import json
import math
import os
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from conftest import unique


@pytest.fixture(scope="session", autouse=True)
def kiln_only(target):
    assert target != "mlflow", (
        "tests/e2e/test_ui.py tests Kiln's own web UI, which mlflow server does not serve: run it with "
        "--target kiln (or kiln-postgres), and leave it out of the mlflow run with --ignore tests/e2e/test_ui.py")


CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 15  # seconds any page gets to show what a test waits for

# Records every chart KilnChart.create makes on its container (container.kilnChart), so tests can
# call chart.drawnPoints(); installed before any script of the page runs.
CHART_HOOK = """
(() => {
  let real;
  Object.defineProperty(window, "KilnChart", {
    configurable: true,
    get() { return real; },
    set(value) {
      const create = value.create;
      value.create = function (container, options) {
        const chart = create.call(this, container, options);
        container.kilnChart = chart;
        return chart;
      };
      real = value;
    },
  });
})();
"""

# Pixels of a canvas (or of the chart canvas inside a container): how many differ from the
# top-left pixel (the background), that pixel, and a hash of the whole image.
INK = """
const el = arguments[0];
const canvas = el.tagName === "CANVAS" ? el : el.querySelector("canvas.kiln-chart-canvas");
if (!canvas || !canvas.width || !canvas.height) return null;
const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
const bg = [data[0], data[1], data[2], data[3]];
let ink = 0, hash = 0;
for (let i = 0; i < data.length; i += 4) {
  if (data[i] !== bg[0] || data[i + 1] !== bg[1] || data[i + 2] !== bg[2] || data[i + 3] !== bg[3]) ink++;
  hash = (Math.imul(hash, 31) + data[i] + 3 * data[i + 1] + 7 * data[i + 2] + 11 * data[i + 3]) | 0;
}
return { width: canvas.width, height: canvas.height, ink, total: canvas.width * canvas.height, bg, hash };
"""

# Milliseconds from setting location.hash (from another route) until `selector` matches.
TIME_ROUTE = """
const [hash, selector, limit, done] = arguments;
(async () => {
  const t0 = performance.now();
  location.hash = hash;
  while (!document.querySelector(selector)) {
    if (performance.now() - t0 > limit) { done(-1); return; }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  done(performance.now() - t0);
})();
"""

# Milliseconds from clicking `button` until `selector` matches.
TIME_CLICK = """
const [button, selector, limit, done] = arguments;
(async () => {
  const t0 = performance.now();
  button.click();
  while (!document.querySelector(selector)) {
    if (performance.now() - t0 > limit) { done(-1); return; }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  done(performance.now() - t0);
})();
"""

RUNS_TABLE = """
const table = document.querySelector("#runs");
if (!table) return null;
return {
  heads: [...table.querySelectorAll("thead th")].map((th) => th.textContent.replace(/ [\u25b2\u25bc]$/, "").trim()),
  sorts: [...table.querySelectorAll("thead th")].map((th) => th.getAttribute("aria-sort")),
  rows: [...table.querySelectorAll("tbody tr")].map((tr) => ({
    id: tr.dataset.runId,
    deleted: tr.classList.contains("deleted"),
    cells: [...tr.querySelectorAll("td")].map((td) => td.textContent.trim()),
  })),
};
"""


# ---------------------------------------------------------------------------
# The browser


@pytest.fixture(scope="session")
def announce(request):
    """Prints a line to the terminal even while pytest captures the output (so CI logs show it)."""
    capman = request.config.pluginmanager.getplugin("capturemanager")

    def say(text):
        with capman.global_and_fixture_disabled():
            print(text, file=sys.__stderr__, flush=True)
    return say


@pytest.fixture(scope="session")
def screenshot_dir(announce):
    folder = os.environ.get("KILN_UI_SCREENSHOTS") or os.path.join(
        "/var/tmp/kiln-ui-screenshots", datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    os.makedirs(folder, exist_ok=True)
    announce(f"\nUI screenshots: {folder}")
    return folder


class Browser:
    def __init__(self, driver, base, shots):
        self.driver = driver
        self.base = base
        self.shots = shots
        self.allowed = []  # patterns of SEVERE console messages the running test provokes

    # -- navigation and waiting

    def open(self, route, ready):
        """Loads the UI afresh at `route` (a hash route) and waits for the CSS selector `ready`."""
        # From another document, so the page loads anew even when only the hash would change.
        self.driver.get("about:blank")
        self.driver.get(f"{self.base}/#{route}")
        return self.wait_for(ready)

    def wait(self, condition, what, timeout=WAIT):
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(
                lambda d: condition())
        except Exception as e:
            if type(e).__name__ != "TimeoutException":
                raise
            main = self.js("return document.getElementById('main')?.innerText.slice(0, 1500)")
            pytest.fail(f"timed out after {timeout}s waiting for {what}; at {self.driver.current_url}, the page shows:\n"
                        f"{main}\nconsole: {self.driver.get_log('browser')}")

    def wait_for(self, selector, timeout=WAIT):
        from selenium.webdriver.common.by import By

        def found():
            els = self.driver.find_elements(By.CSS_SELECTOR, selector)
            return els[0] if els else None
        return self.wait(found, f"`{selector}`", timeout)

    def find(self, selector):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def finds(self, selector):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def xpath(self, path):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.XPATH, path)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def js_async(self, script, *args):
        return self.driver.execute_async_script(script, *args)

    def route(self):
        return urlsplit(self.driver.current_url).fragment

    # -- what a page shows

    def ink(self, element):
        return self.js(INK, element)

    def assert_drawn(self, element, what, min_ink=400):
        """The canvas (or the chart in the container) has a good number of non-background pixels."""
        ink = self.ink(element)
        assert ink, f"{what}: no canvas, or a canvas of size 0"
        assert ink["ink"] >= min_ink and ink["ink"] >= ink["total"] * 0.003, f"{what} looks blank: {ink}"
        return ink

    def chart(self, selector):
        """The chart box `selector` once it has rendered, and its drawnPoints()."""
        box = self.wait(lambda: self.js(f"const b = document.querySelector({json.dumps(selector)}); "
                                        "return b && b.dataset.rendered === '1' && b.kilnChart ? b : null"),
                        f"chart {selector} to render")
        return box, self.js("return arguments[0].kilnChart.drawnPoints()", box)

    def runs_table(self):
        return self.js(RUNS_TABLE)

    def no_horizontal_overflow(self, what):
        widths = self.js("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], f"{what}: the page scrolls sideways ({widths[0]}px of content in {widths[1]}px)"

    # -- console

    def allow_console(self, pattern):
        self.allowed.append(re.compile(pattern))

    def check_console(self, where):
        """Fails on any SEVERE console entry since the last check but the allowed ones."""
        entries = self.driver.get_log("browser")
        severe = [e for e in entries if e["level"] == "SEVERE"
                  and not any(p.search(e["message"]) for p in self.allowed)]
        assert not severe, f"SEVERE console entries on {where}:\n" + "\n".join(e["message"] for e in severe)

    # -- screenshots

    def screenshot(self, name):
        """A PNG of the whole page (not only the window) in the screenshot folder."""
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": math.ceil(size["width"]), "height": min(math.ceil(size["height"]), 8000),
                "scale": 1}
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot",
                                           {"format": "png", "captureBeyondViewport": True, "clip": clip})
        path = os.path.join(self.shots, name + ".png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        return path


@pytest.fixture(scope="module")
def driver():
    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager download a browser or a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        assert os.access(path, os.X_OK), f"{path} is missing: apt-get install chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--force-device-scale-factor=1", "--lang=en-US", "--disable-extensions",
                "--no-first-run", "--disable-background-networking"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        drv.set_script_timeout(60)
        drv.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CHART_HOOK})
        yield drv
    finally:
        drv.quit()


@pytest.fixture(scope="module")
def browser_session(driver, server, screenshot_dir):
    b = Browser(driver, server.url, screenshot_dir)
    b.open("/experiments", "h1")
    # Start from the light theme whatever the machine prefers; the theme test switches.
    b.js("localStorage.setItem('kiln-theme', 'light')")
    driver.get_log("browser")
    return b


@pytest.fixture
def browser(browser_session, request):
    """The module's browser; the test fails on SEVERE console entries it did not allow."""
    b = browser_session
    b.allowed = []
    b.driver.get_log("browser")
    yield b
    try:
        b.check_console(f"{request.node.name} (at its end, {b.route()})")
    finally:
        b.allowed = []


# ---------------------------------------------------------------------------
# Data, logged with the real mlflow client


STEPS = 300
BASE_TIME = int(time.time() * 1000) - 3_600_000
RUNS = [  # name, lr, depth, optimizer, final loss, final acc
    ("ui-run-a", "0.1", "2", "sgd", 0.62, 0.71),
    ("ui-run-b", "0.03", "4", "adam", 0.35, 0.84),
    ("ui-run-c", "0.01", "6", "adam", 0.48, 0.79),
    ("ui-run-d", "0.003", "8", "rmsprop", 0.21, 0.93),
    ("ui-run-e", "0.001", "3", "sgd", 0.77, 0.64),
    ("ui-run-f", "0.0003", "5", "adam", 0.29, 0.88),
]
DELETED = "ui-run-deleted"
NOTES = "Kiln UI notes\nsecond line: ok\n"
CONFIG = {"lr": 0.01, "layers": [64, 32], "optimizer": {"name": "adam", "betas": [0.9, 0.999]}}
CSV = "epoch,loss,acc\n1,0.9,0.5\n2,0.6,0.7\n3,0.4,0.8\n"


def loss_at(final, step):
    return final + (2.0 - final) * math.exp(-step / 40)


def acc_at(final, step):
    return final * (1 - math.exp(-step / 60))


def png_bytes():
    """A small chart as PNG: matplotlib, else PIL, else a hand-written 2x2 PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(3, 2), dpi=50)
        ax.plot([loss_at(0.3, s) for s in range(0, STEPS, 10)])
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        return buf.getvalue()
    except ImportError:
        pass
    try:
        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (40, 30), (180, 70, 31)).save(buf, format="PNG")
        return buf.getvalue()
    except ImportError:
        pass
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + b"\xb4\x46\x1f" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class Seeded:
    """One experiment of six runs (and a deleted one) and a registered iris model."""

    def __init__(self, server):
        import mlflow
        import mlflow.sklearn
        from mlflow import MlflowClient
        from mlflow.entities import Metric, Param, RunTag
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression

        client = MlflowClient(server.url)
        self.client = client
        self.experiment_name = unique("ui-exp")
        self.experiment_id = client.create_experiment(self.experiment_name, tags={"purpose": "ui"})
        self.runs = {}  # name -> run id
        self.final_loss = {}
        self.params = {}
        for i, (name, lr, depth, optimizer, loss, acc) in enumerate(RUNS + [(DELETED, "1.0", "1", "sgd", 0.99, 0.1)]):
            run = client.create_run(self.experiment_id, run_name=name, start_time=BASE_TIME + i * 60_000,
                                    tags={"team": "vision"})
            rid = run.info.run_id
            metrics = []
            for step in range(STEPS):
                ts = BASE_TIME + i * 60_000 + step * 100
                metrics.append(Metric("loss", loss_at(loss, step), ts, step))
                metrics.append(Metric("acc", acc_at(acc, step), ts, step))
            params = {"lr": lr, "depth": depth, "optimizer": optimizer, "batch": "32"}
            client.log_batch(rid, metrics=metrics[:900], params=[Param(k, v) for k, v in params.items()],
                             tags=[RunTag("variant", f"v{i}")])
            client.log_batch(rid, metrics=metrics[900:])
            client.set_terminated(rid, end_time=BASE_TIME + i * 60_000 + STEPS * 100)
            self.runs[name] = rid
            self.final_loss[name] = loss_at(loss, STEPS - 1)
            self.params[name] = params
        client.delete_run(self.runs[DELETED])

        # Artifacts of the first run, in a folder.
        self.artifact_run = self.runs["ui-run-a"]
        with tempfile.TemporaryDirectory() as folder:
            files = {"notes.txt": NOTES.encode(), "config.json": json.dumps(CONFIG, separators=(",", ":")).encode(),
                     "table.csv": CSV.encode(), "plot.png": png_bytes()}
            for name, data in files.items():
                with open(os.path.join(folder, name), "wb") as f:
                    f.write(data)
            client.log_artifacts(self.artifact_run, folder, artifact_path="reports")
        client.log_text(self.artifact_run, "top level\n", "README.txt")

        # A registered model with an alias, logged from a run of its own experiment.
        X, y = load_iris(return_X_y=True)
        model = LogisticRegression(max_iter=1000).fit(X, y)
        self.model_name = unique("ui-iris")
        self.model_experiment = client.create_experiment(unique("ui-models"))
        with mlflow.start_run(experiment_id=self.model_experiment, run_name="ui-model-run") as run:
            # pip_requirements given: inferring them would load the model in a subprocess (slow).
            mlflow.sklearn.log_model(model, name="model", registered_model_name=self.model_name,
                                     input_example=X[:3], pip_requirements=["scikit-learn"])
        self.model_run = run.info.run_id
        client.set_registered_model_alias(self.model_name, "champion", "1")


@pytest.fixture(scope="module")
def mlflow_env(server):
    import mlflow

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", server.url)
        mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        mlflow.set_tracking_uri(server.url)
        yield mlflow


@pytest.fixture(scope="module")
def seeded(server, mlflow_env):
    return Seeded(server)


def names_in(table, seeded):
    by_id = {v: k for k, v in seeded.runs.items()}
    return [by_id.get(r["id"], r["id"]) for r in table["rows"]]


# ---------------------------------------------------------------------------
# 1. Experiments


def test_experiments_page(browser, seeded, api, server):
    b = browser
    b.open("/experiments", "#experiments tbody tr")
    names = b.js("return [...document.querySelectorAll('#experiments tbody tr td:first-child')].map((td) => td.textContent)")
    assert seeded.experiment_name in names
    b.no_horizontal_overflow("experiments page")
    b.screenshot("experiments")
    b.check_console("the experiments page")

    # Searching by name narrows the list to the one experiment.
    from selenium.webdriver.common.keys import Keys

    search = b.find("input[type=search]")
    search.send_keys(seeded.experiment_name, Keys.ENTER)
    b.wait(lambda: b.js("return [...document.querySelectorAll('#experiments tbody tr td:first-child')]"
                        ".map((td) => td.textContent)") == [seeded.experiment_name],
           "the search to narrow the list to the seeded experiment")
    assert "q=" in b.route()

    # Creating one through the form opens its page.
    name = unique("ui-made")
    b.open("/experiments", "#experiments")
    b.find("input[aria-label='New experiment name']").send_keys(name)
    b.xpath("//button[normalize-space(.)='Create experiment']").click()
    b.wait(lambda: re.fullmatch(r"/experiments/\d+", b.route()), "the new experiment's page")
    experiment_id = b.route().rsplit("/", 1)[1]
    b.wait(lambda: b.js("return document.querySelector('h1')?.textContent") == name, "the new experiment's title")
    got = api.get("experiments/get-by-name", {"experiment_name": name}).json()["experiment"]
    assert got["experiment_id"] == experiment_id
    b.check_console("a new experiment's page")

    # Rename through the button's prompt.
    b.open(f"/experiments?q={name}", f"#experiments tr[data-experiment-id='{experiment_id}']")
    renamed = name + "-renamed"
    b.find(f"button[aria-label='Rename {name}']").click()
    alert = b.wait(lambda: _alert(b.driver), "the rename prompt")
    assert name in alert.text
    alert.send_keys(renamed)
    alert.accept()
    b.wait(lambda: b.js("return [...document.querySelectorAll('#experiments tbody tr td:first-child')]"
                        ".map((td) => td.textContent)") == [renamed], "the renamed experiment in the list")
    assert api.get("experiments/get", {"experiment_id": experiment_id}).json()["experiment"]["name"] == renamed

    # Delete: gone from the active list; Show deleted shows it, greyed, with Restore.
    b.find(f"button[aria-label='Delete {renamed}']").click()
    b.wait(lambda: not b.finds(f"#experiments tr[data-experiment-id='{experiment_id}']"), "the deleted experiment to go")
    assert api.get("experiments/get", {"experiment_id": experiment_id}).json()["experiment"]["lifecycle_stage"] == "deleted"
    b.xpath("//label[contains(., 'Show deleted')]/input").click()
    row = b.wait_for(f"#experiments tr.deleted[data-experiment-id='{experiment_id}']")
    assert "deleted=1" in b.route()
    row.find_element("css selector", f"button[aria-label='Restore {renamed}']").click()
    b.wait(lambda: b.finds(f"#experiments tr[data-experiment-id='{experiment_id}']:not(.deleted)"),
           "the restored experiment")
    assert api.get("experiments/get", {"experiment_id": experiment_id}).json()["experiment"]["lifecycle_stage"] == "active"
    b.check_console("the experiments page after rename, delete and restore")


def _alert(driver):
    from selenium.common.exceptions import NoAlertPresentException

    try:
        alert = driver.switch_to.alert
        alert.text  # noqa: B018  (raises when there is none)
        return alert
    except NoAlertPresentException:
        return None


# ---------------------------------------------------------------------------
# 2. One experiment's runs table


def open_runs(b, seeded, query=""):
    b.open(f"/experiments/{seeded.experiment_id}{query}", "#runs tbody tr")
    return b.runs_table()


def column(table, label):
    return table["heads"].index(label)


def test_runs_table(browser, seeded, api):
    b = browser
    table = open_runs(b, seeded)
    active = [name for name, *_ in RUNS]
    assert sorted(names_in(table, seeded)) == sorted(active)
    # Newest first by default; the runs started a minute apart in RUNS order.
    assert names_in(table, seeded) == active[::-1]
    for label in ("Run", "Status", "acc", "loss", "params.lr", "params.depth", "params.optimizer"):
        assert label in table["heads"], table["heads"]
    row = table["rows"][names_in(table, seeded).index("ui-run-b")]
    assert row["cells"][column(table, "params.lr")] == "0.03"
    assert row["cells"][column(table, "Status")] == "FINISHED"
    assert float(row["cells"][column(table, "loss")]) == pytest.approx(seeded.final_loss["ui-run-b"], abs=1e-5)
    b.no_horizontal_overflow("runs table")
    b.screenshot("experiment-runs")
    b.check_console("the runs table")

    # Sorting by loss: the first click sorts one way (the header says which), the second the other.
    seen = []
    for _ in range(2):
        before = b.runs_table()["sorts"][column(table, "loss")]
        b.xpath("//table[@id='runs']//th/button[starts-with(normalize-space(.), 'loss')]").click()
        b.wait(lambda: (t := b.runs_table()) and t["rows"] and t["sorts"][column(t, "loss")] not in ("none", before),
               "the table sorted by loss")
        t = b.runs_table()
        direction = t["sorts"][column(t, "loss")]
        values = [float(r["cells"][column(t, "loss")]) for r in t["rows"]]
        assert values == sorted(values, reverse=direction == "descending"), (direction, values)
        assert len(values) == len(RUNS)
        assert "order=metrics.%60loss%60" in b.route() or "order=metrics.`loss`" in b.route(), b.route()
        seen.append(direction)
    assert sorted(seen) == ["ascending", "descending"], seen

    # A filter narrows the rows to the runs it matches.
    from selenium.webdriver.common.keys import Keys

    threshold = 0.4
    expected = sorted(n for n in active if seeded.final_loss[n] < threshold)
    assert 0 < len(expected) < len(active)
    box = b.find("#runs-filter")
    box.clear()
    box.send_keys(f"metrics.loss < {threshold}", Keys.ENTER)
    b.wait(lambda: (t := b.runs_table()) and sorted(names_in(t, seeded)) == expected,
           f"the filtered rows {expected}")
    assert "filter=" in b.route()
    b.check_console("the filtered runs table")

    # A malformed filter: the server's message in an error box, no table, no crash.
    bad = "metrics.loss <<< oops"
    message = api.post("runs/search", {"experiment_ids": [seeded.experiment_id], "filter": bad}).json()["message"]
    b.allow_console(r"runs/search - Failed to load resource: the server responded with a status of 400")
    box = b.find("#runs-filter")
    box.clear()
    box.send_keys(bad, Keys.ENTER)
    error = b.wait_for("#main .error[role=alert]")
    assert error.text == message
    assert not b.finds("#runs"), "the table stays away while the filter is wrong"
    assert b.find("#runs-filter").get_attribute("value") == bad
    b.check_console("the runs table with a malformed filter")
    b.allowed = []
    # Fixing it brings the table back.
    box = b.find("#runs-filter")
    box.clear()
    box.send_keys(Keys.ENTER)
    b.wait(lambda: (t := b.runs_table()) and len(t["rows"]) == len(active), "the unfiltered table")
    assert not b.finds("#main .error")

    # Show deleted runs.
    b.xpath("//label[contains(., 'Show deleted runs')]/input").click()
    b.wait(lambda: (t := b.runs_table()) and DELETED in names_in(t, seeded), "the deleted run")
    t = b.runs_table()
    deleted = [r for r in t["rows"] if r["deleted"]]
    assert [r["id"] for r in deleted] == [seeded.runs[DELETED]]
    assert "deleted=1" in b.route()

    # The column chooser adds a tag column.
    b.xpath("//details/summary[normalize-space(.)='Columns']").click()
    b.xpath("//div[@id='columns']//label[normalize-space(.)='tags.variant']/input").click()
    b.wait(lambda: "tags.variant" in b.runs_table()["heads"], "the tags.variant column")
    t = b.runs_table()
    variants = {names_in(t, seeded)[i]: r["cells"][column(t, "tags.variant")] for i, r in enumerate(t["rows"])}
    assert variants == {name: f"v{i}" for i, name in enumerate(active + [DELETED])}
    # mlflow.* system tags are not offered.
    labels = b.js("return [...document.querySelectorAll('#columns label')].map((l) => l.textContent.trim())")
    assert "tags.team" in labels and not any(l.startswith("tags.mlflow.") for l in labels), labels
    b.check_console("the runs table with deleted runs and a tag column")


# ---------------------------------------------------------------------------
# 3. Compare


def test_compare(browser, seeded):
    b = browser
    open_runs(b, seeded)
    picked = ["ui-run-b", "ui-run-d", "ui-run-f"]
    for name in picked:
        b.find(f"#runs input[aria-label='Select run {name}']").click()
    button = b.find("#compare")
    assert button.is_enabled() and "(3)" in button.text
    button.click()
    b.wait(lambda: b.route().startswith("/compare?"), "the compare page")
    runs = parse_qs(urlsplit(b.route()).query)["runs"][0].split(",")
    assert sorted(runs) == sorted(seeded.runs[n] for n in picked)
    b.wait_for("#compare-table tbody tr")

    rows = b.js("""return Object.fromEntries([...document.querySelectorAll('#compare-table tbody tr')].map((tr) =>
        [tr.querySelector('th').textContent, [...tr.querySelectorAll('td')].map((td) => [td.textContent, td.classList.contains('diff')])]))""")
    heads = b.js("return [...document.querySelectorAll('#compare-table thead th')].map((th) => th.textContent)")
    assert sorted(heads[1:]) == sorted(picked)
    order = heads[1:]
    for key in ("params.lr", "params.depth", "metrics.loss", "metrics.acc"):
        assert all(diff for _, diff in rows[key]), f"{key} differs between the runs but is not highlighted: {rows[key]}"
    assert [v for v, _ in rows["params.lr"]] == [seeded.params[n]["lr"] for n in order]
    # batch is the same in every run: not highlighted.
    assert [v for v, _ in rows["params.batch"]] == ["32"] * 3
    assert not any(diff for _, diff in rows["params.batch"]), rows["params.batch"]

    box, drawn = b.chart("#compare-chart")
    assert drawn > 0
    b.assert_drawn(box, "the overlay chart")
    legend = b.js("return [...arguments[0].querySelectorAll('.kiln-chart-legend-item')].map((e) => e.textContent)", box)
    assert sorted(legend) == sorted(picked)
    # Several metrics of several runs on one chart.
    from selenium.webdriver.support.ui import Select
    metrics = Select(b.find("select[aria-label^='Metrics to chart']"))
    metrics.deselect_all()
    for key in ("acc", "loss"):
        metrics.select_by_value(key)
    b.wait(lambda: len(b.js("return [...arguments[0].querySelectorAll('.kiln-chart-legend-item')]", box)) == 6,
           "a series per run and metric")
    legend = b.js("return [...arguments[0].querySelectorAll('.kiln-chart-legend-item')].map((e) => e.textContent)", box)
    assert sorted(legend) == sorted(f"{n} · {k}" for n in picked for k in ("acc", "loss")), legend
    for canvas_id in ("parallel", "scatter"):
        canvas = b.wait(lambda: b.js(f"const c = document.getElementById('{canvas_id}'); "
                                     "return c && c.dataset.rendered === '1' ? c : null"), f"#{canvas_id}")
        b.assert_drawn(canvas, f"#{canvas_id}", min_ink=300)
    b.no_horizontal_overflow("compare page")
    b.screenshot("compare")
    b.check_console("the compare page")


# ---------------------------------------------------------------------------
# 4. One run


def test_run_page(browser, seeded, server):
    b = browser
    rid = seeded.artifact_run
    b.open(f"/runs/{rid}", "#charts .chart-box")
    assert b.find("h1").text.startswith("ui-run-a")
    params = b.js("return Object.fromEntries([...document.querySelectorAll('#params tr')].map((tr) => "
                  "[...tr.querySelectorAll('td')].map((td) => td.textContent)))")
    assert params == seeded.params["ui-run-a"]
    tags = b.js("return Object.fromEntries([...document.querySelectorAll('#tags tr')].map((tr) => "
                "[...tr.querySelectorAll('td')].map((td) => td.textContent)))")
    assert tags["variant"] == "v0" and tags["team"] == "vision" and tags["mlflow.runName"] == "ui-run-a", tags

    boxes = {}
    for key in ("acc", "loss"):
        box, drawn = b.chart(f"#charts .chart-box[data-metric='{key}']")
        assert drawn > 0, f"{key}: nothing drawn"
        boxes[key] = (box, b.assert_drawn(box, f"the {key} chart"))
    b.no_horizontal_overflow("run page")

    from selenium.webdriver.support.ui import Select

    def rerenders(change, what):
        before = {k: ink["hash"] for k, (_, ink) in boxes.items()}
        for box, _ in boxes.values():
            b.js("delete arguments[0].dataset.rendered", box)
        change()
        for key, (box, _) in boxes.items():
            b.wait(lambda: b.js("return arguments[0].dataset.rendered === '1'", box)
                   and b.ink(box)["hash"] != before[key], f"the {key} chart to re-render with {what}")
            assert b.js("return arguments[0].kilnChart.drawnPoints()", box) > 0
            boxes[key] = (box, b.assert_drawn(box, f"the {key} chart with {what}"))

    rerenders(lambda: Select(b.find("select[aria-label='X axis']")).select_by_value("time"), "a time axis")
    rerenders(lambda: b.xpath("//label[contains(., 'Log scale')]/input").click(), "a log scale")
    b.check_console("the run page's charts")

    # Several metrics on one chart, and back to one chart per metric.
    b.find("#combine-metrics").click()
    combined, drawn = b.chart("#charts .chart-box[data-metric='*combined']")
    assert drawn > 0
    b.assert_drawn(combined, "the combined chart")
    legend = b.js("return [...arguments[0].querySelectorAll('.kiln-chart-legend-item')].map((e) => e.textContent)", combined)
    assert sorted(legend) == ["acc", "loss"], legend
    assert len(b.finds("#charts .chart-box")) == 1
    b.find("#combine-metrics").click()
    b.wait(lambda: len(b.finds("#charts .chart-box")) == 2, "one chart per metric again")
    b.check_console("the run page's combined chart")

    # Artifacts: open the folder, preview each kind of file.
    folder = b.wait(lambda: next((e for e in b.finds("#artifact-tree button") if e.text.endswith("reports")), None),
                    "the reports folder")
    folder.click()
    b.wait_for("#artifact-tree button[data-path='reports/notes.txt']").click()
    b.wait(lambda: b.js("return document.querySelector('#artifact-preview pre')?.textContent") == NOTES,
           "the text preview")
    link = b.find("#artifact-preview a.button")
    href = link.get_attribute("href")
    assert urlsplit(href).path == "/get-artifact", href
    assert parse_qs(urlsplit(href).query) == {"run_id": [rid], "path": ["reports/notes.txt"]}
    assert link.get_attribute("download") == "notes.txt"
    assert requests.get(href, timeout=30).text == NOTES

    b.find("#artifact-tree button[data-path='reports/table.csv']").click()
    b.wait_for("#csv-preview")
    csv = b.js("return [...document.querySelectorAll('#csv-preview tr')].map((tr) => "
               "[...tr.children].map((c) => c.textContent))")
    assert csv == [line.split(",") for line in CSV.strip().split("\n")]

    b.find("#artifact-tree button[data-path='reports/config.json']").click()
    b.wait(lambda: b.js("return document.querySelector('#artifact-preview pre')?.textContent")
           == json.dumps(CONFIG, indent=2), "the pretty-printed JSON")

    b.find("#artifact-tree button[data-path='reports/plot.png']").click()
    img = b.wait_for("#artifact-preview img")
    b.wait(lambda: b.js("return arguments[0].complete && arguments[0].naturalWidth > 0", img), "the image to load")
    assert urlsplit(img.get_attribute("src")).path == "/get-artifact"
    assert "/get-artifact?" in b.find("#artifact-preview a.button").get_attribute("href")
    b.screenshot("run")
    b.check_console("the run page's artifacts")


# ---------------------------------------------------------------------------
# 5. Models


def test_models(browser, seeded):
    b = browser
    b.open("/models", "#models-table")
    from selenium.webdriver.common.keys import Keys

    b.find("input[type=search]").send_keys(seeded.model_name, Keys.ENTER)
    b.wait(lambda: b.js("return [...document.querySelectorAll('#models-table tbody tr')].map((tr) => "
                        "tr.querySelector('td').textContent)") == [seeded.model_name], "the model alone in the list")
    cells = b.js("return [...document.querySelectorAll('#models-table tbody tr td')].map((td) => td.textContent)")
    assert cells[1] == "v1" and "@champion → v1" in cells[2], cells
    b.screenshot("models")
    b.check_console("the models page")

    b.xpath(f"//table[@id='models-table']//a[normalize-space(.)='{seeded.model_name}']").click()
    b.wait_for("#versions tr[data-version='1']")
    assert b.find("h1").text == seeded.model_name
    assert "@champion → v1" in b.find("#aliases").text
    row = b.find("#versions tr[data-version='1']")
    assert "@champion" in row.text
    run_link = row.find_element("css selector", "a")
    assert run_link.get_attribute("href").endswith(f"#/runs/{seeded.model_run}")
    signature = b.wait(lambda: (t := b.find("#signature").text) and "flavors" in t and t, "the signature")
    assert "tensor" in signature and "inputs" in signature, signature
    assert "python_function" in signature and "sklearn" in signature, signature
    b.no_horizontal_overflow("model page")
    b.screenshot("model")
    b.check_console("the model page")

    run_link.click()
    b.wait(lambda: b.js("return document.querySelector('h1')?.textContent.startsWith('ui-model-run')"), "the model's run")
    b.check_console("the model's run page")


# ---------------------------------------------------------------------------
# 6. Theme


def test_theme(browser, seeded):
    b = browser
    theme = lambda: b.js("return document.documentElement.dataset.theme")  # noqa: E731
    b.open(f"/runs/{seeded.runs['ui-run-d']}", "#charts .chart-box")
    box, _ = b.chart("#charts .chart-box[data-metric='loss']")
    light = b.ink(box)
    assert theme() == "light"
    try:
        b.find("#theme").click()
        assert theme() == "dark"
        assert b.find("#theme").text == "Light theme"
        b.wait(lambda: b.ink(box)["bg"] != light["bg"], "the chart to redraw in the dark theme")
        b.driver.refresh()
        b.wait_for("#charts .chart-box")
        assert theme() == "dark", "the theme did not survive a reload"
        box, drawn = b.chart("#charts .chart-box[data-metric='loss']")
        assert drawn > 0
        ink = b.assert_drawn(box, "the loss chart in the dark theme")
        assert sum(ink["bg"][:3]) < 3 * 80, f"the chart background is not dark: {ink['bg']}"
        assert b.js("return getComputedStyle(document.body).backgroundColor") != "rgb(255, 255, 255)"
        b.screenshot("dark-theme")
        b.find("#theme").click()
        assert theme() == "light"
        b.driver.refresh()
        b.wait_for("#charts .chart-box")
        assert theme() == "light"
    finally:
        b.js("localStorage.setItem('kiln-theme', 'light')")
    b.check_console("the run page in both themes")


# ---------------------------------------------------------------------------
# 7. A live run


def test_live_run(browser, seeded, mlflow_env):
    mlflow = mlflow_env
    b = browser
    run = mlflow.start_run(experiment_id=seeded.experiment_id, run_name=unique("ui-live"))
    try:
        rid = run.info.run_id
        for step in range(5):
            mlflow.log_metric("live", 1.0 / (step + 1), step=step)
        b.open(f"/runs/{rid}", "#charts .chart-box")
        assert b.find("#run-status").text == "RUNNING"
        box, first = b.chart("#charts .chart-box[data-metric='live']")
        assert first > 0
        mlflow.log_metrics({"live": 1.0 / 60, "late": 0.5}, step=59)
        for step in range(5, 59):
            mlflow.log_metric("live", 1.0 / (step + 1), step=step)
        grown = b.wait(lambda: (n := b.js("return arguments[0].kilnChart.drawnPoints()", box)) > first and n,
                       "the chart to pick up the new points (the page polls every 3 s)", timeout=12)
        assert grown > first
        # The metrics table follows too: the latest step, and a metric that appeared meanwhile (charted).
        latest = lambda: b.js("return Object.fromEntries([...document.querySelectorAll('#metrics tbody tr')]"  # noqa: E731
                              ".map((tr) => [tr.children[1].textContent, tr.children[3].textContent]))")
        b.wait(lambda: latest() == {"late": "59", "live": "59"}, "the metrics table to show step 59 of both metrics",
               timeout=12)
        _, drawn = b.chart("#charts .chart-box[data-metric='late']")
        assert drawn > 0
    finally:
        mlflow.end_run()
    b.wait(lambda: b.find("#run-status").text == "FINISHED", "the status to turn FINISHED", timeout=12)
    assert "FINISHED" in b.find("#run-status").get_attribute("class")
    b.check_console("a live run's page")


def test_live_run_first_metric(browser, seeded, mlflow_env):
    """A running run opened before it logs anything: its first metric shows up, charted."""
    mlflow = mlflow_env
    b = browser
    with mlflow.start_run(experiment_id=seeded.experiment_id, run_name=unique("ui-live-empty")) as run:
        b.open(f"/runs/{run.info.run_id}", "#metrics-section")
        b.wait(lambda: b.find("#metrics-section").text == "No metrics.", "the empty metrics section")
        for step in range(10):
            mlflow.log_metric("first", step * 0.5, step=step)
        _, drawn = b.chart("#charts .chart-box[data-metric='first']")
        assert drawn > 0
        assert b.js("return document.querySelector('#metrics tbody tr')?.children[3].textContent") == "9"
    b.check_console("a live run's page that started empty")


# ---------------------------------------------------------------------------
# 8. Performance, measured in the browser


PERF_RUNS = 10_000
BIG_POINTS = 1_000_000


def _threads(work, items, threads=8):
    chunks = [items[k::threads] for k in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(work, c) for c in chunks]:
            f.result()


@pytest.fixture(scope="module")
def many_runs(server, announce):
    """An experiment of 10,000 runs, each with a distinct loss (a permutation of 0..0.9999)."""
    base = f"{server.url}/api/2.0/mlflow/"
    eid = requests.post(base + "experiments/create", json={"name": unique("ui-10k")}, timeout=60).json()["experiment_id"]
    local = threading.local()
    t0 = time.time()

    def work(indices):
        http = getattr(local, "http", None) or requests.Session()
        local.http = http
        for i in indices:
            r = http.post(base + "runs/create", json={"experiment_id": eid, "run_name": f"perf-{i:05d}",
                                                      "start_time": BASE_TIME + i}, timeout=60)
            assert r.status_code == 200, r.text
            rid = r.json()["run"]["info"]["run_id"]
            body = {"run_id": rid,
                    "metrics": [{"key": "loss", "value": (i * 7919 % PERF_RUNS) / PERF_RUNS, "timestamp": BASE_TIME, "step": 0},
                                {"key": "acc", "value": i / PERF_RUNS, "timestamp": BASE_TIME, "step": 0}],
                    "params": [{"key": "lr", "value": str(i % 10)}]}
            r = http.post(base + "runs/log-batch", json=body, timeout=60)
            assert r.status_code == 200, r.text
    _threads(work, list(range(PERF_RUNS)))
    announce(f"\nseeded {PERF_RUNS} runs in {time.time() - t0:.1f} s")
    return eid


@pytest.fixture(scope="module")
def big_run(server, announce):
    """A run with a 1,000,000-point metric, logged 1,000 points per log-batch."""
    base = f"{server.url}/api/2.0/mlflow/"
    eid = requests.post(base + "experiments/create", json={"name": unique("ui-1m")}, timeout=60).json()["experiment_id"]
    rid = requests.post(base + "runs/create", json={"experiment_id": eid, "run_name": "one-million", "start_time": BASE_TIME},
                        timeout=60).json()["run"]["info"]["run_id"]
    local = threading.local()
    t0 = time.time()

    def work(batches):
        http = getattr(local, "http", None) or requests.Session()
        local.http = http
        for c in batches:
            metrics = [{"key": "signal", "value": math.sin(s / 5000) + (s % 97) / 970, "timestamp": BASE_TIME + s, "step": s}
                       for s in range(c * 1000, c * 1000 + 1000)]
            r = http.post(base + "runs/log-batch", json={"run_id": rid, "metrics": metrics}, timeout=60)
            assert r.status_code == 200, r.text
    _threads(work, list(range(BIG_POINTS // 1000)))
    # Finished, so its page does not poll it.
    r = requests.post(base + "runs/update", json={"run_id": rid, "status": "FINISHED", "end_time": BASE_TIME + BIG_POINTS},
                      timeout=60)
    assert r.status_code == 200, r.text
    announce(f"\nseeded {BIG_POINTS} points in {time.time() - t0:.1f} s")
    return rid


def _blank(b):
    b.js("location.hash = '#/blank'")
    b.wait(lambda: b.js("return document.querySelector('h1')?.textContent") == "Not found", "the blank route")


def test_perf_runs_table(browser, many_runs, announce):
    b = browser
    b.open("/experiments", "#experiments")
    times = []
    for _ in range(3):
        _blank(b)
        ms = b.js_async(TIME_ROUTE, f"#/experiments/{many_runs}", "#runs tbody tr", 20_000)
        assert ms >= 0, "the runs table did not show within 20 s"
        times.append(ms)
    table = b.runs_table()
    assert len(table["rows"]) == 100
    assert b.find("#runs-status").text.startswith("Runs 1–100")
    announce(f"\n10,000-run experiment: first rows in {', '.join(f'{t:.0f}' for t in times)} ms")
    b.screenshot("perf-10k-runs")

    sorts = []
    for direction, top in (("descending", (PERF_RUNS - 1) / PERF_RUNS), ("ascending", 0.0)):
        button = b.xpath("//table[@id='runs']//th/button[starts-with(normalize-space(.), 'loss')]")
        ms = b.js_async(TIME_CLICK, button,
                        f"#runs:has(th[aria-sort='{direction}'] button[title='Sort by loss']) tbody tr", 20_000)
        assert ms >= 0, f"sorting by loss ({direction}) did not show within 20 s"
        sorts.append(ms)
        t = b.runs_table()
        values = [float(r["cells"][column(t, "loss")]) for r in t["rows"]]
        assert len(values) == 100 and values[0] == top, (direction, values[:5])
        assert values == sorted(values, reverse=direction == "descending")
    announce(f"10,000-run experiment: sorted by loss (descending, ascending) in {', '.join(f'{t:.0f}' for t in sorts)} ms")
    b.check_console("the 10,000-run experiment")
    assert max(times) < 1000, f"the first rows of 10,000 runs took {[round(t) for t in times]} ms (limit 1000 ms)"
    assert max(sorts) < 500, f"sorting 10,000 runs by loss took {[round(t) for t in sorts]} ms (limit 500 ms)"


def test_perf_million_point_chart(browser, big_run, announce):
    b = browser
    b.open("/experiments", "#experiments")
    times = []
    for _ in range(3):
        _blank(b)
        ms = b.js_async(TIME_ROUTE, f"#/runs/{big_run}", "#charts .chart-box[data-metric='signal'][data-rendered='1']", 30_000)
        assert ms >= 0, "the 1,000,000-point chart did not render within 30 s"
        times.append(ms)
    box, drawn = b.chart("#charts .chart-box[data-metric='signal']")
    assert drawn > 0
    b.assert_drawn(box, "the 1,000,000-point chart")
    # How much of it the server's sampled history took (the last three such requests).
    server_ms = b.js("return performance.getEntriesByType('resource').filter((e) => "
                     "e.name.includes('get-history-bulk-interval')).slice(-3).map((e) => Math.round(e.duration))")
    report = (f"chart rendered in {', '.join(f'{t:.0f}' for t in times)} ms from opening the run page, "
              f"of which metrics/get-history-bulk-interval took {', '.join(map(str, server_ms))} ms; {drawn} vertices drawn")
    announce(f"\n1,000,000-point metric: {report}")
    b.screenshot("perf-1m-points")
    b.check_console("the 1,000,000-point run")
    # The median of three loads: on two cores shared by the browser, the server and the test,
    # one load in three can land on a busy moment.
    assert sorted(times)[1] < 1000, f"1,000,000-point metric over the limit of 1000 ms: {report}"
