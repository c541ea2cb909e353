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
