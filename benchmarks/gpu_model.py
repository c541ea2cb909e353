"""Carry all-MiniLM-L6-v2 to a lent GPU machine, which cannot reach the hub or the package index
and takes at most 64 MiB with the working tree.

``pack`` keeps the checkpoint's config and tokenizer files as they are and its weights in
fp16, gzip-compressed, with the rows of the word-embedding matrix that no text of the
benchmarks' files uses (nor any special token) set to zero: they are never looked up, so the
model computes the same on those texts, and zeros compress away. ``unpack`` writes an fp32
model folder again. A GPU run therefore trains MiniLM with its weights rounded to fp16 (its
outputs differ from the original's by about 1e-3, relative), with the same shapes and the same
work per step; every arm of the run loads the same folder.

Usage::

    python benchmarks/gpu_model.py pack .gpu/minilm  # here, before the device call
    python benchmarks/gpu_model.py unpack .gpu/minilm /tmp/minilm  # there
"""

from __future__ import annotations

import argparse
import gzip
import shutil
from pathlib import Path

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
WEIGHTS = "model.safetensors"
EMBEDDINGS = "embeddings.word_embeddings.weight"
ROOT = Path(__file__).resolve().parent.parent
TEXTS = [ROOT / "examples" / "data" / "en-sst2" / f"{part}.csv.gz" for part in ("train", "test")]
TEXTS += [ROOT / "data" / "zh-sentiment" / f"{part}.csv" for part in ("train", "validation",
                                                                      "test")]  # fmt: skip


def pack(target: Path) -> None:
    import pandas as pd
    import torch
    from safetensors.torch import load_file, save
    from transformers import AutoTokenizer

    from tunelab.models.load import resolve_model_source

    source = Path(resolve_model_source(MODEL))
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(WEIGHTS), dirs_exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(source)
    texts = [text for path in TEXTS for text in pd.read_csv(path)["text"].astype(str)]
    used = sorted({i for row in tokenizer(texts)["input_ids"] for i in row}
                  | set(tokenizer.all_special_ids))  # padding too  # fmt: skip
    weights = load_file(source / WEIGHTS)
    (name,) = [key for key in weights if key.endswith(EMBEDDINGS)]
    kept = torch.zeros_like(weights[name])
    kept[used] = weights[name][used]
    weights[name] = kept
    blob = save({key: value.half() if value.is_floating_point() else value
                 for key, value in weights.items()})  # fmt: skip
    (target / f"{WEIGHTS}.fp16.gz").write_bytes(gzip.compress(blob, compresslevel=9))
    print(
        f"{len(used)} of {len(kept)} vocabulary rows kept; {target} holds "
        f"{sum(f.stat().st_size for f in target.rglob('*') if f.is_file()) / 2**20:.1f} MiB"
    )


def unpack(packed: Path, target: Path) -> None:
    from safetensors.torch import load, save_file

    shutil.copytree(packed, target, ignore=shutil.ignore_patterns("*.gz"), dirs_exist_ok=True)
    weights = load(gzip.decompress((packed / f"{WEIGHTS}.fp16.gz").read_bytes()))
    fp32 = {key: value.float() if value.is_floating_point() else value
            for key, value in weights.items()}  # fmt: skip
    save_file(fp32, target / WEIGHTS, metadata={"format": "pt"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("pack", "unpack"))
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.folders[0])
    else:
        unpack(*args.folders)


if __name__ == "__main__":
    main()
