"""Load time of the workbench's Runs page with 200 runs in the workspace.

Writes 200 synthetic finished runs (each as `tunelab train` leaves it: the commented
config.yaml of every key, metrics.json with per-class scores, history.json of 60 log lines,
model/config.json), starts ``tunelab ui`` on them and measures:

- ``list_runs``: the function behind ``tunelab runs`` and the page, in this process (the
  first call parses every config.yaml; later ones read only runs whose files changed);
- ``GET /api/runs``: the page's one request, over HTTP on loopback (the first request after
  the server started, and the ones after it);
- the page in headless Chromium (when chromium and chromedriver are installed): from the
  start of the navigation to the table of 200 rows drawn (the page marks it).

Usage::

    python benchmarks/ui_runs_list.py [--runs 200] [--repeats 7]

Writes ``benchmarks/results/ui_runs_list.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "ui_runs_list.json"


def write_runs(root: Path, count: int) -> None:
    """``count`` finished text-classification runs under ``root/runs``."""
    from tunelab.config import RunConfig, commented_yaml

    for i in range(count):
        folder = root / "runs" / f"run-{i:03d}"
        (folder / "model").mkdir(parents=True)
        config = RunConfig.model_validate({
            "output": f"runs/run-{i:03d}", "data": {"train": "uploads/reviews.csv"},
            "model": {"name": "zh-bert-mini"},
            "training": {"learning_rate": 1e-5 * (1 + i % 50), "epochs": 1 + i % 3},
        })  # fmt: skip
        (folder / "config.yaml").write_text(commented_yaml(config) + "\n", encoding="utf-8")
        scores = {"examples": 1732, "accuracy": 0.7 + i / 2000, "f1_macro": 0.69 + i / 2000,
                  "per_class": {c: {"precision": 0.7, "recall": 0.7, "f1-score": 0.7,
                                    "support": 866} for c in ("negative", "positive")},
                  "confusion_matrix": {"labels": ["negative", "positive"],
                                       "matrix": [[600, 266], [250, 616]]}}  # fmt: skip
        metrics = {"train": {"seconds": 60.0 + i, "steps": 433}, "validation": scores,
                   "test": scores, "baseline": {"method": "tf-idf", "test": {"f1_macro": 0.86}},
                   "warnings": []}  # fmt: skip
        (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
        history = [{"loss": 0.7 - s / 1000, "learning_rate": 1e-4, "epoch": s / 60, "step": s}
                   for s in range(1, 61)]  # fmt: skip
        (folder / "history.json").write_text(json.dumps(history), encoding="utf-8")
        model = {"tunelab": {"task": "text-classification", "problem_type": "single_label"}}
        (folder / "model" / "config.json").write_text(json.dumps(model), encoding="utf-8")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(workspace: Path, port: int, log: Path) -> subprocess.Popen:
    import httpx

    command = [sys.executable, "-m", "tunelab.cli", "ui", "--workspace", str(workspace),
               "--port", str(port)]  # fmt: skip
    server = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"tunelab ui exited with {server.returncode}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/info", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.3)
    raise RuntimeError("tunelab ui did not answer in 120 s")


def browser_times(url: str, repeats: int, runs: int) -> list[float] | None:
    """Milliseconds from navigation start to the drawn table, or None without a browser."""
    browser, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        return None
    if browser is None or driver_path is None:
        return None
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    times = []
    try:
        for _ in range(repeats + 1):  # the first load warms the browser's cache of the scripts
            driver.get("about:blank")
            driver.get(url + "#runs")
            WebDriverWait(driver, 120, poll_frequency=0.05).until(
                lambda d: d.execute_script(
                    "const m = document.getElementById('page');"
                    f"return m.dataset.ready === 'yes' && m.dataset.runs === '{runs}';"
                )
            )
            # the page notes performance.now() when the table is drawn: ms since navigation
            drawn = driver.execute_script("return document.getElementById('page').dataset.drawnAt")
            times.append(float(drawn))
        return times[1:]
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    import httpx

    from tunelab.runs import list_runs

    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "workspace"
        write_runs(workspace, args.runs)
        in_process = []
        for _ in range(args.repeats):
            began = time.perf_counter()
            assert len(list_runs(workspace / "runs")) == args.runs
            in_process.append((time.perf_counter() - began) * 1000)
        port = free_port()
        server = start_server(workspace, port, Path(tmp) / "ui.log")
        try:
            url = f"http://127.0.0.1:{port}/"
            api = []
            for _ in range(args.repeats + 1):
                began = time.perf_counter()
                answer = httpx.get(url + "api/runs", timeout=120)
                api.append((time.perf_counter() - began) * 1000)
                assert len(answer.json()) == args.runs
            first, api = api[0], api[1:]
            page = browser_times(url, args.repeats, args.runs)
        finally:
            server.terminate()
            server.wait(timeout=30)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
               "platform": platform.platform()}  # fmt: skip
    result = {
        "runs": args.runs,
        "repeats": args.repeats,
        "machine": machine,
        # the first call parses all configs (and imports the task registry); later calls
        # read only what changed
        "list_runs_ms": {
            "first": in_process[0],
            "median": statistics.median(in_process[1:]),
            "max": max(in_process[1:]),
        },
        "api_runs_ms": {"median": statistics.median(api), "max": max(api)},
        "api_first_request_ms": first,
        "page_ms": {"median": statistics.median(page), "max": max(page)} if page else None,
        "measured": time.strftime("%Y-%m-%d"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(f"| {args.runs} runs | median ms | max ms |\n|---|---:|---:|")
    print(f"| list_runs, the first call (in process) | {in_process[0]:.0f} | |")
    rows = (("list_runs again (in process)", "list_runs_ms"), ("GET /api/runs", "api_runs_ms"),
            ("Runs page in Chromium", "page_ms"))  # fmt: skip
    for name, key in rows:
        if result[key]:
            print(f"| {name} | {result[key]['median']:.0f} | {result[key]['max']:.0f} |")
    print(f"| GET /api/runs, the first request after start | {first:.0f} | |")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
