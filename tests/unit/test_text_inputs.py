"""What text predict, eval and export read before any network runs: the texts of one file
(``ftcli.runs.text_inputs``), a text checkpoint's stored preprocessing (``checkpoint_schema``), and the
refusal of inputs of the other modality (``predict.check_modality``, ``evaluate.input_spec``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from ftcli.errors import ConfigError, DataError, WeightsError
from ftcli.runs.text_inputs import is_text_file, read_texts, shorten


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_a_txt_file_gives_one_text_per_non_empty_line(tmp_path: Path) -> None:
    path = write(tmp_path / "in.txt", "\ufeffa lovely film\n\n   \n  boring stuff  \r\nfin")

    read = read_texts(path)

    assert read.texts == ["a lovely film", "boring stuff", "fin"] and read.source == "lines"


def test_a_csv_file_gives_its_text_column_or_its_only_column(tmp_path: Path) -> None:
    named = write(tmp_path / "a.csv", 'id,Text\n1,"nice, really"\n\n2,"a ""quoted"" one"\n')
    single = write(tmp_path / "b.csv", "review\nnice film\nbad film\n")

    assert read_texts(named).texts == ["nice, really", 'a "quoted" one']
    assert read_texts(named).source == "column 'Text'"
    assert read_texts(single).texts == ["nice film", "bad film"]
    assert read_texts(single).source == "column 'review'"  # printed: a header is not a text


def test_a_jsonl_file_gives_its_text_keys(tmp_path: Path) -> None:
    path = write(tmp_path / "in.jsonl", '{"text": "nice", "id": 1}\n\n{"text": "bad"}\n')

    assert read_texts(path).texts == ["nice", "bad"]


@pytest.mark.parametrize(
    ("name", "content", "fragments"),
    [
        ("latin1.txt", "café\n".encode("latin-1"), ("is not UTF-8 text", "byte 3", "iconv")),
        ("binary.txt", b"ab\x00cd", ("is not UTF-8 text", "binary")),
        ("empty.txt", "\n  \n", ("is empty", "one text per line")),
        ("empty.csv", "", ("is empty",)),
        ("header.csv", "text\n", ("a header but no texts",)),
        ("columns.csv", "id,review\n1,nice\n", ("no 'text' column", "'id', 'review'")),
        ("blank_cell.csv", "id,text\n1,nice\n2,\n", ("line 3 has an empty 'text' cell",)),
        ("no_key.jsonl", '{"txt": "nice"}\n', ("line 1 has no 'text' key", "'txt'")),
        ("number.jsonl", '{"text": 3}\n', ("line 1 has 'text': 3, not a string",)),
        ("list.jsonl", '{"text": "ok"}\n["nice"]\n', ("line 2 is a JSON list",)),
        ("broken.jsonl", '{"text": "nice"\n', ("line 1 is not JSON",)),
    ],
)
def test_a_file_without_texts_is_a_data_error_saying_why(
    tmp_path: Path, name: str, content: str | bytes, fragments: tuple[str, ...]
) -> None:
    path = write(tmp_path / name, content)

    with pytest.raises(DataError) as caught:
        read_texts(path)

    shown = str(caught.value)
    assert str(path) in shown
    for fragment in fragments:
        assert fragment in shown


def test_only_an_existing_txt_csv_or_jsonl_file_names_texts(tmp_path: Path) -> None:
    for name in ("a.txt", "b.CSV", "c.jsonl", "d.png"):
        write(tmp_path / name, "x")
    (tmp_path / "folder.txt").mkdir()

    assert [is_text_file(str(tmp_path / n)) for n in ("a.txt", "b.CSV", "c.jsonl")] == [True] * 3
    assert not is_text_file(str(tmp_path / "d.png"))
    assert not is_text_file(str(tmp_path / "folder.txt"))
    assert not is_text_file(str(tmp_path / "missing.txt"))  # find_inputs then says no such file


def test_shorten_keeps_one_line_of_at_most_the_width() -> None:
    assert shorten("short\ntext") == "short text"
    long = shorten("word " * 40, width=20)
    assert len(long) == 20 and long.endswith("…")


# ---------------------------------------------------------------------------- the stored preprocessing


def test_a_text_checkpoints_transform_is_valid_and_a_damaged_one_is_named(tmp_path: Path) -> None:
    from ftcli.runs.checkpoint_schema import check_transform

    check_transform({"kind": "tokens", "tokenizer": "/models/x", "max_length": 24}, tmp_path)
    for stored, fragment in [
        ({"kind": "tokens", "max_length": 24}, "ftcli.transform.tokenizer"),
        ({"kind": "tokens", "tokenizer": "/x", "max_length": "24"}, "ftcli.transform.max_length"),
        ({"kind": "tokens", "tokenizer": "/x", "max_length": 1}, "ftcli.transform.max_length"),
        ({"kind": "image"}, "ftcli.transform: Transform description lacks"),
    ]:
        with pytest.raises(WeightsError, match=fragment.replace(".", r"\.")):
            check_transform(stored, tmp_path)


# ---------------------------------------------------------------------------- inputs of the other modality


def fake_model(reads_text: bool) -> SimpleNamespace:
    label = "hf/tiny · full · 2 classes" if reads_text else "resnet18 · full · 3 classes"
    return SimpleNamespace(path=Path("run/best.ckpt"), label=label, reads_text=reads_text)


def test_predict_refuses_texts_for_an_image_model_and_images_for_a_text_model(tmp_path: Path) -> None:
    from ftcli.commands.predict import check_modality

    texts = read_texts(write(tmp_path / "in.txt", "nice\n"))
    images = [tmp_path / f"{i}.png" for i in range(5)]

    with pytest.raises(DataError, match=r"is an image model .* not the texts of") as caught:
        check_modality(fake_model(False), texts)  # type: ignore[arg-type]
    assert "folder of images" in str(caught.value.hint)
    with pytest.raises(DataError, match=r"is a text model .* not the 5 image file\(s\)") as caught:
        check_modality(fake_model(True), images)  # type: ignore[arg-type]
    assert "FILE.txt" in str(caught.value.hint) and "FILE.csv" in str(caught.value.hint)
    check_modality(fake_model(True), texts)  # type: ignore[arg-type]
    check_modality(fake_model(False), images)  # type: ignore[arg-type]


def test_eval_refuses_image_data_for_a_text_model_and_text_data_for_an_image_model() -> None:
    from ftcli.commands.evaluate import input_spec

    with pytest.raises(ConfigError, match=r"is a text model .* data=digits holds images") as caught:
        input_spec(fake_model(True), {"name": "digits"}, [])  # type: ignore[arg-type]
    assert "text_csv" in str(caught.value.hint)
    with pytest.raises(ConfigError, match=r"is an image model .* data=text_csv holds texts"):
        input_spec(fake_model(False), {"name": "text_csv"}, [])  # type: ignore[arg-type]


def test_eval_keeps_a_text_checkpoints_max_length_unless_given(tmp_path: Path) -> None:
    from ftcli.commands.evaluate import input_spec
    from ftcli.data.text.spec import TextSpec

    model = fake_model(True)
    model.transform = TextSpec("/models/x", 24)
    data = {"name": "text_csv", "max_length": 128}

    assert input_spec(model, data, []) == TextSpec("/models/x", 24)  # type: ignore[arg-type]
    given = input_spec(model, {**data, "max_length": 16}, ["data.max_length=16"])  # type: ignore[arg-type]
    assert given == TextSpec("/models/x", 16)
