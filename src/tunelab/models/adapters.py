"""Parameter-efficient fine-tuning through PEFT: LoRA, QLoRA, IA3, prompt and prefix tuning.

The base model stays frozen; small added weights (and the task's new head) train. The
target modules are found in the model itself, so any architecture works, not only the
ones PEFT has a table for.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.config import AdapterConfig
from tunelab.errors import UserError
from tunelab.models.load import from_pretrained

if TYPE_CHECKING:  # the protocol only: the adapters are below the tasks
    from tunelab.tasks.base import Task

log = logging.getLogger("tunelab")

# PEFT's task types, by the Auto class a tunelab task builds.
TASK_TYPES = {
    "AutoModelForSequenceClassification": "SEQ_CLS",
    "AutoModelForTokenClassification": "TOKEN_CLS",
    "AutoModelForSeq2SeqLM": "SEQ_2_SEQ_LM",
    "AutoModelForCausalLM": "CAUSAL_LM",
    "SentenceTransformerLoader": "FEATURE_EXTRACTION",
    # PEFT has no type for these: a plain PeftModel, with the new head trained in full
    "AutoModelForImageClassification": "IMAGE_CLS",
    "AutoModelForAudioClassification": "AUDIO_CLS",
    "AutoModelForImageTextToText": "IMAGE_TO_TEXT",
}
HEAD_TASK_TYPES = ("SEQ_CLS", "TOKEN_CLS", "IMAGE_CLS", "AUDIO_CLS")  # a new head beside adapters
PROMPT_METHODS = ("prompt-tuning", "prefix-tuning")
# IA3 rescales keys, values and the input of each block's feed-forward down-projection.
_KEY_VALUE = re.compile(r"(^|\.)(k|v|k_proj|v_proj|key|value|Wqkv|qkv|query_key_value|c_attn)$")
_FEEDFORWARD_DOWN = re.compile(
    r"(^|\.)(down_proj|fc2|w2|wo|fc_out|dense_4h_to_h|mlp\.Wo|mlp\.c_proj|(?<!attention\.)output\.dense)$"
)


def check_adapter_settings(settings: AdapterConfig, task: Task) -> None:
    """Reject combinations that cannot work, before any model is loaded.

    Raises:
        UserError: naming the ``peft.*`` key and what to do instead.
    """
    if settings.method == "none":
        return
    try:
        import peft  # noqa: F401
    except ImportError:
        raise UserError(
            f"peft.method={settings.method} needs the peft package; pip install peft"
        ) from None
    if settings.method == "qlora":
        import torch

        if not torch.cuda.is_available():
            raise UserError(
                "peft.method=qlora loads the base model in 4 bits through bitsandbytes, which "
                "needs a CUDA GPU; none is available here, so use peft.method=lora"
            )
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise UserError(
                "peft.method=qlora needs the bitsandbytes package; pip install bitsandbytes"
            ) from None
    if settings.method in PROMPT_METHODS and not task.takes_virtual_tokens:
        raise UserError(
            f"peft.method={settings.method} adds virtual tokens, which {task.name} cannot "
            f"use (they have no tags, pixels or pooled text); use peft.method=lora or ia3"
        )
    if settings.method in PROMPT_METHODS and task.packs_rows:
        raise UserError(
            f"peft.method={settings.method} prepends virtual tokens to every row, which packed "
            "rows cannot share; set generation.packing=false"
        )


def quantization_kwargs(settings: AdapterConfig) -> dict[str, Any]:
    """``from_pretrained`` arguments that load the base model in 4 bits (QLoRA), else none."""
    if settings.method != "qlora":
        return {}
    import torch
    from transformers import BitsAndBytesConfig

    return {
        "quantization_config": BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    }


def head_modules(model: Any, task_type: str) -> list[str]:
    """Modules that train in full beside the adapters: the task's head (outside the
    pretrained body) and any body layer the checkpoint lacked (a masked-LM BERT has no
    pooler), which would otherwise stay at a random initialisation that is not saved."""
    if task_type not in HEAD_TASK_TYPES:
        return []
    from transformers import PreTrainedModel

    children = dict(model.named_children())
    prefix = getattr(model, "base_model_prefix", "")
    # the body under its prefix (bert, vit, wav2vec2); Whisper's audio classifier keeps its
    # body as "encoder" under a prefix it lacks: then the children that are models themselves
    bodies = {prefix} if prefix in children else {
        name for name, child in children.items() if isinstance(child, PreTrainedModel)
    }  # fmt: skip
    heads = [
        name
        for name, child in children.items()
        if name not in bodies and any(True for _ in child.parameters())
    ]
    fresh = {
        key.rpartition(".")[0]
        for key in getattr(model, "tunelab_new_weights", [])
        if key.split(".")[0] in bodies
    }
    return heads + sorted(fresh)


def _module_pattern(names: list[str]) -> str:
    """One regular expression matching ``names`` with layer numbers generalised."""
    patterns = sorted(
        {
            r"\.".join(r"\d+" if part.isdigit() else re.escape(part) for part in name.split("."))
            for name in names
        }
    )
    return "|".join(patterns)


def block_linear_layers(model: Any, excluded: list[str]) -> list[str]:
    """Names of the linear layers of the model's body: not the output embedding, not a head."""
    import torch
    from transformers.pytorch_utils import Conv1D

    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    skip = [*excluded]
    for name, module in model.named_modules():
        if output is not None and module is output:
            skip.append(name)
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, (torch.nn.Linear, Conv1D))
        and not any(name == s or name.startswith(s + ".") for s in skip)
    ]


def target_modules(model: Any, settings: AdapterConfig, heads: list[str]) -> dict[str, Any]:
    """``target_modules`` (and IA3's ``feedforward_modules``) for this model.

    ``auto`` means every linear layer of the transformer blocks for LoRA (as the QLoRA paper
    found best), and keys, values and feed-forward down-projections for IA3.

    Raises:
        UserError: if no layer matches (a custom list with typos, or an unusual model).
    """
    # a part the task keeps frozen (a vision-language model's image encoder) gets no adapters
    layers = block_linear_layers(model, heads + list(getattr(model, "tunelab_frozen_modules", [])))
    if settings.target_modules != "auto":
        wanted = list(settings.target_modules)
        chosen = [n for n in layers if any(n == w or n.endswith("." + w) for w in wanted)]
        if not chosen:
            leaves = sorted({n.rsplit(".", 1)[-1] for n in layers})
            raise UserError(
                f"peft.target_modules {wanted} match no linear layer of this model; its layers "
                f"are named: {', '.join(leaves)}"
            )
    elif settings.method == "ia3":
        chosen = [n for n in layers if _KEY_VALUE.search(n) or _FEEDFORWARD_DOWN.search(n)]
    else:
        chosen = layers
    if not chosen:
        raise UserError(
            f"peft.target_modules=auto found no suitable linear layer for {settings.method} in "
            "this model; name them with peft.target_modules=[...]"
        )
    found = {"target_modules": _module_pattern(chosen)}
    if settings.method == "ia3":
        feedforward = [n for n in chosen if _FEEDFORWARD_DOWN.search(n)]
        found["feedforward_modules"] = _module_pattern(feedforward) if feedforward else []
    return found


def peft_config(model: Any, settings: AdapterConfig, task_type: str) -> Any:
    """The PEFT config object for ``settings`` on this model and task."""
    import peft

    heads = head_modules(model, task_type)
    known = task_type in peft.TaskType.__members__
    common: dict[str, Any] = {
        "task_type": task_type if known else None,
        "modules_to_save": heads or None,
    }
    if settings.method in ("lora", "qlora"):
        return peft.LoraConfig(
            r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
            **target_modules(model, settings, heads), **common,
        )  # fmt: skip
    if settings.method == "ia3":
        return peft.IA3Config(**target_modules(model, settings, heads), **common)
    if settings.method == "prompt-tuning":
        return peft.PromptTuningConfig(num_virtual_tokens=settings.num_virtual_tokens, **common)
    if not _supports_cache(model):
        raise UserError(
            f"peft.method=prefix-tuning feeds learned keys and values through the attention "
            f"cache, which {type(model).__name__} does not have; use prompt-tuning or lora"
        )
    return peft.PrefixTuningConfig(num_virtual_tokens=settings.num_virtual_tokens, **common)


def _supports_cache(model: Any) -> bool:
    import inspect

    body = getattr(model, getattr(model, "base_model_prefix", ""), None)
    return any(
        "past_key_values" in inspect.signature(part.forward).parameters
        for part in (model, body)
        if part is not None
    )


def add_adapters(model: Any, settings: AdapterConfig, task_type: str) -> Any:
    """Wrap ``model`` for parameter-efficient training; log how many weights will train.

    A sentence encoder (``FEATURE_EXTRACTION``: a ``SentenceTransformer``) keeps its modules;
    the adapters go on its transformer, which pooling reads as before.

    Returns:
        The PEFT model (the input model, unchanged, when ``settings.method`` is ``none``).
    """
    if settings.method == "none":
        return model
    if task_type == "FEATURE_EXTRACTION":
        transformer = model[0]
        transformer.model = _wrap(transformer.model, settings, task_type)
        return model
    return _wrap(model, settings, task_type)


def _wrap(model: Any, settings: AdapterConfig, task_type: str) -> Any:
    import peft

    if settings.method == "qlora":
        model = peft.prepare_model_for_kbit_training(model)
    wrapped = peft.get_peft_model(model, peft_config(model, settings, task_type))
    trainable, total = wrapped.get_nb_trainable_parameters()
    log.info(
        "%s: training %s of %s parameters (%.2f%%)",
        settings.method, f"{trainable:,}", f"{total:,}", 100 * trainable / total,
    )  # fmt: skip
    return wrapped


def parameter_counts(model: Any) -> dict[str, Any]:
    """Trainable and total parameters (PEFT's count when wrapped) and the trainable share."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
    else:
        total = sum(p.numel() for p in model.parameters())
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "trainable_parameters": int(trainable),
        "total_parameters": int(total),
        "trainable_share": round(trainable / total, 6) if total else 0.0,
    }


def is_adapter_folder(path: Path) -> bool:
    """Whether ``path`` holds a PEFT adapter rather than full weights."""
    return (path / "adapter_config.json").is_file()


def base_model(model: Any) -> Any:
    """The underlying transformers model of a PEFT model (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def load_adapter_model(path: Path, auto_class: Any, model_config: Any) -> Any:
    """A saved adapter on its base model, the base built with the run's config (labels)."""
    import json

    import peft

    saved = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    source = saved.get("base_model_name_or_path") or ""
    if not source or (source.startswith(("/", ".", "~")) and not Path(source).is_dir()):
        source = (
            (getattr(model_config, "tunelab", None) or {})
            .get("adapter", {})
            .get("base_model", source)
        )
    # the base's own head (ImageNet's 1,000 classes) gives way to the run's, saved beside
    # the adapter (modules_to_save)
    base = from_pretrained(auto_class, source, config=model_config, ignore_mismatched_sizes=True)
    if (path / "generation_config.json").is_file() and base.can_generate():
        from transformers import GenerationConfig

        # the run's decoding settings and stop tokens (end of turn), saved beside the adapter;
        # the base's own would stop at EOS alone and a merged model would talk past its turn
        base.generation_config = GenerationConfig.from_pretrained(path)
    return peft.PeftModel.from_pretrained(base, str(path))


def load_adapter_checkpoint(model: Any, checkpoint: str | Path) -> None:
    """Put the adapter weights (and trained head) of a Trainer checkpoint back into the PEFT
    ``model``: the checkpoint holds them alone, which the Trainer's own reload cannot match.

    Raises:
        RuntimeError: if the checkpoint holds weights this model has no place for.
    """
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(Path(checkpoint) / "adapter_model.safetensors"))
    loaded = set_peft_model_state_dict(model, weights)
    if loaded.unexpected_keys:
        raise RuntimeError(
            f"{checkpoint} holds adapter weights this model lacks: {loaded.unexpected_keys[:3]}"
        )


def merged_model(model: Any) -> Any:
    """The base model with LoRA/IA3 weights folded in and the adapter metadata dropped.

    Raises:
        UserError: for prompt or prefix tuning, whose virtual tokens have no weights to fold.
    """
    method = model.config.tunelab.get("adapter", {}).get("method", "")
    if method in PROMPT_METHODS:
        raise UserError(
            f"a {method} adapter adds virtual tokens rather than weight changes and cannot be "
            "merged; load the run's model/ folder with tunelab or peft instead"
        )
    merged = model.merge_and_unload()
    merged.config.tunelab = {k: v for k, v in merged.config.tunelab.items() if k != "adapter"}
    return merged
