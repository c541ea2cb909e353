"""The fine-tuning recipe stage by stage, and the config coercion and output guard it shares
with pretraining."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import make_reviews, tiny_run_config
from tunelab.config import PretrainConfig, RunConfig, as_config, commented_yaml, given_keys
from tunelab.errors import UserError
from tunelab.outputs import claim_output
from tunelab.training.finetune import fit, prepare_run, save_run, score
from tunelab.training.sampling import BucketedRandomSampler


def test_each_stage_can_run_alone_and_passes_plain_values_on(tiny_bert, tmp_path):
    data = tmp_path / "reviews.csv"
    make_reviews(200).to_csv(data, index=False)
    config = as_config(tiny_run_config(tiny_bert, data, tmp_path / "run"))

    parts = prepare_run(config)
    assert set(parts.splits) == {"train", "validation", "test"}
    assert {split: len(parts.encoded[split]) for split in parts.splits} == {
        split: len(frame) for split, frame in parts.splits.items()
    }
    assert parts.max_length == parts.data_report["tokens"]["max_length"]
    assert parts.source == str(tiny_bert) and parts.precision in {"fp32", "bf16"}
    # the folder is claimed (config.yaml marks it incomplete), but nothing is saved yet
    assert (parts.output / "config.yaml").is_file() and not (parts.output / "model").exists()

    fitted = fit(parts)
    assert fitted.trainer is not None and fitted.stats["steps"] > 0
    assert fitted.history and fitted.seconds > 0
    sampler = fitted.trainer._get_train_sampler()  # group_by_length: tunelab's buckets
    assert isinstance(sampler, BucketedRandomSampler)
    assert sampler.lengths == list(parts.encoded["train"]["length"])
    assert sampler.labels == list(parts.encoded["train"]["labels"])  # batches keep the mix
    throughput = fitted.stats["throughput"]  # every run reports its utilisation
    assert throughput["tokens_per_second"] > 0 and 0 < throughput["mfu"] < 1
    expected = parts.data_report["tokens"]["total"] * float(fitted.trainer.state.epoch)
    step_seconds = expected / throughput["tokens_per_second"]
    assert 0 < step_seconds <= fitted.stats["optimizer_seconds"]  # steps only, no evaluation

    scores = score(parts, fitted)
    assert {"train", "validation", "test", "baseline", "warnings"} <= set(scores.metrics)
    assert set(scores.outputs) == {"validation", "test"}
    assert not (parts.output / "metrics.json").exists()

    result = save_run(parts, fitted, scores)
    report = (parts.output / "report.html").read_text(encoding="utf-8")
    assert "model FLOPs utilisation" in report
    metrics = json.loads((parts.output / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["test"]["accuracy"] == pytest.approx(scores.metrics["test"]["accuracy"])
    assert result["model_dir"] == str(parts.output / "model")
    assert (parts.output / "model" / "config.json").is_file()
    assert len((parts.output / "predictions.jsonl").read_text().splitlines()) == len(
        parts.splits["test"]
    )
    # where the time went: every stage of the run, in order, adding up to the total
    stages = metrics["stage_seconds"]
    assert list(stages) == ["data", "model", "tokenise", "before training", "training",
                            "predictions", "baseline", "saving", "report", "other",
                            "total"]  # fmt: skip
    assert all(seconds >= 0 for seconds in stages.values()) and stages["training"] > 0
    assert sum(v for k, v in stages.items() if k != "total") == pytest.approx(
        stages["total"], abs=0.1
    )


def test_as_config_accepts_objects_dicts_and_files_and_never_changes_the_callers(tmp_path):
    tree = {"data": {"train": "a.csv"}, "training": {"epochs": 2}}
    config = as_config(tree, ["training.epochs=5"])
    assert config.training.epochs == 5 and tree["training"]["epochs"] == 2

    assert as_config(config) is config  # no overrides: the object itself
    changed = as_config(config, ["seed=7"])
    assert changed.seed == 7 and config.seed != 7

    path = tmp_path / "run.yaml"
    path.write_text(commented_yaml(config), encoding="utf-8")
    assert as_config(path) == config
    assert isinstance(as_config(config), RunConfig)

    pretrain = as_config({"data": ["a.txt"]}, ["objective=clm"], schema=PretrainConfig)
    assert isinstance(pretrain, PretrainConfig) and pretrain.objective == "clm"
    with pytest.raises(UserError, match=r"training\.epochs"):
        as_config(tree, ["training.epochs=many"])


def test_claim_output_refuses_a_finished_run_and_clears_it_only_to_overwrite(tmp_path):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "metrics.json").write_text("{}")
    (run / "notes.txt").write_text("mine")
    replaced = [run / "model", run / "metrics.json"]

    with pytest.raises(UserError, match="holds a run"):
        claim_output(run, ["model"], replaced, False, False, refusal="holds a run")
    claim_output(run, ["model"], replaced, resume=True, overwrite=True, refusal="")
    assert (run / "model").is_dir()  # resuming needs what is there
    claim_output(run, ["model"], replaced, resume=False, overwrite=True, refusal="")
    assert not (run / "model").exists() and not (run / "metrics.json").exists()
    assert (run / "notes.txt").read_text() == "mine"  # only what a run writes is replaced
    claim_output(run, ["model"], replaced, False, False, refusal="")  # nothing left to refuse


def test_eval_rows_samples_held_out_splits_the_same_way_each_time(tmp_path):
    from tunelab.tasks.text_classification import TextClassification
    from tunelab.training.prepare import load_splits

    for split, n in (("train", 120), ("validation", 60), ("test", 60)):
        make_reviews(n, seed=len(split)).to_csv(tmp_path / f"{split}.csv", index=False)
    tree = {"data": {"train": str(tmp_path / "train.csv"),
                     "validation": str(tmp_path / "validation.csv"),
                     "test": str(tmp_path / "test.csv"), "eval_rows": 25}}  # fmt: skip
    config = as_config(tree)
    splits, _ = load_splits(config, TextClassification.from_run_config(config))
    again, _ = load_splits(config, TextClassification.from_run_config(config))
    assert {split: len(frame) for split, frame in splits.items()} == {
        "train": 120, "validation": 25, "test": 25
    }  # fmt: skip
    assert splits["test"].index.is_monotonic_increasing  # file order kept
    assert splits["test"].equals(again["test"])  # seeded: the same rows every run


def test_a_label_the_training_subset_left_out_names_the_subset(tmp_path):
    import pandas as pd

    from tunelab.tasks.text_classification import TextClassification
    from tunelab.training.prepare import load_splits

    train = pd.DataFrame({"text": [f"good {i}" for i in range(40)] + ["rare one"],
                          "label": ["pos", "neg"] * 20 + ["odd"]})  # fmt: skip
    train.to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"text": ["rare two"], "label": ["odd"]}).to_csv(tmp_path / "test.csv")
    tree = {"data": {"train": str(tmp_path / "train.csv"), "test": str(tmp_path / "test.csv"),
                     "train_rows": 10, "split": {"validation": 0.0}}}  # fmt: skip
    config = as_config(tree)
    with pytest.raises(UserError, match=r"'odd'.*\(data.train_rows kept 10 of 41 training rows"):
        load_splits(config, TextClassification.from_run_config(config))


def test_untuned_scores_are_for_chat_models_tunelab_did_not_pretrain(tiny_llama, tmp_path):
    from transformers import AutoTokenizer

    from tunelab.models.load import resolve_model_source
    from tunelab.training.finetune import answers_before_training

    chat = AutoTokenizer.from_pretrained(tiny_llama)
    assert answers_before_training(chat, str(tiny_llama))
    starter = resolve_model_source("zh-llama-mini")  # a template, but pretrained by tunelab
    assert not answers_before_training(AutoTokenizer.from_pretrained(starter), starter)
    chat.chat_template = None
    assert not answers_before_training(chat, str(tiny_llama))


def test_reloading_a_tied_model_warns_only_of_keys_really_missing(tiny_llama):
    from types import SimpleNamespace

    from torch.nn.modules.module import _IncompatibleKeys
    from transformers import AutoModelForCausalLM

    from tunelab.training.trainer import _quiet_about_tied_weights

    issued: list[list[str]] = []
    trainer = SimpleNamespace(
        model=AutoModelForCausalLM.from_pretrained(tiny_llama),
        _issue_warnings_after_load=lambda result: issued.append(list(result.missing_keys)),
    )
    _quiet_about_tied_weights(trainer)
    for missing in (["lm_head.weight"], ["model.norm.weight", "lm_head.weight"]):
        trainer._issue_warnings_after_load(_IncompatibleKeys(missing, []))
    assert issued == [[], ["model.norm.weight"]]


def test_frozen_embeddings_stay_as_pretrained_while_the_rest_learns(tiny_bert, tmp_path):
    from safetensors.torch import load_file

    data = tmp_path / "reviews.csv"
    make_reviews(120).to_csv(data, index=False)
    config = tiny_run_config(tiny_bert, data, tmp_path / "run")
    config["training"] = {**config.get("training", {}), "epochs": 1, "freeze_embeddings": True}
    parts = prepare_run(as_config(config))
    embeddings = parts.model.get_input_embeddings().weight
    assert not embeddings.requires_grad
    assert parts.data_report["frozen_embeddings"] == embeddings.numel()
    before = load_file(tiny_bert / "model.safetensors")
    fit(parts)
    after = {name: value.detach() for name, value in parts.model.state_dict().items()}
    word = next(name for name in before if name.endswith("word_embeddings.weight"))
    assert (after[word] == before[word]).all()
    layer = next(name for name in before if "layer.0" in name and name.endswith("weight"))
    assert not (after[layer] == before[layer]).all()


def test_held_out_rows_are_predicted_as_tunelab_predict_does_by_default(monkeypatch):
    from tunelab import inference
    from tunelab.training.finetune import _scoring_precision

    monkeypatch.setattr(inference, "resolve_precision", lambda requested: "bf16")
    assert _scoring_precision("bf16", rows=500) == "checked"  # fp32's labels, bf16's speed
    assert _scoring_precision("bf16", rows=64) == "fp32"  # too few rows to be worth checking
    monkeypatch.setattr(inference, "resolve_precision", lambda requested: "fp32")
    assert _scoring_precision("bf16", rows=500) == "fp32"  # bf16 is not faster here
    assert _scoring_precision("fp32", rows=500) == "fp32"  # a run asked to train exact


def test_training_the_used_embedding_rows_gives_the_model_every_row_gives(tiny_bert, tmp_path):
    from safetensors.torch import load_file

    data = tmp_path / "reviews.csv"
    make_reviews(120).to_csv(data, index=False)
    saved = {}
    for rows in ("used", "all"):
        config = tiny_run_config(tiny_bert, data, tmp_path / rows, training={"epochs": 2})
        config["training"]["embedding_rows"] = rows
        config["training"]["precision"] = "fp32"  # bf16 would round the two paths apart
        parts = prepare_run(as_config(config))
        fitted = fit(parts)
        result = save_run(parts, fitted, score(parts, fitted))
        saved[rows] = load_file(f"{result['model_dir']}/model.safetensors")
        if rows == "used":  # the reviews use few of the characters the vocabulary holds
            counted = fitted.stats["embedding_rows"]
            assert 0 < counted["trained"] < counted["total"] == parts.tokenizer.vocab_size
            assert type(parts.model.get_input_embeddings()).__name__ == "Embedding"
        else:
            assert "embedding_rows" not in fitted.stats
    assert saved["used"].keys() == saved["all"].keys()  # an ordinary checkpoint
    for name, value in saved["all"].items():
        torch.testing.assert_close(saved["used"][name], value, rtol=1e-4, atol=1e-5, msg=name)


def test_the_utilisation_line_says_when_other_processes_shared_the_cpu(
    tiny_bert, tmp_path, monkeypatch, caplog
):
    from tunelab.training import finetune

    data = tmp_path / "reviews.csv"
    make_reviews(60).to_csv(data, index=False)
    config = tiny_run_config(tiny_bert, data, tmp_path / "run", training={"epochs": 1})
    parts = prepare_run(as_config(config))
    monkeypatch.setattr(finetune.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(finetune, "other_cpu_load", lambda threads: 3.0)
    with caplog.at_level("INFO", logger="tunelab"):
        fitted = fit(parts)
    assert fitted.stats["throughput"]["other_cpu_load"] == 3.0
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("throughput"))
    assert "other processes kept about 3.0 of the 2 cores" in line and line.endswith("reads low")

    monkeypatch.setattr(finetune, "other_cpu_load", lambda threads: 0.4)  # below half a core
    caplog.clear()
    with caplog.at_level("INFO", logger="tunelab"):
        quiet = finetune._throughput(parts, fitted.trainer, 1.0)
    assert "other_cpu_load" not in quiet
    assert not any("busy" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("long_texts", [False, True])
def test_the_token_limit_comes_from_rows_tokenised_once_and_says_when_most_are_cut(
    tiny_bert, long_texts
):
    from types import SimpleNamespace

    import pandas as pd
    from transformers import AutoTokenizer, BertConfig

    from tunelab.tasks.text_classification import TextClassification
    from tunelab.training.finetune import _max_length

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    reviews = make_reviews(40)
    if long_texts:  # three rows in four past the model's 64 positions
        reviews["text"] = [t * (8 if i % 4 else 1) for i, t in enumerate(reviews["text"])]
    task = TextClassification()
    task.fit_labels(reviews)
    model = SimpleNamespace(config=BertConfig(max_position_embeddings=64))
    report: dict = {}
    config = RunConfig.model_validate({"task": "text-classification"})
    max_length, measured = _max_length(config, task, reviews, tokenizer, model, report)
    true_counts = task.token_lengths(reviews, tokenizer)
    assert measured is not None and measured.cap == 65  # just past the model's limit
    assert report["tokens"]["truncated_share"] == pytest.approx((true_counts > max_length).mean())
    if long_texts:
        assert max_length == 64
        assert report["tokens"]["p50"] is None  # the median row was cut when counted
    else:
        assert max_length < 64
        assert report["tokens"]["p50"] == float(pd.Series(true_counts).median())
    reused = task.encode(reviews, tokenizer, max_length, measured=measured)
    assert reused.to_dict() == task.encode(reviews, tokenizer, max_length).to_dict()


def test_a_small_set_trains_the_raised_epochs_and_says_so_where_a_rerun_reads_it(
    tiny_bert, tmp_path
):
    """prepare_run raises the epochs the config left at their default, before the Trainer
    is built: the run trains them, and the data report and config.yaml keep the figure."""
    data = tmp_path / "reviews.csv"
    make_reviews(120).to_csv(data, index=False)
    config = tiny_run_config(tiny_bert, data, tmp_path / "run")
    del config["training"]["epochs"]  # left at its default: 3
    config["training"]["min_steps"] = 20
    parts = prepare_run(as_config(config))
    rows = len(parts.encoded["train"])
    per_epoch = -(-rows // 16)  # batch 16
    assert 3 * per_epoch < 20  # the set is small enough for the rule to act
    epochs = -(-20 // per_epoch)
    assert parts.data_report["epochs"]["value"] == epochs == parts.config.training.epochs
    assert (parts.output / "config.yaml").is_file()
    fitted = fit(parts)
    assert fitted.stats["steps"] == epochs * per_epoch
    assert float(fitted.trainer.state.epoch) == pytest.approx(epochs)
    rerun = tmp_path / "rerun.yaml"  # what config.yaml holds: the epochs, given, not raised
    rerun.write_text(commented_yaml(parts.config), encoding="utf-8")
    assert as_config(rerun).training.epochs == epochs
    assert "training.epochs" in given_keys(as_config(rerun))
