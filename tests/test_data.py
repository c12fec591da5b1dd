import random

import pytest
import torch

from makemore.data import BOUNDARY, IGNORE, Dataset, Vocabulary, pack, read_items, resolve_data, split_items, windows
from makemore.errors import DataError


def write(tmp_path, data: bytes, name="items.txt"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_read_items_strips_whitespace_crlf_bom_and_blank_lines(tmp_path):
    path = write(tmp_path, "\ufeffemma \r\n\r\n  olivia\r\n\t\nzoë\n".encode("utf-8"))
    assert read_items(path) == ["emma", "olivia", "zoë"]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "no items"),
        (b"\n  \n\t\r\n", "no items"),
        (b"emma\n\xff\xfeolivia\n", "not UTF-8"),
        (b"emma\x00olivia\n", "binary"),
    ],
)
def test_unusable_files_are_refused_with_a_reason(tmp_path, data, message):
    with pytest.raises(DataError, match=message):
        read_items(write(tmp_path, data))


def test_missing_path_and_directory_are_refused(tmp_path):
    with pytest.raises(DataError, match="not found"):
        resolve_data(str(tmp_path / "nope.txt"))
    with pytest.raises(DataError, match="directory"):
        resolve_data(str(tmp_path))


def test_builtin_dataset_is_shipped_and_readable():
    items = read_items(resolve_data("names"))
    assert len(items) > 20_000 and items[0] == "emma"
    assert resolve_data(None) == resolve_data("names")


def test_vocabulary_reserves_index_0_for_the_boundary_even_when_data_has_dots():
    vocab = Vocabulary.from_items(["a.b", "ba"])
    assert vocab.chars == [".", "a", "b"] and len(vocab) == 4
    assert vocab.encode("a.b") == [2, 1, 3] and BOUNDARY not in vocab.encode("a.b")
    assert vocab.decode([2, 1, 3, BOUNDARY]) == "a.b"
    with pytest.raises(DataError, match="'z'"):
        vocab.encode("az")


def test_split_is_the_seeds_split():
    items = [f"item{i}" for i in range(1000)]
    expected = list(items)
    random.seed(42)
    random.shuffle(expected)
    split = split_items(items, 42)
    assert split["train"] == expected[:800] and split["val"] == expected[800:900] and split["test"] == expected[900:]
    assert split_items(items, 7)["train"] != split["train"]


def test_too_small_to_split_is_refused():
    with pytest.raises(DataError, match="at least 10"):
        split_items(["a", "b", "c"])


def test_pack_frames_items_with_the_boundary_and_ignores_padding():
    vocab = Vocabulary.from_items(["ab", "b"])
    p = pack(vocab, ["ab", "b"])
    assert p.x.tolist() == [[0, 1, 2], [0, 2, 0]]
    assert p.y.tolist() == [[1, 2, 0], [2, 0, IGNORE]]
    assert p.chars == 5  # 3 characters + 2 end boundaries


def test_windows_match_the_seeds_build_dataset():
    vocab = Vocabulary.from_items(["emma"])
    X, Y = windows(pack(vocab, ["emma"]), 3)
    e, m, a = vocab.encode("ema")
    assert X.tolist() == [[0, 0, 0], [0, 0, e], [0, e, m], [e, m, m], [m, m, a]]
    assert Y.tolist() == [e, m, m, a, 0]


def test_names_split_sizes(names_path):
    ds = Dataset.load(str(names_path))
    assert len(ds.items) == 32033 and len(ds.vocab) == 27
    assert [ds.packed(s).chars for s in ("train", "val", "test")] == [182625, 22655, 22866]
    assert isinstance(ds.packed("train").x, torch.Tensor)
