"""``tunelab chat``: talk to a causal model in the terminal, its answer streamed as it comes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from tunelab.errors import UserError
from tunelab.models.load import from_pretrained


def load_chat_model(name: str | Path) -> tuple[Any, Any, list[int]]:
    """A causal model folder (a tunelab run, a starter or any HF folder), its tokenizer and
    the token ids that end an answer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.tasks.generation import CausalGeneration

    path = Path(name)
    if (path / "model" / "config.json").is_file():
        path = path / "model"
    from transformers import AutoConfig

    architectures = from_pretrained(AutoConfig, str(path)).architectures or []
    if not any(a.endswith("ForCausalLM") for a in architectures):
        raise UserError(
            f"{name} is not a causal language model ({', '.join(architectures) or 'unknown'}); "
            "chat needs a decoder model such as zh-llama-mini or a causal-lm run"
        )
    model = from_pretrained(AutoModelForCausalLM, str(path))
    tokenizer = from_pretrained(AutoTokenizer, str(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer, CausalGeneration().stop_ids(tokenizer)


def reply(
    model: Any,
    tokenizer: Any,
    stop: list[int],
    messages: list[dict[str, str]],
    max_new_tokens: int = 256,
    streamer: Any = None,
) -> str:
    """The model's answer to the conversation ``messages`` (its last turn is the user's),
    greedy, ending at a stop token; ``streamer`` (a ``transformers`` streamer) sees it come.

    Args:
        model, tokenizer, stop: as :func:`load_chat_model` returns them.
    """
    import torch

    from tunelab.tasks.causal_encoding import prompt_ids

    ids = torch.tensor([prompt_ids(tokenizer, messages, messages[-1]["content"])])
    with torch.inference_mode():
        generated = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
            do_sample=False, eos_token_id=stop, pad_token_id=tokenizer.pad_token_id,
            streamer=streamer,
        )  # fmt: skip
    return tokenizer.decode(generated[0, ids.shape[1] :], skip_special_tokens=True).strip()


def chat(
    name: str | Path,
    system: str | None = None,
    max_new_tokens: int = 256,
    read: Callable[[str], str] = input,
    out: TextIO = sys.stdout,
) -> list[dict[str, str]]:
    """Read a user turn, stream the answer, repeat until an empty line or end of input.

    Returns:
        The conversation, as OpenAI-format messages.
    """
    from transformers import TextStreamer

    model, tokenizer, stop = load_chat_model(name)

    class _Streamer(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            out.write(text + ("\n" if stream_end else ""))
            out.flush()

    messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    while True:
        try:
            line = read("you> ").strip()
        except EOFError:
            break
        if not line:
            break
        messages.append({"role": "user", "content": line})
        out.write("model> ")
        streamer = _Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        answer = reply(model, tokenizer, stop, messages, max_new_tokens, streamer)
        messages.append({"role": "assistant", "content": answer})
    return messages
