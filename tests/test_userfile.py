"""The one reader of user files (text, JSON): every failure is one line naming the file and the
fault."""

from __future__ import annotations

import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.userfile import read_json


def message(path, **kwargs) -> str:
    with pytest.raises(SparsescaleError) as err:
        read_json(path, **kwargs)
    text = str(err.value)
    assert "\n" not in text
    return text


def test_reads_valid_json(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text('{"a": [1, 2.5, null], "b": "\u00e9"}', encoding="utf-8")
    assert read_json(path) == {"a": [1, 2.5, None], "b": "\u00e9"}


def test_missing_file_names_the_path_as_given_and_what_it_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert message("./absent.json") == "./absent.json: no such file"
    assert (
        message(tmp_path / "absent.json", what="law file")
        == f"{tmp_path / 'absent.json'}: no such law file"
    )


def test_a_folder_or_an_unreadable_path_is_named(tmp_path):
    assert message(tmp_path, what="table") == f"{tmp_path}: is a folder, not a table"
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    inside = (
        plain / "law.json"
    )  # a path through a file: an OSError other than "missing", even for root
    assert (
        message(inside, what="law file")
        == f"{inside}: cannot read law file (NotADirectoryError: Not a directory)"
    )


def test_invalid_json_gives_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "a": 1,\n  "b": \n}\n')
    assert message(path) == f"{path}: not valid JSON (line 4, column 1: Expecting value)"


def test_bytes_that_are_not_utf8_give_the_byte_and_line(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('{"a": 1,\n "b": "caf\u00e9"}'.encode("latin-1"))
    assert (
        message(path, what="speedups file")
        == f"{path}: speedups file is not UTF-8 text (byte 0xe9 on line 2)"
    )


def test_nesting_too_deep_for_the_decoder_is_one_line(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    assert message(path) == f"{path}: not valid JSON (nested too deeply to read)"


def test_object_pairs_hook_sees_repeated_keys(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text('{"loss": [1], "loss": [2], "n": [3]}')
    seen = []

    def hook(pairs):
        seen.append([k for k, _ in pairs])
        return dict(pairs)

    assert read_json(path, object_pairs_hook=hook) == {"loss": [2], "n": [3]}
    assert seen == [["loss", "loss", "n"]]


def test_toml_files_share_the_reader_and_its_messages(tmp_path):
    """Run configs and sweep specs are read by the same read_text: the same faults, led by their
    label."""
    from sparsescale.train.config import read_toml

    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'name = "x"\nnote = "\xe9"\n')
    with pytest.raises(SparsescaleError) as err:
        read_toml(bad, f"--config {bad}", "file")
    assert str(err.value) == f"--config {bad}: file is not UTF-8 text (byte 0xe9 on line 2)"
    with pytest.raises(SparsescaleError) as err:
        read_toml(tmp_path, "spec", "sweep spec file")
    assert str(err.value) == "spec: is a folder, not a sweep spec file"
