"""The spoken-commands example: ten command words synthesised with espeak-ng in 120 voices,
at varied speeds and pitches, placed at a random moment of a one-second clip under noise.

Each voice (an accent with a voice variant: en-us+f3, en-gb-scotland+m2, ...) says every word
once, and a voice's clips stay in one split, so the test split holds voices training never
heard. Every random choice comes from the seed: the same seed writes the same files.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.data.audio import resample
from tunelab.data.split import split_frame
from tunelab.errors import UserError
from tunelab.outputs import write_json

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan")
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "Alex", "Annie", "Andy", "Denis",
)  # fmt: skip
SPEED_WPM = (120, 220)  # espeak-ng -s: words per minute
PITCH = (20, 80)  # espeak-ng -p: 0-99, 50 its default
SNR_DB = (5.0, 30.0)  # white noise this far below the word's level
RATE = 16_000
SECONDS = 1.0  # every clip, as in Speech Commands; a longer word keeps its length
TRIM_LEVEL = 0.01  # espeak-ng's leading and trailing silence is trimmed below this


def espeak_command() -> str:
    """The espeak-ng executable.

    Raises:
        UserError: naming the Debian package to install when it is missing.
    """
    found = shutil.which("espeak-ng")
    if found is None:
        raise UserError(
            "spoken-commands synthesises its clips with espeak-ng, which is not installed; "
            "install the Debian package espeak-ng (apt-get install espeak-ng)"
        )
    return found


def clip_plan(
    seed: int, accents: tuple[str, ...] = ACCENTS, variants: tuple[str, ...] = VARIANTS
) -> pd.DataFrame:
    """One row per clip: word, voice, speed, pitch, SNR, level and where the word starts."""
    rng = np.random.default_rng(seed)
    rows = [
        {"label": word, "voice": f"{accent}+{variant}"}
        for accent in accents
        for variant in variants
        for word in WORDS
    ]
    frame = pd.DataFrame(rows)
    count = len(frame)
    frame["speed"] = rng.integers(SPEED_WPM[0], SPEED_WPM[1] + 1, count)
    frame["pitch"] = rng.integers(PITCH[0], PITCH[1] + 1, count)
    frame["snr_db"] = rng.uniform(*SNR_DB, count).round(1)
    frame["peak"] = rng.uniform(0.2, 0.9, count).round(3)
    frame["start"] = rng.uniform(0.0, 1.0, count).round(3)  # share of the spare time before it
    frame["noise_seed"] = rng.integers(0, 2**31, count)
    frame.index = pd.RangeIndex(1, count + 1)
    frame.attrs["source"] = "the spoken-commands plan"
    return frame


def _speak(command: str, row: pd.Series) -> np.ndarray:
    import soundfile

    done = subprocess.run(
        [command, "-v", row["voice"], "-s", str(row["speed"]), "-p", str(row["pitch"]),
         "--stdout", row["label"]],
        capture_output=True, timeout=60,
    )  # fmt: skip
    if done.returncode or not done.stdout:
        why = done.stderr.decode(errors="replace").strip().splitlines()[:1] or ["no sound"]
        raise UserError(
            f"espeak-ng could not speak '{row['label']}' in voice {row['voice']} ({why[0]}); "
            "check that the installed espeak-ng has its English voices and variants "
            "(espeak-ng --voices=en)"
        )
    samples, rate = soundfile.read(io.BytesIO(done.stdout), dtype="float32")
    return resample(samples, rate, RATE)


def synthesise(command: str, row: pd.Series) -> np.ndarray:
    """The clip of one plan row: the spoken word trimmed, scaled to its peak, placed in a
    one-second clip and mixed with white noise at its SNR."""
    speech = _speak(command, row)
    loud = np.flatnonzero(np.abs(speech) > TRIM_LEVEL * np.abs(speech).max())
    speech = speech[loud[0] : loud[-1] + 1] if len(loud) else speech
    speech = speech * (row["peak"] / max(float(np.abs(speech).max()), 1e-9))
    length = max(round(SECONDS * RATE), len(speech))
    start = round(row["start"] * (length - len(speech)))
    clip = np.zeros(length, dtype=np.float32)
    clip[start : start + len(speech)] = speech
    level = float(np.sqrt(np.mean(np.square(speech, dtype=np.float64))))
    noise = np.random.default_rng(int(row["noise_seed"])).normal(0, 1, length)
    clip += (noise * level / 10 ** (row["snr_db"] / 20)).astype(np.float32)
    return np.clip(clip, -1.0, 1.0)


def build_spoken_commands(
    out: Path,
    seed: int = 42,
    accents: tuple[str, ...] = ACCENTS,
    variants: tuple[str, ...] = VARIANTS,
) -> dict[str, Any]:
    """Write the spoken-commands set as 16 kHz mono WAV files in class folders:
    ``out/{train,validation,test}/<word>/<voice>-<n>.wav``, 10% of the voices held out for
    validation and 10% for test, and a ``dataset.json`` card.

    Args:
        out: the folder to write.
        seed: fixes every random choice and the split.
        accents, variants: the voices are every accent with every variant (fewer for tests).

    Raises:
        UserError: if espeak-ng is not installed or cannot speak in a voice.
    """
    import soundfile

    command = espeak_command()
    plan = clip_plan(seed, accents, variants)
    splits = split_frame(plan, {"validation": 0.1, "test": 0.1}, seed, groups=plan["voice"])
    jobs = [
        (out / split / row["label"] / f"{row['voice'].replace('+', '-')}-{number:04d}.wav", row)
        for split, part in splits.items()
        for number, row in part.iterrows()
    ]
    for path, _ in jobs:
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(job: tuple[Path, pd.Series]) -> float:
        path, row = job
        clip = synthesise(command, row)
        soundfile.write(path, clip, RATE, subtype="PCM_16")
        return len(clip) / RATE

    # espeak-ng runs as a process per word: threads keep the cores busy
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        seconds = list(pool.map(write, jobs))
    summary = {
        "name": "spoken-commands",
        "source": "synthesised on this machine with espeak-ng ("
        + subprocess.run([command, "--version"], capture_output=True, text=True).stdout.strip()
        + ")",
        "words": list(WORDS),
        "voices": {
            "accents": list(accents),
            "variants": list(variants),
            "count": len(accents) * len(variants),
        },
        "speed_wpm": list(SPEED_WPM),
        "pitch": list(PITCH),
        "noise": f"white, {SNR_DB[0]:g}-{SNR_DB[1]:g} dB below the word",
        "sampling_rate": RATE,
        "seconds": {"min": round(min(seconds), 3), "max": round(max(seconds), 3)},
        "split": "by voice: a voice's clips are all in one split",
        "split_seed": seed,
        "rows": {split: len(part) for split, part in splits.items()},
        "voices_per_split": {split: int(part["voice"].nunique()) for split, part in splits.items()},
        "labels": {
            split: part["label"].value_counts().sort_index().to_dict()
            for split, part in splits.items()
        },
    }
    write_json(out / "dataset.json", summary)
    return summary
