"""The audio-classification task: clips decoded, mixed down, cut and resampled by hand-checked
values, folders and path columns read as paths (decoded lazily), the doctor's findings, bad
input as one sentence, MFCCs for the baseline, and a tiny scratch-audio model trained,
evaluated, reported and predicted end to end, its folder loading in ``transformers.pipeline``
with the same labels."""

from __future__ import annotations

import json
import math
import re
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

sf = pytest.importorskip("soundfile")

import tunelab  # noqa: E402
from tests.conftest import make_tone_clips, tone  # noqa: E402
from tunelab.cli import app, main  # noqa: E402
from tunelab.config import RunConfig  # noqa: E402
from tunelab.data.audio import inspect_audio, mfcc, mfcc_summary, read_audio, resample  # noqa: E402
from tunelab.data.load import read_table  # noqa: E402
from tunelab.data.media import UnreadableFile  # noqa: E402
from tunelab.errors import UserError  # noqa: E402
from tunelab.evaluation.report_audio import player  # noqa: E402
from tunelab.tasks.audio_classification import AudioClassification  # noqa: E402
from tunelab.tasks.image_classification import ImageClassification  # noqa: E402
from tunelab.training.prepare import load_splits  # noqa: E402


def run_config(model, train, output, **data) -> dict:
    return {
        "task": "audio-classification",
        "output": str(output),
        "data": {"train": str(train), **data},
        "model": {"name": str(model), "scratch": {"layers": 2, "hidden": 32, "heads": 2}},
        "audio": {"scratch_mel_bins": 32},
        "training": {"epochs": 8, "learning_rate": 5e-3, "batch_size": 8,
                     "early_stopping_patience": None, "logging_steps": 1000},
    }  # fmt: skip


# -- decoding ---------------------------------------------------------------------------


def test_resampling_gives_the_tone_sampled_at_the_target_rate():
    at_48k = tone(1000.0, 1.0, 48000)
    down = resample(at_48k, 48000, 16000)
    assert down.shape == (16000,) and down.dtype == np.float32
    # away from the filter's edges the samples are the tone's own at 16 kHz
    assert np.abs(down[200:-200] - tone(1000.0, 1.0, 16000)[200:-200]).max() < 5e-3
    # a 10 kHz tone lies above 16 kHz's Nyquist frequency: filtered out, not folded to 6 kHz
    assert np.abs(resample(tone(10_000.0, 1.0, 48000), 48000, 16000)[200:-200]).max() < 0.01
    assert resample(tone(440.0, 1.0, 44100), 44100, 16000).shape == (16000,)
    assert resample(tone(440.0, 0.5, 8000), 8000, 16000).shape == (8000,)


def test_stereo_is_mixed_down_to_the_mean_of_its_channels(tmp_path):
    left, right = np.full(800, 0.5, np.float32), np.full(800, -0.25, np.float32)
    sf.write(tmp_path / "two.wav", np.stack([left, right], axis=1), 8000)
    samples, rate = read_audio(tmp_path / "two.wav")
    assert rate == 8000 and samples.shape == (800,)
    assert np.allclose(samples, 0.125, atol=1e-4)  # (0.5 - 0.25) / 2, 16-bit exact


def test_clips_are_cut_to_max_seconds_before_resampling(tmp_path):
    sf.write(tmp_path / "long.flac", tone(440.0, 3.0, 22050), 22050)
    samples, rate = read_audio(tmp_path / "long.flac", 16000, max_seconds=1.25)
    assert rate == 16000 and len(samples) == 20000


@pytest.mark.parametrize("suffix", ["wav", "flac", "ogg", "mp3"])
def test_every_format_decodes_to_the_same_tone(tmp_path, suffix):
    if suffix.upper() not in sf.available_formats() and suffix != "mp3":
        pytest.skip(f"this libsndfile does not handle {suffix}")
    path = tmp_path / f"tone.{suffix}"
    try:
        sf.write(path, tone(440.0, 1.0), 16000)
    except (sf.LibsndfileError, TypeError, ValueError):
        pytest.skip(f"this libsndfile cannot write {suffix}")
    samples, _ = read_audio(path, 16000)
    assert abs(len(samples) - 16000) <= 1152  # an MP3 frame of encoder padding at most
    lossless = suffix in ("wav", "flac")
    level = float(np.sqrt(np.mean(samples[:15000] ** 2)))
    assert level == pytest.approx(0.4 / math.sqrt(2), rel=1e-3 if lossless else 0.1)


def test_unreadable_files_say_why(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    sf.write(tmp_path / "whole.wav", tone(440.0, 1.0), 16000)
    whole = (tmp_path / "whole.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "text.wav").write_text("not a sound " * 20, encoding="utf-8")
    reasons = {}
    for name in ("empty.wav", "cut.wav", "text.wav", "missing.wav"):
        with pytest.raises(UnreadableFile) as error:
            read_audio(tmp_path / name)
        reasons[name] = str(error.value)
    assert reasons["empty.wav"] == "empty file (0 bytes)"
    assert reasons["cut.wav"].startswith("truncated: holds 15,978 of the 32,000 bytes")
    assert "not recognised" in reasons["text.wav"]
    assert reasons["missing.wav"] == "no such file"


def test_the_doctor_measures_loudness_and_clipping():
    rate = 16000
    quiet = inspect_audio_of(tone(440.0, 1.0, level=1e-4), rate)
    assert quiet["rms"] == pytest.approx(1e-4 / math.sqrt(2), rel=1e-2)
    full_scale = inspect_audio_of(tone(440.0, 1.0, level=1.0), rate)
    assert full_scale["clipped_share"] == 0.0  # a peak touches the rail, it does not stay
    clipped = inspect_audio_of(np.clip(tone(440.0, 1.0, level=3.0), -1, 1), rate)
    assert clipped["clipped_share"] > 0.5


def inspect_audio_of(samples, rate):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.wav"
        sf.write(path, samples, rate, subtype="FLOAT")
        return inspect_audio(path)


def test_mfcc_has_a_frame_every_10_ms_and_gain_moves_only_c0():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.1, 16000).astype(np.float32)
    coefficients = mfcc(noise, 16000)
    assert coefficients.shape == (1 + (16000 - 400) // 160, 20)  # 25 ms frames, 10 ms hop
    louder = mfcc(noise * 2, 16000)
    # power x4 adds log(4) to each of the 40 log-mel bands; the orthonormal DCT puts all of a
    # constant into c0, scaled by sqrt(40)
    assert np.allclose(louder[:, 0] - coefficients[:, 0], math.log(4) * math.sqrt(40), atol=1e-3)
    assert np.allclose(louder[:, 1:], coefficients[:, 1:], atol=1e-3)
    assert mfcc_summary(noise, 16000).shape == (100,)


def test_a_report_player_embeds_a_short_8_khz_wav(tmp_path):
    import base64
    import io

    sf.write(tmp_path / "long.wav", tone(440.0, 10.0, 44100), 44100)
    html = player(str(tmp_path / "long.wav"))
    uri = re.search(r'<audio controls [^>]*src="data:audio/wav;base64,([^"]+)"', html)
    assert uri
    samples, rate = sf.read(io.BytesIO(base64.b64decode(uri.group(1))))
    assert rate == 8000 and len(samples) == 3 * 8000  # the first 3 seconds
    assert player(str(tmp_path / "gone.wav")) == "(no file to show)"


# -- reading data -----------------------------------------------------------------------


def test_a_folder_of_class_folders_reads_as_paths_and_labels(tmp_path):
    make_tone_clips(tmp_path / "clips", per_class=2)
    frame = read_table(tmp_path / "clips", media="audio")
    assert list(frame.columns) == ["audio", "label"] and len(frame) == 6
    assert set(frame["label"]) == {"low", "mid", "high"}


def test_the_encoded_dataset_holds_paths_and_decodes_each_batch_on_reading(
    tmp_path, tiny_audio_model
):
    from transformers import AutoFeatureExtractor

    make_tone_clips(tmp_path / "clips", per_class=2)
    task = AudioClassification()
    frame = task.standardize(read_table(tmp_path / "clips", media="audio"))
    task.fit_labels(frame)
    dataset = task.encode(frame, AutoFeatureExtractor.from_pretrained(tiny_audio_model), 8)

    assert dataset.data.column_names == ["path", "labels"]  # no samples stored
    assert dataset.data.nbytes < 2_000
    item = dataset[0]
    assert tuple(item["input_features"].shape) == (32, 100)  # 32 mel bands, 1 s of 10 ms frames
    assert int(item["labels"]) == task.labels.index(frame["label"].iloc[0])
    assert np.array_equal(dataset[0]["input_features"], item["input_features"])  # not augmented


def test_training_clips_are_augmented_and_evaluated_ones_are_not(tmp_path, tiny_audio_model):
    import random

    from transformers import AutoFeatureExtractor

    make_tone_clips(tmp_path / "clips", per_class=2)
    task = AudioClassification()
    frame = task.standardize(read_table(tmp_path / "clips", media="audio"))
    task.fit_labels(frame)
    processor = AutoFeatureExtractor.from_pretrained(tiny_audio_model)
    plain = task.loader_transform(processor, augment=False)
    changed = task.loader_transform(processor, augment=True)
    batch = {"path": frame["path"].tolist()[:2], "labels": [0, 1]}
    random.seed(0)
    first = changed(batch)["input_features"]
    assert not np.allclose(first, plain(batch)["input_features"])
    assert np.array_equal(plain(batch)["input_features"], plain(batch)["input_features"])
    clip = read_audio(frame["path"].iloc[0], 16000)[0]
    moved = task.augmented(clip)
    assert moved.shape == clip.shape and np.abs(moved).max() <= 1.0


def test_a_csv_names_clips_relative_to_its_own_folder(tmp_path):
    make_tone_clips(tmp_path / "clips", per_class=2)
    rows = read_table(tmp_path / "clips", media="audio")
    table = pd.DataFrame(
        {"file": [p.replace(str(tmp_path) + "/", "") for p in rows["audio"]],
         "label": rows["label"]}
    )  # fmt: skip
    table.to_json(tmp_path / "data.jsonl", orient="records", lines=True)
    task = AudioClassification(audio_column="file")
    frame = task.standardize(read_table(tmp_path / "data.jsonl"))
    assert frame["path"].iloc[0] == str((tmp_path / table["file"].iloc[0]).resolve())


def test_an_image_folder_is_not_audio(tmp_path):
    from tests.conftest import make_colour_images

    make_colour_images(tmp_path / "images", per_class=2)
    with pytest.raises(UserError, match="holds no audio files"):
        read_table(tmp_path / "images", media="audio")
    frame = read_table(tmp_path / "images")  # read for no task in particular
    with pytest.raises(UserError, match="holds image files, but audio-classification reads"):
        AudioClassification().standardize(frame)


def test_the_doctor_names_duplicates_leakage_silence_clipping_and_odd_lengths(tmp_path):
    make_tone_clips(tmp_path / "train", per_class=4)
    make_tone_clips(tmp_path / "test", per_class=2, seed=1)
    sf.write(tmp_path / "train" / "low" / "silent.wav", np.zeros(16000, np.float32), 16000)
    loud = np.clip(tone(300.0, 1.0, level=4.0), -1, 1)
    sf.write(tmp_path / "train" / "low" / "loud.wav", loud, 16000)
    sf.write(tmp_path / "train" / "low" / "long.wav", tone(300.0, 12.0), 16000)
    copy = (tmp_path / "train" / "mid" / "mid-0.wav").read_bytes()
    (tmp_path / "train" / "mid" / "again.wav").write_bytes(copy)
    (tmp_path / "test" / "mid" / "leaked.wav").write_bytes(copy)
    task = AudioClassification()
    frames = {
        split: task.standardize(read_table(tmp_path / split, media="audio"))
        for split in ("train", "test")
    }
    report = task.diagnose(frames, False, 0)
    train = report["audio"]["train"]
    assert train["duplicates"] == 1 and report["leakage"] == {"test": 1}
    assert train["silent"]["count"] == 1
    assert train["silent"]["rows"][0]["path"].endswith("silent.wav")
    assert train["clipped"]["count"] == 1
    assert train["cut"]["count"] == 1 and train["duration_outliers"]["count"] == 1
    assert train["durations"]["max"] == 12.0
    assert train["sampling_rates"] == {8000: 3, 16000: 7, 22050: 3, 44100: 3}
    lines = "\n".join(task.doctor_lines(report))
    assert "1 silent clip(s)" in lines and "1 clipped clip(s)" in lines
    assert "cut to it" in lines and "leakage" in lines and "sample rates 8000 Hz (3)" in lines


# -- bad input: one sentence, exit 2 ----------------------------------------------------


def _cli_train(tmp_path, monkeypatch, capsys, config) -> tuple[int, list[str]]:
    (tmp_path / "run.yaml").write_text(json.dumps(config), encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["tunelab", "train", str(tmp_path / "run.yaml")])
    with pytest.raises(SystemExit) as stopped:
        main()
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    return int(stopped.value.code), errors


def test_an_empty_folder_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    (tmp_path / "empty" / "yes").mkdir(parents=True)
    config = run_config("scratch-audio", tmp_path / "empty", tmp_path / "run")
    code, errors = _cli_train(tmp_path, monkeypatch, capsys, config)
    assert code == 2 and len(errors) == 1 and "holds no audio files (.aif," in errors[0]
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_a_path_outside_the_data_files_folder_is_one_line_and_exit_2(tmp_path, monkeypatch,
                                                                    capsys):  # fmt: skip
    (tmp_path / "data").mkdir()
    sf.write(tmp_path / "secret.wav", tone(440.0, 0.5), 16000)
    pd.DataFrame({"audio": ["../secret.wav", "../secret.wav"], "label": ["a", "b"]}).to_csv(
        tmp_path / "data" / "rows.csv", index=False
    )
    config = run_config("scratch-audio", tmp_path / "data" / "rows.csv", tmp_path / "run")
    code, errors = _cli_train(tmp_path, monkeypatch, capsys, config)
    assert code == 2 and len(errors) == 1
    assert re.search(r"rows\.csv row 1: audio path '\.\./secret\.wav' leads outside", errors[0])
    assert not (tmp_path / "run").exists()


def test_a_folder_with_one_class_is_refused(tmp_path):
    make_tone_clips(tmp_path / "clips", per_class=3)
    for name in ("mid", "high"):
        for path in (tmp_path / "clips" / name).iterdir():
            path.unlink()
        (tmp_path / "clips" / name).rmdir()
    config = RunConfig.model_validate(run_config("scratch-audio", tmp_path / "clips", tmp_path))
    with pytest.raises(UserError, match="only one class 'low'; an audio classifier needs"):
        load_splits(config, AudioClassification.from_run_config(config))


def test_an_empty_wav_is_left_out_with_a_warning(tmp_path, caplog):
    make_tone_clips(tmp_path / "clips", per_class=10)
    (tmp_path / "clips" / "low" / "empty.wav").write_bytes(b"")
    config = RunConfig.model_validate(run_config("scratch-audio", tmp_path / "clips", tmp_path))
    splits, report = load_splits(config, AudioClassification.from_run_config(config))
    assert sum(len(f) for f in splits.values()) == 30
    unreadable = report["doctor"]["audio"]["train"]["unreadable"]
    assert [u["problem"] for u in unreadable] == ["empty file (0 bytes)"]
    assert "left out 1 unreadable audio file(s)" in caplog.text
    assert report["cleaning"]["train"]["unreadable_audio"]["count"] == 1


def test_an_empty_wav_stops_the_run_when_drop_invalid_is_off(tmp_path):
    make_tone_clips(tmp_path / "clips", per_class=10)
    empty = tmp_path / "clips" / "low" / "empty.wav"
    empty.write_bytes(b"")
    config = run_config("scratch-audio", tmp_path / "clips", tmp_path, drop_invalid=False)
    config = RunConfig.model_validate(config)
    with pytest.raises(
        UserError, match=rf"row \d+: audio file {empty.resolve()} cannot be read \(empty file"
    ):
        load_splits(config, AudioClassification.from_run_config(config))


@pytest.mark.parametrize("model", ["scratch-bert", "scratch-vit"])
def test_text_and_image_scratch_models_do_not_fit_audio(tmp_path, model):
    make_tone_clips(tmp_path / "clips", per_class=2)
    with pytest.raises(UserError, match=f"{model} does not fit task audio-classification; use "
                       "scratch-audio"):  # fmt: skip
        tunelab.train(run_config(model, tmp_path / "clips", tmp_path / "run"))


# -- other models -----------------------------------------------------------------------


def test_a_wav2vec2_model_pads_clips_of_a_batch_and_masks_the_padding(tmp_path):
    """Any AutoModelForAudioClassification: a tiny wav2vec2 reads raw samples of any length,
    so the collator pads a batch and the attention mask keeps predictions batch-independent."""
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    make_tone_clips(tmp_path / "clips", per_class=2)
    folder = _wav2vec2_folder(tmp_path / "w2v")
    model = Wav2Vec2ForSequenceClassification.from_pretrained(folder)
    processor = Wav2Vec2FeatureExtractor.from_pretrained(folder)
    task = AudioClassification()
    frame = task.standardize(read_table(tmp_path / "clips", media="audio"))
    task.fit_labels(frame)
    dataset = task.encode(frame, processor, 8)
    lengths = {len(dataset[i]["input_values"]) for i in range(len(dataset))}
    assert len(lengths) > 1  # 0.5-1 s clips stay their own length until batched
    batch = task.collator(processor)([dataset[i] for i in range(len(dataset))])
    assert batch["input_values"].shape == (6, max(lengths))
    assert batch["attention_mask"].sum(dim=1).tolist() == [len(dataset[i]["input_values"])
                                                          for i in range(6)]  # fmt: skip
    assert model(**batch).loss.isfinite()
    together = task.forward(model, processor, frame, 8, batch_size=6)
    alone = task.forward(model, processor, frame, 8, batch_size=1)
    assert np.allclose(together, alone, atol=1e-4)


# -- end to end -------------------------------------------------------------------------


def test_scratch_audio_trains_evaluates_predicts_and_loads_in_a_pipeline(tmp_path, caplog):
    from transformers import pipeline

    clips = make_tone_clips(tmp_path / "clips", per_class=12)
    run = tmp_path / "run"
    with caplog.at_level("INFO", logger="tunelab"):
        result = tunelab.train(run_config("scratch-audio", clips, run))
    started = [r.getMessage() for r in caplog.records if r.getMessage().startswith("training on")]
    assert started and "max_length" not in started[0]  # a clip is one input: no token limit

    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["test"]["examples"] == 4 and "f1_macro" in metrics["test"]
    assert metrics["baseline"]["method"].startswith("logistic regression on MFCC")
    first = json.loads((run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"path", "label", "score", "probabilities", "gold"}
    window = json.loads((run / "model" / "config.json").read_text())["max_source_positions"]
    assert window == 50  # the longest clip, under 1 s: a 1 s window of 100 frames, halved
    report = json.loads((run / "data_report.json").read_text(encoding="utf-8"))
    assert report["doctor"]["audio"]["train"]["sampling_rates"]  # the doctor read every clip

    scores = tunelab.evaluate(run, clips)  # a class folder is labelled data
    assert scores["examples"] == 36 and scores["f1_macro"] > 0.8  # chance: 1/3

    # 16 kHz mono WAV files: what the pipeline reads without resampling
    (tmp_path / "new").mkdir()
    paths = []
    for i, frequency in enumerate([300.0, 800.0, 2000.0, 310.0, 790.0, 1950.0]):
        paths.append(str(tmp_path / "new" / f"clip-{i}.wav"))
        sf.write(paths[-1], tone(frequency, 0.8), 16000)
    records = tunelab.predict(result["model_dir"], input=tmp_path / "new")
    assert len(records) == 6 and not any("gold" in r for r in records)  # loose clips
    one = tunelab.predict(result["model_dir"], texts=paths)
    classifier = pipeline("audio-classification", model=result["model_dir"], device="cpu")
    clips_read = [{"raw": sf.read(p, dtype="float32")[0], "sampling_rate": 16000} for p in paths]
    for record, answer in zip(one, classifier(clips_read, top_k=1), strict=True):
        assert record["label"] == answer[0]["label"]
        assert record["score"] == pytest.approx(answer[0]["score"], abs=1e-4)
    assert [r["label"] for r in one] == [r["label"] for r in records]

    done = CliRunner().invoke(app, ["predict", str(run), "--input", paths[0]])
    assert done.exit_code == 0, done.output
    printed = re.search(r'\{"path".*\}', done.output)  # after the loading progress bar
    assert printed and json.loads(printed.group())["path"] == paths[0]

    # a glob pattern names the clips (the shell's own expansion could overflow a command line)
    globbed = tunelab.predict(result["model_dir"], input=str(tmp_path / "new" / "*.wav"))
    assert [r["label"] for r in globbed] == [r["label"] for r in records]

    pytest.importorskip("fastapi")
    import base64
    from pathlib import Path

    from fastapi.testclient import TestClient

    from tunelab.serving.server import create_app

    blobs = [Path(p).read_bytes() for p in paths[:2]]
    with TestClient(create_app(run, max_texts=3)) as client:
        assert client.get("/metadata").json()["inputs"] == "audio"
        uploaded = client.post(
            "/predict", files=[("files", (f"clip{i}.wav", b)) for i, b in enumerate(blobs)]
        )
        assert uploaded.status_code == 200, uploaded.text
        assert [r["label"] for r in uploaded.json()] == [r["label"] for r in one[:2]]
        assert [r["path"] for r in uploaded.json()] == ["clip0.wav", "clip1.wav"]
        encoded = client.post("/predict", json={"file": base64.b64encode(blobs[0]).decode()})
        assert encoded.status_code == 200 and encoded.json()[0]["label"] == one[0]["label"]
        broken = client.post("/predict", files=[("files", ("bad.wav", blobs[0][:200]))])
        assert broken.status_code == 422
        assert broken.json()["error"].startswith("file bad.wav cannot be read as audio")


def test_the_scratch_audio_window_is_the_clips_99th_percentile_not_the_longest():
    from tunelab.training.finetune import scratch_audio_window

    spoken = [0.4] * 99 + [2.3]  # one long outlier among short clips, as in spoken digits
    assert scratch_audio_window(spoken, 10.0) == (1, 1)  # the outlier is cut, not padded to
    assert scratch_audio_window([1.4] * 50, 10.0) == (2, 0)  # whole seconds, rounded up
    assert scratch_audio_window([1.0] * 50, 10.0) == (1, 0)  # a clip of exactly 1 s fits
    assert scratch_audio_window([8.0] * 50, 3.0) == (3, 50)  # never above audio.max_seconds
    assert scratch_audio_window(spoken, 10.0, requested=3) == (3, 0)  # audio.scratch_seconds
    assert scratch_audio_window(spoken, 2.0, requested=3) == (2, 1)
    assert scratch_audio_window([0.0, 0.0], 4.0) == (4, 0)  # no lengths read: the limit


def _wav2vec2_folder(folder):
    """A tiny wav2vec2 checkpoint: raw samples of any length, with an attention mask."""
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForSequenceClassification,
    )

    config = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16, 16), conv_stride=(5, 4, 4), conv_kernel=(10, 8, 4),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, classifier_proj_size=16,
        feat_extract_norm="layer", do_stable_layer_norm=True, num_labels=3,
    )  # fmt: skip
    torch.manual_seed(0)
    Wav2Vec2ForSequenceClassification(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("kind", ["whisper", "wav2vec2"])
def test_onnx_export_of_an_audio_model_agrees_with_pytorch_and_serves(
    kind, tiny_audio_model, tmp_path
):
    """A spectrogram model (Whisper: a fixed number of frames) and a raw-sample one (wav2vec2:
    the clip's length stays dynamic in the graph) export, agree with PyTorch on clips of
    other lengths than the traced ones, and serve with --backend onnx."""
    pytest.importorskip("onnxruntime")
    from tunelab.serving.export import export_onnx
    from tunelab.serving.onnx_model import load_onnx

    base = tiny_audio_model if kind == "whisper" else _wav2vec2_folder(tmp_path / "w2v")
    clips = make_tone_clips(tmp_path / "clips", per_class=10)
    run = tmp_path / "run"
    config = run_config(base, clips, run)
    config["training"]["epochs"] = 2
    tunelab.train(config)

    info = export_onnx(run, output=tmp_path / "onnx", quantize="int8", samples=16)
    assert info["samples"]["source"].endswith("predictions.jsonl")  # the run's test clips
    assert info["parity"]["fp32"]["label_agreement"] == 1.0
    assert info["parity"]["fp32"]["max_abs_logit_diff"] < 1e-4
    assert info["parity"]["int8"]["rows"] == info["samples"]["rows"]

    (tmp_path / "new").mkdir()
    paths = []
    for i, (frequency, seconds) in enumerate([(300.0, 0.3), (800.0, 1.7), (2000.0, 0.9)]):
        paths.append(str(tmp_path / "new" / f"clip-{i}.wav"))
        sf.write(paths[-1], tone(frequency, seconds), 16000)
    model, processor, task, _ = load_onnx(tmp_path / "onnx", variant="fp32")
    frame = tunelab.api.text_frame(task, paths)
    exported = task.forward(model, processor, frame, 1, 8)
    direct = tunelab.predict(run, texts=paths)
    assert [r["label"] for r in task.predictions(exported, frame)] == [r["label"] for r in direct]
    expected = np.array([[r["probabilities"][label] for label in task.labels] for r in direct])
    softmax = np.exp(exported) / np.exp(exported).sum(axis=1, keepdims=True)
    assert np.allclose(softmax, expected, atol=1e-4)

    pytest.importorskip("fastapi")
    from pathlib import Path

    from fastapi.testclient import TestClient

    from tunelab.serving.server import create_app

    with TestClient(create_app(tmp_path / "onnx", backend="onnx")) as client:
        answer = client.post("/predict", files=[("files", ("a.wav", Path(paths[1]).read_bytes()))])
        assert answer.status_code == 200 and answer.json()[0]["label"] == direct[1]["label"]


def test_explain_shows_where_in_a_clip_the_label_is_heard(tmp_path, monkeypatch, capsys):
    """Occlusion: a clip of silence, then the low tone, is explained by its second half; the
    CLI writes the page (strip and player) and JSON, and names the parts that spoke most."""
    from tunelab.explain import explain

    clips = make_tone_clips(tmp_path / "clips", per_class=12)
    run = tmp_path / "run"
    tunelab.train(run_config("scratch-audio", clips, run))
    rng = np.random.default_rng(1)
    quiet = rng.normal(0, 0.002, 8000).astype(np.float32)
    sf.write(tmp_path / "late.wav", np.concatenate([quiet, tone(300.0, 0.5)]), 16000)

    explained = explain(run, [str(tmp_path / "late.wav")], target="low", parts=8)[0]
    assert explained["target"] == "low" and explained["kind"] == "audio"
    assert explained["seconds"] == pytest.approx(1.0)
    values = [value for _, _, value in explained["segments"]]
    assert len(values) == 8 and explained["segments"][4][0] == pytest.approx(0.5)
    # the tone speaks, not the silence (a confident model moves little for one hidden part)
    assert sum(values[4:]) > 0.002 and sum(values[4:]) > 4 * abs(sum(values[:4]))
    assert int(np.argmax(values)) >= 4

    code, out, err = _cli(["explain", str(run), "--text", str(tmp_path / "late.wav"),
                           "--target", "low", "--parts", "8", "--out", str(tmp_path / "e.html"),
                           "--json", str(tmp_path / "e.json")], monkeypatch, capsys)  # fmt: skip
    assert code == 0, err
    assert re.search(r"audio file 1 .*late\.wav -> low \(p=", out)
    assert re.search(r"-> low \(p=[\d.]+\): 0\.[5-9]\d-", out)  # the top part is the tone
    page = (tmp_path / "e.html").read_text(encoding="utf-8")
    assert page.count("<rect") == 8 and "data:audio/wav;base64," in page and "<script" not in page
    assert json.loads((tmp_path / "e.json").read_text())[0]["segments"][4][0] == 0.5
    with pytest.raises(UserError, match="--target loud is not a label of this model"):
        explain(run, [str(tmp_path / "late.wav")], target="loud")
    # integrated-gradient options would be ignored: one line says so instead
    code, _, err = _cli(["explain", str(run), "--text", str(tmp_path / "late.wav"), "--steps",
                         "64", "--out", str(tmp_path / "f.html")], monkeypatch, capsys)  # fmt: skip
    assert code == 2 and "--steps apply to text models" in err
    assert not (tmp_path / "f.html").exists()


def _cli(argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["tunelab", *argv])
    try:
        main()
        code = 0
    except SystemExit as stop:
        code = int(stop.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_auto_chooses_scratch_audio_without_a_pretrained_audio_model(monkeypatch):
    from tunelab.models import choice

    monkeypatch.setattr(choice, "_offline_candidates", lambda: [])
    chosen = choice.choose_model(AudioClassification(), [])
    assert chosen.name == "scratch-audio"
    assert "AutoModelForAudioClassification" in chosen.reason


def test_the_audio_task_recognises_audio_folders_and_columns_and_not_images(tmp_path):
    clips = make_tone_clips(tmp_path / "clips", per_class=2)
    task, image_task = AudioClassification(), ImageClassification()
    folder = read_table(clips)
    assert task.recognise(folder, frozenset()).strength == 2
    assert image_task.recognise(folder, frozenset()) is None  # a folder of the other kind
    files = sorted(str(p.relative_to(tmp_path)) for p in clips.rglob("*.wav"))
    table = pd.DataFrame({"audio": files, "label": ["a"] * len(files)})
    assert task.recognise(table, frozenset()).reason == "audio files in 'audio'"
    as_bytes = pd.DataFrame({"audio": [(tmp_path / f).read_bytes() for f in files]})
    assert task.recognise(as_bytes, frozenset()) is not None


def test_clips_held_as_bytes_are_named_by_their_row_and_decode_like_files(tmp_path):
    clips = make_tone_clips(tmp_path / "clips", per_class=2)
    files = sorted(clips.rglob("*.wav"))
    pd.DataFrame(
        {"audio": [f.read_bytes() for f in files] + [b"RIFF"], "label": ["x"] * (len(files) + 1)}
    ).to_parquet(tmp_path / "clips.parquet")
    task = AudioClassification()
    frame = task.standardize(read_table(tmp_path / "clips.parquet"))
    report = task.diagnose({"train": frame}, False, 0)
    unreadable = report["audio"]["train"]["unreadable"]
    assert [u["path"] for u in unreadable] == [f"row {len(files) + 1} (audio file bytes)"]
    from_bytes, rate = read_audio(frame["path"].iloc[0], 16000)
    from_file, _ = read_audio(files[0], 16000)
    assert rate == 16000 and np.array_equal(from_bytes, from_file)


def test_a_pattern_names_audio_files_for_an_audio_task(tmp_path):
    clips = make_tone_clips(tmp_path / "clips", per_class=2)
    frame = read_table(str(clips / "**" / "*.wav"), media="audio")
    assert list(frame.columns) == ["audio"] and len(frame) == len(list(clips.rglob("*.wav")))
    (clips / "notes.png").write_bytes(b"not audio")
    with pytest.raises(UserError, match=r"which is not an audio file; a pattern may name audio"):
        read_table(str(clips / "**" / "*.*"), media="audio")


def test_lora_on_an_audio_model_saves_an_adapter_that_predicts_and_merges(tmp_path):
    """LoRA for audio, as for images: the adapters and the new head train, model/ holds the
    adapter alone, and tunelab merge folds it into a folder that predicts the same labels."""
    from tunelab.models.scratch import save_scratch_audio

    base = save_scratch_audio(tmp_path / "base", 1.0, mel_bins=32, layers=2, hidden=32, heads=2)
    clips = make_tone_clips(tmp_path / "clips", per_class=12)
    run = tmp_path / "run"
    config = run_config(base, clips, run)
    config["peft"] = {"method": "lora", "r": 4}
    config["training"]["learning_rate"] = 1e-2

    result = tunelab.train(config)

    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert 0 < metrics["train"]["trainable_share"] < 0.5
    assert (run / "model" / "adapter_config.json").is_file()
    clips_listed = sorted(str(p) for p in clips.rglob("*.*"))[::6]
    adapter = tunelab.predict(result["model_dir"], texts=clips_listed)
    merged = tunelab.merge(run)
    again = tunelab.predict(merged, texts=clips_listed)
    assert [r["label"] for r in again] == [r["label"] for r in adapter]
    for before, after in zip(adapter, again, strict=True):
        assert after["score"] == pytest.approx(before["score"], abs=1e-4)


def test_an_empty_audio_path_is_reported_or_stops_the_strict_doctor(tmp_path):
    """The files' shared doctor, as the image doctor does: rows without a path are listed, and
    with --strict (data.drop_invalid=false) the first one stops it, naming row and column."""
    clips = make_tone_clips(tmp_path / "clips", per_class=2)
    files = sorted(str(p.relative_to(tmp_path)) for p in clips.rglob("*.wav"))
    table = pd.DataFrame({"clip": [files[0], None, files[1]], "label": ["a", "b", "a"]})
    table.to_csv(tmp_path / "rows.csv", index=False)
    task = AudioClassification("clip")
    frames = {"train": task.standardize(read_table(tmp_path / "rows.csv"))}
    report = task.diagnose(frames, False, 0)
    assert report["audio"]["train"]["empty_paths"] == [2]
    assert "1 row(s) without an audio file path (rows 2)" in "\n".join(task.doctor_lines(report))
    strict = AudioClassification("clip", drop_invalid=False)
    with pytest.raises(UserError, match=r"rows\.csv row 2: column 'clip' is empty; give the"):
        strict.diagnose(frames, False, 0)
