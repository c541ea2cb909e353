import json

import pandas as pd
import pytest

from tunelab.data.load import file_format, plain_text_lines, read_table, require_columns
from tunelab.errors import UserError

ROWS = [{"text": "质量很好", "label": "pos"}, {"text": "NA", "label": "neg"}]


def test_csv_keeps_text_like_na_and_numbers_as_strings(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\n质量很好,pos\nNA,neg\n0123,1\n", encoding="utf-8")
    frame = read_table(path)
    assert frame["text"].tolist() == ["质量很好", "NA", "0123"]
    assert list(frame.index) == [1, 2, 3]


def test_utf8_bom_is_stripped(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("text,label\n好,pos\n".encode("utf-8-sig"))
    assert list(read_table(path).columns) == ["text", "label"]


def test_gbk_is_detected(tmp_path):
    path = tmp_path / "d.csv"
    text = "text,label\n" + "".join(f"这个产品的质量非常好，我很满意{i},pos\n" for i in range(20))
    path.write_bytes(text.encode("gbk"))
    assert read_table(path)["text"].iloc[0] == "这个产品的质量非常好，我很满意0"


def test_the_table_says_how_it_was_read(tmp_path):
    """Format, encoding and delimiter as detected: the workbench's preview shows them."""
    gbk = tmp_path / "gbk.csv"
    text = "id;text\n" + "".join(f"{i};这个产品的质量非常好，我很满意{i}\n" for i in range(20))
    gbk.write_bytes(text.encode("gbk"))
    frame = read_table(gbk)
    assert (frame.attrs["format"], frame.attrs["encoding"], frame.attrs["delimiter"]) == (
        "csv", "gb18030", ";")  # fmt: skip
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes('{"text": "好"}\n'.encode("utf-8-sig"))
    assert (read_table(bom).attrs["format"], read_table(bom).attrs["encoding"]) == (
        "jsonl", "utf-8-sig")  # fmt: skip


def test_wrong_explicit_encoding_names_the_file(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("text,label\n好,pos\n".encode("gbk"))
    with pytest.raises(UserError, match=r"d.csv is not valid utf-8 at byte"):
        read_table(path, encoding="utf-8")


def test_tsv_jsonl_json_parquet(tmp_path):
    frame = pd.DataFrame(ROWS)
    (tmp_path / "d.tsv").write_text(frame.to_csv(sep="\t", index=False), encoding="utf-8")
    (tmp_path / "d.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS), encoding="utf-8"
    )
    (tmp_path / "d.json").write_text(json.dumps(ROWS, ensure_ascii=False), encoding="utf-8")
    frame.to_parquet(tmp_path / "d.parquet")
    for name in ("d.tsv", "d.jsonl", "d.json", "d.parquet"):
        loaded = read_table(tmp_path / name)
        assert loaded["text"].tolist() == ["质量很好", "NA"], name


def test_jsonl_keeps_lists_and_line_numbers(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": ["x", "y"]}\n\n{"text": "b", "label": []}\n')
    frame = read_table(path)
    assert frame["label"].tolist() == [["x", "y"], []]
    assert list(frame.index) == [1, 3]


def test_broken_jsonl_line_is_named(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": \n')
    with pytest.raises(UserError, match=r"d.jsonl line 2 is not valid JSON"):
        read_table(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "is empty"),
        ("blank.csv", b"\n\n  \n", "is empty"),
        ("header.csv", b"text,label\n", "has no data rows"),
        ("data.docx", b"PK\x03\x04", "unknown file format '.docx'"),
        ("data.xlsx", b"PK\x03\x04", r"could not be read as an .xlsx workbook \(BadZipFile\)"),
        ("data.xls", b"text,label\na,b\n", r"is not an Excel workbook.*name it .csv"),
        ("bin.csv", b"\x00\x01\x02text", "is not a text file"),
        (
            "ragged.csv",
            b"text,label\na,b\nc,d,e,f\n",
            r"ragged.csv line 3 has 4 fields but the header has 2 .*--fix --out clean.csv",
        ),
        (  # pandas would read the first column as row names and shift every cell left
            "first_row_long.csv",
            b"text,label\nGreat phone, love it,positive\nBad,negative\n",
            r"first_row_long.csv line 2 has 3 fields but the header has 2 ",
        ),
        (
            "one_column.csv",
            b"text\nWINNER! Claim your prize, call now\nsee you at lunch\n",
            r"one_column.csv line 2 has 2 fields but the header has 1 ",
        ),
    ],
)
def test_bad_files_give_one_clear_sentence(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as error:
        read_table(path)
    assert name in str(error.value)
    assert "\n" not in str(error.value)


def test_a_long_first_row_is_skipped_not_shifted_when_bad_lines_are_skipped(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\nGreat phone, love it,positive\nBad,negative\nok,positive\n")
    frame = read_table(path, skip_bad_lines=True)
    assert frame.to_dict("index") == {2: {"text": "Bad", "label": "negative"},
                                      3: {"text": "ok", "label": "positive"}}  # fmt: skip
    assert frame.attrs["bad_lines"] == [2]


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_table(tmp_path / "nope.csv")


def test_semicolon_delimiter_is_recognised(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text;label\nhello;pos\n")
    assert read_table(path)["label"].tolist() == ["pos"]


def test_missing_column_lists_existing_columns(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("review,sentiment\ngood,pos\n")
    frame = read_table(path)
    with pytest.raises(UserError) as error:
        require_columns(frame, ["text"], {"text": "data.text_column"})
    assert "no column 'text'" in str(error.value)
    assert "review, sentiment" in str(error.value)
    assert "data.text_column" in str(error.value)


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_compressed_files_read_like_plain_ones(tmp_path, suffix):
    import bz2
    import gzip
    import lzma

    compress = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[suffix]
    path = tmp_path / f"reviews.csv{suffix}"
    path.write_bytes(compress("text,label\n很好,positive\n太差,negative\n".encode()))
    frame = read_table(path)
    assert frame["text"].tolist() == ["很好", "太差"]
    (tmp_path / "broken.csv.gz").write_bytes(b"\x1f\x8b not gzip at all")
    with pytest.raises(UserError, match=r"broken\.csv\.gz could not be decompressed as gz"):
        read_table(tmp_path / "broken.csv.gz")


def test_rows_after_a_skipped_broken_line_keep_their_numbers(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('text,label\ngood,pos\n"bad, broken",neg,extra\n\nfine,pos\nawful,neg\n')
    frame = read_table(path, skip_bad_lines=True)
    # the broken record is line 3 and data row 2; the rows after it stay rows 3 and 4 (the
    # blank line is no row), the numbers the rest of tunelab gives them
    assert frame.attrs["bad_lines"] == [3]
    assert frame.loc[[1, 3, 4], "text"].tolist() == ["good", "fine", "awful"]
    assert len(frame) == 3


def test_a_txt_file_that_splits_into_columns_is_read_as_a_table(tmp_path):
    # tab-separated with commas inside the texts (as SICK.txt is), and Excel's "Unicode
    # text" export: UTF-16 with a byte-order mark, tab-separated
    tabbed = tmp_path / "pairs.txt"
    tabbed.write_text("id\tsentence_A\tlabel\n1\tA man, smiling\tyes\n2\tTwo dogs\tno\n")
    frame = read_table(tabbed)
    assert frame.attrs["format"] == "tsv" and frame["sentence_A"].tolist() == [
        "A man, smiling",
        "Two dogs",
    ]
    excel = tmp_path / "export.txt"
    excel.write_bytes("text\tlabel\n好评\tpos\n差评\tneg\n".encode("utf-16"))
    assert read_table(excel)["text"].tolist() == ["好评", "差评"]
    # one text a line is not a table: said, with what to do
    lines = tmp_path / "notes.txt"
    lines.write_text("first note\nsecond note\n")
    with pytest.raises(UserError, match=r"notes.txt: a .txt file whose first lines do not split"):
        read_table(lines)
    # ... which prediction reads line by line instead
    assert plain_text_lines(lines) == ["first note", "second note"]
    assert plain_text_lines(tabbed) is None and plain_text_lines(tmp_path / "x.csv") is None


def test_a_txt_file_of_tokens_and_tags_in_sentences_is_read_as_conll(tmp_path):
    # as MSRA NER ships (dh_msra.txt): a character and its tag a line, tab-separated, a blank
    # line between sentences; and whitespace-separated with a POS column, as CoNLL-2003 is
    msra = tmp_path / "dh_msra.txt"
    msra.write_text("当\tO\n希\tO\n\n中\tB-LOC\n国\tI-LOC\n人\tO\n\n")
    frame = read_table(msra)
    assert frame.attrs["format"] == "conll"
    assert frame["tokens"].tolist() == [["当", "希"], ["中", "国", "人"]]
    assert frame["tags"].tolist() == [["O", "O"], ["B-LOC", "I-LOC", "O"]]
    assert plain_text_lines(msra) is None  # prediction reads it as tokens, not lines of text
    spaced = tmp_path / "eng.train.txt"
    spaced.write_text(
        "-DOCSTART- -X- O\n\nEU NNP B-ORG\nrejects VBZ O\n\nPeter NNP B-PER\nBlackburn NNP I-PER\n"
    )
    assert read_table(spaced)["tags"].tolist() == [["B-ORG", "O"], ["B-PER", "I-PER"]]
    # CoNLL-2003's own names (eng.train, eng.testa) name no format: the text says CoNLL
    conll2003 = tmp_path / "eng.train"
    conll2003.write_text(
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n"
        "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n\nBRUSSELS NNP B-NP B-LOC\n"
        "1996-08-22 CD I-NP O\n"
    )
    assert read_table(conll2003)["tags"].tolist() == [["B-ORG", "O"], ["B-PER", "I-PER"],
                                                      ["B-LOC", "O"]]  # fmt: skip
    assert file_format(conll2003) == "conll"
    # a table (no blank lines between rows) stays a table, even with short cells
    table = tmp_path / "labels.txt"
    table.write_text("word\tlabel\ngood\tpos\nbad\tneg\nfine\tpos\n")
    assert read_table(table).attrs["format"] == "tsv"
    # paragraphs of running text, a blank line between them, are neither
    prose = tmp_path / "essay.txt"
    prose.write_text("The first paragraph has words.\nIt goes on here.\n\nA second one\nends.\n")
    with pytest.raises(UserError, match=r"essay.txt: a .txt file .* nor into tokens and tags"):
        read_table(prose)


CONLLU = (
    "# sent_id = 1\n# text = Today's weather\n"
    "1-2\tToday's\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "1\tToday\ttoday\tNOUN\tNN\t_\t3\tnmod:poss\t_\t_\n"
    "2\t's\t's\tPART\tPOS\t_\t1\tcase\t_\t_\n"
    "2.1\thas\thave\tVERB\tVBZ\t_\t_\t_\t0:root\tCopyOf=-1\n"
    "3\tweather\tweather\tNOUN\tNN\t_\t0\troot\t_\t_\n"
    "\n# sent_id = 2\n"
    "1\t同样\t同样\tADV\tRB\t_\t0\troot\t_\tSpaceAfter=No\n"
)


def test_a_conllu_file_reads_its_words_and_upos_tags(tmp_path):
    # Universal Dependencies: comments, a multiword range (its words follow), an empty node
    path = tmp_path / "en_ewt-ud-dev.conllu"
    path.write_text(CONLLU, encoding="utf-8")
    frame = read_table(path)
    assert frame.attrs["format"] == "conllu" and frame.index.tolist() == [4, 10]
    assert frame["tokens"].tolist() == [["Today", "'s", "weather"], ["同样"]]
    assert frame["tags"].tolist() == [["NOUN", "PART", "NOUN"], ["ADV"]]
    assert read_table(path, tag_column=4)["tags"].tolist() == [["NN", "POS", "NN"], ["RB"]]
    with pytest.raises(UserError, match=r"data.tag_column 10 names no tag field of a CoNLL-U"):
        read_table(path, tag_column=10)
    broken = tmp_path / "broken.conllu"
    broken.write_text(CONLLU.replace("3\tweather\tweather\tNOUN", "3 weather weather NOUN"))
    with pytest.raises(UserError, match=r"broken.conllu line 7 has 7 tab-separated fields"):
        read_table(broken)


def test_a_json_file_of_objects_one_after_another_reads_as_rows(tmp_path):
    # a copy of CLUENER's train.json: pretty-printed objects, no array around them
    stream = tmp_path / "train.json"
    rows = [{"text": "浙商银行", "label": {"company": {"浙商银行": [[0, 3]]}}},
            {"text": "生生不息CSOL", "label": {"game": {"CSOL": [[4, 7]]}}}]  # fmt: skip
    stream.write_text("\n".join(json.dumps(r, ensure_ascii=False, indent=2) for r in rows))
    frame = read_table(stream)
    assert frame["text"].tolist() == ["浙商银行", "生生不息CSOL"] and frame.index.tolist() == [1, 2]
    assert frame["label"].iloc[1] == {"game": {"CSOL": [[4, 7]]}}
    # values that are not all objects are still no table, and said as before
    mixed = tmp_path / "mixed.json"
    mixed.write_text('{"text": "a"}\n[1, 2]\n')
    with pytest.raises(UserError, match=r"mixed.json is not valid JSON \(Extra data"):
        read_table(mixed)
