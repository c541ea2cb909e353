"""Audio classification: one label per clip, from any ``AutoModelForAudioClassification``
(wav2vec2, HuBERT, AST, the Whisper encoder, ...) with its ``AutoFeatureExtractor``.

Data is a folder of class sub-folders (the ``audiofolder`` convention) or a table with a
column of audio paths relative to the table's file. The tables hold paths only: clips are
decoded a batch at a time in the data loader (``Dataset.set_transform``), mixed down to mono,
cut to ``audio.max_seconds`` and resampled to the model's rate, with a random gain, time shift
and low noise for training and none for evaluation. What it shares with images lives in
:mod:`tunelab.tasks.file_classification`.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import numpy as np

from tunelab.data.audio import (
    AUDIO_COLUMN,
    CLIPPED_SHARE,
    SILENT_RMS,
    audio_seconds,
    inspect_audio,
    mfcc_summary,
    read_audio,
)
from tunelab.data.media import LABEL_COLUMN, MediaRef
from tunelab.evaluation import report_audio
from tunelab.models.catalog import AUDIO
from tunelab.tasks.base import OnnxGraph
from tunelab.tasks.file_classification import FileClassification

BASELINE_RATE = 16_000  # the baseline reads every clip at 16 kHz
BASELINE_METHOD = (
    "logistic regression on MFCC statistics (20 coefficients: mean and standard deviation "
    "over the clip, mean of each third; scikit-learn)"
)
GAIN_DB = 6.0  # training clips get a random gain within +-6 dB
SHIFT_SHARE = 0.1  # and move by up to a tenth of their length, the gap filled with silence
NOISE_SNR_DB = (20.0, 40.0)  # and white noise this far below their own level
OUTLIER_RATIO = 3.0  # a clip 3x longer or shorter than the split's median is named
SHOWN = 5
EXAMPLE_SECONDS = 10.0  # ONNX export traces with at most this much of a clip


def extractor_inputs(processor: Any, decoded: list[np.ndarray]) -> dict[str, Any]:
    """The feature extractor's inputs for a batch of clips, as tensors.

    Each extractor shapes its own output (wav2vec2: raw samples of any length; AST and
    Whisper: spectrograms of a fixed number of frames), so it is called without padding and
    its ``pad`` then evens out what still differs, with an attention mask only for models
    that take one.
    """
    inputs = processor(decoded, sampling_rate=processor.sampling_rate)
    masked = "attention_mask" in inputs
    padded = processor.pad(inputs, padding=True, return_attention_mask=masked, return_tensors="pt")
    return dict(padded)


def audio_logits_module(model: Any) -> Any:
    """A module whose forward takes the extractor's tensors by name and returns the logits
    (ONNX export): ``input_features`` (Whisper) or ``input_values`` (wav2vec2, HuBERT, AST)
    and, for models that take one, ``attention_mask``."""
    import torch

    class FeatureLogits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_features: Any) -> Any:
            return self.model(input_features=input_features).logits

    class ValueLogits(FeatureLogits):
        def forward(self, input_values: Any, attention_mask: Any = None) -> Any:  # type: ignore[override]
            masked = {} if attention_mask is None else {"attention_mask": attention_mask}
            return self.model(input_values=input_values, **masked).logits

    return FeatureLogits() if model.main_input_name == "input_features" else ValueLogits()


def audio_example(processor: Any, frame: Any, column: str, max_length: int) -> Any:
    """Two clips of different lengths through the extractor; the batch stays dynamic, and so
    does every other axis that follows the clip's length (raw samples: wav2vec2, HuBERT),
    found by featurising each clip alone. Spectrogram models (Whisper, AST) read a fixed
    number of frames."""
    rate = processor.sampling_rate
    clips = [read_audio(ref, rate, EXAMPLE_SECONDS)[0] for ref in frame[column].iloc[:2]]
    if len(clips) == 1:
        clips = clips * 2
    clips[1] = clips[1][: max(rate // 10, int(len(clips[1]) * 0.8))]  # lengths must differ
    inputs = extractor_inputs(processor, clips)
    alone = [extractor_inputs(processor, [clip]) for clip in clips]
    dynamic = {}
    for name, tensor in inputs.items():
        first, second = alone[0][name].shape, alone[1][name].shape
        axes = ("length" if first[i] != second[i] else None for i in range(1, tensor.dim()))
        dynamic[name] = ("batch", *axes)
    return inputs, dynamic


AUDIO_GRAPH = OnnxGraph(audio_logits_module, example=audio_example)


class AudioClassification(FileClassification):
    """Assign one label to an audio clip."""

    name = "audio-classification"
    input_kind = "audio"
    noun, nouns = "audio file", "audio files"
    classifier = "an audio classifier"
    article = "an"
    config_section, report_key = "audio", "audio"
    explains = "occlusion"  # segments silenced in turn (tunelab.explain.occlusion)
    exportable = ("onnx",)
    onnx_graph = AUDIO_GRAPH
    search_batch_sizes = (8, 16, 32)
    report_sections = staticmethod(report_audio.sections)
    baseline_method = BASELINE_METHOD
    model_kind = AUDIO

    def __init__(
        self,
        audio_column: str = AUDIO_COLUMN,
        gold_column: str = LABEL_COLUMN,
        labels: list[str] | None = None,
        augment: bool = True,
        max_seconds: float = 10.0,
        drop_invalid: bool = True,
    ) -> None:
        super().__init__(audio_column, gold_column, labels, augment, drop_invalid)
        self.max_seconds = max_seconds

    @classmethod
    def from_run_config(cls, config: Any) -> AudioClassification:
        """Build from a :class:`tunelab.config.RunConfig`."""
        audio = config.audio
        return cls(
            audio.column, config.data.label_column, augment=audio.augment,
            max_seconds=audio.max_seconds, drop_invalid=config.data.drop_invalid,
        )  # fmt: skip

    @staticmethod
    def saved_settings(meta: dict[str, Any]) -> dict[str, Any]:
        """The clip length the model was trained with: prediction cuts clips the same way."""
        return {"max_seconds": float(meta.get("max_seconds", 10.0))}

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), "max_seconds": self.max_seconds}

    # -- clips -----------------------------------------------------------------------------

    def inspect_file(self, source: str, row: Any, path: MediaRef) -> dict[str, Any]:
        """Duration, sample rate, channels, loudness and clipping of the clip, decoding it
        fully (a truncated file fails here, not in training).

        Raises:
            UnreadableFile: for a missing, empty, truncated or corrupt file.
        """
        return {**inspect_audio(path), "row": row, "path": self.file_name(path, row)}

    def file_summary(self, stats: list[dict[str, Any]]) -> dict[str, Any]:
        """Durations (min, median, max, and clips far from the median or cut by
        ``audio.max_seconds``), sample rates and channels, silent and clipped clips."""
        seconds = np.array([s["seconds"] for s in stats])
        median = float(np.median(seconds))

        def named(kept: list[dict[str, Any]]) -> dict[str, Any]:
            shown = [{"row": int(s["row"]), "path": s["path"], "seconds": round(s["seconds"], 3)}
                     for s in kept[:SHOWN]]  # fmt: skip
            return {"count": len(kept), "rows": shown}

        low, high = median / OUTLIER_RATIO, median * OUTLIER_RATIO
        far = [s for s in stats if not low <= s["seconds"] <= high]
        durations = {"min": float(seconds.min()), "median": median, "max": float(seconds.max())}
        return {
            "durations": durations,
            "sampling_rates": dict(sorted(Counter(s["sampling_rate"] for s in stats).items())),
            "channels": dict(sorted(Counter(s["channels"] for s in stats).items())),
            "duration_outliers": named(far),
            "cut": named([s for s in stats if s["seconds"] > self.max_seconds]),
            "silent": named([s for s in stats if s["rms"] < SILENT_RMS]),
            "clipped": named([s for s in stats if s["clipped_share"] >= CLIPPED_SHARE]),
        }

    def file_lines(self, split: str, section: dict[str, Any]) -> list[str]:
        """Lines for silent, clipped, cut and unusually long or short clips, and for mixed
        sample rates."""
        lines = []
        said = {
            "silent": "silent clip(s) (RMS below -60 dBFS)",
            "clipped": f"clipped clip(s) ({CLIPPED_SHARE:.1%} of samples or more stuck at full "
            "scale)",
            "cut": f"clip(s) longer than audio.max_seconds={self.max_seconds:g} s, cut to it",
            "duration_outliers": "clip(s) under a third or over 3x the median duration "
            f"({section.get('durations', {}).get('median', 0):.2f} s)",
        }
        for key, what in said.items():
            found = section.get(key, {})
            if found.get("count"):
                first = found["rows"][0]
                lines.append(
                    f"{found['count']} {what}, e.g. row {first['row']} {first['path']} "
                    f"({first['seconds']:g} s)"
                )
        rates = section.get("sampling_rates", {})
        if len(rates) > 1:
            listed = ", ".join(f"{rate} Hz ({count})" for rate, count in rates.items())
            lines.append(f"sample rates {listed}; each clip is resampled to the model's rate")
        return lines

    def decode(self, path: MediaRef, processor: Any) -> np.ndarray:
        """Mono float32 samples at the processor's rate, cut to ``max_seconds``.

        Raises:
            UnreadableFile: for a missing, empty, truncated or corrupt file.
        """
        return read_audio(path, processor.sampling_rate, self.max_seconds)[0]

    def features(self, processor: Any, decoded: list[np.ndarray]) -> dict[str, Any]:
        """The feature extractor's inputs for a batch of clips (:func:`extractor_inputs`)."""
        return extractor_inputs(processor, decoded)

    def augmented(self, samples: np.ndarray) -> np.ndarray:
        """A random gain (+-6 dB), a time shift (up to a tenth of the clip, silence filling
        the gap) and white noise 20-40 dB below the clip's level; ``random`` is seeded by the
        Trainer."""
        shift = round(random.uniform(-SHIFT_SHARE, SHIFT_SHARE) * len(samples))
        moved = np.zeros_like(samples)
        if shift >= 0:
            moved[shift:] = samples[: len(samples) - shift]
        else:
            moved[:shift] = samples[-shift:]
        level = float(np.sqrt(np.mean(np.square(moved, dtype=np.float64))))
        if level > 0:
            noise_level = level / 10 ** (random.uniform(*NOISE_SNR_DB) / 20)
            noise = np.random.default_rng(random.getrandbits(32)).normal(0, 1, len(moved))
            moved = moved + (noise * noise_level).astype(np.float32)
        gain = 10 ** (random.uniform(-GAIN_DB, GAIN_DB) / 20)
        return np.clip(moved * gain, -1.0, 1.0).astype(np.float32)

    def inference_order(self, paths: list[MediaRef]) -> list[int]:
        """Shortest clips first (from the files' headers): a batch pads to its longest clip,
        and models without an attention mask hear the padding."""
        seconds = [audio_seconds(path) for path in paths]
        return sorted(range(len(paths)), key=seconds.__getitem__)

    def baseline_features(self, paths: list[MediaRef]) -> np.ndarray:
        """MFCC statistics of each clip read at 16 kHz (``tunelab.data.audio.mfcc_summary``)."""
        return np.stack(
            [mfcc_summary(read_audio(p, BASELINE_RATE, self.max_seconds)[0], BASELINE_RATE)
             for p in paths]
        )  # fmt: skip

    # -- model classes ---------------------------------------------------------------------

    def collator(self, tokenizer: Any) -> Any:
        """Pads a batch with the feature extractor (clips of a batch differ in length for
        wav2vec2-like models)."""
        return AudioCollator(tokenizer)

    def auto_model_class(self) -> Any:
        from transformers import AutoModelForAudioClassification

        return AutoModelForAudioClassification

    def processor_class(self) -> Any:
        from transformers import AutoFeatureExtractor

        return AutoFeatureExtractor


class AudioCollator:
    """Stacks examples into a batch, padding the extractor's inputs with its own ``pad``."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        inputs = [{k: v for k, v in example.items() if k != "labels"} for example in examples]
        batch = dict(
            self.processor.pad(
                inputs, padding=True, return_attention_mask="attention_mask" in inputs[0],
                return_tensors="pt",
            )
        )  # fmt: skip
        if "labels" in examples[0]:
            batch["labels"] = torch.tensor([int(e["labels"]) for e in examples])
        return batch
