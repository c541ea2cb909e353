"""How much arithmetic a run does and how much the machine could do: FLOPs per token, the
machine's measured matrix-multiply peak, model FLOPs utilisation (MFU), and the precision that
trains fastest on this CPU.

FLOPs per token follow nanoGPT/PaLM: a training step costs ``6 N + 12 L T d`` per token, where
``N`` counts the weights of the model's matrix multiplications (every linear layer, the output
head included; embedding lookups are free), ``L`` the layers, ``T`` the sequence length the
attention sees and ``d`` the attention width (heads times head size). A frozen weight (the
base model under LoRA) costs ``4`` a token instead of ``6``: forward and the gradient of its
input, none of its own.

Measurements that take seconds (the peak, the precision probe) are cached on disk per machine
(CPU model and its bf16 matrix units, or GPU name; torch version; threads), so a run pays for
them once.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("tunelab")

# dense bf16 peaks from the vendors' spec sheets (FLOP/s); others are measured
GPU_BF16_PEAKS = {"H200": 989.5e12, "H100": 989.5e12, "A100": 312e12, "L40S": 362e12}
PROBE_SECONDS = 0.4
BF16_MARGIN = 1.1  # bf16 autocast must train this much faster than fp32 to be chosen
MATRIX_UNITS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags that change the bf16 peak


def matmul_weights(model: Any, trained: bool | None = None) -> int:
    """Weights of the model's matrix multiplications: every ``nn.Linear`` (and GPT-2's
    ``Conv1D``), counting a weight shared by two layers (a tied output head) once per use;
    ``trained``: only those that get gradients (True) or only frozen ones (False)."""
    import torch
    from transformers.pytorch_utils import Conv1D

    return sum(
        module.weight.numel()
        for module in model.modules()
        if isinstance(module, (torch.nn.Linear, Conv1D))
        and (trained is None or module.weight.requires_grad == trained)
    )


def attention_width(config: Any) -> tuple[int, int]:
    """(layers, attention width) from a transformers config; (0, 0) if it has no attention."""
    config = getattr(config, "text_config", None) or config
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", 0)
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", 0)
    hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", 0)
    head_dim = getattr(config, "head_dim", None) or (hidden // heads if heads else 0)
    return int(layers or 0), int(heads * head_dim)


def flops_text(flops: float) -> str:
    """A FLOP count in the unit that keeps it readable: ``0.07 GFLOP``, ``1.2 MFLOP``."""
    for unit, size in (("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3)):
        if flops >= size:
            return f"{flops / size:.3g} {unit}"
    return f"{flops:.3g} FLOP"


def _output_layer(model: Any) -> Any:
    import torch

    layer = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return layer if isinstance(layer, torch.nn.Linear) else None


def output_weights(model: Any) -> int:
    """Weights of the model's output layer (a causal LM's vocabulary head), 0 if it has none."""
    layer = _output_layer(model)
    return layer.weight.numel() if layer is not None else 0


def training_flops_per_token(
    model: Any, sequence_length: float, output_share: float = 1.0
) -> float:
    """FLOPs of one training step (forward and backward) per token: ``6 N + 12 L T d``, where
    a frozen weight (LoRA's base model) costs 4 rather than 6, having no weight gradient;
    ``output_share``: the share of tokens the output layer runs on (a causal LM trained on
    its answers' logits alone, :mod:`tunelab.tasks.answer_logits`)."""
    layers, width = attention_width(model.config)
    weights = 6.0 * matmul_weights(model, trained=True) + 4.0 * matmul_weights(model, False)
    head = _output_layer(model)
    if head is not None:  # the positions it does not run on
        per_weight = 6.0 if head.weight.requires_grad else 4.0
        weights -= (1.0 - output_share) * per_weight * head.weight.numel()
    return weights + 12.0 * layers * sequence_length * width


def _cache_file() -> Path:
    root = Path(os.environ.get("TUNELAB_CACHE") or Path.home() / ".cache" / "tunelab")
    return root / "machine.json"


def machine_key(device: str) -> str:
    """What the cached measurements are kept under: the GPU's name, or the CPU's with the bf16
    matrix units it lists; torch's version; the thread count (benchmarks record it too)."""
    import torch

    if device == "cuda":
        name = torch.cuda.get_device_name()
    else:
        name = platform.processor() or platform.machine()
        cpuinfo = Path("/proc/cpuinfo")
        if cpuinfo.is_file():
            text = cpuinfo.read_text(encoding="utf-8", errors="replace")
            for line in text.splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
            name += matrix_units(text)
    return f"{device}|{name}|torch {torch.__version__}|threads {torch.get_num_threads()}"


def matrix_units(cpuinfo: str) -> str:
    """The bf16 matrix extensions ``/proc/cpuinfo`` lists (`` amx_bf16 avx512_bf16``), for
    the cache key: a virtual machine's CPU is often just "Intel(R) Xeon(R) Processor", and two
    machines of that name, one with AMX and one without, differed 2.6x in their bf16 peak."""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return "".join(f" {unit}" for unit in MATRIX_UNITS if unit in flags)


def _cached(name: str, device: str, measure: Any) -> Any:
    """``measure()`` once per machine, kept in the cache file under ``name``."""
    key = machine_key(device)
    stored = _read_cache()
    if name in stored.get(key, {}):
        return stored[key][name]
    value = measure()
    _store(name, device, value)
    return value


def _read_cache() -> dict[str, Any]:
    try:
        return dict(json.loads(_cache_file().read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _store(name: str, device: str, value: Any) -> None:
    """Keep ``value`` under ``name`` for this machine (atomically; a read-only home: not)."""
    path, stored = _cache_file(), _read_cache()
    stored.setdefault(machine_key(device), {})[name] = value
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(stored, indent=1), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass


def peak_flops(precision: str, device: str = "cpu") -> tuple[float, str]:
    """The machine's matrix-multiply peak in FLOP/s for ``precision`` and where it comes from:
    a GPU's spec sheet (bf16), else a measurement of large products (cached)."""
    import torch

    if device == "cuda" and precision != "fp32":
        name = torch.cuda.get_device_name()
        for model, peak in GPU_BF16_PEAKS.items():
            if model in name:
                return peak, f"{name} spec sheet (dense bf16)"

    measured = _cached(
        _peak_name(precision), device, lambda: measure_matmul_peak(precision, device)
    )
    return float(measured), "measured matmul"


def measure_matmul_peak(precision: str, device: str = "cpu", seconds: float | None = None) -> float:
    """The best large product's FLOP/s in ``precision`` over ``seconds`` (default
    :data:`PROBE_SECONDS`), measured now (:func:`peak_flops` keeps the first per machine)."""
    import torch

    seconds = PROBE_SECONDS if seconds is None else seconds
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    n = 4096 if device == "cuda" else 1024
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    (a @ b).sum().item()
    # the fastest single product, not the mean: other work on a shared machine only
    # ever slows a product down, so the best one is nearest the machine's peak
    best, started = float("inf"), time.perf_counter()
    while time.perf_counter() - started < seconds:
        began = time.perf_counter()
        (a @ b).sum().item()
        best = min(best, time.perf_counter() - began)
    return 2 * n**3 / best


def _peak_name(precision: str) -> str:
    return f"matmul_best_{precision}"


def raise_peak(precision: str, device: str, achieved: float) -> None:
    """A run went faster than the cached peak (it was measured while the machine was busy):
    the peak is at least what was achieved, so keep that instead."""
    _store(_peak_name(precision), device, achieved)


def _step_seconds(bf16: bool) -> float:
    """Seconds per forward and backward pass of a transformer feed-forward block (384 wide,
    2,048 tokens), under bf16 autocast or in fp32: casts and all, as training runs it."""
    import torch

    generator = torch.Generator().manual_seed(0)
    block = torch.nn.Sequential(
        torch.nn.Linear(384, 1536), torch.nn.GELU(), torch.nn.Linear(1536, 384),
        torch.nn.LayerNorm(384),
    )  # fmt: skip
    inputs = torch.randn(2048, 384, generator=generator)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = block(inputs)
        out.float().sum().backward()

    step()
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < PROBE_SECONDS:
        step()
        runs += 1
    return (time.perf_counter() - started) / runs


def cpu_trains_faster_in_bf16() -> bool:
    """Whether bf16 autocast trains faster than fp32 on this CPU, by a timed probe (cached).

    CPUs differ, and their flags do not say by how much: on two 2-core machines this project
    ran on, both reporting AVX512-BF16 and no AMX, a MiniLM training step ran 1.8x slower in
    bf16 on one and 1.5x faster on the other (bf16 products 2.2x fp32's there); with AMX bf16
    is several times fp32. So the choice is timed, not read off the flags.
    """

    def measure() -> dict[str, float]:
        # alternate, so a burst of load elsewhere does not favour one side
        fp32 = min(_step_seconds(False), _step_seconds(False))
        bf16 = min(_step_seconds(True), _step_seconds(True))
        return {"fp32": fp32, "bf16": bf16}

    timed = _cached("train_step_seconds", "cpu", measure)
    faster = timed["fp32"] / timed["bf16"] >= BF16_MARGIN
    log.debug("precision probe: fp32 %.1f ms, bf16 %.1f ms a step", 1e3 * timed["fp32"],
              1e3 * timed["bf16"])  # fmt: skip
    return bool(faster)


def other_cpu_load(own_threads: int) -> float | None:
    """The CPU load others added while this process ran: the 1-minute load average beyond
    this process's own ``own_threads`` (None where the system keeps no load average)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows has none
        return None
    return max(0.0, load - own_threads)


def utilisation(
    model: Any, tokens: float, seconds: float, sequence_length: float, precision: str,
    output_share: float = 1.0, forward_passes: float = 0.0,
) -> dict[str, Any]:  # fmt: skip
    """Tokens/s, FLOPs per token and the share of the machine's peak the training loop used.

    Args:
        tokens: training tokens processed (padding excluded).
        seconds: the training loop's wall time.
        sequence_length: mean tokens per row (the attention term's ``T``).
        output_share: the share of tokens the output layer ran on.
        forward_passes: forward-only work per token besides training, in training passes (a
            preference step's reference model: 1/3).
    """
    device = "cuda" if next(model.parameters()).is_cuda else "cpu"
    per_token = training_flops_per_token(model, sequence_length, output_share)
    per_token *= 1.0 + forward_passes
    kind = "fp32" if precision == "fp32" else "bf16"
    peak, source = peak_flops(kind, device)
    rate = tokens / seconds if seconds > 0 else 0.0
    if peak and rate * per_token > peak and source == "measured matmul":
        peak, source = rate * per_token, "this run (faster than the measured matmul)"
        raise_peak(kind, device, peak)
    return {
        "tokens_per_second": round(rate, 1),
        "flops_per_token": round(per_token),
        "achieved_flops": round(rate * per_token),
        "peak_flops": round(peak),
        "peak_source": f"{source}, {precision if precision != 'fp16' else 'bf16'}",
        "mfu": round(rate * per_token / peak, 4) if peak else None,
    }
