"""``tunelab chat``: talk to a causal model in the terminal, its answer streamed as it comes;
with ``--image``, to a vision-language model about images (``/image PATH`` adds one to the
next question); with ``--tools``, to a model that calls functions, the user typing each
call's result."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from tunelab.data.tool_calls import parse_calls, read_tools, result_text, with_tools
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


def load_vision_chat_model(name: str | Path) -> tuple[Any, Any, list[int]]:
    """A vision-language model folder (an image-text-to-text run or any HF folder that
    ``AutoModelForImageTextToText`` loads), its processor and the token ids that end an
    answer."""
    from transformers import AutoModelForImageTextToText

    from tunelab.models.vision_processor import VisionProcessor
    from tunelab.tasks.image_chat import turn_end_ids

    path = Path(name)
    if (path / "model" / "config.json").is_file():
        path = path / "model"
    try:
        model = from_pretrained(AutoModelForImageTextToText, str(path))
    except ValueError:  # the auto class has no mapping for the folder's architecture
        raise UserError(f"{name} is not a vision-language model; --image needs one that "
                        "reads images, such as an image-text-to-text run") from None  # fmt: skip
    processor = from_pretrained(VisionProcessor, str(path))
    if getattr(processor, "chat_template", None) is None:
        raise UserError(f"{name} has no chat template in its processor; --image needs a chat "
                        "model that reads images (an image-text-to-text run)")  # fmt: skip
    return model.eval(), processor, turn_end_ids(model, processor)


def reply_about_images(
    model: Any, processor: Any, stop: list[int], messages: list[dict[str, Any]],
    images: list[Any], max_new_tokens: int = 256, streamer: Any = None,
) -> str:  # fmt: skip
    """The vision-language model's answer to ``messages`` (content-part messages, the last
    one the user's) about ``images`` (in the order of their parts), greedy."""
    import torch

    from tunelab.tasks.image_chat import prompt_inputs

    inputs = prompt_inputs(processor, messages, images, "the conversation")
    with torch.inference_mode():
        generated = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                   eos_token_id=stop, streamer=streamer)  # fmt: skip
    answer = generated[0, inputs["input_ids"].shape[1] :]
    return str(processor.decode(answer, skip_special_tokens=True)).strip()


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
    images: list[Path] | None = None,
    tools: Path | None = None,
) -> list[dict[str, Any]]:
    """Read a user turn, stream the answer, repeat until an empty line or end of input. With
    ``images``, the model is a vision-language model and the images go with the first
    question; ``/image PATH`` adds one to the next question. With ``tools`` (a JSON file of
    function signatures), the model is offered them as it was trained to see them
    (:mod:`tunelab.data.tool_calls`); for each call it makes, the user plays the tool and types
    its result, and the model answers again with the results.

    Returns:
        The conversation, as OpenAI-format messages (content parts with images; calls and
        results as the text the model reads).

    Raises:
        UserError: for a model that cannot chat (about images), an image that cannot be
            read, or a tools file that is not a JSON list of functions.
    """
    from transformers import TextStreamer

    if images is not None and tools is not None:
        raise UserError("--tools is for text chat models; leave out --image to offer tools")
    if images is not None:
        model, tokenizer, stop = load_vision_chat_model(name)
        streamed = tokenizer.tokenizer
    else:
        model, tokenizer, stop = load_chat_model(name)
        streamed = tokenizer

    class _Streamer(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            out.write(text + ("\n" if stream_end else ""))
            out.flush()

    offered = read_tools_file(tools) if tools is not None else []
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    seen: list[Any] = []  # every image of the conversation so far, in order
    waiting = [_checked_image(path) for path in images or []]
    while True:
        try:
            line = read("you> ").strip()
        except EOFError:
            break
        if not line:
            break
        if images is not None and line.startswith("/image "):
            waiting.append(_checked_image(Path(line.removeprefix("/image ").strip())))
            out.write(f"(image {len(seen) + len(waiting)} goes with your next question)\n")
            continue
        out.write("model> ")
        streamer = _Streamer(streamed, skip_prompt=True, skip_special_tokens=True)
        if images is None:
            messages.append({"role": "user", "content": line})
            while True:  # until the model answers without calling a tool
                asked = with_tools(messages, offered)
                answer = reply(model, tokenizer, stop, asked, max_new_tokens, streamer)
                messages.append({"role": "assistant", "content": answer})
                results = _tool_results(parse_calls(answer) if offered else [], read)
                if not results:
                    break
                messages.append({"role": "user", "content": "\n".join(results)})
                out.write("model> ")
                streamer = _Streamer(streamed, skip_prompt=True, skip_special_tokens=True)
            continue
        parts: list[dict[str, Any]] = [{"type": "image"} for _ in waiting]
        messages.append({"role": "user", "content": [*parts, {"type": "text", "text": line}]})
        seen, waiting = seen + waiting, []
        answer = reply_about_images(model, tokenizer, stop, _as_parts(messages), seen,
                                    max_new_tokens, streamer)  # fmt: skip
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


def read_tools_file(path: Path) -> list[dict[str, Any]]:
    """The function signatures in a JSON file (OpenAI's ``tools`` list, or LLaMA-Factory's
    bare ``{name, description, parameters}``), as :func:`tunelab.data.tool_calls.read_tools`
    gives them.

    Raises:
        UserError: naming the file, when it cannot be read or holds no list of functions.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"--tools {path} cannot be read ({error}); give a JSON file") from None
    tools = read_tools(text, f"--tools {path}")
    if not tools:
        raise UserError(f"--tools {path} lists no functions; give a JSON list of signatures")
    return tools


def _tool_results(calls: list[dict[str, Any]], read: Callable[[str], str]) -> list[str]:
    """Each call's result as the user types it (playing the tool), as the turn text the
    model reads; empty when there are no calls or a result is left empty (the chat goes on
    with the next question)."""
    results = []
    for call in calls:
        arguments = json.dumps(call["arguments"], ensure_ascii=False)
        typed = read(f"{call['name']}({arguments}) returns> ").strip()
        if not typed:
            return []
        results.append(result_text(typed))
    return results


def _checked_image(path: Path) -> str:
    """An image path that opens as an image, or a clear error."""
    from tunelab.data.images import image_problem

    problem = image_problem(str(path))
    if problem is not None:
        raise UserError(f"image {path} cannot be read as an image ({problem})")
    return str(path)


def _as_parts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages with string content as content parts (a system prompt given as text)."""
    return [{**m, "content": [{"type": "text", "text": m["content"]}]}
            if isinstance(m["content"], str) else m for m in messages]  # fmt: skip
