"""Sentence encoders: a checkpoint as a ``sentence_transformers.SentenceTransformer``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.errors import UserError
from tunelab.models.adapters import load_adapter_checkpoint


def has_sentence_modules(source: str | Path) -> bool:
    """Whether a model folder ships sentence-transformers modules (``modules.json``): its
    sentence embedding is what those modules compute, not what a [CLS] head reads."""
    return (Path(source) / "modules.json").is_file()


class SentenceTransformerLoader:
    """``from_pretrained`` for a saved sentence-transformers folder (what load_trained calls)."""

    @staticmethod
    def from_pretrained(source: str, **load_kwargs: Any) -> Any:
        return load_sentence_transformer(source, "auto", **load_kwargs)


def load_sentence_transformer(source: str, pooling: str = "auto", **load_kwargs: Any) -> Any:
    """A ``SentenceTransformer``: the checkpoint's own modules where it has them (pooling,
    normalisation), else its transformer with ``pooling`` (mean when auto) on top.

    Raises:
        UserError: if the checkpoint does not load.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    options: dict[str, Any] = {
        "trust_remote_code": bool(load_kwargs.get("trust_remote_code")),
        "revision": load_kwargs.get("revision"),
    }
    has_modules = (Path(source) / "modules.json").is_file() or not Path(source).is_dir()
    try:
        if pooling == "auto" and has_modules:
            return SentenceTransformer(source, local_files_only=Path(source).is_dir(), **options)
        transformer = Transformer(
            source,
            model_kwargs={
                "trust_remote_code": options["trust_remote_code"],
                "revision": options["revision"],
            },
        )
        mode = "mean" if pooling == "auto" else pooling
        width = transformer.get_embedding_dimension()
        return SentenceTransformer(modules=[transformer, Pooling(width, pooling_mode=mode)])
    except OSError as exc:
        raise UserError(
            f"model {source} could not be loaded as a sentence encoder: {str(exc).splitlines()[0]}"
        ) from None


def fold_adapters(model: Any) -> None:
    """Merge the PEFT adapters on a ``SentenceTransformer``'s transformer into its weights
    (in place); a model without adapters is left as it is."""
    transformer = model[0]
    if hasattr(transformer.model, "merge_and_unload"):
        transformer.model = transformer.model.merge_and_unload()


def encoder_trainer_class() -> Any:
    """``SentenceTransformerTrainer`` that also reloads a checkpoint (the best one, or one to
    resume from) of an encoder whose transformer carries PEFT adapters: the checkpoint holds
    the adapter weights alone, which sentence-transformers' own reload cannot match."""
    from sentence_transformers import SentenceTransformerTrainer

    class EncoderTrainer(SentenceTransformerTrainer):  # type: ignore[misc]
        def _load_from_checkpoint(self, checkpoint_path: str, *args: Any) -> None:
            transformer = self.model[0]
            if not hasattr(transformer.model, "peft_config"):
                super()._load_from_checkpoint(checkpoint_path, *args)
                return
            load_adapter_checkpoint(transformer.model, checkpoint_path)

    return EncoderTrainer
