"""report.html opened in headless Chromium: no console errors, every plot drawn.

Chromium is driven from the command line (``--dump-dom``, console messages on stderr), so no
browser-automation package is needed. A copy of each report gets a small script that, once
the page has loaded, writes onto ``<body>`` how many ``data-plot`` figures it found and how
many of them the browser laid out at a nonzero size with drawn content.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.evaluation import synthetic_runs as runs
from tunelab.evaluation.report import build_report

BROWSER = next(
    (shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
    None,
)
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="Chromium is not installed (apt-get install chromium); the browser test is skipped",
)

CHECK = """<script>
window.addEventListener("load", () => {
  const figures = [...document.querySelectorAll("[data-plot]")];
  const drawn = figures.filter((figure) => {
    const plot = figure.querySelector("svg, img");
    if (!plot) return false;
    const box = plot.getBoundingClientRect();
    const decoded = plot.tagName.toLowerCase() === "img"
      ? plot.complete && plot.naturalWidth > 0
      : plot.querySelectorAll("path, rect, text, use").length > 0;
    return box.width > 50 && box.height > 50 && decoded;
  });
  document.body.setAttribute("data-found", figures.length);
  document.body.setAttribute("data-drawn", drawn.length);
  document.body.setAttribute("data-claimed",
    document.querySelector('meta[name="plots"]').getAttribute("content"));
});
</script>
"""


def open_in_browser(page: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM after load and the console messages Chromium logged for ``page``."""
    done = subprocess.run(
        [BROWSER, "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr",
         "--v=0", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
         "--window-size=1200,2000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


def checked_copy(report: Path, folder: Path) -> Path:
    page = report.read_text(encoding="utf-8")
    assert "<script" not in page  # the report itself needs no JavaScript
    copy = folder / f"{report.parent.name}.html"
    copy.write_text(page.replace("</body>", CHECK + "</body>"), encoding="utf-8")
    return copy


def test_console_messages_are_seen(tmp_path):
    """The check below is only worth something if a console error would show up."""
    page = tmp_path / "canary.html"
    page.write_text('<!DOCTYPE html><body><script>console.error("tunelab-canary")</script></body>')
    _, console = open_in_browser(page, tmp_path / "profile")
    assert any("tunelab-canary" in line for line in console), "Chromium logged no console lines"


@pytest.mark.parametrize(
    ("builder", "plots"),
    [(runs.classification_run, 5), (runs.token_run, 5), (runs.generation_run, 3)],
    ids=["classification", "token-classification", "generation"],
)
def test_report_opens_without_console_errors_and_draws_every_plot(tmp_path, builder, plots):
    report = build_report(builder(tmp_path / builder.__name__), explanations=False)
    dom, console = open_in_browser(checked_copy(report, tmp_path), tmp_path / "profile")
    assert console == []
    found = re.search(r'<body[^>]* data-found="(\d+)" data-drawn="(\d+)" data-claimed="(\d+)"', dom)
    assert found, "the page did not finish loading in Chromium"
    assert [int(n) for n in found.groups()] == [plots, plots, plots]
