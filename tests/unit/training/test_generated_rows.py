import json
import logging

import pandas as pd
import pytest

from tests.conftest import make_translations, tiny_run_config
from tunelab.training import generated_rows
from tunelab.training.generated_rows import (
    CPU_ROW_BUDGET,
    MIN_ROWS,
    cap_generated_test,
    generated_rows_limit,
)

SMOLLM2 = 134_515_008  # SmolLM2-135M's parameters


def test_auto_scores_every_row_on_a_gpu_and_a_budgets_share_on_a_cpu():
    assert generated_rows_limit("auto", SMOLLM2, 120, on_accelerator=True) is None
    assert generated_rows_limit("auto", SMOLLM2, 120, on_accelerator=False) == int(
        CPU_ROW_BUDGET / (SMOLLM2 * 120)
    )
    # twice the answer room: half the rows
    assert generated_rows_limit("auto", SMOLLM2, 240, False) == int(
        CPU_ROW_BUDGET / (SMOLLM2 * 240)
    )
    assert generated_rows_limit("auto", 5_000_000, 112, False) > 10_000  # a starter: all
    assert generated_rows_limit("auto", 7_000_000_000, 256, False) == MIN_ROWS


def test_a_number_or_null_is_taken_as_given_on_any_device():
    assert generated_rows_limit(40, SMOLLM2, 120, on_accelerator=True) == 40
    assert generated_rows_limit(None, 7_000_000_000, 256, on_accelerator=False) is None


def test_the_kept_rows_are_a_seeded_sample_in_file_order(caplog):
    test = pd.DataFrame({"source": [f"s{i}" for i in range(1000)], "target": "t"})
    test.attrs["file"] = "test.jsonl"
    with caplog.at_level(logging.INFO, logger="tunelab"):
        kept, cut = cap_generated_test("auto", test, 7_000_000_000, 256, False, seed=42)
    assert cut == {"rows": MIN_ROWS, "of": 1000, "setting": "auto"}
    assert len(kept) == MIN_ROWS and kept.index.is_monotonic_increasing
    assert kept.index.max() > 900  # drawn from the whole file, not its first rows
    assert kept.attrs == test.attrs
    again, _ = cap_generated_test("auto", test, 7_000_000_000, 256, False, seed=42)
    assert kept.index.equals(again.index)
    assert "generation.max_eval_rows=null" in caplog.text and "200 of the 1,000" in caplog.text
    whole, cut = cap_generated_test("auto", test, 5_000_000, 112, False, seed=42)
    assert whole is test and cut is None


def causal_config(model, tmp_path, train_rows: int, test_rows: list[dict], **generation) -> dict:
    """One epoch of causal-lm on the tiny Llama, with these test rows and generation options."""
    for name, rows in (("train", make_translations(train_rows)), ("test", test_rows)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tiny_run_config(model, tmp_path / "train.jsonl", tmp_path / "run")
    config["task"] = "causal-lm"
    config["data"]["test"] = str(tmp_path / "test.jsonl")
    config["training"]["epochs"] = 1
    config["generation"] = {"max_new_tokens": 4, **generation}
    return config


def test_a_run_generates_for_the_seeded_rows_and_scores_them(tiny_llama, tmp_path, monkeypatch):
    import tunelab

    test_rows = make_translations(50, seed=7)
    for i, row in enumerate(test_rows):
        row["source"] = f"{row['source']} {i}"  # each prompt its own, to find it again
    config = causal_config(tiny_llama, tmp_path, 60, test_rows, score_before=True)
    monkeypatch.setattr(generated_rows, "MIN_ROWS", 6)
    monkeypatch.setattr(generated_rows, "CPU_ROW_BUDGET", 1.0)  # auto: the fewest rows
    result = tunelab.train(config)
    metrics = result["metrics"]
    assert metrics["test"]["examples"] == metrics["before"]["test"]["examples"] == 6
    written = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").open()]
    sources = [record["source"] for record in written]
    numbers = sorted(int(source.rsplit(" ", 1)[1]) for source in sources)
    assert len(numbers) == 6 and numbers != list(range(6))  # a sample, not the first rows
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert report["generated_test_rows"] == {"rows": 6, "of": 50, "setting": "auto"}


@pytest.mark.parametrize("setting", [None, 50])
def test_null_or_a_number_over_the_rows_scores_them_all(setting, tiny_llama, tmp_path):
    import tunelab

    test_rows = make_translations(9, seed=7)
    config = causal_config(tiny_llama, tmp_path, 40, test_rows, max_eval_rows=setting)
    assert tunelab.train(config)["metrics"]["test"]["examples"] == 9
