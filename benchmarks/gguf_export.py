"""GGUF round trip of the starter causal model: write each type with ``tunelab export
--format gguf``, load it back with transformers (``gguf_file=``) and compare logits, greedy
answers and tokenizer ids with the PyTorch model.

Usage::

    python benchmarks/gguf_export.py [--model models/zh-llama-mini]

Writes ``benchmarks/results/gguf_export.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    from benchmarks.results_file import write_results

    from tunelab.serving.gguf_export import export_gguf

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(HERE.parent / "models" / "zh-llama-mini"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = export_gguf(args.model, Path(tmp) / "gguf", ("f32", "f16", "q8_0", "q4_0"))
        result["modelfile"] = (Path(tmp) / "gguf" / "Modelfile").read_text()
    result.pop("folder")
    result["model"] = Path(args.model).name
    write_results(HERE / "results" / "gguf_export.json", result)
    print("| type | MB | max abs logit diff | greedy answers equal | tokenizer ids equal |")
    print("|---|---:|---:|---:|---:|")
    for kind, check in result["types"].items():
        print(f"| {kind} | {check['megabytes']} | {check['max_abs_logit_diff']:.2e} | "
              f"{check['greedy_answers_equal']} | {check['tokenizer_ids_equal']} |")  # fmt: skip


if __name__ == "__main__":
    main()
