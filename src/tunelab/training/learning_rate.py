"""The peak learning rate when the config says ``auto``: it follows what is being trained.

A randomly initialised model and a pretrained one need rates an order of magnitude apart
(a pretrained BERT-base forgets what it knew at 5e-4; a random 2-layer model barely moves
at 5e-5 and, on imbalanced data, settles on the majority class). The table, with where
each number comes from (README, "Defaults"):

=====================================  ===========  =====================================
what is trained                        rate         measured on
=====================================  ===========  =====================================
random init (scratch-bert, -vit)       5e-4         zh-sentiment sweeps; unseen sets;
                                                    digits, zh-lookalikes (scratch-vit)
random init (scratch-audio)            1e-3         spoken-commands; checked on the Free
                                                    Spoken Digit Dataset
pretrained, full, < 10M parameters     5e-4         zh-bert-mini sweep (pretraining_value)
pretrained, full, 10M-60M              1e-4         all-MiniLM-L6-v2 on unseen sets
pretrained, full, 60M-250M             3e-5         the BERT paper's 2e-5..5e-5 range
pretrained, full, larger               1e-5         the usual range for large models
adapters (LoRA, QLoRA, IA3)            10x full,    zh-bert-mini: LoRA best at 1e-3
                                       at most 1e-3
prompt / prefix tuning                 1e-2         PEFT's examples
few-shot (contrastive body)            full / 5     zh-bert-mini: 1e-4; SetFit's 2e-5
preference tuning (DPO, ORPO, KTO)     the above    LLaMA-Factory's dpo_zh_demo pairs:
                                       / 10         at 5e-4 zh-llama-mini's answers
                                                    broke, at 5e-5 they held
=====================================  ===========  =====================================
"""

from __future__ import annotations

from tunelab.models.adapters import PROMPT_METHODS

SCRATCH_RATE = 5e-4
SCRATCH_AUDIO_RATE = 1e-3  # benchmarks/scratch_media_rate.py: 5e-4 left it half-trained
# (parameters below, rate) for full fine-tuning of a pretrained model, smallest first
FULL_RATES = ((10_000_000, 5e-4), (60_000_000, 1e-4), (250_000_000, 3e-5))
LARGE_RATE = 1e-5
ADAPTER_FACTOR, ADAPTER_CAP = 10.0, 1e-3
PROMPT_RATE = 1e-2
FEW_SHOT_FACTOR = 0.2
# preference tuning pulls a model away from where it started; at the SFT rate zh-llama-mini's
# answers collapsed on LLaMA-Factory's dpo_zh_demo pairs (README, "Preference tuning")
PREFERENCE_FACTOR = 0.1


def default_learning_rate(
    parameters: int,
    scratch: bool,
    peft_method: str = "none",
    method: str = "full",
    inputs: str = "text",
    preference: bool = False,
) -> tuple[float, str]:
    """The rate for a model of ``parameters`` (its base, before adapters), and why.

    Args:
        parameters: the base model's parameter count.
        scratch: whether its weights are random (no pretraining).
        peft_method: ``none`` or the PEFT method (adapters want larger rates).
        method: ``full`` or ``few-shot``.
        inputs: what the model reads (``text``, ``image``, ``audio``): a random audio
            encoder learns faster at twice the rate of a random text or image one.
        preference: preference tuning (DPO, ORPO, KTO): a tenth of the rate.

    Returns:
        The rate and a short reason for the log line.
    """
    rate, reason = _rate(parameters, scratch, peft_method, method, inputs)
    if preference:
        return rate * PREFERENCE_FACTOR, f"preference tuning (a tenth of the rate for {reason})"
    return rate, reason


def _rate(
    parameters: int, scratch: bool, peft_method: str, method: str, inputs: str
) -> tuple[float, str]:
    millions = f"{parameters / 1e6:.1f}M parameters"
    if scratch and inputs == "audio":
        return SCRATCH_AUDIO_RATE, f"randomly initialised audio model ({millions})"
    if scratch:
        return SCRATCH_RATE, f"randomly initialised model ({millions})"
    full = next((rate for limit, rate in FULL_RATES if parameters < limit), LARGE_RATE)
    if peft_method in PROMPT_METHODS:
        return PROMPT_RATE, f"{peft_method} trains virtual tokens only"
    if peft_method != "none":
        rate = min(full * ADAPTER_FACTOR, ADAPTER_CAP)
        return rate, f"{peft_method} adapters on a pretrained model of {millions}"
    if method == "few-shot":
        return full * FEW_SHOT_FACTOR, f"few-shot contrastive tuning of {millions}"
    return full, f"full fine-tuning of a pretrained model of {millions}"
