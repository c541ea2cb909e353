"""Audio: tunelab's audio-classification (scratch-audio) against MFCC logistic regression and
against a plain ``transformers.Trainer`` script, on spoken-commands.

The data is ``tunelab data example spoken-commands`` (ten command words synthesised by
espeak-ng in 120 voices under noise, 1 s 16 kHz WAV class folders; the 12 test voices are never
heard in training), built with the split seed. Arms, each its own process on one CPU thread:

- ``tunelab``: ``tunelab train examples/spoken-commands.yaml``: scratch-audio (a 4-layer AST
  from random weights), augmentation, class weights, the best epoch by validation macro-F1;
  then ``tunelab predict`` on the test folder. The baseline every run fits beside it is the
  MFCC logistic regression (``AudioClassification.baseline_outputs``) on the same splits.
- ``trainer``: a plain Hugging Face ``Trainer`` script (``_trainer_child``) doing the same work
  with the same model: the same randomly initialised AST (the same seed, so the same weights)
  and feature extractor, clips decoded and featurised lazily by a torch ``Dataset``, the same
  epochs, batch size, learning rate, schedule and weight decay, an evaluation and checkpoint
  per epoch with the best one reloaded, then ``trainer.predict`` on the test clips. It has no
  augmentation, doctor, baseline or report.
- ``memory``: ``tunelab train`` for a fixed number of steps with the training file list as it
  is and repeated ten times (a CSV naming each clip ten times), peak resident memory of each
  process: lazy decoding keeps it flat where an eager decode grows with the list.

Training clips/s are the Trainer's ``train_samples_per_second`` (training steps, evaluations
and checkpoints); prediction clips/s time ``tunelab.predict`` (files decoded in the loop) and
``trainer.predict`` (the same) on the 120 test clips, model loading left out. Both are also
given per CPU second of the process (``time.process_time``, training from the Trainer's
``on_train_begin`` to ``on_train_end``): on a machine shared with other work, wall time
stretches with the others' load and CPU time much less.

Usage::

    python benchmarks/audio_commands.py [--epochs 20] [--seed 42]

Writes ``benchmarks/results/audio_commands.json`` and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from arms import peak_mb

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "audio_commands.json"
EXAMPLE = ROOT / "examples" / "spoken-commands.yaml"
SCORES = ("accuracy", "f1_macro")
THREADS = 1
MEMORY_STEPS = 30
REPEATS = 10


def _environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(THREADS), "TUNELAB_TRACEBACK": "1"}


def _config(data: Path, out: Path, seed: int, epochs: float | None) -> dict:
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    config["seed"] = seed
    config["output"] = str(out)
    config["data"].update({s: str(data / s) for s in ("train", "validation", "test")})
    if epochs is not None:
        config["training"]["epochs"] = epochs
    return config


def _run_child(arm: str, config: dict, work: Path) -> dict:
    """One arm in its own process (peak memory is the process's); its JSON result."""
    spec = work / f"{arm}.json"
    spec.write_text(json.dumps(config), encoding="utf-8")
    command = [sys.executable, __file__, "--child", arm, "--spec", str(spec)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=_environment())
    if done.returncode:
        raise SystemExit(f"the {arm} arm failed:\n{done.stderr[-3000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    return {**row, "process_seconds": round(time.perf_counter() - started, 1)}


def _cpu_clock() -> Any:
    """A Trainer callback holding the process's CPU seconds from the start of training to its
    end: the other work on a shared machine stretches wall time, not this process's CPU time
    (one thread)."""
    from transformers import TrainerCallback

    class CpuClock(TrainerCallback):  # type: ignore[misc]
        seconds = 0.0

        def on_train_begin(self, args: object, state: object, control: object, **_: object) -> None:
            self.started = time.process_time()

        def on_train_end(self, args: object, state: object, control: object, **_: object) -> None:
            self.seconds = time.process_time() - self.started

    return CpuClock()


def _rates(clips_trained: float, train_cpu: float, clips_predicted: int, predict_wall: float,
           predict_cpu: float) -> dict:  # fmt: skip
    return {
        "train_clips_per_cpu_second": round(clips_trained / train_cpu, 1),
        "predict_clips_per_second": round(clips_predicted / predict_wall, 1),
        "predict_clips_per_cpu_second": round(clips_predicted / predict_cpu, 1),
    }


def _tunelab_child(config: dict) -> dict:
    """``tunelab train`` on the example config, then ``tunelab predict`` on the test folder."""
    import tunelab

    clock = _cpu_clock()
    result = tunelab.train(config, callbacks=[clock])
    metrics = result["metrics"]
    started, cpu = time.perf_counter(), time.process_time()
    records = tunelab.predict(result["model_dir"], input=config["data"]["test"], batch_size=64)
    predict_seconds, predict_cpu = time.perf_counter() - started, time.process_time() - cpu
    history = json.loads((Path(config["output"]) / "history.json").read_text(encoding="utf-8"))
    epochs = max((h.get("epoch", 0) for h in history), default=0)
    clips = len(list(Path(config["data"]["train"]).rglob("*.wav")))
    return {
        "test": {k: round(metrics["test"][k], 4) for k in SCORES},
        "baseline": {k: round(metrics["baseline"]["test"][k], 4) for k in SCORES},
        "baseline_seconds": metrics["baseline"]["seconds"],
        "train_clips_per_second": metrics["train"]["samples_per_second"],
        "train_seconds": metrics["train"]["optimizer_seconds"],
        "epochs_run": epochs,
        **_rates(clips * epochs, clock.seconds, len(records), predict_seconds, predict_cpu),
        "peak_rss_mb": peak_mb(),
        "warnings": metrics.get("warnings", []),
    }


def _trainer_child(config: dict) -> dict:
    """What a careful user writes with transformers alone (the same work as tunelab's run)."""
    import numpy as np
    import soundfile
    import torch
    from scipy.signal import resample_poly
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import (
        AutoFeatureExtractor,
        AutoModelForAudioClassification,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
    )

    from tunelab.models.scratch import save_scratch_audio

    torch.set_num_threads(THREADS)
    out = Path(config["output"])
    data = {s: Path(config["data"][s]) for s in ("train", "validation", "test")}
    scratch, audio, training = config["model"]["scratch"], config["audio"], config["training"]
    # the same random initial weights as tunelab's scratch-audio (seed, sizes, 1 s window)
    folder = save_scratch_audio(
        out / "scratch-init", audio["max_seconds"], audio["scratch_mel_bins"], scratch["layers"],
        scratch["hidden"], scratch["heads"], seed=config["seed"],
    )  # fmt: skip
    extractor = AutoFeatureExtractor.from_pretrained(folder)
    labels = sorted(p.name for p in data["train"].iterdir() if p.is_dir())
    ids = {label: i for i, label in enumerate(labels)}

    class Clips(torch.utils.data.Dataset):
        def __init__(self, folder: Path) -> None:
            self.files = sorted(folder.rglob("*.wav"))

        def __len__(self) -> int:
            return len(self.files)

        def __getitem__(self, i: int) -> dict:
            samples, rate = soundfile.read(self.files[i], dtype="float32")
            if rate != extractor.sampling_rate:
                samples = resample_poly(samples, extractor.sampling_rate, rate)
            features = extractor(samples, sampling_rate=extractor.sampling_rate,
                                 return_tensors="pt")  # fmt: skip
            name = extractor.model_input_names[0]  # input_features (Whisper), input_values
            return {name: features[name][0], "labels": ids[self.files[i].parent.name]}

    train, validation, test = (Clips(data[s]) for s in ("train", "validation", "test"))
    clock = _cpu_clock()
    torch.manual_seed(config["seed"])
    model = AutoModelForAudioClassification.from_pretrained(
        folder,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=ids,
        ignore_mismatched_sizes=True,  # the initial folder's head has two classes
    )

    def scores(prediction) -> dict:
        predicted = np.argmax(prediction.predictions, axis=-1)
        return {
            "accuracy": accuracy_score(prediction.label_ids, predicted),
            "f1_macro": f1_score(prediction.label_ids, predicted, average="macro"),
        }

    args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=training["epochs"],
        learning_rate=training["learning_rate"],
        per_device_train_batch_size=training["batch_size"],
        per_device_eval_batch_size=64,
        weight_decay=0.01,
        warmup_steps=0.06,
        lr_scheduler_type="linear",
        use_cpu=True,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="f1_macro",
        logging_steps=50,
        seed=config["seed"],
        data_seed=config["seed"],
        report_to="none",
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=validation,
        processing_class=extractor,
        compute_metrics=scores,
        callbacks=[EarlyStoppingCallback(training["early_stopping_patience"]), clock],
    )
    output = trainer.train()
    started, cpu = time.perf_counter(), time.process_time()
    predicted = trainer.predict(test)
    predict_seconds, predict_cpu = time.perf_counter() - started, time.process_time() - cpu
    test_scores = scores(predicted)
    trainer.save_model(str(out / "model"))
    return {
        "test": {k: round(float(test_scores[k]), 4) for k in SCORES},
        "train_clips_per_second": output.metrics["train_samples_per_second"],
        "train_seconds": output.metrics["train_runtime"],
        "epochs_run": round(trainer.state.epoch or 0, 2),
        **_rates(
            len(train) * (trainer.state.epoch or 0),
            clock.seconds,
            len(test),
            predict_seconds,
            predict_cpu,
        ),
        "peak_rss_mb": peak_mb(),
    }


def _memory_child(config: dict) -> dict:
    """``tunelab train`` for a fixed number of steps; the process's peak memory."""
    import tunelab

    result = tunelab.train(config)
    return {"steps": result["metrics"]["train"].get("steps"), "peak_rss_mb": peak_mb()}


def _file_list(train: Path, out: Path, repeats: int) -> Path:
    """A CSV naming every training clip ``repeats`` times (paths relative to the CSV)."""
    import pandas as pd

    files = sorted(train.rglob("*.wav"))
    rows = pd.DataFrame(
        {"audio": [str(p.relative_to(out.parent)) for p in files],
         "label": [p.parent.name for p in files]}
    )  # fmt: skip
    pd.concat([rows] * repeats).to_csv(out, index=False)
    return out


def memory_arms(data: Path, work: Path, seed: int) -> dict:
    """Peak RSS of the same number of training steps on the file list and on it repeated."""
    rows = {}
    clips = len(list((data / "train").rglob("*.wav")))
    for repeats in (1, REPEATS):
        listed = _file_list(data / "train", data / f"train-x{repeats}.csv", repeats)
        config = _config(data, work / f"memory-x{repeats}", seed, None)
        config["data"]["train"] = str(listed)
        config["training"].update(max_steps=MEMORY_STEPS, early_stopping_patience=None)
        row = _run_child("memory", config, work)
        rows[f"x{repeats}"] = {
            "train_rows": clips * repeats,
            "steps": row["steps"],
            "peak_rss_mb": row["peak_rss_mb"],
            "seconds": row["process_seconds"],
        }
    # what holding the decoded clips would take: 1 s of float32 samples at 16 kHz each
    rows["eager_decode_mb_x10"] = round(clips * REPEATS * 16_000 * 4 / 2**20, 1)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=float, default=None, help="override training.epochs")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--child", choices=("tunelab", "trainer", "memory"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one arm in its own process: JSON on the last line
        config = json.loads(args.spec.read_text(encoding="utf-8"))
        child = {"tunelab": _tunelab_child, "trainer": _trainer_child, "memory": _memory_child}
        print(json.dumps(child[args.child](config)))
        return

    from tunelab.data.examples import build_example

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "spoken-commands"
        summary = build_example("spoken-commands", data, args.seed)
        runs = {
            arm: _run_child(arm, _config(data, work / arm, args.seed, args.epochs), work)
            for arm in ("tunelab", "trainer")
        }
        memory = memory_arms(data, work, args.seed)
    config = _config(Path("data/spoken-commands"), Path("runs/spoken-commands"), args.seed,
                     args.epochs)  # fmt: skip
    report = {
        "data": {
            "name": "spoken-commands",
            "rows": summary["rows"],
            "split_seed": args.seed,
            "voices_per_split": summary["voices_per_split"],
        },
        "config": {k: config[k] for k in ("model", "audio", "training")},
        "threads": THREADS,
        "runs": runs,
        "memory": memory,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(table(report))
    print(f"\nwritten to {RESULTS}")


def table(report: dict) -> str:
    """The results as Markdown tables."""
    tunelab, trainer = report["runs"]["tunelab"], report["runs"]["trainer"]
    lines = [
        f"spoken-commands test split ({report['data']['rows']['test']} clips, "
        f"{report['data']['voices_per_split']['test']} unseen voices), one CPU thread\n",
        "| model | accuracy | macro-F1 | train clips/s (per CPU s) | predict clips/s (per CPU s) "
        "| peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in (("tunelab scratch-audio", tunelab), ("plain Trainer, same model", trainer)):
        lines.append(
            f"| {name} | {row['test']['accuracy']:.4f} | {row['test']['f1_macro']:.4f} | "
            f"{row['train_clips_per_second']:.1f} ({row['train_clips_per_cpu_second']:.1f}) | "
            f"{row['predict_clips_per_second']:.1f} ({row['predict_clips_per_cpu_second']:.1f}) "
            f"| {row['peak_rss_mb']:.0f} |"
        )
    base = tunelab["baseline"]
    lines.append(f"| MFCC + logistic regression | {base['accuracy']:.4f} | "
                 f"{base['f1_macro']:.4f} | - | - | - |")  # fmt: skip
    memory = report["memory"]
    lines += [
        f"\npeak RSS over {MEMORY_STEPS} training steps: "
        f"{memory['x1']['train_rows']} clips listed {memory['x1']['peak_rss_mb']:.0f} MB, "
        f"{memory[f'x{REPEATS}']['train_rows']} clips listed "
        f"{memory[f'x{REPEATS}']['peak_rss_mb']:.0f} MB (decoding them all would hold "
        f"{memory['eager_decode_mb_x10']:.0f} MB of samples)"
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
