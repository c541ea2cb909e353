"""OpenAI's chat completions on a tiny causal run, driven by the ``openai`` client itself
against a real uvicorn server on loopback: answers, streaming, stop sequences, max tokens,
sampling and usage."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("openai")
import openai
from fastapi.testclient import TestClient

from tunelab.serving.server import create_app

HELLO = [{"role": "user", "content": "red cat"}]


@pytest.fixture(scope="module")
def client(causal_run: Path) -> Iterator[openai.OpenAI]:
    """An ``openai.OpenAI`` client pointed at ``tunelab serve`` running in a thread."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(causal_run, api_key="k"), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0)
    server.should_exit = True
    thread.join()


def _greedy(run: Path, max_new_tokens: int) -> tuple[str, list[int], list[int]]:
    """The answer ``transformers`` alone gives: text, prompt ids, new ids."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(run / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(run / "model")
    prompt = tokenizer.apply_chat_template(HELLO, add_generation_prompt=True, tokenize=False)
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if tokenizer.bos_token_id is not None and ids[0] != tokenizer.bos_token_id:
        ids = [tokenizer.bos_token_id, *ids]
    with torch.inference_mode():
        out = model.generate(torch.tensor([ids]), max_new_tokens=max_new_tokens, do_sample=False)
    new = out[0, len(ids) :].tolist()
    return tokenizer.decode(new, skip_special_tokens=True), ids, new


def test_openai_client_gets_the_greedy_answer_of_transformers_with_usage(client, causal_run):
    text, prompt, new = _greedy(causal_run, 12)
    answer = client.chat.completions.create(
        model="anything", messages=HELLO, temperature=0, max_tokens=12
    )
    choice = answer.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == text
    assert answer.model == "chat-run" and answer.object == "chat.completion"
    assert answer.usage.prompt_tokens == len(prompt)
    assert answer.usage.completion_tokens == len(new)
    assert answer.usage.total_tokens == len(prompt) + len(new)
    assert choice.finish_reason == ("length" if len(new) == 12 else "stop")


def test_streamed_chunks_join_into_the_same_answer_and_end_with_usage(client, causal_run):
    text, _, new = _greedy(causal_run, 12)
    stream = client.chat.completions.create(
        model="m", messages=HELLO, temperature=0, max_tokens=12, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(pieces) == text
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and not any(finishes[:-1])
    assert chunks[-1].usage.completion_tokens == len(new) and not chunks[-1].choices


def test_a_stop_sequence_ends_the_answer_before_it_streamed_or_not(client, causal_run):
    text, _, _ = _greedy(causal_run, 24)
    visible = text.strip()
    assert len(visible) >= 4, "the tiny model should write a few characters"
    at = text.index(visible[2:4])
    stop = text[at : at + 2]
    answer = client.chat.completions.create(
        model="m", messages=HELLO, temperature=0, max_tokens=24, stop=[stop, "never-written"]
    )
    assert answer.choices[0].message.content == text[: text.index(stop)]
    assert answer.choices[0].finish_reason == "stop"
    stream = client.chat.completions.create(
        model="m", messages=HELLO, temperature=0, max_tokens=24, stop=stop, stream=True
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert streamed == text[: text.index(stop)]


def test_max_tokens_limits_the_answer_and_says_length(client):
    answer = client.chat.completions.create(model="m", messages=HELLO, max_tokens=2, temperature=0)
    assert answer.usage.completion_tokens <= 2
    if answer.usage.completion_tokens == 2 and answer.choices[0].finish_reason != "stop":
        assert answer.choices[0].finish_reason == "length"


def test_sampling_follows_temperature_and_seed(client):
    def sample(seed: int) -> str:
        answer = client.chat.completions.create(
            model="m", messages=HELLO, temperature=1.5, max_tokens=12, seed=seed
        )
        return answer.choices[0].message.content

    runs = [sample(seed) for seed in (1, 1, 2, 3, 4)]
    assert runs[0] == runs[1]  # a seed repeats the sample
    assert len(set(runs)) > 1  # a random 2-layer model at temperature 1.5 varies


def test_requests_the_model_cannot_do_answer_one_sentence(client, classifier_run):
    with pytest.raises(openai.UnprocessableEntityError, match="n=1"):
        client.chat.completions.create(model="m", messages=HELLO, n=2)
    with pytest.raises(openai.AuthenticationError):
        client.with_options(api_key="wrong").chat.completions.create(model="m", messages=HELLO)
    with TestClient(create_app(classifier_run)) as plain:
        answer = plain.post("/v1/chat/completions", json={"messages": HELLO})
    assert answer.status_code == 400 and "does not chat" in answer.json()["error"]["message"]
