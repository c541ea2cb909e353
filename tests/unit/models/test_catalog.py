"""The model catalog, its advice, and `tunelab recommend` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tunelab.errors import UserError
from tunelab.models.catalog import HUB_MODELS, catalog, parse_memory, recommend
from tunelab.models.memory import parameter_count
from tunelab.tasks import TASKS, task_class

GIB = 2**30
CLASSIFY, SEQ2SEQ, CAUSAL = TASKS["text-classification"](), TASKS["seq2seq"](), TASKS["causal-lm"]()
# Sizes the model cards on the hub publish (mT5: with its separate output layer).
PUBLISHED = {
    "bert-base-chinese": 102.3e6, "hfl/chinese-roberta-wwm-ext": 102.3e6,
    "hfl/chinese-macbert-base": 102.3e6, "bert-base-uncased": 109.5e6, "roberta-base": 124.6e6,
    "microsoft/deberta-v3-base": 184e6, "xlm-roberta-base": 278e6, "xlm-roberta-large": 560e6,
    "google/mt5-small": 300e6, "google/mt5-base": 582e6, "t5-small": 60.5e6,
    "t5-base": 222.9e6, "facebook/bart-base": 139.4e6, "Helsinki-NLP/opus-mt-en-zh": 77.5e6,
    "Qwen/Qwen2.5-0.5B-Instruct": 494e6, "Qwen/Qwen2.5-1.5B-Instruct": 1.54e9,
    "Qwen/Qwen2.5-7B-Instruct": 7.62e9, "meta-llama/Llama-3.2-1B-Instruct": 1.24e9,
    "BAAI/bge-small-zh-v1.5": 24e6,
    "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2": 118e6,
}  # fmt: skip


def test_every_hub_card_has_its_published_size():
    assert {card.name for card in HUB_MODELS} == set(PUBLISHED)
    for card in HUB_MODELS:
        assert parameter_count(card.arch) == pytest.approx(PUBLISHED[card.name], rel=0.01), card


def test_bundled_starters_are_in_the_catalog_with_their_own_config():
    cards = {card.name: card for card in catalog() if card.local}
    assert set(cards) == {"zh-bert-mini", "zh-llama-mini"}
    assert cards["zh-bert-mini"].arch.family == "modernbert"
    assert cards["zh-llama-mini"].arch.kind == "decoder"


def test_few_examples_per_class_get_few_shot_on_a_sentence_embedding_model():
    few = recommend(CLASSIFY, "zh", examples=48, classes=3, memory=16 * GIB)
    assert few[0].method == "few-shot"
    assert few[0].card.sentence_embeddings
    assert "zh" in few[0].card.languages  # Chinese-specific before multilingual
    many = recommend(CLASSIFY, "zh", examples=3000, classes=3, memory=16 * GIB)
    assert all(o.method != "few-shot" for o in many)
    assert many[0].card.name == "hfl/chinese-macbert-base"


def test_a_7b_model_on_a_24gb_gpu_gets_lora_or_qlora():
    options = recommend(CAUSAL, "zh", 2000, memory=24 * GIB, batch_size=2, device="cuda")
    qwen7b = next(o for o in options if o.card.name == "Qwen/Qwen2.5-7B-Instruct")
    assert qwen7b.estimates["full"].peak > 24 * GIB
    assert qwen7b.method in ("lora", "qlora")
    assert qwen7b.estimates[qwen7b.method].peak <= 24 * GIB
    small = next(o for o in options if o.card.name == "Qwen/Qwen2.5-0.5B-Instruct")
    assert small.method == "full"


def test_qlora_only_counts_with_a_cuda_gpu():
    on_cpu = recommend(CAUSAL, "en", 2000, memory=8 * GIB, batch_size=2, device="cpu")
    assert all("qlora" not in o.estimates and o.method != "qlora" for o in on_cpu)
    assert not on_cpu[-1].fits  # the 7B model does not fit in 8 GB, adapters or not


def test_languages_and_tasks_filter_the_catalog():
    english = recommend(CLASSIFY, "en", 5000, memory=64 * GIB)
    assert all({"en", "multi"} & set(o.card.languages) for o in english)
    assert not any(o.card.local for o in english)  # the starters are Chinese-only
    assert english[0].card.name == "microsoft/deberta-v3-base"
    multi = recommend(SEQ2SEQ, "multi", 5000, memory=64 * GIB)
    assert {o.card.name for o in multi} == {"google/mt5-small", "google/mt5-base"}


@pytest.mark.parametrize(
    ("text", "size"),
    [("24GB", 24 * GIB), ("24 gib", 24 * GIB), ("16g", 16 * GIB), ("512MB", 512 * 2**20),
     ("1.5TB", int(1.5 * 2**40)), ("80", 80 * GIB)],
)  # fmt: skip
def test_memory_sizes_parse(text, size):
    assert parse_memory(text) == size


@pytest.mark.parametrize("text", ["lots", "24XB", "-3GB", "0", ""])
def test_bad_memory_sizes_name_the_option(text):
    with pytest.raises(UserError, match=r"^--gpu-memory '.*' is not a memory size; .* 24GB$"):
        parse_memory(text)


def test_bad_arguments_name_the_option():
    with pytest.raises(UserError, match=r"^--task 'sentiment' is not a task tunelab knows; "):
        task_class("sentiment", "--task")
    with pytest.raises(UserError, match="--language"):
        recommend(SEQ2SEQ, "fr", 100)
    with pytest.raises(UserError, match="--examples"):
        recommend(SEQ2SEQ, "zh", 0)


def test_recommend_command_prints_a_table_and_json():
    from typer.testing import CliRunner

    from tunelab.cli import app

    runner = CliRunner()
    args = ["recommend", "--task", "text-classification", "--language", "zh",
            "--examples", "2000", "--gpu-memory", "24GB", "--max-length", "128",
            "--batch-size", "32"]  # fmt: skip
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[0].startswith("memory: 24.0 GiB (CUDA GPU)")
    header = next(line for line in lines if line.startswith("model"))
    assert header.split()[:5] == ["model", "params", "advice", "mem", "full"]
    rows = [line for line in lines if line.startswith(("hfl/", "zh-bert-mini"))]
    assert rows[0].split()[:3] == ["hfl/chinese-macbert-base", "102M", "full"]
    assert any(line.startswith("zh-bert-mini (local)") for line in rows)

    done = runner.invoke(app, [*args, "--json"])
    assert done.exit_code == 0, done.output
    records = json.loads(done.output)
    top = records[0]
    assert top["model"] == "hfl/chinese-macbert-base" and top["parameters"] == 102_267_648
    assert set(top["memory_bytes"]) == {"full", "lora", "qlora"}
    assert top["memory_bytes"]["full"] < 24 * GIB


def test_recommend_command_bad_gpu_memory_is_one_line_exit_2():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-m", "tunelab.cli", "recommend", "--task", "seq2seq", "--language",
         "zh", "--examples", "100", "--gpu-memory", "lots"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --gpu-memory 'lots' is not a memory size; give a number with a unit, e.g. 24GB"
    ]
