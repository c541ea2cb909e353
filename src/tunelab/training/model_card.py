"""The README.md model card written beside every pretrained model."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from tunelab.outputs import write_text


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


SAMPLE_PROMPTS = ["中国", "今天", "这本书", "质量"]


def generate_samples(model: Any, tokenizer: Any, prompts: list[str] = SAMPLE_PROMPTS) -> list[str]:
    """Greedy continuations (40 new tokens) of a few prompts, to show what a causal LM learned."""
    import torch

    model.eval()
    samples = []
    with torch.inference_mode():
        for prompt in prompts:
            ids = tokenizer(prompt, return_tensors="pt").to(model.device)
            out = model.generate(
                **ids, max_new_tokens=40, do_sample=False, repetition_penalty=1.2,
                pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
            samples.append(tokenizer.decode(out[0], skip_special_tokens=True))
    return samples


def _earlier_stage_rows(figures: dict[str, Any]) -> list[str]:
    """Table rows for the stages a continued model went through before this run."""
    rows = []
    for number, stage in enumerate(figures.get("earlier_stages", []), start=1):
        perplexity = stage.get("held_out_perplexity")
        parts = [
            f"{stage['steps']} steps",
            f"{stage['tokens_seen']:,} tokens",
            f"{stage['seconds'] / 60:.1f} min",
            *([f"held-out perplexity {perplexity:.2f}"] if perplexity is not None else []),
        ]
        rows.append(f"| earlier stage {number} | {', '.join(parts)} |")
    if rows:
        rows.append(f"| tokens seen, all stages | {figures['tokens_seen_all_stages']:,} |")
    return rows


def write_model_card(
    folder: Path, name: str, config: Any, figures: dict[str, Any], command: str | None
) -> None:
    """Write ``README.md``: corpus, architecture, the command that re-creates the model,
    steps, tokens seen, held-out perplexity and the sha256 of each weight and tokenizer file."""
    arch = config.architecture
    shape = (
        f"continued from `{config.from_model}`"
        if config.from_model
        else f"{arch.layers} layers, hidden {arch.hidden}, {arch.heads} heads, "
        f"feed-forward {arch.intermediate or 'default'}, up to {arch.max_positions} positions"
    )
    perplexity = figures.get("held_out_perplexity")
    files = sorted(p for p in folder.iterdir() if p.suffix in {".safetensors", ".json"})
    lines = [
        f"# {name}",
        "",
        f"A {figures['architecture']} ({figures['parameters'] / 1e6:.2f}M parameters) pretrained "
        f"by tunelab with the {'masked' if config.objective == 'mlm' else 'causal'}-LM objective.",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | {shape} |",
        f"| vocabulary | {figures['vocab_size']} tokens |",
        f"| corpus | {', '.join(str(p) for p in config.data)}: "
        f"{figures['documents']['train']} training documents, "
        f"{figures['characters']:,} characters in all |",
        f"| held-out documents | {figures['documents']['held_out']} |",
        f"| block size | {config.block_size} tokens |",
        f"| steps | {figures['steps']} (batch {config.training.batch_size}) |",
        f"| tokens seen | {figures['tokens_seen']:,} |",
        *_earlier_stage_rows(figures),
        "| held-out perplexity | "
        + (f"{perplexity:.2f}" if perplexity is not None else "n/a (nothing held out)")
        + " |",
        f"| precision | {figures['precision']} |",
        f"| wall time | {figures['seconds'] / 60:.1f} min |",
        "",
        "Re-create it with:",
        "",
        "```bash",
        command or "tunelab pretrain pretrain.yaml",
        "```",
        "",
        "`pretrain.yaml` beside this file holds the full resolved config.",
        "",
        *(
            [
                "Greedy samples (prompt, then 40 generated tokens):",
                "",
                "```",
                *figures["samples"],
                "```",
                "",
            ]
            if figures.get("samples")
            else []
        ),
        "| file | sha256 |",
        "|---|---|",
        *(f"| {p.name} | `{sha256(p)}` |" for p in files),
        "",
    ]
    write_text(folder / "README.md", "\n".join(lines))
