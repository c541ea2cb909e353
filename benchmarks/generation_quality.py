"""Generation quality on en-zh-l10n (translation) and man-summary (summarisation).

On the same test rows of each data set:

- **translation memory**: the target of the most similar training source (TF-IDF over
  word 1-2-grams and character 2-4-grams, cosine) — what a localisation tool suggests;
- **zh-llama-mini, untuned**: the starter causal model asked through its chat template;
- **zh-llama-mini, instruction-tuned**: ``tunelab train`` with ``task: causal-lm`` on the
  training pairs (packing on);
- **zh-llama-mini, LoRA**: the same with ``peft.method: lora`` (rank 16, every linear
  layer of the blocks) at a LoRA learning rate;
- **seq2seq from scratch**: a 2+2-layer BART of the same width with the starter's BPE
  tokenizer, trained by ``tunelab train`` with ``task: seq2seq`` on the same pairs (there is
  no pretrained seq2seq starter, and ModernBERT has no cross-attention to warm-start
  ``EncoderDecoderModel`` from ``zh-bert-mini``).

Scored with :func:`tunelab.evaluation.generation.generation_metrics` (chrF, ROUGE-L, BLEU).

Usage::

    python benchmarks/generation_quality.py [--train-rows 4000] [--test-rows 300] [--epochs 2]

Writes ``benchmarks/results/generation_quality.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROMPTS = {
    "en-zh-l10n": "Translate into Chinese: ",
    "man-summary": "Summarise in one line: ",
}


def load(name: str, train_rows: int, test_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = ROOT / "data" / name
    if not (folder / "train.jsonl").is_file():
        from tunelab.data.examples import build_example

        build_example(name, folder)
    train = pd.read_json(folder / "train.jsonl", lines=True)
    test = pd.read_json(folder / "test.jsonl", lines=True)
    train = train.sample(n=min(train_rows, len(train)), random_state=0)
    return train, test.sample(n=min(test_rows, len(test)), random_state=0)


def translation_memory(train: pd.DataFrame, test: pd.DataFrame) -> list[str]:
    """The target of each test source's nearest training source."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(train["source"])
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
    chars.fit(train["source"])

    def vectors(texts: pd.Series):
        return hstack([words.transform(texts), chars.transform(texts)]).tocsr()

    similarity = vectors(test["source"]) @ vectors(train["source"]).T
    nearest = similarity.argmax(axis=1).A.ravel()
    return train["target"].iloc[nearest].tolist()


def untuned(test: pd.DataFrame, prompt: str) -> list[str]:
    """The starter causal model answering through its chat template, no tuning: the same
    prompts and decoding as the tuned model's predictions."""
    from tunelab.chat import load_chat_model
    from tunelab.tasks.generation import CausalGeneration

    model, tokenizer, _ = load_chat_model("zh-llama-mini")
    task = CausalGeneration(settings={"prefix": prompt, "max_new_tokens": 64})
    return task.forward(model, tokenizer, task.standardize(test), 256, 32, "bf16")


def scratch_bart(out: Path) -> Path:
    """A randomly initialised 2+2-layer BART (width 256) with the starter's BPE tokenizer."""
    import torch
    from transformers import AutoTokenizer, BartConfig, BartForConditionalGeneration

    from tunelab.models.load import resolve_model_source

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_source("zh-llama-mini"))
    config = BartConfig(
        vocab_size=len(tokenizer), d_model=256, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=683,
        decoder_ffn_dim=683, max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.bos_token_id, forced_eos_token_id=None,
    )  # fmt: skip
    BartForConditionalGeneration(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def tuned(task: str, model: str, train: pd.DataFrame, test: pd.DataFrame, folder: Path,
          prompt: str, epochs: float, learning_rate: float,
          peft: dict | None = None) -> tuple[list[str], float]:  # fmt: skip
    """Outputs of ``tunelab train`` on the training pairs, and its training seconds."""
    import tunelab

    train.to_json(folder / "train.jsonl", orient="records", lines=True, force_ascii=False)
    test.to_json(folder / "test.jsonl", orient="records", lines=True, force_ascii=False)
    result = tunelab.train(
        {
            "task": task,
            "output": str(folder / f"run-{task}"),
            "seed": 0,
            "data": {
                "train": str(folder / "train.jsonl"),
                "test": str(folder / "test.jsonl"),
                "split": {"validation": 0.05, "test": 0.0},
            },
            "model": {"name": model, "max_length": 256},
            "training": {
                "epochs": epochs,
                "learning_rate": learning_rate,
                "batch_size": 16,
                "logging_steps": 1000,
            },
            "generation": {"prefix": prompt, "max_new_tokens": 64},
            "peft": peft or {},
        }
    )
    records = [json.loads(line) for line in (folder / f"run-{task}" / "predictions.jsonl").open()]
    return [r["output"] for r in records], result["metrics"]["train"]["seconds"]


SETUPS = (
    "translation memory (TF-IDF nearest source)",
    "zh-llama-mini, untuned",
    "zh-llama-mini, instruction-tuned",
    "zh-llama-mini, LoRA r=16",
    "seq2seq BART 2+2, from scratch",
)


def produce(
    setup: str, train: pd.DataFrame, test: pd.DataFrame, folder: Path, prompt: str, epochs: float
) -> tuple[list[str], float]:
    """Outputs of one setup on the test rows, and its training seconds."""
    if setup == SETUPS[0]:
        return translation_memory(train, test), 0.0
    if setup == SETUPS[1]:
        return untuned(test, prompt), 0.0
    if setup == SETUPS[2]:
        return tuned("causal-lm", "zh-llama-mini", train, test, folder, prompt, epochs, 5e-4)
    if setup == SETUPS[3]:
        lora = {"method": "lora", "r": 16, "alpha": 32}
        return tuned("causal-lm", "zh-llama-mini", train, test, folder, prompt, epochs, 3e-3, lora)
    bart = str(scratch_bart(folder / "bart"))
    return tuned("seq2seq", bart, train, test, folder, "", epochs, 1e-3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="en-zh-l10n,man-summary")
    parser.add_argument("--train-rows", type=int, default=4000)
    parser.add_argument("--test-rows", type=int, default=300)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--skip", default="", help="setups to leave out, comma-separated")
    parser.add_argument(
        "--only", default="", help="run only setups containing this; keep the others' results"
    )
    args = parser.parse_args()
    from tunelab.evaluation.generation import generation_metrics

    out = HERE / "results" / "generation_quality.json"
    results: dict[str, dict] = {}
    if args.only and out.is_file():
        results = json.loads(out.read_text())["results"]
    for name in args.datasets.split(","):
        train, test = load(name, args.train_rows, args.test_rows)
        folder = Path(tempfile.mkdtemp(prefix=f"gen-{name}-", dir=ROOT / "runs"))
        references = test["target"].tolist()
        prompt = PROMPTS[name]
        previous = results.get(name, {})
        results[name] = {}
        for setup in SETUPS:
            if args.only and args.only not in setup:
                if setup in previous:
                    results[name][setup] = previous[setup]
                continue
            if any(skip and skip in setup for skip in args.skip.split(",")):
                continue
            started = time.time()
            outputs, train_seconds = produce(setup, train, test, folder, prompt, args.epochs)
            scores = generation_metrics(outputs, references)
            results[name][setup] = {
                **{k: scores[k] for k in ("chrf", "rougeL", "bleu", "exact_match")},
                "train_seconds": train_seconds,
                "seconds": round(time.time() - started, 1),
                "samples": [
                    {"source": s[:200], "reference": r, "output": o}
                    for s, r, o in list(zip(test["source"], references, outputs, strict=True))[:3]
                ],
            }
            rounded = {k: round(v, 3) for k, v in scores.items() if isinstance(v, float)}
            print(name, setup, rounded, flush=True)
    lines = [
        "| data set | setup | chrF | ROUGE-L | BLEU | exact match |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, rows in results.items():
        for setup, r in rows.items():
            lines.append(f"| {name} | {setup} | {r['chrf']:.1f} | {r['rougeL']:.3f} | "
                         f"{r['bleu']:.1f} | {r['exact_match']:.3f} |")  # fmt: skip
    print("\n".join(lines))
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"setup": vars(args), "results": results}, indent=2,
                              ensure_ascii=False) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
