"""Training-memory estimate vs. measured peak memory, and time estimate vs. measured steps.

Each configuration (model x full fine-tuning / LoRA) runs in a fresh process that imports
everything, reads its resident memory, then builds the model and runs a few training steps
the way the Hugging Face Trainer does on this machine (bf16 autocast forward, backward,
gradient clipping, fused AdamW step, gradients set to None). The measured peak is the
process's peak resident memory (``ru_maxrss``) minus the resident memory before the model
was built: everything the model, its gradients, the optimizer and the activations took,
allocator overhead included, and nothing of Python's or the libraries' own. The estimate
is :func:`tunelab.models.memory.memory_from_config` on the same model config.

Models: the bundled zh-bert-mini (ModernBERT) and zh-llama-mini (Llama, causal LM), and
randomly initialised BERTs of 6x512 and 12x768 (bert-base-chinese's shape).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/memory_estimate.py [--batch-size 16] [--length 128]

Writes ``benchmarks/results/memory_estimate.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = {
    "zh-bert-mini": {"source": "zh-bert-mini", "task": "text-classification"},
    "bert-6x512": {"bert": (6, 512, 8, 2048), "task": "text-classification"},
    "bert-12x768": {"bert": (12, 768, 12, 3072), "task": "text-classification"},
    "zh-llama-mini": {"source": "zh-llama-mini", "task": "causal-lm"},
}
METHODS = ("full", "lora")
# glibc as it comes, and with large blocks always from mmap (returned to the system when
# freed), so that the peak shows the tensors alive at once rather than the heap's high-water
# mark after fragmentation.
ALLOCATORS = {"glibc": {}, "mmap": {"MALLOC_MMAP_THRESHOLD_": "131072"}}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _build(name: str, tiny: bool = False):
    """The benchmark model, or (``tiny``) a 1-layer, 64-wide model of the same classes."""
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        BertConfig,
        BertForSequenceClassification,
    )

    from tunelab.models.load import BUNDLED_MODELS_DIR

    spec = MODELS[name]
    if "bert" in spec:
        layers, hidden, heads, intermediate = (1, 64, 2, 128) if tiny else spec["bert"]
        config = BertConfig(vocab_size=21128, hidden_size=hidden, num_hidden_layers=layers,
                            num_attention_heads=heads, intermediate_size=intermediate,
                            num_labels=2)  # fmt: skip
        return BertForSequenceClassification(config)
    folder = BUNDLED_MODELS_DIR / spec["source"]
    causal = spec["task"] == "causal-lm"
    auto = AutoModelForCausalLM if causal else AutoModelForSequenceClassification
    labels = {} if causal else {"num_labels": 2}
    if tiny:
        shape = {"num_hidden_layers": 1, "hidden_size": 64, "intermediate_size": 128,
                 "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 32}  # fmt: skip
        config = AutoConfig.from_pretrained(folder, **shape, **labels)
        return auto.from_config(config)
    return auto.from_pretrained(folder, **labels)


def _train(model, batch: dict, steps: int) -> list[float]:
    """``steps`` optimizer steps as the Trainer takes them here; seconds per step."""
    import torch

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5, fused=True)
    seconds = []
    for _ in range(steps):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - started)
    return seconds


def _batch(causal: bool, batch_size: int, length: int) -> dict:
    import torch

    batch = {"input_ids": torch.randint(5, 4000, (batch_size, length))}
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    batch["labels"] = batch["input_ids"] if causal else torch.randint(0, 2, (batch_size,))
    return batch


def run_one(name: str, method: str, args: argparse.Namespace) -> dict:
    """Build the model, train ``args.steps`` steps, report peak memory growth and step times."""
    import gc

    import torch
    import transformers
    from transformers.utils import logging as hf_logging

    from tunelab.config import AdapterConfig
    from tunelab.models.adapters import add_adapters

    del transformers
    hf_logging.set_verbosity_error()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    causal = MODELS[name]["task"] == "causal-lm"
    task_type = "CAUSAL_LM" if causal else "SEQ_CLS"

    def build(tiny: bool):
        model = _build(name, tiny)
        model.train()
        if method == "lora":
            model = add_adapters(model, AdapterConfig(method="lora"), task_type)
        return model

    # Building the first model of a class imports its modelling code, and the first step
    # JIT-compiles kernels and starts autograd's machinery: about 200 MB, paid once per
    # process whatever the model's size. A tiny model of the same classes pays it here.
    _train(build(tiny=True), _batch(causal, 2, 16), 2)
    gc.collect()
    batch = _batch(causal, args.batch_size, args.length)
    before = _rss_bytes()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    model = build(tiny=False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    seconds = _train(model, batch, args.steps)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    config = (model.get_base_model() if method == "lora" else model).config
    return {
        "measured_peak_bytes": peak - before,
        "rss_before_model": before,
        "peak_before_model": peak_before,
        "step_seconds": seconds,
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in trainable),
        "config": config.to_dict(),
    }


def _estimate(result: dict, name: str, method: str, args: argparse.Namespace) -> dict:
    from transformers import AutoConfig

    from tunelab.models.memory import (
        TRAINING_EFFICIENCY,
        architecture_from_config,
        matmul_flops_per_second,
        memory_from_config,
        training_flops,
    )

    raw = dict(result["config"])
    config = AutoConfig.for_model(raw.pop("model_type"), **raw)
    causal = MODELS[name]["task"] == "causal-lm"
    estimate = memory_from_config(config, args.batch_size, args.length, method, lm_head=causal)
    arch = architecture_from_config(config)
    flops = training_flops(arch, args.batch_size * args.length, args.length, method, causal)
    speed = matmul_flops_per_second("bf16") * TRAINING_EFFICIENCY["cpu", method]
    steps = result["step_seconds"][1:]  # the first step also sets up kernels and AdamW state
    return {
        "estimate_bytes": estimate.peak,
        "estimate_tensors_bytes": estimate.tensors,
        "tensors_over_measured_mmap": estimate.tensors / result["measured_peak_bytes_mmap"],
        "estimate_parts_bytes": {
            "weights": estimate.weights,
            "gradients": estimate.gradients,
            "optimizer": estimate.optimizer,
            "activations": estimate.activations,
            "allocator": estimate.allocator,
        },
        "estimated_parameters": estimate.parameters,
        "estimated_trainable": estimate.trainable,
        "estimate_over_measured": estimate.peak / result["measured_peak_bytes"],
        "measured_step_seconds": sum(steps) / len(steps),
        "estimated_step_seconds": flops / speed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:  # child process: one configuration, JSON on the last line
        print(json.dumps(run_one(*args.child, args)))
        return

    import torch

    torch.set_num_threads(1)
    results = {}
    for name in args.models.split(","):
        for method in METHODS:
            result = {}
            for allocator, extra_env in ALLOCATORS.items():
                command = [
                    sys.executable, __file__, "--child", name, method, "--batch-size",
                    str(args.batch_size), "--length", str(args.length), "--steps", str(args.steps),
                ]  # fmt: skip
                env = {**os.environ, "OMP_NUM_THREADS": "1", **extra_env}
                done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
                child = json.loads(done.stdout.strip().splitlines()[-1])
                if not result:
                    result = child
                result[f"measured_peak_bytes_{allocator}"] = child["measured_peak_bytes"]
            result["measured_peak_bytes"] = result["measured_peak_bytes_glibc"]
            result.update(_estimate(result, name, method, args))
            del result["config"]
            results[f"{name}/{method}"] = result
            print(name, method, {k: v for k, v in result.items() if "bytes" in k or "sec" in k},
                  file=sys.stderr)  # fmt: skip

    mib = 2**20
    rows = [
        "| model | parameters | method | estimate (MiB) | measured peak (MiB) | estimate / "
        "measured | tensors est. (MiB) | peak, mmap (MiB) | tensors / mmap peak | "
        "step time est. / measured (s) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, r in results.items():
        name, method = key.split("/")
        rows.append(
            f"| {name} | {r['parameters'] / 1e6:.1f}M | {method} | {r['estimate_bytes'] / mib:.0f} "
            f"| {r['measured_peak_bytes'] / mib:.0f} | {r['estimate_over_measured']:.2f} | "
            f"{r['estimate_tensors_bytes'] / mib:.0f} | {r['measured_peak_bytes_mmap'] / mib:.0f} "
            f"| {r['tensors_over_measured_mmap']:.2f} | "
            f"{r['estimated_step_seconds']:.2f} / {r['measured_step_seconds']:.2f} |"
        )
    print("\n".join(rows))
    out = HERE / "results" / "memory_estimate.json"
    out.parent.mkdir(exist_ok=True)
    settings = {"batch_size": args.batch_size, "length": args.length, "steps": args.steps,
                "precision": "bf16 autocast", "threads": 1, "optimizer": "AdamW (fused)",
                "lora": "r=8 on every block linear layer (tunelab's default)"}  # fmt: skip
    out.write_text(json.dumps({"settings": settings, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
