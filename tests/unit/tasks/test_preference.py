"""Preference tuning (DPO, ORPO, KTO through TRL) end to end on the tiny Llama with LoRA:
held-out preference accuracy before and after, answers side by side, and clear input errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("trl")

import tunelab
from tests.conftest import make_translations, tiny_run_config
from tunelab.errors import UserError
from tunelab.tasks.preference import PreferenceTuning

REFUSALS = ["no idea", "cannot say", "not sure"]


def preference_rows(n: int, seed: int, kto: bool = False) -> list[dict]:
    """'Translate the first word': the translation chosen over an English non-answer (a
    preference a 2-layer model learns in a few steps); KTO rows take one of the two with its
    label. Conversational and prompt/completion rows mixed."""
    rng = random.Random(seed)
    rows = []
    for i, row in enumerate(make_translations(n, seed=seed)):
        wrong = rng.choice(REFUSALS)
        prompt = row["source"] if i % 2 else [{"role": "user", "content": row["source"]}]
        if kto:
            good = rng.random() < 0.5
            rows.append({"prompt": prompt, "completion": row["target"] if good else wrong,
                         "label": good})  # fmt: skip
        else:
            chosen = row["target"] if i % 2 else [{"role": "assistant", "content": row["target"]}]
            rows.append({"prompt": prompt, "chosen": chosen, "rejected": wrong})
    return rows


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


@pytest.mark.parametrize("method", ["dpo", "orpo", "kto"])
def test_preference_methods_train_end_to_end_with_lora(tiny_llama, tmp_path, method):
    kto = method == "kto"
    train = write(tmp_path / "train.jsonl", preference_rows(160, 0, kto))
    test = write(tmp_path / "test.jsonl", preference_rows(24, 1))
    training = {"epochs": 3, "learning_rate": 1e-2, "batch_size": 16}
    config = tiny_run_config(tiny_llama, train, tmp_path / "run", peft={"method": "lora"},
                             training=training)  # fmt: skip
    config.update(task="preference", preference={"method": method, "beta": 0.5})
    config["data"]["test"] = str(test)
    config["generation"] = {"max_new_tokens": 4}
    result = tunelab.train(config)
    metrics = result["metrics"]
    before, after = metrics["before"]["test"], metrics["test"]
    assert after["preference_accuracy"] > before["preference_accuracy"]
    assert after["logp_margin"] > before["logp_margin"]
    if method != "orpo":  # reference-based: implicit reward against the adapter-free base
        assert after["reward_accuracy"] > 0.5 and before["reward_margin"] == 0
    assert "eos_ending_share" in after
    record = json.loads((tmp_path / "run" / "predictions.jsonl").read_text().splitlines()[0])
    assert {"source", "reference", "rejected", "output"} <= set(record)
    # the tuned model chats like a causal-lm run
    (answer,) = tunelab.predict(result["model_dir"], texts=["red cat"])
    assert "output" in answer


def test_missing_columns_and_bad_labels_name_the_fix():
    task = PreferenceTuning(preference={"method": "dpo"})
    frame = pd.DataFrame([{"prompt": "a", "chosen": "b"}])
    frame.attrs["source"] = "pairs.jsonl"
    with pytest.raises(UserError, match=r"pairs.jsonl has no column 'rejected'.*preference.rej"):
        task.standardize(frame)
    kto = PreferenceTuning(preference={"method": "kto"})
    bad = pd.DataFrame([{"prompt": "a", "completion": "b", "label": "maybe"}])
    with pytest.raises(UserError, match="row 1, label: 'maybe' is not true/false"):
        kto.standardize(bad)
    with pytest.raises(UserError, match="row 1, chosen must be one assistant answer"):
        task.standardize(pd.DataFrame([{"prompt": "a", "chosen": [
            {"role": "user", "content": "x"}], "rejected": "c"}]))  # fmt: skip


def test_a_prompt_that_fills_max_length_is_left_out_not_trained_as_nan(tiny_llama, caplog):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    task = PreferenceTuning(preference={"method": "orpo"})
    frame = task.standardize(pd.DataFrame([
        {"prompt": "red cat", "chosen": "rot", "rejected": "no idea"},
        {"prompt": "red cat " * 40, "chosen": "rot", "rejected": "no idea"},
    ]))  # fmt: skip
    with caplog.at_level("WARNING"):
        encoded = task.encode(frame, tokenizer, max_length=32)
    assert len(encoded) == 1 and "1 of 2 rows left out" in caplog.text
    with pytest.raises(UserError, match=r"raise model\.max_length"):
        task.encode(frame.iloc[1:], tokenizer, max_length=32)


def test_the_doctor_names_same_answers_and_a_length_bias():
    """Pairs whose chosen answer is nearly always the longer one: DPO can learn length."""
    task = PreferenceTuning(preference={"method": "dpo"})
    rows = [{"prompt": f"q{i}", "chosen": "a long and careful answer " * 3, "rejected": "no"}
            for i in range(9)]  # fmt: skip
    rows.append({"prompt": "q9", "chosen": "same", "rejected": "same"})
    frame = pd.DataFrame(rows)
    frame.attrs["source"] = "pairs.jsonl"
    report = task.diagnose({"train": task.standardize(frame)}, False, 0)
    lines = task.doctor_lines(report)
    assert any("1 pair(s) whose chosen and rejected answers are the same" in ln for ln in lines)
    biased = next(line for line in lines if "the longer one in" in line)
    assert "in 95% of pairs" in biased and "can learn length instead of quality" in biased
    # lengths that do not separate the answers draw no advice
    short, long = "x" * 5, "x" * 11
    pairs = [(long, short) if i % 2 else (short, long) for i in range(10)]
    balanced = pd.DataFrame([{"prompt": f"q{i}", "chosen": c, "rejected": r}
                             for i, (c, r) in enumerate(pairs)])  # fmt: skip
    found = task.doctor_lines(task.diagnose({"train": task.standardize(balanced)}, False, 0))
    line = next(line for line in found if "the longer one in" in line)
    assert "in 50% of pairs" in line and "instead of quality" not in line


def test_a_run_that_moved_no_preference_says_it_learned_nothing():
    from tunelab.training.health import final_warnings

    task = PreferenceTuning(preference={"method": "dpo"})
    untuned = {"preference_accuracy": 0.5, "logp_margin": -0.090, "chrf": 0.79, "examples": 8}
    still = {**untuned, "logp_margin": -0.0896, "chrf": 0.91}  # chrF moved by chance alone
    warnings = final_warnings(task, {"test": still, "before": {"test": untuned}}, [], [])
    assert any("has not learned the preference" in w and "0.500" in w for w in warnings)
    for learned in ({"preference_accuracy": 0.625}, {"logp_margin": 0.2}):
        tuned = {**still, **learned}
        warnings = final_warnings(task, {"test": tuned, "before": {"test": untuned}}, [], [])
        assert not any("preference" in w for w in warnings)


def test_pairs_carry_their_padded_length_and_both_answers_tokens(tiny_llama):
    from transformers import AutoTokenizer

    from tunelab.models.flops import utilisation

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    task = PreferenceTuning(preference={"method": "dpo"})
    frame = task.standardize(pd.DataFrame([
        {"prompt": "red cat", "chosen": "红", "rejected": "no idea at all, really"},
        {"prompt": "big dog " * 6, "chosen": "大狗", "rejected": "no"},
    ]))  # fmt: skip
    encoded = task.encode(frame, tokenizer, max_length=64)

    def tokens(row: dict, answer: str) -> int:
        chat = [*row["prompt"], {"role": "assistant", "content": answer}]
        return len(tokenizer(tokenizer.apply_chat_template(chat, tokenize=False),
                             add_special_tokens=False)["input_ids"]) + 1  # fmt: skip

    rows = encoded.to_list()
    sizes = [[tokens(r, r["chosen"][0]["content"]), tokens(r, r["rejected"][0]["content"])]
             for r in rows]  # fmt: skip
    assert encoded["length"] == [max(pair) for pair in sizes]
    assert encoded["tokens"] == [sum(pair) for pair in sizes]
    total, mean = task.trained_tokens(encoded)
    assert total == sum(map(sum, sizes)) and mean == total / 4
    # the reference model's forward pass is a third of a training pass more work a token
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    plain = utilisation(model, total, 1.0, mean, "fp32")["flops_per_token"]
    dpo = utilisation(model, total, 1.0, mean, "fp32", forward_passes=task.forward_passes)
    assert dpo["flops_per_token"] == pytest.approx(plain * 4 / 3, rel=1e-5)


def test_broken_answers_after_preference_tuning_advise_a_gentler_run():
    task = PreferenceTuning(preference={"method": "dpo"})
    broken = {"eos_ending_share": 0.0, "same_output_share": 0.59, "examples": 29}
    said = task.learning_warning(broken, 29)
    assert "59% of the outputs are the same text" in said
    assert "lower training.learning_rate, a higher preference.beta or LoRA" in said
    assert "higher training.learning_rate" not in said  # the causal-lm advice would harm
    assert task.learning_warning({"eos_ending_share": 0.9, "examples": 29}, 29) is None


def test_answers_as_broken_before_tuning_do_not_blame_the_tuning():
    task = PreferenceTuning(preference={"method": "dpo"})
    # the HH-RLHF run: SmolLM2's answers ran on as often before DPO as after it
    tuned = {"eos_ending_share": 0.283, "looping_share": 0.083, "examples": 60}
    untuned = {"eos_ending_share": 0.283, "looping_share": 0.067, "examples": 60}
    from tunelab.training.health import final_warnings

    (said,) = final_warnings(task, {"test": tuned, "before": {"test": untuned}}, [], [])
    assert said.startswith("test: 72% of the outputs run to max_new_tokens without a stop token")
    assert "as the untuned model's did (72%)" in said and "did not break" in said
    assert "lower training.learning_rate" not in said
    # where tuning made them so, the gentler run is still the advice
    worse = {**untuned, "eos_ending_share": 0.9}
    assert "lower training.learning_rate" in task.learning_warning(tuned, 60, worse)


def test_kto_rows_are_shuffled_once_so_neighbours_answer_other_prompts(tiny_llama):
    """TRL's KTO trains in the dataset's order and estimates its KL term from each answer
    paired with its neighbour's prompt: a pair file's good and bad answer to one prompt must
    not be neighbours, and a file sorted by label must still mix labels."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    pairs = [{"prompt": f"q{i} red cat", "chosen": "红", "rejected": "no idea"} for i in range(64)]
    task = PreferenceTuning(preference={"method": "kto"})
    encoded = task.encode(task.standardize(pd.DataFrame(pairs)), tokenizer, max_length=64)
    prompts = [json.dumps(prompt) for prompt in encoded["prompt"]]
    assert len(prompts) == 128
    same = sum(prompts[i] == prompts[i - 1] for i in range(1, len(prompts)))
    assert same < 8  # in file order every second row repeats its neighbour's prompt: 64
    sorted_rows = [{"prompt": f"q{i}", "completion": "红" if i < 64 else "no", "label": i < 64}
                   for i in range(128)]  # fmt: skip
    labels = task.encode(task.standardize(pd.DataFrame(sorted_rows)), tokenizer, 64)["label"]
    batches = [labels[start : start + 8] for start in range(0, 128, 8)]
    assert sum(0 < sum(batch) < 8 for batch in batches) >= 12  # in file order: none mixed
    again = task.encode(task.standardize(pd.DataFrame(sorted_rows)), tokenizer, 64)["label"]
    assert again == labels  # one fixed, seeded order


def test_kto_weighs_the_rarer_kind_of_answer_into_the_papers_range():
    """Unbalanced feedback: the rarer kind's weight rises to bring weighted good answers to
    7/6 times the bad ones, inside the paper's 1-4/3 (TRL keeps 1 and 1 and only warns);
    weights the user gives are kept, and counts in range or of one kind only are left alone."""
    from tunelab.tasks.preference import kto_weights

    def ratio(good: int, bad: int, weights: dict[str, float]) -> float:
        return weights["desirable_weight"] * good / (weights["undesirable_weight"] * bad)

    weights = kto_weights(400, 100)  # mostly good
    assert weights["desirable_weight"] == 1.0
    assert ratio(400, 100, weights) == pytest.approx(7 / 6)
    weights = kto_weights(100, 400)  # mostly bad
    assert weights == {"desirable_weight": pytest.approx(14 / 3), "undesirable_weight": 1.0}
    assert ratio(100, 400, weights) == pytest.approx(7 / 6)
    for in_range in ((120, 100), (50, 50), (9, 0)):
        assert kto_weights(*in_range) == {"desirable_weight": 1.0, "undesirable_weight": 1.0}
    assert kto_weights(100, 400, undesirable=0.5) == {"desirable_weight": 1.0,
                                                      "undesirable_weight": 0.5}  # fmt: skip


def test_the_doctor_counts_kto_answers_and_says_how_training_weighs_them():
    task = PreferenceTuning(preference={"method": "kto"})
    rows = [{"prompt": f"q{i}", "completion": "a", "label": i < 40} for i in range(50)]
    frames = {"train": task.standardize(pd.DataFrame(rows)),
              "test": task.standardize(pd.DataFrame([{"prompt": "q", "chosen": "a",
                                                      "rejected": "b"}]))}  # fmt: skip
    lines = task.doctor_lines(task.diagnose(frames, False, 0))
    train = next(line for line in lines if line.startswith("data doctor: train: 40 good"))
    assert "40 good and 10 bad answers; training weighs the bad ones 3.43" in train
    assert "weighted good answers are 1.17 times the bad ones" in train
    assert "data doctor: test: 1 good and 1 bad answers" in lines
    given = PreferenceTuning(preference={"method": "kto", "undesirable_weight": 2.0})
    lines = given.doctor_lines(given.diagnose(frames, False, 0))
    assert "data doctor: train: 40 good and 10 bad answers" in lines  # the user's weights


def test_the_doctor_says_what_kto_can_do_with_one_kind_of_answer():
    task = PreferenceTuning(preference={"method": "kto"})

    def train_line(labels: list[bool]) -> str:
        rows = [{"prompt": f"q{i}", "completion": "a", "label": good}
                for i, good in enumerate(labels)]  # fmt: skip
        frames = {"train": task.standardize(pd.DataFrame(rows))}
        return task.doctor_lines(task.diagnose(frames, False, 0))[-1]

    assert "no bad answers KTO only pulls the model towards these" in train_line([True] * 6)
    assert "--task causal-lm" in train_line([True] * 6)
    assert "add answers labelled true" in train_line([False] * 6)
    assert train_line([True, False] * 3) == "data doctor: train: 3 good and 3 bad answers"


def test_a_duplicate_repeats_the_prompt_and_every_answer_and_training_drops_it():
    """Another rejected answer to a prompt is another pair, and KTO's good and bad answer to
    one prompt are two answers: neither is a duplicate; a repeated whole row is, and goes."""
    from types import SimpleNamespace

    task = PreferenceTuning(preference={"method": "dpo"})
    rows = [{"prompt": "q", "chosen": "good", "rejected": "bad"},
            {"prompt": "q", "chosen": "good", "rejected": "worse"},
            {"prompt": "q", "chosen": "good", "rejected": "bad"}]  # fmt: skip
    frame = task.standardize(pd.DataFrame(rows))
    lines = task.doctor_lines(task.diagnose({"train": frame}, False, 0))
    assert lines[0] == "data doctor: train: 3 rows, 1 duplicate pair (the same prompt and answers)"
    kept, found = task.clean(frame, SimpleNamespace(drop_duplicates=True), is_training=True)
    assert kept["rejected"].tolist() == ["bad", "worse"] and found["duplicates"] == 1
    kept, _ = task.clean(frame, SimpleNamespace(drop_duplicates=False), is_training=True)
    assert len(kept) == 3
    kto = PreferenceTuning(preference={"method": "kto"})
    answers = kto.standardize(pd.DataFrame([
        {"prompt": "q", "completion": "a", "label": True},
        {"prompt": "q", "completion": "a", "label": False},
        {"prompt": "q", "completion": "b", "label": False},
    ]))  # fmt: skip
    lines = kto.doctor_lines(kto.diagnose({"train": answers}, False, 0))
    assert lines[0] == "data doctor: train: 3 rows"  # no duplicates, no "several references"
    assert len(kto.clean(answers, SimpleNamespace(drop_duplicates=True), True)[0]) == 3


def test_kto_hands_the_balanced_weights_to_trl(tiny_llama, caplog):
    """The weights reach KTOConfig's arguments, and the log says which kind weighs more."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    rows = [{"prompt": f"q{i} red cat", "completion": "红", "label": i < 8} for i in range(32)]
    task = PreferenceTuning(preference={"method": "kto"})
    train = task.encode(task.standardize(pd.DataFrame(rows)), tokenizer, max_length=64)
    with caplog.at_level("INFO"):
        setup = task.trainer_setup(model, tokenizer, None, train, None)
    assert setup.arguments["desirable_weight"] == pytest.approx(7 / 6 * 24 / 8)
    assert setup.arguments["undesirable_weight"] == 1.0
    assert "KTO: 8 good and 24 bad training answers; training weighs the good ones 3.50" in (
        caplog.text
    )
    given = PreferenceTuning(preference={"method": "kto", "desirable_weight": 2.0})
    setup = given.trainer_setup(model, tokenizer, None, train, None)
    assert (setup.arguments["desirable_weight"], setup.arguments["undesirable_weight"]) == (2, 1)
