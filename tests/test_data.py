import random

import pytest
import torch

from makemore.data import BOUNDARY, IGNORE, Dataset, Packed, Vocabulary, pack, pack_rows, place_items, read_items, resolve_data, split_items, windows
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
    assert vocab.alphabet == [".", "a", "b"] and len(vocab) == 4
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


def test_pack_rows_fills_rows_a_multiple_of_16_wide_longest_item_first():
    items = ["abcdefghijklm", "ab", "abcdefgh", "abcde", "a"]  # 14, 3, 9, 6 and 2 tokens
    vocab = Vocabulary.from_items(items)
    rows = pack_rows(pack(vocab, items))
    # 14 opens row 0 (2 left), 9 opens row 1 (7 left), 6 goes beside it (1 left),
    # 3 fits neither and opens row 2, 2 goes to the fullest row with room: row 0
    assert rows.segment.tolist() == [[0] * 14 + [4] * 2, [2] * 9 + [3] * 6 + [-1], [1] * 3 + [-1] * 13]
    assert rows.pos.tolist()[1] == [*range(9), *range(6), 0] and rows.pos.tolist()[2][:3] == [0, 1, 2]
    assert rows.x.tolist()[2] == [0, *vocab.encode("ab"), *[0] * 13]
    assert rows.y.tolist()[2] == [*vocab.encode("ab"), 0, *[IGNORE] * 13]


@pytest.mark.parametrize("longest, width", [(1, 16), (16, 16), (17, 32), (40, 48)])
def test_pack_rows_widths_round_the_longest_item_up_to_16(longest, width):
    items = ["a" * (longest - 1) or "b", "a"]  # longest - 1 characters + the end boundary = longest tokens
    rows = pack_rows(pack(Vocabulary.from_items(items), items))
    assert rows.x.shape[1] == width


def test_place_items_never_opens_a_row_an_earlier_one_had_room_for():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        lengths = torch.randint(1, 17, (int(torch.randint(1, 200, (1,), generator=g)),), generator=g).tolist()
        row, offset, n_rows = place_items(lengths, 16)
        fill = [0] * n_rows
        for r, o, n in zip(row, offset, lengths):
            fill[r] = max(fill[r], o + n)
        assert sum(fill) == sum(lengths) and max(fill) <= 16  # every item once, no overlap, none over the edge
        spans = sorted((r, o, o + n) for r, o, n in zip(row, offset, lengths))
        assert all(a[0] != b[0] or a[2] == b[1] for a, b in zip(spans, spans[1:]))  # side by side in a row
        # any two rows together hold more than one row can: the later one's first item did not fit
        fills = sorted(fill)
        assert n_rows < 2 or fills[0] + fills[1] > 16


def test_pack_rows_keeps_every_item_whole(names_path):
    data = Dataset.load(str(names_path))
    packed = data.packed("val")
    rows = pack_rows(packed)
    assert rows.x.shape[1] == 16  # names.txt's longest is 15 characters, 16 tokens
    assert (rows.y != IGNORE).sum() == packed.chars  # nothing lost, nothing added
    for j in (0, 1, 500, len(packed) - 1):  # item j, gathered back from its segment, is item j
        where = rows.segment == j
        n = int((packed.y[j] != IGNORE).sum())
        assert rows.x[where].tolist() == packed.x[j, :n].tolist() and rows.y[where].tolist() == packed.y[j, :n].tolist()
        assert rows.pos[where].tolist() == list(range(n))
    # in training-sized batches, far less padding than one item per row
    g = torch.Generator().manual_seed(0)
    picks = [torch.randint(0, len(packed), (32,), generator=g) for _ in range(50)]
    batches = [Packed(packed.x[i], packed.y[i]) for i in picks]
    real = sum(b.chars for b in batches)
    padded = sum(32 * int((b.y != IGNORE).sum(1).max()) for b in batches)
    in_rows = sum(pack_rows(b).y.numel() for b in batches)
    assert real / padded < 0.72 and real / in_rows > 0.88


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
    words = names_path.read_text().splitlines()
    random.seed(42)  # the seeds' own split, by their own code
    random.shuffle(words)
    assert ds.splits["train"][:5] == words[:5] and ds.splits["test"][-5:] == words[-5:]
    train = ds.packed("train")
    assert train.x.shape == (25626, max(map(len, words[:25626])) + 1) and train.x.dtype == torch.long


# ---- issue 19: data that would be read without a word ---------------------------------------------


def test_a_labelled_file_with_a_few_lines_lacking_their_tab_is_refused_naming_them(tmp_path):
    lines = [f"name{i}\t{'F' if i % 2 else 'M'}" for i in range(40)]
    lines[3], lines[17] = "forgot", "forgot too"
    path = write(tmp_path, ("\n".join(lines[:10]) + "\n\n" + "\n".join(lines[10:]) + "\n").encode())  # a blank line 11
    with pytest.raises(DataError) as refused:
        Dataset.load(str(path))
    assert str(refused.value) == (f"{path}: no TAB on lines 4 and 19 (2 of 40 lines), where the others are item<TAB>label; "
                                  "give every line a label, or take the TABs out to train without labels")


def test_a_few_tabs_in_unlabelled_items_are_refused_too(tmp_path):
    lines = [f"name{i}" for i in range(30)]
    for i in (2, 5, 7, 11, 13, 20, 25):
        lines[i] += "\tx"
    path = write(tmp_path, ("\n".join(lines) + "\n").encode())
    with pytest.raises(DataError, match=r"a TAB on lines 3, 6, 8, 12, 14, \.\.\. \(7 of 30 lines\) and none on the others; "
                                        r"a TAB separates an item from its label"):
        Dataset.load(str(path))


@pytest.mark.parametrize("where, line", [("emma\n\ufeffolivia\n", 2), ("\ufeff\ufeffemma\n", 1), ("a\nb\nc\ufeffd\n", 3)])
def test_a_byte_order_mark_after_the_start_is_refused_naming_its_line(tmp_path, where, line):
    path = write(tmp_path, where.encode("utf-8"))
    with pytest.raises(DataError, match=f"line {line} has a byte-order mark \\(U\\+FEFF\\) after the start of the file"):
        read_items(path)
    assert read_items(write(tmp_path, "\ufeffemma\nolivia\n".encode("utf-8"), "ok.txt")) == ["emma", "olivia"]


def test_combining_marks_and_joiners_are_noted_with_their_lines(tmp_path):
    names = [f"name{chr(97 + i)}" for i in range(20)]
    decomposed = names[:5] + ["rene\u0301e"] + names[5:] + ["zoe\u0308"]  # accents written apart: NFC composes them
    note = Dataset.load(str(write(tmp_path, ("\n".join(decomposed) + "\n").encode(), "nfd.txt"))).note()
    assert note.endswith("nfd.txt: combining marks or joiners (U+0301, U+0308) in 2 of 22 items (lines 6 and 22); makemore "
                         "models each code point as a character, so samples may split an accent from its letter; every "
                         "one of them composes under Unicode NFC, so normalising the file to NFC keeps them whole")
    emoji = names + ["\U0001F468\u200d\U0001F469\u200d\U0001F467"]  # a family: three code points glued by joiners
    note = Dataset.load(str(write(tmp_path, ("\n".join(emoji) + "\n").encode(), "zwj.txt"))).note()
    assert "joiners (U+200D) in 1 of 21 items (line 21)" in note and "where no real text has one" in note
    assert Dataset.load("names").note() is None


def test_training_says_the_note_in_one_line_and_goes_on(tmp_path, run_cli):
    names = [f"name{chr(97 + i)}" for i in range(20)] + ["rene\u0301e"]
    path = write(tmp_path, ("\n".join(names) + "\n").encode())
    status, out, err = run_cli("train", "--data", path, "--model", "bigram", "--out", tmp_path / "run", "--quiet", "--samples", "0")
    assert status == 0, err
    assert err.strip() == f"makemore: note: {Dataset.load(str(path)).note()}"
