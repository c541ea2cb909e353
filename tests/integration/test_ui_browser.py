"""The workbench in real Chromium, as a new user clicks through it.

``tunelab ui`` runs as its own process on a temporary workspace; Debian's ``chromium`` is
driven through its ``chromedriver`` (Selenium). The tests skip where either is missing
(``.ci/run`` installs both). After every page the browser's console must be empty: no script
error, no failed request, no refused resource. Screenshots of every page go to
``$TUNELAB_UI_SCREENSHOTS`` when it is set (``docs/ui/`` holds the ones the README shows).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_reviews
from tests.unit.ui.conftest import cli_line

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser") if shutil.which(b)), None)
DRIVER = shutil.which("chromedriver")
SELENIUM = importlib.util.find_spec("selenium") is not None
pytestmark = [
    pytest.mark.skipif(
        BROWSER is None or DRIVER is None or not SELENIUM,
        reason="the workbench's browser tests need chromium, chromium-driver (apt-get install "
        "chromium chromium-driver) and selenium (pip install selenium)",
    ),
    pytest.mark.slow,  # trains models and starts processes
]
WAIT = 300  # seconds any one thing may take on a busy 2-core machine; never a measurement


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Workbench:
    """``tunelab ui`` in its own process, started and killed as a user would."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Workbench:
        import httpx

        log = open(self.workspace.parent / f"ui-{self.port}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tunelab.cli", "ui", "--workspace", str(self.workspace),
             "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.time() + WAIT
        while time.time() < deadline:
            assert self.process.poll() is None, "tunelab ui exited"
            try:
                if httpx.get(self.url + "api/info", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.3)
        raise AssertionError("tunelab ui did not answer")

    def stop_workers(self) -> None:
        """SIGKILL the training workers still running for this workspace (they outlive the
        server by design; a test that stops early must not leave them behind)."""
        from tunelab.ui.jobs import JobStore

        database = self.workspace / ".tunelab-ui" / "jobs.db"
        if database.is_file():
            for job in JobStore(database).with_status("running"):
                if job["pid"]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(job["pid"], signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL: the server ends without a word (its training workers live on)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        answer = httpx.request(method, self.url + path.lstrip("/"), timeout=60,
                               headers={"X-Tunelab-UI": "1"}, **kwargs)  # fmt: skip
        assert answer.status_code == 200, answer.text
        return answer.json()

    def job(self, job: int) -> dict[str, Any]:
        return self.api("GET", f"/api/jobs/{job}")


class Page:
    """A Chromium window on the workbench."""

    def __init__(self, driver: Any, base: str, shots: Path) -> None:
        self.driver, self.base, self.shots = driver, base, shots

    def open(self, hash_: str) -> None:
        self.driver.get(self.base + hash_)
        self.ready()

    def ready(self) -> None:
        """Wait until the page the address names has rendered: the router runs on
        ``hashchange``, which fires after the click that changed the address returns, so the
        page before it can still read ready."""

        def rendered() -> bool:
            named = self.driver.execute_script("return location.hash.slice(1) || 'data'")
            main = self.main
            return (main.get_attribute("data-page") == named.split("/")[0]
                    and main.get_attribute("data-ready") == "yes")  # fmt: skip

        self.until(rendered)

    @property
    def main(self) -> Any:
        return self.find("page")

    def find(self, element_id: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, element_id)

    def css(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def until(self, condition: Any, seconds: float = WAIT) -> Any:
        """Wait for ``condition``; on timeout, fail with what the page showed."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, seconds, poll_frequency=0.2).until(
                lambda _: condition()
            )
        except TimeoutException:
            self.shot("timeout")
            shown = self.driver.find_element("tag name", "body").text[-3000:]
            raise AssertionError(
                f"the page never got there; it shows:\n{shown}\nconsole: {self.console()}"
            ) from None

    def click(self, element_id: str) -> None:
        """Click as a user does: scrolled into view first."""
        element = self.find(element_id)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def exists(self, element_id: str) -> bool:
        return bool(self.css(f"#{element_id}"))

    def type(self, element_id: str, text: str) -> None:
        field = self.find(element_id)
        field.clear()
        if text:
            field.send_keys(text)

    def error_for(self, key: str) -> str:
        slots = self.css(f'[data-error-for="{key}"]')
        return slots[0].text if slots else ""

    def console(self) -> list[dict[str, Any]]:
        return self.driver.get_log("browser")

    def shot(self, name: str) -> None:
        """A screenshot of the whole page (the window grown to its height for a moment)."""
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1400, min(max(height, 1000), 4000))
        self.driver.execute_script("window.scrollTo(0, 0)")  # clicks scrolled it down
        time.sleep(1)  # a frame of another origin (the report) paints after the resize
        self.driver.save_screenshot(str(self.shots / f"{name}.png"))
        self.driver.set_window_size(1400, 1000)

    def percent(self) -> int:
        return int(self.main.get_attribute("data-percent") or 0)


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    profile = f"--user-data-dir={tmp_path / 'profile'}"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                     profile):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    chosen = os.environ.get("TUNELAB_UI_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def workbench(tmp_path: Path) -> Iterator[Workbench]:
    running = Workbench(tmp_path / "workspace").start()
    yield running
    running.stop_workers()
    if running.process is not None and running.process.poll() is None:
        running.process.kill()
        running.process.wait(timeout=30)


def tiny_settings(
    page: Page, tiny_bert: Path, output: str, rate: str = "3e-3", steps: str = ""
) -> None:
    """The Train form set for the tiny model: a few seconds of training per epoch."""
    settings = {"model.name": str(tiny_bert), "training.epochs": "3",
                "training.max_steps": steps, "training.learning_rate": rate,
                "training.batch_size": "16", "training.logging_steps": "2",
                "training.early_stopping_patience": "", "output": output}  # fmt: skip
    for key, value in settings.items():
        page.type(f"f-{key}", value)
    page.until(lambda: output in page.find("config-command").text)


def test_a_new_users_path(workbench, chromium, shots, tmp_path, tiny_bert):
    """Upload the example CSV, map columns, doctor, train a tiny model and watch it to 100%,
    open the report, try a text, train a second run and compare the two."""
    page = Page(chromium, workbench.url, shots)
    csv = tmp_path / "reviews.csv"
    make_reviews(160).to_csv(csv, index=False)

    page.open("#data")
    page.find("upload-file").send_keys(str(csv))
    page.until(lambda: page.exists("preview-table"))
    facts = page.find("preview-facts").text
    assert "160 rows" in facts and "encoding utf-8" in facts and 'delimiter ","' in facts
    page.until(lambda: "reads this file" in page.find("mapping-check").text)
    page.click("doctor-run")
    page.until(lambda: page.exists("doctor-result") and page.css("#doctor-result pre"))
    assert "tunelab doctor uploads/reviews.csv" in page.find("doctor-result").text
    page.click("doctor-fix")
    page.until(lambda: page.exists("fixed-file"))
    page.shot("data")
    assert page.console() == []
    page.click("use-cleaned")
    page.until(lambda: "cleaned/reviews.clean.csv" in page.find("data-file").get_attribute("value")
               and page.exists("to-train"))  # fmt: skip
    page.until(lambda: page.find("to-train").is_enabled())
    page.click("to-train")

    page.ready()
    assert page.find("f-data.train").get_attribute("value") == "cleaned/reviews.clean.csv"
    tiny_settings(page, tiny_bert, "runs/first")
    assert "--data cleaned/reviews.clean.csv" in page.find("config-command").text
    page.click("suggest")
    page.until(lambda: page.exists("suggestion-table"))
    page.shot("train")
    assert page.console() == []
    page.click("start")
    page.until(lambda: "#run/" in chromium.current_url)
    page.ready()
    page.until(lambda: 0 < page.percent() < 100 or page.find("job-status").text == "finished")
    chromium.refresh()  # a reload during training keeps the live view
    page.ready()
    page.until(lambda: page.percent() == 100 and page.find("job-status").text == "finished")
    page.until(lambda: page.exists("report-frame")
               and page.find("report-frame").get_attribute("data-loaded") == "yes")  # fmt: skip
    assert int(page.find("loss-chart").get_attribute("data-points")) > 0
    assert int(page.find("metric-chart").get_attribute("data-points")) > 0
    assert "step" in page.find("progress-facts").text and "samples/s" in page.find(
        "progress-facts").text  # fmt: skip
    page.shot("run")
    assert page.console() == []
    report = page.find("report-frame").get_attribute("src")
    chromium.get(report)
    assert "Run report" in chromium.title or chromium.find_element("tag name", "h1")
    page.shot("report")
    assert page.console() == []

    page.open("#try")
    page.find("try-texts").send_keys("很好喜欢\n很差失望，退货")
    page.click("predict")
    page.until(lambda: len(page.css("#predictions tbody tr")) == 2)
    page.click("explain")
    page.until(lambda: page.exists("explanations"))
    page.shot("try")
    assert page.console() == []

    page.open("#train")  # the form kept its values; a second run with another learning rate
    tiny_settings(page, tiny_bert, "runs/second", rate="1e-3", steps="8")
    page.click("start")
    page.until(lambda: "#run/" in chromium.current_url)
    page.ready()
    page.until(lambda: page.find("job-status").text == "finished")

    page.open("#runs")
    rows = page.css("#runs-table tbody tr")
    assert len(rows) == 2 and all("finished" in row.text for row in rows)
    for box in page.css("#runs-table tbody input[type=checkbox]"):
        chromium.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
        box.click()
    page.click("compare-button")
    page.until(lambda: page.exists("compare-config"))
    assert "training.learning_rate" in page.find("compare-config").text
    assert int(page.find("compare-loss").get_attribute("data-points")) > 0
    page.shot("runs")
    assert page.console() == []


def test_bad_input_shows_the_clis_line_next_to_its_field(
    workbench, chromium, shots, tmp_path, monkeypatch, capsys
):
    """A binary upload, a column that is not in the file, a negative learning rate typed."""
    page = Page(chromium, workbench.url, shots)
    photo = tmp_path / "photo.csv"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    csv = tmp_path / "reviews.csv"
    make_reviews(60).to_csv(csv, index=False)
    monkeypatch.chdir(workbench.workspace)  # the CLI's lines for the same commands

    page.open("#data")
    page.find("upload-file").send_keys(str(photo))
    binary = cli_line(["train", "--data", "uploads/photo.csv"], monkeypatch, capsys)
    page.until(lambda: page.error_for("data.train") == binary)

    page.find("upload-file").send_keys(str(csv))
    page.until(lambda: page.exists("to-train"))
    page.click("to-train")
    page.ready()
    page.type("f-training.learning_rate", "-0.001")
    negative = cli_line(["train", "--set", "training.learning_rate=-0.001"], monkeypatch, capsys)
    page.until(lambda: page.error_for("training.learning_rate") == negative)
    assert "invalid" in page.find("f-training.learning_rate").get_attribute("class")
    page.shot("train-error")

    page.type("f-training.learning_rate", "auto")
    page.type("f-data.text_column", "body")
    page.until(lambda: page.error_for("training.learning_rate") == "")
    page.click("start")
    missing = cli_line(["train", "--data", "uploads/reviews.csv", "--text-column", "body"],
                       monkeypatch, capsys)  # fmt: skip
    page.until(lambda: page.error_for("data.text_column") == missing)
    assert "#train" in chromium.current_url  # no job was started
    # the refused requests are the only console lines: no script failed
    assert all(entry["source"] == "network" for entry in page.console())


def test_reload_restart_cancel_and_resume_lose_nothing(
    workbench, chromium, shots, tmp_path, tiny_bert
):
    """The server killed mid-run and started again: the run finishes. A run cancelled from the
    page saves a checkpoint; after another restart it resumes to the end."""
    page = Page(chromium, workbench.url, shots)
    uploads = workbench.workspace / "uploads"
    make_reviews(240).to_csv(uploads / "reviews.csv", index=False)
    values = {"data.train": "uploads/reviews.csv", "model.name": str(tiny_bert),
              "training.max_steps": "40", "training.eval_strategy": "steps",
              "training.eval_steps": "8", "training.learning_rate": "3e-3",
              "training.batch_size": "16", "training.logging_steps": "2",
              "training.early_stopping_patience": ""}  # fmt: skip
    first = workbench.api("POST", "/api/jobs", json={"values": {**values, "output": "runs/a"}})
    page.open(f"#run/{first['id']}")
    page.until(lambda: page.percent() > 0)
    workbench.kill()  # mid-run: the worker goes on alone
    workbench.start()  # the same workspace and address
    # the open event stream broke and could not reconnect while the server was down
    assert all(entry["source"] == "network" for entry in page.console())
    page.open(f"#run/{first['id']}")
    page.until(lambda: page.find("job-status").text == "finished" and page.percent() == 100)
    assert (workbench.workspace / "runs" / "a" / "metrics.json").is_file()
    assert page.console() == []

    # long enough that the cancel lands inside training even on a fast machine
    longer = {**values, "training.max_steps": "400", "training.eval_steps": "100",
              "output": "runs/b"}  # fmt: skip
    second = workbench.api("POST", "/api/jobs", json={"values": longer})
    page.open(f"#run/{second['id']}")
    page.until(lambda: page.percent() >= 1)
    page.click("cancel")  # Ctrl-C's path: a checkpoint after this step
    page.until(lambda: page.find("job-status").text == "cancelled")
    error = page.find("job-error").text
    assert error.startswith("interrupted: checkpoint saved at runs/b/checkpoints/checkpoint-")
    assert error.endswith("; continue with --resume")
    assert page.find("resume").is_displayed()
    page.shot("run-cancelled")
    workbench.kill()
    workbench.start()
    assert all(entry["source"] == "network" for entry in page.console())
    page.open(f"#run/{second['id']}")
    assert page.find("job-status").text == "cancelled"
    page.click("resume")
    page.until(lambda: page.find("job-status").text == "finished" and page.percent() == 100)
    assert workbench.job(second["id"])["resume"] is True
    assert (workbench.workspace / "runs" / "b" / "metrics.json").is_file()
    assert page.console() == []


def test_labelling_twenty_texts_by_keyboard(
    workbench, chromium, shots, tmp_path, monkeypatch, capsys
):
    """A file too small to label and a one-label set get the CLI's line next to their field;
    then 20 texts labelled with the keys 1 and 2 (one skipped with s, one undone with u), and
    the labelled file to download and the journal hold exactly those 20 labels."""
    import csv
    import io

    import httpx
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    from tunelab.labelling.journal import LabelJournal

    page = Page(chromium, workbench.url, shots)
    frame = make_reviews(60)
    frame.insert(0, "id", [f"r{i}" for i in range(60)])
    uploads = workbench.workspace / "uploads"
    frame.drop(columns="label").to_csv(uploads / "texts.csv", index=False)
    truth = dict(zip(frame["id"], frame["label"], strict=True))
    (uploads / "empty.txt").write_text("\n", encoding="utf-8")
    monkeypatch.chdir(workbench.workspace)  # the CLI's lines for the same commands

    page.open("#label")
    Select(page.find("label-file")).select_by_value("uploads/empty.txt")
    page.type("label-set", "positive,negative")
    page.click("label-start")
    empty = cli_line(["label", "run", "uploads/empty.txt", "--labels", "positive,negative"],
                     monkeypatch, capsys)  # fmt: skip
    page.until(lambda: page.error_for("path") == empty)
    Select(page.find("label-file")).select_by_value("uploads/texts.csv")
    page.type("label-set", "positive")
    page.click("label-start")
    one = cli_line(["label", "run", "uploads/texts.csv", "--labels", "positive"],
                   monkeypatch, capsys)  # fmt: skip
    page.until(lambda: page.error_for("labels") == one)
    assert page.error_for("path") == ""
    assert all(entry["source"] == "network" for entry in page.console())  # the refused calls

    page.type("label-set", "positive,negative")
    page.click("label-start")
    page.until(lambda: page.exists("label-text") and page.exists("label-progress"))
    assert page.find("label-progress").text == "0 / 60 labelled"

    def shown() -> tuple[str, int, str]:
        """The text's item, the labelled count and whether an answer is on its way, read in
        one script: the page replaces these elements as it updates."""
        item, count, busy = chromium.execute_script(
            'const w = document.getElementById("label-work");'
            "return [w.querySelector('#label-text').dataset.item,"
            "w.querySelector('#label-progress').dataset.labelled, w.dataset.busy];"
        )
        return item, int(count), busy

    def press(key: str, until: Any) -> None:
        ActionChains(chromium).send_keys(key).perform()
        page.until(lambda: (lambda item, count, busy: busy == "no" and until(item, count))(
            *shown()))  # fmt: skip

    given: dict[str, str] = {}
    undone = False
    while len(given) < 20:
        item, count, _ = shown()
        label = truth[item]
        press("1" if label == "positive" else "2", lambda i, c, n=count, old=item: c == n + 1
              and i != old)  # fmt: skip
        given[item] = label
        if len(given) == 5 and not undone:  # u takes back the latest label
            undone = True
            press("u", lambda i, c: c == 4)
            del given[item]
            skipped, _, _ = shown()
            press("s", lambda i, c, old=skipped: c == 4 and i != old)
            assert skipped not in given
    assert page.find("label-progress").text == "20 / 60 labelled"
    assert "the model guesses" in page.find("label-reason").text  # a model after 10 labels
    page.shot("label")
    assert page.console() == []

    link = page.find("label-export").get_attribute("href")
    assert link.endswith("/files/uploads/texts.labelled.csv?download=true")
    exported = httpx.get(link, timeout=60)
    assert exported.headers["content-disposition"].startswith("attachment")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {row["id"]: row["label"] for row in rows} == given
    assert LabelJournal(uploads / "texts.journal.jsonl").labels() == given


def test_labelling_entities_by_mouse_and_keyboard(workbench, chromium, shots):
    """Entity spans marked in real Chromium: a person by dragging the mouse over it, a place
    with Shift+arrows from the cursor, each with its type's number, Enter to save; after the
    first model the guessed spans come marked and Enter accepts them. The labelled JSONL and
    the journal hold exactly the spans marked."""
    import json

    import httpx
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    from tunelab.labelling.journal import LabelJournal

    people, places = ["张伟", "王芳", "李娜", "刘洋"], ["北京", "上海", "广州", "深圳"]
    frames = ["{p}昨天到{l}开会，", "{l}欢迎{p}回来，", "天气很好，我们去公园，"]
    lines, truth = [], {}
    for n in range(30):
        person, place, frame = people[n % 4], places[n // 4 % 4], frames[n % 3]
        text = frame.format(p=person, l=place) + f"第{n}次。"
        spans = []
        if "{p}" in frame:
            spans = sorted([(text.index(person), text.index(person) + 2, "PER"),
                            (text.index(place), text.index(place) + 2, "LOC")])  # fmt: skip
        lines.append(text)
        truth[str(n + 1)] = spans  # a TXT file's ids are its line numbers
    uploads = workbench.workspace / "uploads"
    (uploads / "news.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")

    page = Page(chromium, workbench.url, shots)
    page.open("#label")
    Select(page.find("label-kind")).select_by_value("entities")
    Select(page.find("label-file")).select_by_value("uploads/news.txt")
    page.type("label-set", "PER,LOC")
    page.click("label-start")
    page.until(lambda: page.exists("label-text") and page.exists("label-progress"))

    def shown() -> tuple[str, int]:
        item, count = chromium.execute_script(
            'const w = document.getElementById("label-work");'
            "return w.dataset.busy === 'yes' ? [null, -1] : "
            "[w.querySelector('#label-text').dataset.item,"
            "w.querySelector('#label-progress').dataset.labelled];"
        )
        return item, int(count)

    def marked() -> list[tuple[int, int, str]]:
        spans, start, kind = [], None, None
        chars = page.css("#label-text .ch")
        for i, char in enumerate([*chars, None]):
            this = char.get_attribute("data-type") if char is not None else None
            if start is not None and this != kind:
                spans.append((start, i, kind))
                start = None
            if this and start is None:
                start, kind = i, this
        return spans

    keys = ActionChains(chromium)
    given: dict[str, list] = {}
    while len(given) < 11:
        item, count = shown()
        spans = truth[item]
        for start, end, kind in spans:
            if kind == "PER":  # the mouse: from the first character's left edge to the last's right
                first = page.css(f'#label-text .ch[data-i="{start}"]')[0]
                last = page.css(f'#label-text .ch[data-i="{end - 1}"]')[0]
                left, right = -first.size["width"] // 2 + 1, last.size["width"] // 2 - 1
                ActionChains(chromium).move_to_element_with_offset(first, left, 0).click_and_hold(
                    ).move_to_element_with_offset(last, right, 0).release().perform()  # fmt: skip
                ActionChains(chromium).send_keys("1").perform()
            else:  # the keyboard: Home, right to the start, Shift+right over it
                keys.send_keys(Keys.HOME).perform()
                for _ in range(start):
                    ActionChains(chromium).send_keys(Keys.ARROW_RIGHT).perform()
                for _ in range(end - start):
                    ActionChains(chromium).key_down(Keys.SHIFT).send_keys(
                        Keys.ARROW_RIGHT).key_up(Keys.SHIFT).perform()  # fmt: skip
                ActionChains(chromium).send_keys("2").perform()
        page.until(lambda s=spans: marked() == s)
        if not given:  # the first with a note for the journal, saved by the button
            page.type("label-note", "first one")
            page.click("label-save")
        else:
            ActionChains(chromium).send_keys(Keys.ENTER).perform()
        page.until(lambda n=count: shown()[1] == n + 1)
        given[item] = [list(s) for s in spans]
    assert "its guessed spans are marked" in page.find("label-reason").text
    item, count = shown()
    guess = marked()
    page.shot("label-entities")
    ActionChains(chromium).send_keys(Keys.ENTER).perform()  # accept the model's guess
    page.until(lambda: shown()[1] == count + 1)
    given[item] = [list(s) for s in guess]
    assert page.console() == []

    link = page.find("label-export").get_attribute("href")
    assert link.endswith("/files/uploads/news.entities.jsonl?download=true")
    rows = [json.loads(line) for line in httpx.get(link, timeout=60).text.splitlines()]
    assert {row["id"]: row["spans"] for row in rows} == given
    journal = LabelJournal(uploads / "news.entities.journal.jsonl")
    assert {k: [list(s) for s in v] for k, v in journal.labels().items()} == given
    assert journal.records()[0]["note"] == "first one"
    assert "note" not in journal.records()[1]

    page.click("label-train")  # the Train page, filled in for the labelled file
    page.until(lambda: page.css('[id="f-data.train"]'))  # a dot: not a CSS id selector
    page.until(lambda: page.find("f-data.train").get_attribute("value")
               == "uploads/news.entities.jsonl")  # fmt: skip
    assert page.find("f-task").get_attribute("value") == "token-classification"


def label_page_state(chromium: Any) -> tuple[str | None, int, str]:
    """The Label page's text item, labelled count and whether an answer is on its way, read in
    one script (the page replaces these elements as it updates)."""
    item, count, busy = chromium.execute_script(
        'const w = document.getElementById("label-work");'
        "const text = w.querySelector('#label-text, #review-text');"
        "const count = w.querySelector('#label-progress');"
        "return [text ? (text.dataset.item || null) : null,"
        " count ? count.dataset.labelled : '-1', w.dataset.busy || 'no'];"
    )
    return item, int(count), busy


def test_the_label_page_charts_the_held_out_score(workbench, chromium, shots):
    """With a held-out sample, the Label page draws the held-out accuracy against the labels
    (the journal's labels replayed on opening, then a point more after 20 labels by keyboard,
    drawn when the background retrain is done) with the target as a dashed line."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    from tunelab.labelling.session import open_session
    from tunelab.labelling.simulate import simulate

    frame = make_reviews(80)
    frame.insert(0, "id", [f"r{i}" for i in range(80)])
    uploads = workbench.workspace / "uploads"
    frame.drop(columns="label").to_csv(uploads / "texts.csv", index=False)
    truth = dict(zip(frame["id"], frame["label"], strict=True))
    # 50 labels already in the journal (as a CLI session would leave them)
    _, journal, queue = open_session(uploads / "texts.csv", uploads / "texts.journal.jsonl",
                                     ["positive", "negative"], holdout=10)  # fmt: skip
    simulate(queue, truth, 50, journal=journal)
    assert len(queue.progress) == 1

    page = Page(chromium, workbench.url, shots)
    page.open("#label")
    Select(page.find("label-file")).select_by_value("uploads/texts.csv")
    page.type("label-set", "positive,negative")
    page.type("label-holdout", "10")
    page.type("label-target", "0.95")
    page.click("label-start")
    page.until(lambda: page.exists("label-chart") and page.exists("label-text"))

    def drawn() -> tuple[int, int, int]:
        """Points the page measured, points the chart drew, and the canvas's painted pixels."""
        return tuple(chromium.execute_script(
            'const c = document.getElementById("label-chart");'
            "const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "let painted = 0; for (let i = 3; i < pixels.length; i += 4) painted += pixels[i] > 0;"
            "return [Number(c.dataset.measured), Number(c.dataset.points || 0), painted];"
        ))  # fmt: skip

    measured, points, painted = drawn()
    assert measured == 1 and points == 1 + 2  # the point and the target line's two ends
    assert painted > 1000
    assert "held-out texts after 40 labels" in page.find("label-measured").text
    for _ in range(20):
        item, count, _ = label_page_state(chromium)
        ActionChains(chromium).send_keys("1" if truth[item] == "positive" else "2").perform()
        page.until(lambda n=count: (lambda i, c, busy: busy == "no" and c == n + 1)(
            *label_page_state(chromium)))  # fmt: skip
    # the retrain at 70 labels runs in the background: the page draws its point when it is
    # done, with no further label
    chart_points = 'return document.getElementById("label-chart").dataset.measured'
    page.until(lambda: chromium.execute_script(chart_points) == "2")  # no pixel readback
    measured, points, _ = drawn()
    assert measured == 2 and points == 2 + 2
    assert "held-out texts after 60 labels" in page.find("label-measured").text
    page.shot("label-chart")
    assert page.console() == []


def test_two_annotators_disagree_and_a_reviewer_settles_it(workbench, chromium, shots):
    """ann labels a text, bob is given it again (double rate 1) and labels it otherwise; the
    page shows Cohen's kappa and one disagreement, the reviewer picks ann's label with its
    number key, and the downloaded labelled file holds the reviewer's label."""
    import csv
    import io

    import httpx
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    from tunelab.labelling.journal import LabelJournal

    frame = make_reviews(40)
    frame.insert(0, "id", [f"r{i}" for i in range(40)])
    uploads = workbench.workspace / "uploads"
    frame.drop(columns="label").to_csv(uploads / "texts.csv", index=False)
    truth = dict(zip(frame["id"], frame["label"], strict=True))
    keys = {"positive": "1", "negative": "2"}
    other = {"positive": "negative", "negative": "positive"}

    page = Page(chromium, workbench.url, shots)
    page.open("#label")
    Select(page.find("label-file")).select_by_value("uploads/texts.csv")
    page.type("label-set", "positive,negative")
    page.type("label-double-rate", "1")

    def press(key: str, until: Any) -> None:
        ActionChains(chromium).send_keys(key).perform()
        page.until(lambda: (lambda i, c, busy: busy == "no" and until(i, c))(
            *label_page_state(chromium)))  # fmt: skip

    page.type("label-annotator", "ann")
    page.click("label-start")
    page.until(lambda: page.exists("label-text"))
    first, _, _ = label_page_state(chromium)
    press(keys[truth[first]], lambda i, c: c == 1)
    page.type("label-annotator", "bob")
    page.click("label-start")
    page.until(lambda: label_page_state(chromium)[0] == first)  # a second opinion, blind
    assert page.find("label-reason").text.startswith("Why this text: second opinion")
    assert "the model guesses" not in page.find("label-reason").text
    press(keys[other[truth[first]]], lambda i, c: i != first)
    page.until(lambda: page.exists("label-review"))
    assert page.find("label-agreement").text.startswith("1 texts labelled twice; Cohen's kappa")
    assert "1 disagreements to review" in page.find("label-agreement").text

    page.type("label-annotator", "lead")
    page.click("label-review")
    page.until(lambda: page.exists("review-text") and label_page_state(chromium)[0] == first)
    given = page.find("review-given").text
    assert given == f"Labelled as: ann: {truth[first]} · bob: {other[truth[first]]}"
    page.shot("label-review")
    press(keys[truth[first]], lambda i, c: i is None)  # ann's label, though bob's is the latest
    assert page.find("review-text").text == "No disagreement left to settle."
    assert page.find("label-done").text == f"settled {first}: {truth[first]}"
    assert page.console() == []

    link = page.find("label-export").get_attribute("href")
    rows = list(csv.DictReader(io.StringIO(httpx.get(link, timeout=60).text)))
    assert {row["id"]: row["label"] for row in rows} == {first: truth[first]}
    record = LabelJournal(uploads / "texts.journal.jsonl").records()[-1]
    assert (record["item"], record["annotator"], record.get("role")) == (first, "lead", "review")
    page.click("review-back")
    page.until(lambda: page.exists("label-progress"))
    assert "0 disagreements to review" in page.find("label-agreement").text
