import pytest

from tunelab.errors import UserError
from tunelab.models import load


def test_bundled_model_names_resolve_from_anywhere(tiny_bert, tmp_path, monkeypatch):
    bundled = tmp_path / "models"
    bundled.mkdir()
    (bundled / "zh-test-mini").symlink_to(tiny_bert, target_is_directory=True)
    monkeypatch.setattr(load, "BUNDLED_MODELS_DIR", bundled)
    monkeypatch.chdir(tmp_path)  # a working directory without that folder
    assert load.resolve_model_source("zh-test-mini") == str(bundled / "zh-test-mini")
    assert load.bundled_model_names() == ["zh-test-mini"]


def test_a_local_folder_wins_over_a_hub_id(tiny_bert):
    assert load.resolve_model_source(str(tiny_bert)) == str(tiny_bert)


def test_folder_without_config_is_named(tmp_path):
    with pytest.raises(UserError, match=r"has no config\.json"):
        load.resolve_model_source(str(tmp_path))


def test_offline_hub_id_fails_at_once_naming_alternatives(monkeypatch):
    from transformers import AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not load.hub_reachable()
    with pytest.raises(UserError, match=r"'someone/some-model' is not a local folder"):
        load.from_pretrained(AutoTokenizer, "someone/some-model")


def test_starter_models_are_committed_and_load():
    names = load.bundled_model_names()
    if not names:
        pytest.skip("no starter models in models/ yet")
    from transformers import AutoConfig, AutoTokenizer

    for name in names:
        folder = load.BUNDLED_MODELS_DIR / name
        assert (folder / "README.md").is_file(), f"{name} has no model card"
        assert (folder / "model.safetensors").stat().st_size < 25_000_000
        AutoConfig.from_pretrained(folder)
        AutoTokenizer.from_pretrained(folder)


def test_pickle_weights_load_only_when_allowed(tiny_bert, reviews_csv, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification

    import tunelab
    from tests.conftest import tiny_run_config

    pickled = tmp_path / "pickled"
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    model.config.save_pretrained(pickled)
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")  # as older tools saved
    for name in ("vocab.txt", "tokenizer_config.json", "tokenizer.json", "special_tokens_map.json"):
        if (tiny_bert / name).is_file():
            (pickled / name).write_bytes((tiny_bert / name).read_bytes())
    assert (pickled / "pytorch_model.bin").is_file()
    refused = r"pickle weights only \(pytorch_model.bin\).*--allow-pickle"
    with pytest.raises(UserError, match=refused):
        load.from_pretrained(AutoModelForSequenceClassification, str(pickled))
    config = tiny_run_config(pickled, reviews_csv, tmp_path / "run", training={"max_steps": 2})
    with pytest.raises(UserError, match="--allow-pickle"):
        tunelab.train(config)
    assert not (tmp_path / "run" / "model").exists()
    allowed = load.from_pretrained(
        AutoModelForSequenceClassification, str(pickled), allow_pickle=True
    )
    assert torch.equal(allowed.classifier.weight, model.classifier.weight)
    # a folder with safetensors loads as always, and tokenizers are not affected
    load.from_pretrained(AutoModelForSequenceClassification, str(tiny_bert), num_labels=2)
