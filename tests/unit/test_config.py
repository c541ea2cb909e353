import gzip
from pathlib import Path

import pytest
import yaml

from tunelab.config import (
    PretrainConfig,
    RunConfig,
    build_config,
    commented_yaml,
    load_config,
    read_yaml,
)
from tunelab.errors import UserError

EXAMPLES = sorted(Path(__file__).resolve().parents[2].glob("examples/**/*.yaml"))


def test_defaults_are_complete_and_typed():
    config = build_config({})
    assert config.task == "text-classification"
    assert config.training.learning_rate == "auto"
    assert config.model.name == "auto"
    assert config.data.split.validation == 0.1


def test_dotted_overrides_parse_values_as_yaml():
    config = build_config({}, ["training.learning_rate=3e-5", "data.split.stratify=false"])
    assert config.training.learning_rate == 3e-5
    assert config.data.split.stratify is False


def test_unknown_key_names_the_key_and_the_allowed_ones():
    with pytest.raises(UserError) as error:
        build_config({"training": {"learnig_rate": 1e-4}})
    message = str(error.value)
    assert "'training.learnig_rate'" in message
    assert "did you mean 'learning_rate'" in message
    assert "batch_size" in message


def test_literal_error_lists_allowed_values():
    with pytest.raises(UserError, match=r"training.precision.*'bf16'"):
        build_config({}, ["training.precision=fp8"])


def test_absurd_values_are_rejected_with_the_key():
    # one problem, told once, though the value fails both branches of "number or auto"
    with pytest.raises(UserError) as error:
        build_config({}, ["training.learning_rate=-1"])
    assert str(error.value) == (
        "config key 'training.learning_rate' has value -1, which is invalid: Input should be "
        "greater than 0, or 'auto'"
    )
    with pytest.raises(UserError, match=r"classification\.threshold"):
        build_config({}, ["classification.threshold=1.5"])


def test_override_without_equals_sign():
    with pytest.raises(UserError, match="has no '='"):
        build_config({}, ["training.learning_rate"])


def test_bad_yaml_names_the_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("training:\n  epochs: [1,\n")
    with pytest.raises(UserError, match=r"bad.yaml is not valid YAML at line"):
        load_config(path)


@pytest.mark.parametrize("name", ["reviews.csv", "reviews.jsonl.gz", "reviews.xlsx", "notes.txt"])
def test_a_data_file_given_as_the_config_says_to_pass_it_with_data(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"text,label\ngood,1\n")
    with pytest.raises(UserError, match=rf"{name} is a data file.*--data "):
        read_yaml(path)


def test_a_compressed_json_file_given_as_the_config_is_data(tmp_path):
    path = tmp_path / "glaive.json.gz"
    path.write_bytes(gzip.compress(b'[{"conversations": []}]'))
    with pytest.raises(UserError, match=r"glaive.json.gz is a data file.*--data "):
        read_yaml(path)


def test_a_json_file_of_records_given_as_the_config_is_data(tmp_path):
    path = tmp_path / "reviews.json"
    path.write_text('[{"text": "good", "label": 1}]')
    with pytest.raises(UserError, match=r"reviews.json is a data file.*--data "):
        read_yaml(path)


def test_a_json_file_is_still_read_as_a_config(tmp_path):
    path = tmp_path / "run.json"
    path.write_text('{"training": {"epochs": 2}}')
    assert read_yaml(path) == {"training": {"epochs": 2}}


def test_written_config_round_trips(tmp_path):
    config = build_config(
        {"data": {"train": "a.csv"}}, ["training.epochs=7", "model.max_length=64"]
    )
    text = commented_yaml(config)
    assert "# peak learning rate" in text
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert load_config(path) == config


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_config_validates(path):
    schema = PretrainConfig if "pretrain" in path.parts else RunConfig
    assert isinstance(build_config(read_yaml(path), schema=schema), schema)
    assert yaml.safe_load(path.read_text())


def test_pretrain_config_errors_name_the_key():
    with pytest.raises(UserError, match=r"unknown config key 'architecture\.layer'"):
        build_config({"architecture": {"layer": 2}}, schema=PretrainConfig)


def test_examples_exist():
    assert EXAMPLES, "examples/ holds no YAML configs"


def test_overrides_leave_the_callers_tree_alone():
    tree = {"training": {"epochs": 2}}
    assert build_config(tree, ["training.epochs=5"]).training.epochs == 5
    assert tree == {"training": {"epochs": 2}}


def test_torch_compile_is_off_unless_asked_and_reaches_the_trainer(tmp_path):
    from tunelab.training.trainer import training_arguments

    plain = training_arguments(build_config({}).training, tmp_path, 0, "fp32", None, True)
    asked = build_config({"training": {"torch_compile": True}}).training
    compiled = training_arguments(asked, tmp_path, 0, "fp32", None, True)
    assert plain.torch_compile is False and compiled.torch_compile is True


def test_fsdp_and_deepspeed_settings_are_checked_and_passed_to_the_trainer(tmp_path):
    from tunelab.training.trainer import distributed_arguments, training_arguments

    with pytest.raises(UserError, match=r"training.fsdp.*unknown FSDP option 'full_shrad'"):
        build_config({"training": {"fsdp": "full_shrad"}})
    config = build_config(
        {"training": {"fsdp": "full_shard auto_wrap",
                      "fsdp_config": {"transformer_layer_cls_to_wrap": ["BertLayer"]}}}
    )  # fmt: skip
    assert distributed_arguments(config.training) == {
        "fsdp": "full_shard auto_wrap",
        "fsdp_config": {"transformer_layer_cls_to_wrap": ["BertLayer"]},
    }
    args = training_arguments(config.training, tmp_path, 0, "fp32", None, True)
    assert args.fsdp and args.fsdp_config["transformer_layer_cls_to_wrap"] == ["BertLayer"]

    missing = build_config({"training": {"deepspeed": str(tmp_path / "ds.json")}})
    with pytest.raises(UserError, match=r"ds.json does not exist"):
        distributed_arguments(missing.training)
    (tmp_path / "ds.json").write_text("{'zero_optimization': 2")
    with pytest.raises(UserError, match=r"ds.json is not valid JSON \(line 1\)"):
        distributed_arguments(missing.training)
    (tmp_path / "ds.json").write_text('{"zero_optimization": {"stage": 2}}')
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        with pytest.raises(UserError, match="pip install deepspeed"):
            distributed_arguments(missing.training)
    both = build_config(
        {"training": {"fsdp": "full_shard", "deepspeed": str(tmp_path / "ds.json")}}
    )
    with pytest.raises(UserError, match="exclude each other"):
        distributed_arguments(both.training)
