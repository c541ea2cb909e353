"""Turn what ``benchmarks/gpu_speed.sh`` brought back from a lent GPU into results files.

A device call returns at most 8 files and stops at its time limit, so the training JSON may
not come back; each arm's result is also a line of the step's log (``en-sst2 0 tunelab
{...}``), and those lines are what this reads. py-spy profiles (``profile-ARM.txt.gz``, raw
collapsed stacks sampled 100 times a second, idle time not sampled) become the active seconds
of each phase of the arm's process.

Usage::

    python benchmarks/gpu_results.py /work/.device/1 /work/.device/2 ...

Writes ``benchmarks/results/train_speed-gpu.json`` (with the profiles) and copies
``predict_speed-gpu.json``.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

from train_speed import summary

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RUN_LINE = re.compile(r"^(en-sst2|zh-sentiment) (\d+) (\w+) (\{.*\})$")
# the phases of a training process: stacks holding a frame that matches each of the patterns
PHASES = {
    "module imports": r"^<module> \((?!train_speed)",
    "training loop (Trainer.train)": r"^Trainer\.train \(",
    "  forward passes (compute_loss)": r"^Trainer\.compute_loss \(",
    "    of which attention (sdpa_attention_forward)": (
        r"^Trainer\.compute_loss \(",
        r"^sdpa_attention_forward \(",
    ),
    "tunelab: model and tokenizer load": r"^load_model \(tunelab/",
    "tunelab: scoring (test predictions, baseline)": r"^score \(tunelab/",
    "tunelab: TF-IDF baseline": r"^linear_baseline \(tunelab/",
    "tunelab: saving the run (report, explanations, model)": r"^save_run \(tunelab/",
    "script: test predictions (Trainer.predict)": r"^Trainer\.predict \(",
}


def runs_from_logs(folders: list[Path]) -> dict[str, dict[str, list[dict]]]:
    """Every arm result line in the folders' step logs, by data set and arm."""
    found: dict[str, dict[str, list[dict]]] = {}
    for folder in folders:
        for log in sorted(folder.glob("train-*.log")):
            for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
                match = RUN_LINE.match(line.strip())
                if match:
                    data, _, arm, result = match.groups()
                    found.setdefault(data, {}).setdefault(arm, []).append(ast.literal_eval(result))
    return found


def profile_phases(path: Path) -> dict[str, float]:
    """Active seconds of each phase in a raw py-spy profile sampled 100 times a second."""
    seconds: Counter[str] = Counter()
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as lines:
        for line in lines:
            stack, _, count = line.rstrip().rpartition(" ")
            if not count.isdigit():
                continue
            frames = stack.split(";")
            for phase, patterns in PHASES.items():
                wanted = (patterns,) if isinstance(patterns, str) else patterns
                if all(any(re.search(p, frame) for frame in frames) for p in wanted):
                    seconds[phase] += int(count)
    return {phase: round(n / 100, 2) for phase, n in seconds.items()}


def main() -> None:
    folders = [Path(name) for name in sys.argv[1:]]
    machine = next((f / "machine.txt" for f in folders if (f / "machine.txt").is_file()), None)
    out: dict = {"machine": machine.read_text(encoding="utf-8").strip() if machine else None}
    for data, runs in runs_from_logs(folders).items():
        out[data] = {"runs": runs, "arms_measured": list(runs), **summary(runs)}
    profiles = {}
    for folder in folders:
        for path in sorted(folder.glob("profile-*.txt.gz")):
            profiles[path.name.removeprefix("profile-").split(".")[0]] = profile_phases(path)
        if (folder / "predict_speed-gpu.json").is_file():
            shutil.copy(folder / "predict_speed-gpu.json", RESULTS / "predict_speed-gpu.json")
    if profiles:
        out["en-sst2_profiles_active_seconds"] = profiles
    (RESULTS / "train_speed-gpu.json").write_text(json.dumps(out, indent=1) + "\n",
                                                   encoding="utf-8")  # fmt: skip
    print(json.dumps({k: v for k, v in out.items() if k != "machine"}, indent=1)[:6000])


if __name__ == "__main__":
    main()
