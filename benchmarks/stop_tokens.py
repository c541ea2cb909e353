"""Does the tuned model stop? The EOS-ending rate before and after the stop-token checks, on a
deliberately broken chat template.

The starter ``zh-llama-mini`` closes assistant turns with ``<|im_end|>``. The broken copy's
template drops that token (answers just end in the text, as in a hand-written template that
forgets the end-of-turn marker). On the same en-zh-l10n pairs:

- **untuned**: the starter as shipped;
- **broken template, checks off** (``generation.check_stop_tokens: false``, what training did
  before the checks): trains, and its answers run on to ``max_new_tokens``;
- **broken template, checks on** (the default): ``tunelab train`` refuses before training,
  naming the problem (the sentence is recorded);
- **template as the error says** (the starter's own, closing turns with ``<|im_end|>``).

The rate is ``eos_ending_share`` in ``metrics.json``: the share of test prompts whose
greedy answer ends with a stop token before ``max_new_tokens``.

Usage::

    python benchmarks/stop_tokens.py [--train-rows 1500] [--test-rows 100] [--epochs 2]

Writes ``benchmarks/results/stop_tokens.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STARTER = ROOT / "models" / "zh-llama-mini"
PROMPT = "Translate into Chinese: "


def broken_copy(folder: Path) -> Path:
    """The starter with ``<|im_end|>`` removed from the assistant turn of its template."""
    shutil.copytree(STARTER, folder)
    template = (folder / "chat_template.jinja").read_text()
    broken = template.replace(
        "{{ message['content'] + '<|im_end|>' }}{% endgeneration %}",
        "{{ message['content'] }}{% endgeneration %}",
    )
    assert broken != template, "the starter's template changed; update this benchmark"
    (folder / "chat_template.jinja").write_text(broken)
    return folder


def untuned(test: object, max_new_tokens: int) -> dict:
    """The starter's answers to the test prompts, scored like a run's."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.tasks.generation import CausalGeneration

    task = CausalGeneration(settings={"prefix": PROMPT, "max_new_tokens": max_new_tokens})
    model = AutoModelForCausalLM.from_pretrained(STARTER)
    tokenizer = AutoTokenizer.from_pretrained(STARTER)
    frame = task.standardize(test)  # type: ignore[arg-type]
    scores = task.evaluate_outputs(task.forward(model, tokenizer, frame, 128, 16), frame)
    return {key: scores.get(key) for key in ("eos_ending_share", "chrf", "generated_length")}


def main() -> None:
    from benchmarks.generation_quality import load
    from benchmarks.results_file import write_results

    import tunelab
    from tunelab.errors import UserError

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-rows", type=int, default=1500)
    parser.add_argument("--test-rows", type=int, default=100)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args()

    train, test = load("en-zh-l10n", args.train_rows, args.test_rows)
    results: dict = {"settings": vars(args), "rows": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        train.to_json(work / "train.jsonl", orient="records", lines=True, force_ascii=False)
        test.to_json(work / "test.jsonl", orient="records", lines=True, force_ascii=False)
        broken = broken_copy(work / "broken-model")

        def config(model: Path, name: str, check: bool, epochs: float) -> dict:
            return {
                "task": "causal-lm",
                "output": str(work / name),
                "data": {"train": str(work / "train.jsonl"), "test": str(work / "test.jsonl")},
                "model": {"name": str(model), "max_length": 128},
                "training": {"epochs": epochs, "learning_rate": 2e-3, "batch_size": 16,
                             "early_stopping_patience": None},
                "generation": {"prefix": PROMPT, "max_new_tokens": args.max_new_tokens,
                               "check_stop_tokens": check},
            }  # fmt: skip

        try:
            tunelab.train(config(broken, "refused", True, args.epochs))
            results["rows"]["broken, checks on"] = {"refused": None}
        except UserError as error:
            results["rows"]["broken, checks on"] = {"refused": str(error)}
        for name, model, epochs in (
            ("broken, checks off", broken, args.epochs),
            ("fixed template", STARTER, args.epochs),
        ):
            run = tunelab.train(config(model, name.replace(" ", "-"), False, epochs))
            scores = run["metrics"]["test"]
            results["rows"][name] = {
                key: scores.get(key)
                for key in ("eos_ending_share", "chrf", "generated_length", "looping_share")
            }
        results["rows"]["untuned starter"] = untuned(test, args.max_new_tokens)
    write_results(HERE / "results" / "stop_tokens.json", results)
    print("| setup | EOS-ending share | chrF |\n|---|---:|---:|")
    for name, row in results["rows"].items():
        if "refused" in row:
            print(f"| {name} | refused: {row['refused']} | |")
        else:
            print(f"| {name} | {row['eos_ending_share']} | {row.get('chrf')} |")


if __name__ == "__main__":
    main()
