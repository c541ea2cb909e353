"""Encoding Qwen2-VL conversations: one processor call for a batch against one a conversation.

Qwen2-VL's processor returns the patch rows of every image of a call in one array, so
tunelab used to encode each conversation with its own call; it now makes one call for the
batch and cuts the rows back by image counts and grids (``vlm_encoding._samples``; a test
checks that every conversation gets exactly what it gets alone). This times both on the
processor of a Qwen2-VL built in code (``scratch_vlm.save_scratch_qwen2_vl``, the Pillow
image processor without torchvision), over ``--chats`` generated one-image chats (a noisy
colour square and its name) at each ``--sides`` image side, with ``max_pixels`` the side
squared, so an image keeps its size, in Qwen2-VL's 14-pixel patches (``--patch``) merged
2x2: a 112-pixel image is 16 image tokens, a 448-pixel one 256, a size Qwen2-VL users train
at; in batches of ``--batch`` conversations, as training reads them (tunelab encodes each
batch as the data loader asks for it). Each figure is the median of ``--repeats`` timings,
the arms alternating.

Usage::

    python benchmarks/vlm_encoding.py [--chats 400] [--sides 112,448] [--batch 8] [--repeats 3]

Writes ``benchmarks/results/vlm_encoding.json``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from arms import machine, median_ms
from results_file import write_results

RESULTS = Path(__file__).resolve().parent / "results" / "vlm_encoding.json"
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 220)}


def conversations(folder: Path, chats: int, side: int) -> list[tuple[list, list[str], str]]:
    """``chats`` one-image chats asking the colour of a noisy ``side``-pixel square, as
    ``encode_image_chats`` takes them."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(chats):
        name = list(COLOURS)[i % len(COLOURS)]
        noise = rng.integers(-30, 30, (side, side, 3))
        image = folder / f"{i}.png"
        Image.fromarray(np.clip(np.array(COLOURS[name]) + noise, 0, 255).astype(np.uint8)).save(
            image
        )
        question = [{"type": "image"}, {"type": "text", "text": "what colour is it"}]
        answer = [{"type": "text", "text": name}]
        rows.append(([{"role": "user", "content": question},
                      {"role": "assistant", "content": answer}], [str(image)],
                     f"chats.jsonl line {i + 1}"))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=int, default=400)
    parser.add_argument("--sides", default="112,448")
    parser.add_argument("--patch", type=int, default=14, help="Qwen2-VL's patch side")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--batch",
        type=int,
        default=8,
        help="conversations a call, as training reads them (the batch size)",
    )
    args = parser.parse_args()

    from tunelab.models.load import from_pretrained
    from tunelab.models.scratch_vlm import save_scratch_qwen2_vl
    from tunelab.models.vision_processor import VisionProcessor
    from tunelab.tasks.vlm_encoding import encode_image_chat, encode_image_chats

    found: dict = {"machine": machine(), "chats": args.chats, "batch": args.batch,
                   "repeats": args.repeats}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="vlm-encoding-") as work:
        model = save_scratch_qwen2_vl(["what colour is it", *COLOURS] * 10, Path(work) / "qwen",
                                      patch_size=args.patch)  # fmt: skip
        for side in (int(s) for s in args.sides.split(",")):
            processor = from_pretrained(VisionProcessor, str(model), min_pixels=28 * 28,
                                        max_pixels=side * side)  # fmt: skip
            chats = conversations(Path(work) / f"data-{side}", args.chats, side)
            tokens = list(encode_image_chats(processor, chats[:1])[0]["input_ids"])
            image_tokens = tokens.count(processor.image_token_id)
            batches = [chats[i : i + args.batch] for i in range(0, len(chats), args.batch)]
            ms = median_ms({
                "one_call": lambda p=processor, b=batches: [encode_image_chats(p, c) for c in b],
                "call_a_conversation": lambda p=processor, c=chats: [
                    encode_image_chat(p, *chat) for chat in c],
            }, args.repeats)  # fmt: skip
            found[f"side_{side}"] = {
                "image_tokens_per_image": image_tokens,
                "median_ms": ms,
                "ms_a_conversation": {k: round(v / args.chats, 3) for k, v in ms.items()},
                "one_call_speed_up": round(ms["call_a_conversation"] / ms["one_call"], 2),
            }
            print(side, found[f"side_{side}"], flush=True)
    write_results(RESULTS, found)


if __name__ == "__main__":
    main()
