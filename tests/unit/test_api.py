"""The Python API end to end on a tiny random BERT (hidden 32) and generated data."""

import json

import pandas as pd
import pytest
from safetensors.torch import load_file

import tunelab
from tests.conftest import make_reviews, tiny_run_config
from tunelab.config import load_config
from tunelab.errors import UserError


@pytest.fixture(scope="module")
def trained(tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    data = root / "reviews.csv"
    make_reviews(300).to_csv(data, index=False)
    result = tunelab.train(tiny_run_config(tiny_bert, data, root / "run"))
    return result, root


def test_training_learns_and_writes_a_complete_run(trained, tiny_bert):
    _, root = trained
    run = root / "run"
    for name in ("config.yaml", "data_report.json", "metrics.json", "predictions.jsonl"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["examples"] == 30  # 10% of 300, split automatically
    assert metrics["test"]["accuracy"] >= 0.8  # chance is 0.5 on this data
    assert set(metrics["test"]["per_class"]) == {"negative", "positive"}
    before = load_file(tiny_bert / "model.safetensors")
    after = load_file(run / "model" / "model.safetensors")
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert not (before[name] == after[name]).all()
    lines = (run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 30 and {"text", "label", "score", "gold"} <= set(json.loads(lines[0]))


def test_saved_config_repeats_the_run(trained):
    _, root = trained
    config = load_config(root / "run" / "config.yaml")
    assert config.training.learning_rate == 3e-3
    assert config.output == root / "run"


def test_model_loads_in_plain_transformers_pipeline_with_same_labels(trained):
    from transformers import pipeline

    result, _ = trained
    texts = make_reviews(40, seed=5)["text"].tolist()
    ours = tunelab.predict(result["model_dir"], texts=texts)
    plain = pipeline("text-classification", model=result["model_dir"], device="cpu")(texts)
    assert [r["label"] for r in ours] == [r["label"] for r in plain]
    assert [r["score"] for r in ours] == pytest.approx([r["score"] for r in plain], abs=1e-4)


def test_checked_precision_keeps_the_fp32_labels_and_scores_near(trained):
    result, _ = trained
    texts = make_reviews(200, seed=7)["text"].tolist()  # over 64 rows: bf16 runs them
    exact = tunelab.predict(result["model_dir"], texts=texts)
    checked = tunelab.predict(result["model_dir"], texts=texts, precision="checked")
    assert [r["label"] for r in checked] == [r["label"] for r in exact]
    assert [r["score"] for r in checked] == pytest.approx([r["score"] for r in exact], abs=0.02)
    with pytest.raises(UserError, match="precision 'fast' is not one of"):
        tunelab.predict(result["model_dir"], texts=texts, precision="fast")


def test_predict_by_default_runs_checked_bf16_where_it_is_faster(trained, monkeypatch):
    """The default is auto: on a machine where bf16 is faster, a pass over more than 64 rows
    is checked (fp32's labels); over 64 or fewer it is plain fp32, without probing."""
    import tunelab.inference as inference

    result, _ = trained
    texts = make_reviews(200, seed=7)["text"].tolist()
    exact = tunelab.predict(result["model_dir"], texts=texts, precision="fp32")
    calls = []
    checked_forward = inference.checked_forward
    monkeypatch.setattr(inference, "checked_forward",
                        lambda *args: calls.append(1) or checked_forward(*args))  # fmt: skip
    monkeypatch.setattr(inference, "resolve_precision", lambda requested: "bf16")
    default = tunelab.predict(result["model_dir"], texts=texts)
    assert calls and [r["label"] for r in default] == [r["label"] for r in exact]
    monkeypatch.setattr(inference, "resolve_precision", lambda requested: pytest.fail("probed"))
    few = tunelab.predict(result["model_dir"], texts=texts[:64])
    assert [r["label"] for r in few] == [r["label"] for r in exact[:64]] and len(calls) == 1
    assert [r["score"] for r in few] == pytest.approx([r["score"] for r in exact[:64]], abs=1e-5)


def test_evaluate_any_labelled_file_matches_training_metrics(trained, tmp_path):
    _, root = trained
    predictions = [json.loads(line) for line in (root / "run" / "predictions.jsonl").open()]
    test_file = tmp_path / "test.jsonl"
    pd.DataFrame(
        {"ticket": [f"T{i}" for i in range(len(predictions))],
         "text": [p["text"] for p in predictions], "label": [p["gold"] for p in predictions]}
    ).to_json(test_file, orient="records", lines=True, force_ascii=False)  # fmt: skip
    scores = tunelab.evaluate(root / "run", test_file, output=tmp_path / "eval")
    expected = json.loads((root / "run" / "metrics.json").read_text())["test"]
    assert scores["accuracy"] == pytest.approx(expected["accuracy"])
    exact = tunelab.evaluate(root / "run", test_file, precision="fp32")
    checked = tunelab.evaluate(root / "run", test_file, precision="checked")
    assert checked["accuracy"] == exact["accuracy"] == pytest.approx(expected["accuracy"])
    assert checked["confusion_matrix"] == exact["confusion_matrix"]
    written = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").open()]
    assert [w["ticket"] for w in written] == [f"T{i}" for i in range(len(predictions))]
    assert [w["gold"] for w in written] == [p["gold"] for p in predictions]
    assert "label" in written[0] and set(written[0]) >= {"ticket", "text", "score"}
    # a folder of split files, as train takes it: its test file is scored
    folder = tmp_path / "splits"
    folder.mkdir()
    test_file.rename(folder / "test.jsonl")
    (folder / "train.jsonl").write_text((folder / "test.jsonl").read_text(encoding="utf-8"))
    assert tunelab.evaluate(root / "run", folder)["accuracy"] == pytest.approx(scores["accuracy"])


def test_predict_writes_csv_from_an_input_file(trained, tmp_path):
    result, _ = trained
    source = tmp_path / "in.csv"
    pd.DataFrame({"order": ["007", "8", "9"], "text": ["很好很好", "很差很差", "一般"]}).to_csv(
        source, index=False
    )
    tunelab.predict(result["model_dir"], input=source, output=tmp_path / "out.csv")
    written = pd.read_csv(tmp_path / "out.csv", dtype={"order": str})
    # the file's other columns come first and unchanged, so predictions join back to its rows
    assert list(written.columns[:4]) == ["order", "text", "label", "score"]
    assert written["order"].tolist() == ["007", "8", "9"]
    assert {"p_negative", "p_positive"} <= set(written.columns)
    assert len(written) == 3


def test_predict_reads_a_new_files_text_column_when_the_training_column_is_missing(
    trained, tmp_path
):
    result, _ = trained  # trained on a 'text' column
    texts = ["很好很好，物流也快", "很差很差，不要买", "一般般吧，还可以"]
    source = tmp_path / "new.csv"
    pd.DataFrame({"id": [1, 2, 3], "review": texts}).to_csv(source, index=False)
    guessed = tunelab.predict(result["model_dir"], input=source)
    direct = tunelab.predict(result["model_dir"], texts=texts)
    assert [r["text"] for r in guessed] == texts
    assert [r["label"] for r in guessed] == [r["label"] for r in direct]
    numbers = tmp_path / "numbers.csv"
    pd.DataFrame({"id": [1, 2], "n": [3, 4]}).to_csv(numbers, index=False)
    with pytest.raises(UserError, match=r"numbers.csv has no column 'text'.*columns are: id, n; "
                       r"name the text column with --text-column"):  # fmt: skip
        tunelab.predict(result["model_dir"], input=numbers)


def test_existing_run_is_not_overwritten_silently(trained, tiny_bert):
    _, root = trained
    with pytest.raises(UserError, match="already holds a run; pass --resume"):
        tunelab.train(tiny_run_config(tiny_bert, root / "reviews.csv", root / "run"))


def test_resume_continues_from_the_last_checkpoint(tiny_bert, reviews_csv, tmp_path):
    config = tiny_run_config(tiny_bert, reviews_csv, tmp_path / "run", training={"epochs": 1})
    first = tunelab.train(config)
    steps = first["metrics"]["train"]["steps"]
    config["training"]["epochs"] = 2
    second = tunelab.train(config, resume=True)
    assert second["metrics"]["train"]["steps"] == 2 * steps
    assert (tmp_path / "run" / "checkpoints" / f"checkpoint-{2 * steps}").is_dir()


@pytest.mark.parametrize("minutes", [5.0, 0.0])
def test_quick_epochs_without_validation_checkpoint_only_at_the_end(
    tiny_bert, reviews_csv, tmp_path, minutes
):
    config = tiny_run_config(
        tiny_bert, reviews_csv, tmp_path / "run", data={"split": {"validation": 0}},
        training={"epochs": 3, "checkpoint_minutes": minutes, "save_total_limit": 3},
    )  # fmt: skip
    steps = tunelab.train(config)["metrics"]["train"]["steps"] // 3
    written = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("checkpoint-*"))
    # seconds-long epochs: the last one's checkpoint alone, unless asked for every epoch
    expected = [3] if minutes else [1, 2, 3]
    assert written == sorted(f"checkpoint-{steps * epoch}" for epoch in expected)


def test_multi_label_pairs_and_regression(tiny_bert, tmp_path):
    base = make_reviews(120)
    multi = base.assign(
        label=["a|b" if i % 3 == 0 else "a" if i % 3 == 1 else "b" for i in range(120)]
    )
    multi.to_csv(tmp_path / "multi.csv", index=False)
    result = tunelab.train(
        tiny_run_config(tiny_bert, tmp_path / "multi.csv", tmp_path / "m", training={"epochs": 1}),
        # above the one-epoch model's scores (about 0.54): 0.5 and 0.6 decide differently
        overrides=["data.label_separator=|", "classification.threshold=0.6"],
    )
    assert {"subset_accuracy", "f1_micro", "threshold"} <= set(result["metrics"]["test"])
    assert isinstance(tunelab.predict(result["model_dir"], texts=["好"])[0]["labels"], list)
    tunelab.doctor(tmp_path / "multi.csv", model=tmp_path / "m", label_separator="|",
                   report=tmp_path / "multi-doctor.json")  # fmt: skip
    errors = json.loads((tmp_path / "multi-doctor.json").read_text())["label_errors"]
    assert "the given model" in errors.get("method", errors.get("skipped", "")), errors
    assert errors["examples"]  # its suggestions are the labels predict gives, at its threshold
    for example in errors["examples"]:
        labels = tunelab.predict(result["model_dir"], texts=[example["text"]])[0]["labels"]
        assert example["suggested"] == "|".join(sorted(labels)), example

    pairs = base.assign(other=base["text"].str[::-1])
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    result = tunelab.train(
        tiny_run_config(tiny_bert, tmp_path / "pairs.csv", tmp_path / "p", training={"epochs": 1}),
        overrides=["data.text_pair_column=other"],
    )
    assert "accuracy" in result["metrics"]["test"]

    scores = base.assign(label=[0.5 + 0.25 * (i % 5) for i in range(120)])
    scores.to_csv(tmp_path / "scores.csv", index=False)
    result = tunelab.train(
        tiny_run_config(tiny_bert, tmp_path / "scores.csv", tmp_path / "r", training={"epochs": 1})
    )
    assert {"mse", "mae", "pearson", "spearman"} <= set(result["metrics"]["test"])
    assert isinstance(tunelab.predict(result["model_dir"], texts=["好"])[0]["value"], float)


def test_unreachable_hub_model_is_a_clear_error(reviews_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = {
        "data": {"train": str(reviews_csv)},
        "model": {"name": "nobody/no-such-model"},
        "output": str(tmp_path / "run"),
    }
    with pytest.raises(
        UserError, match=r"'nobody/no-such-model' is not a local folder.*scratch-bert"
    ):
        tunelab.train(config)
    assert not (tmp_path / "run" / "model").exists()


def test_missing_model_folder(reviews_csv, tmp_path):
    config = {"data": {"train": str(reviews_csv)}, "model": {"name": "./no/such/folder"}}
    with pytest.raises(UserError, match=r"model folder \./no/such/folder does not exist"):
        tunelab.train(config)


def test_doctor_uses_a_trained_models_tokenizer_and_probabilities(trained, tmp_path):
    _, root = trained
    text = tunelab.doctor(root / "reviews.csv", model=root / "run", report=tmp_path / "r.json")
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["label_errors"]["method"] == "the given model's probabilities + cleanlab"
    assert "tokens" in report["splits"]["train"]["lengths"]
    assert "truncated at max_length" in text


def test_a_txt_file_of_one_text_a_line_is_predicted_line_by_line(trained, tmp_path):
    result, _ = trained
    notes = tmp_path / "new.txt"
    notes.write_text("质量很好，物流也快\n\n包装破了, 很失望\n一般般\n", encoding="utf-8")
    records = tunelab.predict(result["model_dir"], input=notes)
    # blank lines skipped; the texts as given, each with the model's label, as --text gives
    assert [r["text"] for r in records] == ["质量很好，物流也快", "包装破了, 很失望", "一般般"]
    expected = tunelab.predict(result["model_dir"], texts=[r["text"] for r in records])
    assert [r["label"] for r in records] == [r["label"] for r in expected]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    with pytest.raises(UserError, match=r"empty.txt holds no text; put one text on each line"):
        tunelab.predict(result["model_dir"], input=empty)


def test_predictions_echo_the_input_text_not_its_normalised_form(trained):
    result, _ = trained
    records = tunelab.predict(result["model_dir"], texts=["质量很好，物流也快！ＯＫ"])
    assert records[0]["text"] == "质量很好，物流也快！ＯＫ"
