"""Running a benchmark's arms each in its own process, and what every arm reports of itself.

A script runs an arm by calling itself with ``--child NAME`` and its options; the child prints
its result as one ``RESULT {json}`` line, so the imports, threads and peak memory of one arm
never leak into another's figures.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from typing import Any


def peak_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_child(script: str, name: str, *options: str) -> dict[str, Any]:
    """Run ``script --child name options...`` and return the JSON of its last ``RESULT`` line.

    Raises:
        SystemExit: with the end of the child's error output, when it fails or prints none.
    """
    done = subprocess.run([sys.executable, script, "--child", name, *options],
                          capture_output=True, text=True, check=False)  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"arm {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))
