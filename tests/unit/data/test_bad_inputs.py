"""A corpus of malformed inputs: each gives one line naming the place and exit code 2.

Every bad file goes through the real command line (``tunelab train``, which reads the data
strictly before it loads a model or creates the run folder) and through the Python API
(:func:`tunelab.data.load.read_table`). Every bad config value goes through ``tunelab
train`` with a YAML file and through :func:`tunelab.config.build_config`.
"""

from __future__ import annotations

import io
import json
import random
import re
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from tunelab import cli
from tunelab.config import build_config
from tunelab.data.load import read_table
from tunelab.data.text_quality import text_problems
from tunelab.errors import UserError

GOOD_ROWS = "".join(f'"这个产品,第{i}个",pos\n' for i in range(5))
BIG = 10_000_000  # a 10 MB single cell or line


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.csv", "text,label\nhi,pos\n" * 50)
    return buffer.getvalue()


def _png_bytes() -> bytes:
    rng = random.Random(0)
    return b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(3000))


def _random_text_bytes() -> bytes:
    """Random bytes without NUL: only the share of control characters gives them away."""
    rng = random.Random(1)
    return bytes(rng.randrange(1, 256) for _ in range(5000))


def _mixed_encodings() -> bytes:
    utf8 = ("text,label\n" + "质量很好，非常满意,pos\n" * 30).encode("utf-8")
    return utf8 + "质量很差,neg\n".encode("gbk") + "再来一次,pos\n".encode()


# name -> (file bytes, pattern the message must match after the file name)
BAD_FILES: dict[str, tuple[bytes, str]] = {
    "cut_mid_quote.csv": (
        ("text,label\n" + GOOD_ROWS + '"cut in the mi').encode(),
        r"ends inside a quoted field that opens on line 7; the file looks truncated",
    ),
    "cut_mid_row.csv": (
        ("text,label\n" + GOOD_ROWS + "half").encode(),
        r"line 7 has 1 field\(s\) but the header has 2 \(the file looks truncated\)",
    ),
    "cut_mid_character.csv": (
        ("text,label\n" + "好的,pos\n" * 3 + "很好").encode()[:-1],
        r"ends in the middle of a UTF-8 character on line 5; the file looks truncated",
    ),
    "short_row.tsv": (
        b"text\tlabel\na\tpos\nb\n c\tneg\n",
        r"line 3 has 1 field\(s\) but the header has 2; complete or remove that row",
    ),
    "mixed.csv": (
        _mixed_encodings(),
        r"mixes text encodings: line 2 is UTF-8 but line 32 is not \(read as GB18030 it says "
        r"'质量很差,neg'\)",
    ),
    "image.csv": (_png_bytes(), r"is not a text file \(it is a PNG image\)"),
    "workbook.csv": (
        _zip_bytes(),
        r"is not a text file \(it is a ZIP archive\); an .xlsx workbook is one: name it .xlsx "
        "or pass --format excel",
    ),
    "noise.csv": (_random_text_bytes(), r"is not a text file \(\d+ control characters"),
    "nul.jsonl": (
        b'{"text": "a", "label": 1}\n{"text": "b\x00"}\n',
        r"NUL bytes, the first on line 2",
    ),
    "broken_at_3.jsonl": (
        b'{"text": "a", "label": "pos"}\n{"text": "b", "label": "neg"}\n{"text": "c", "label: 1}\n',
        r"line 3 is not valid JSON \(Unterminated string starting at column 15, near "
        r"'.*label: 1}'\); fix or remove that line",
    ),
    "array_line.jsonl": (
        b'{"text": "a", "label": "pos"}\n["b", "neg"]\n',
        r"line 2 holds an array, not a JSON object",
    ),
    "deep.jsonl": (b"[" * 100_000 + b"\n", r"line 1 is not valid JSON \(nested too deeply"),
    "empty.csv": (b"", r"is empty"),
    "header_only.csv": (b"text,label\n", r"has no data rows"),
    "object.json": (b'{"text": "a", "label": "b"}', r"JSON array of objects.*it holds an object"),
    "numbers.json": (b"[1, 2, 3]", r"JSON array of objects.*item 1 is a number"),
    "columns.conll": (
        "我 O x\n们 O\n".encode(),
        r"line 2 has 2 whitespace-separated fields but line 1 has 3",
    ),
    "no_tag.conll": ("北 B-LOC\n京\n".encode(), r"line 2: expected a token and a tag"),
}


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[int, str]:
    """Run ``tunelab ARGS`` through the real entry point; return the exit code and stderr."""
    monkeypatch.setattr(sys, "argv", ["tunelab", *args])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    err = capsys.readouterr().err
    code = stop.value.code
    return (0 if code is None else int(code)), err


def assert_one_line_error(err: str, pattern: str) -> None:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if not line.startswith("tunelab: WARNING")]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert re.search(pattern, lines[0]), (pattern, lines[0])


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_through_the_api(tmp_path: Path, name: str) -> None:
    raw, pattern = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(raw)
    with pytest.raises(UserError, match=pattern) as error:
        read_table(path)
    assert str(error.value).startswith(str(path)) or str(path) in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_through_tunelab_train(tmp_path, monkeypatch, capsys, name: str) -> None:
    raw, pattern = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(raw)
    task = "token-classification" if name.endswith(".conll") else "text-classification"
    runs = tmp_path / "runs"
    code, err = run_cli(
        ["train", "--data", str(path), "--task", task, "--output", str(runs / "bad")],
        monkeypatch,
        capsys,
    )
    assert code == 2
    assert_one_line_error(err, re.escape(str(path)) + ".*" + pattern)
    assert not runs.exists(), "a failed train must not leave a run folder behind"


def test_wrong_delimiter_names_the_missing_column_and_the_delimiter(tmp_path, monkeypatch, capsys):
    # Comma and semicolon both split every line in two: the reader keeps the comma, and the
    # message says the header looks semicolon-separated.
    path = tmp_path / "ambiguous.csv"
    path.write_text("id,text;label\n1,好;pos\n2,差;neg\n", encoding="utf-8")
    code, err = run_cli(
        ["train", "--data", str(path), "--output", str(tmp_path / "runs" / "x")],
        monkeypatch,
        capsys,
    )
    assert code == 2
    assert_one_line_error(
        err,
        r"has no column 'text' \(set by data.text_column\); its columns are: id, text;label; "
        r"the header looks ';'-separated",
    )
    assert not (tmp_path / "runs").exists()


def test_semicolon_file_with_a_comma_in_its_header_is_read_by_field_counts(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text;label, note\n好,很好;pos\n差;neg\n", encoding="utf-8")
    frame = read_table(path)
    assert list(frame.columns) == ["text", "label, note"]
    assert frame["text"].tolist() == ["好,很好", "差"]


def test_column_in_another_case_gets_a_suggestion(tmp_path):
    from tunelab.data.load import require_columns

    path = tmp_path / "d.csv"
    path.write_text("Text,Label\na,b\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"no column 'text'.*did you mean 'Text'\?"):
        require_columns(read_table(path), ["text"], {"text": "data.text_column"})


@pytest.mark.parametrize(
    ("encoding", "suffix"), [("utf-8-sig", ".csv"), ("utf-16", ".tsv"), ("utf-8-sig", ".jsonl")]
)
def test_byte_order_marks_work(tmp_path, monkeypatch, capsys, encoding: str, suffix: str):
    path = tmp_path / f"bom{suffix}"
    rows = [{"text": "质量很好", "label": "pos"}, {"text": "NA", "label": "neg"}]
    if suffix == ".jsonl":
        body = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows)
    else:
        sep = "\t" if suffix == ".tsv" else ","
        body = f"text{sep}label\n" + "".join(f"{r['text']}{sep}{r['label']}\n" for r in rows)
    path.write_bytes(body.encode(encoding))
    frame = read_table(path)
    assert list(frame.columns) == ["text", "label"]
    assert frame["text"].tolist() == ["质量很好", "NA"]
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(["doctor", str(path), "--no-label-errors"], monkeypatch, capsys)
    assert code == 0, err


def test_explicit_wrong_encoding_names_the_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(_mixed_encodings())
    with pytest.raises(UserError, match=r"is not valid utf-8 at byte \d+ \(line 32\)"):
        read_table(path, encoding="utf-8")
    # Declaring the other encoding does not garble the UTF-8 rows either.
    with pytest.raises(UserError, match=r"is not valid gb18030 at byte \d+ \(line 2\)"):
        read_table(path, encoding="gb18030")


@pytest.mark.parametrize("skip_bad_lines", [False, True])
def test_ten_megabyte_cell_is_read_whole(tmp_path, skip_bad_lines: bool):
    # pandas' C parser has no field limit; the csv module's 128 kB limit (used to find short
    # and ragged rows) is lifted while tunelab reads.
    path = tmp_path / "big.csv"
    path.write_text("text,label\n" + "长" * (BIG // 3) + ",pos\nshort,neg\n", encoding="utf-8")
    frame = read_table(path, skip_bad_lines=skip_bad_lines)
    assert len(frame.loc[1, "text"]) == BIG // 3
    assert frame["label"].tolist() == ["pos", "neg"]
    assert frame.attrs["bad_lines"] == []


def test_ten_megabyte_jsonl_line_is_read_and_a_broken_one_is_named_briefly(tmp_path):
    path = tmp_path / "big.jsonl"
    line = json.dumps({"text": "a" * BIG, "label": "pos"})
    path.write_text(line + "\n", encoding="utf-8")
    assert len(read_table(path).loc[1, "text"]) == BIG
    path.write_text('{"text": "ok", "label": "pos"}\n' + line[:-1] + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"line 2 is not valid JSON") as error:
        read_table(path)
    assert len(str(error.value)) < 300  # the snippet, never the 10 MB line


def test_text_checks_stay_linear_on_a_long_cell():
    # The e-mail pattern used to backtrack quadratically on a long run of word characters:
    # a 1 MB cell took hours. Linear, it takes well under a second.
    started = time.perf_counter()
    found = text_problems(pd.Series(["a" * 1_000_000, "write to me@example.com"]))
    assert time.perf_counter() - started < 30
    assert found["emails"]["rows"] == 1


BAD_CONFIGS: dict[str, tuple[str, str]] = {
    "epochs_word": ("training:\n  epochs: three\n", r"'training.epochs' has value 'three'"),
    "lr_list": ("training:\n  learning_rate: [1]\n", r"'training.learning_rate' has value \[1\]"),
    "unknown_key": (
        "training:\n  epoch: 3\n",
        r"unknown config key 'training.epoch'; did you mean 'epochs'\?",
    ),
    "negative_lr": (
        "training:\n  learning_rate: -0.001\n",
        r"'training.learning_rate' has value -0.001, which is invalid: .*greater than 0",
    ),
    "zero_batch": ("training:\n  batch_size: 0\n", r"'training.batch_size' has value 0"),
    "negative_batch": ("training:\n  batch_size: -8\n", r"'training.batch_size' has value -8"),
    "zero_epochs": ("training:\n  epochs: 0\n", r"'training.epochs' has value 0.*greater than 0"),
    "warmup_over_one": (
        "training:\n  warmup_ratio: 1.5\n",
        r"'training.warmup_ratio' has value 1.5.*less than 1",
    ),
    "zero_max_length": ("model:\n  max_length: 0\n", r"'model.max_length' has value 0"),
    "dropout_over_one": ("peft:\n  dropout: 1.5\n", r"'peft.dropout' has value 1.5"),
    "lora_rank_zero": ("peft:\n  method: lora\n  r: 0\n", r"'peft.r' has value 0"),
    "infinite_decay": (
        "training:\n  weight_decay: .inf\n",
        r"'training.weight_decay' has value inf.*finite",
    ),
    "negative_seed": ("seed: -1\n", r"'seed' has value -1"),
    "bad_date_seed": ("seed: 2020-02-30\n", r"is not valid YAML"),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_config_through_tunelab_train(tmp_path, monkeypatch, capsys, name: str) -> None:
    body, pattern = BAD_CONFIGS[name]
    data = tmp_path / "d.csv"
    data.write_text("text,label\n好,pos\n差,neg\n", encoding="utf-8")
    config = tmp_path / f"{name}.yaml"
    runs = tmp_path / "runs"
    config.write_text(f"output: {runs / 'x'}\ndata:\n  train: {data}\n" + body, encoding="utf-8")
    code, err = run_cli(["train", str(config)], monkeypatch, capsys)
    assert code == 2
    assert_one_line_error(err, pattern)
    assert not runs.exists()


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ("training.epochs=three", r"'training.epochs' has value 'three'"),
        ("training.learning_rate=-1", r"'training.learning_rate' has value -1"),
        ("training.max_steps=0", r"'training.max_steps' has value 0"),
        ("seed=2020-02-30", r"'seed' has value '2020-02-30'"),  # YAML date error: kept as text
        ("training.epochs=" + "[" * 5000, r"'training.epochs' has value '\[\[\[.*\.\.\."),
    ],
)
def test_bad_override_through_the_api(override: str, pattern: str) -> None:
    with pytest.raises(UserError, match=pattern) as error:
        build_config({}, [override])
    assert len(str(error.value)) < 400


def test_config_that_is_not_a_mapping(tmp_path, monkeypatch, capsys):
    config = tmp_path / "list.yaml"
    config.write_text("- training\n- data\n", encoding="utf-8")
    code, err = run_cli(["train", str(config)], monkeypatch, capsys)
    assert code == 2
    assert_one_line_error(err, r"list.yaml must hold a mapping of keys, not a list")


def test_config_in_another_encoding_is_named(tmp_path, monkeypatch, capsys):
    config = tmp_path / "gbk.yaml"
    config.write_bytes("data:\n  text_column: 评论\n".encode("gbk"))
    code, err = run_cli(["train", str(config)], monkeypatch, capsys)
    assert code == 2
    assert_one_line_error(err, r"gbk.yaml is not UTF-8 text \(byte \d+\); save it as UTF-8")


NAMED_COLUMNS = ["--text-column", "text", "--label-column", "label"]  # no file read to guess


def test_multi_line_user_error_is_printed_on_one_line(monkeypatch, capsys):
    from tunelab import api

    def fail(*args, **kwargs):
        raise UserError("a/b\nc.csv has no data rows")

    monkeypatch.setattr(api, "doctor", fail)
    code, err = run_cli(["doctor", "x.csv", *NAMED_COLUMNS], monkeypatch, capsys)
    assert code == 2
    assert err == "error: a/b c.csv has no data rows\n"


def test_unexpected_exception_is_short_and_asks_for_a_report(monkeypatch, capsys):
    from tunelab import api

    def crash(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(api, "doctor", crash)
    monkeypatch.delenv("TUNELAB_TRACEBACK", raising=False)
    code, err = run_cli(["doctor", "x.csv", *NAMED_COLUMNS], monkeypatch, capsys)
    assert code == 1
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("internal error: KeyError at test_bad_inputs.py:")
    assert "report this" in err
    monkeypatch.setenv("TUNELAB_TRACEBACK", "1")
    monkeypatch.setattr(sys, "argv", ["tunelab", "doctor", "x.csv", *NAMED_COLUMNS])
    with pytest.raises(KeyError):
        cli.main()


def test_failed_train_through_the_api_leaves_no_run_folder(tmp_path):
    from tunelab import api

    data = tmp_path / "d.csv"
    data.write_bytes(_mixed_encodings())
    output = tmp_path / "runs" / "x"
    with pytest.raises(UserError, match="mixes text encodings"):
        api.train({"data": {"train": str(data)}, "output": str(output)})
    assert not (tmp_path / "runs").exists()


def test_a_conll_line_with_a_tag_but_no_token_is_skipped_and_named(tmp_path, caplog):
    """The Broad Twitter Corpus has tab-separated lines whose token field is empty (a stripped
    invisible character): the reader refused the whole file over them."""
    import logging

    from tunelab.data.load import read_table

    path = tmp_path / "tweets.conll"
    path.write_text("I\tO\n\tO\nlove\tO\nLeeds\tB-LOC\n\nhi\tO\nke s\tO\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="tunelab"):
        frame = read_table(path)
    # tab-separated: a token may hold a space (the corpus's "ke s")
    assert frame["tokens"].tolist() == [["I", "love", "Leeds"], ["hi", "ke s"]]
    assert frame["tags"].tolist() == [["O", "O", "B-LOC"], ["O", "O"]]
    assert "skipped 1 line(s) holding a tag but no token (line 2)" in caplog.text
