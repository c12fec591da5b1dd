"""Issue 21: splits stored as flat tokens, prepared once into a cache, texts kept as hashes.

What is pinned: a split's batches, windows and evaluation chunks are exactly those of the padded
table data.pack makes of the same items; a file read in blocks (however small) gives the items,
fingerprint and errors the whole-file reader gives; the cache is written whole or not at all and
gives the same Dataset as reading the file; seen.py answers membership exactly as a set does."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from makemore import prepare, seen
from makemore.data import (DataError, Dataset, ItemBatches, Vocabulary, WindowBatches, fingerprint, pack, read_lines,
                           split_items, split_labels, windows)
from makemore.tokens import Tokens, token_dtype


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Every file goes through the cache (in tmp_path), read in tiny blocks."""
    root = tmp_path / "cache"
    monkeypatch.setenv("MAKEMORE_CACHE", str(root))
    monkeypatch.setattr(prepare, "CACHE_FROM_BYTES", 0)
    monkeypatch.setattr(prepare, "READ_BLOCK_BYTES", 37)
    return root


def dirs(root):
    return [p for p in root.glob("tokens-*") if p.is_dir()] if root.exists() else []


def words(n: int, seed: int = 0, alphabet: str = "abcdefghijklmnopqrstuvwxyz") -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(n)]


def test_token_dtypes_are_the_smallest_that_fit():
    assert [token_dtype(v) for v in (27, 256, 257, 65536, 65537)] == [np.uint8, np.uint8, np.uint16, np.uint16, np.int32]


@pytest.mark.parametrize("labelled", [False, True])
def test_batches_windows_and_tables_are_those_of_the_padded_table(tmp_path, labelled):
    items = words(500, alphabet="abcdé𝒜.")
    labels = [random.Random(i).choice("XY") for i in range(len(items))] if labelled else None
    path = tmp_path / "data.txt"
    path.write_text("".join(f"{item}\t{label}\n" if labelled else f"{item}\n" for item, label in
                            zip(items, labels or items)), encoding="utf-8")
    ds = Dataset.load(str(path))
    pairs = split_items(list(zip(items, labels or items)))
    for split in ("train", "val", "test"):
        table = pack(ds.vocab, [i for i, _ in pairs[split]], labels=[label for _, label in pairs[split]] if labelled else None)
        flat = ds.packed(split)
        assert torch.equal(flat.x, table.x) and torch.equal(flat.y, table.y) and flat.chars == table.chars
        idx = torch.randint(0, len(table), (64,), generator=torch.Generator().manual_seed(1))
        a, b = flat.take(idx), table.take(idx)
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
        ctx, target = windows(table, 3)
        j = torch.randint(0, len(target), (256,), generator=torch.Generator().manual_seed(2))
        wx, wy = flat.windows(j, 3)
        assert torch.equal(wx, ctx[j]) and torch.equal(wy, target[j])
    # the batches the generator draws from the flat split are the table's
    train = pack(ds.vocab, [i for i, _ in pairs["train"]], labels=[label for _, label in pairs["train"]] if labelled else None)
    for make in (lambda d, g: ItemBatches(d, 32, g, "cpu"), lambda d, g: WindowBatches(d, 3, 32, g, "cpu")):
        ours, theirs = make(ds.packed("train"), torch.Generator().manual_seed(5)), make(train, torch.Generator().manual_seed(5))
        for _ in range(5):
            a, b = ours(), theirs()
            assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def test_the_split_permutation_is_the_seeds_shuffle():
    items = words(1234)
    for seed in (42, 0, 2**64 - 1):
        order = prepare.permutation(len(items), seed)
        assert [items[i] for i in order] == sum(split_items(items, seed).values(), [])


@pytest.mark.parametrize("text", [
    "emma\r\nolivia\n\n  ava \n" * 4 + "zoë\n\ufeffx\n",  # a BOM after the start: refused with its line
    "\ufeff" + "emma\nzoë\u2028x\n𝒜lice\x0cb\n" * 4,  # a BOM at the start, separators kept inside items
    "a\tX\nb\tY\nc\n" * 5,  # a label missing: refused naming the line
    "a\tX\nb\tY\n" * 6,  # labelled
    "a\tX\n \tY\n" * 6,  # an empty item
    "abc\n" * 20 + "x" * 1001 + "\n",  # too long
    "abc\n\0\n" * 5,  # a NUL
    "\n\n  \n",  # nothing
])
def test_read_in_blocks_as_the_whole_file_reader_reads(tmp_path, cache, text):
    path = tmp_path / "data.txt"
    path.write_bytes(text.encode("utf-8"))
    try:
        numbered = read_lines(path)
        items, labels = split_labels([line for _, line in numbered], [n for n, _ in numbered], path)
    except DataError as e:
        with pytest.raises(DataError) as got:
            Dataset.load(str(path))
        assert str(got.value) == str(e)
        assert not dirs(cache) and not (cache.exists() and list(cache.glob(".*")))  # nothing half-written
        return
    ds = Dataset.load(str(path))
    assert ds.items == items and ds.labels == labels and ds.max_len == max(map(len, items))
    lines = items if labels is None else [f"{i}\t{l}" for i, l in zip(items, labels)]
    assert ds.fingerprint == fingerprint(lines)
    assert ds.vocab.alphabet == Vocabulary.from_items(items).alphabet


def test_utf16_files_are_read_whole(tmp_path, cache):
    path = tmp_path / "data.txt"
    path.write_bytes("\n".join(words(50)).encode("utf-16"))
    assert Dataset.load(str(path)).items == words(50)


def test_the_cache_is_prepared_once_and_mapped_after(tmp_path, cache):
    path = tmp_path / "data.txt"
    path.write_text("\n".join(words(3000)) + "\n", encoding="utf-8")
    first = Dataset.load(str(path))
    entries = dirs(cache)
    assert len(entries) == 1 and {p.name for p in entries[0].iterdir()} == {"meta.json", "tokens.npy", "offsets.npy", "split-42.npy"}
    again = Dataset.load(str(path))
    assert isinstance(again.prepared.tokens, np.memmap) and isinstance(again.order, np.memmap)
    assert again.items == first.items == words(3000) and again.splits == first.splits
    assert again.fingerprint == fingerprint(words(3000))
    other = Dataset.load(str(path), split_seed=7)  # another split of the same tokens
    assert other.splits == split_items(words(3000), 7) and len(dirs(cache)) == 1
    with pytest.raises(DataError, match="line 3001 has 20 characters; the limit is 15"):
        path.write_text("\n".join(words(3000)) + "\n" + "x" * 20 + "\n", encoding="utf-8")
        Dataset.load(str(path), max_item_chars=15)


def test_a_failed_preparation_leaves_nothing(tmp_path, cache, monkeypatch):
    path = tmp_path / "data.txt"
    path.write_text("\n".join(words(100)) + "\n", encoding="utf-8")

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare.Tokenizer, "finish", broken)
    with pytest.raises(KeyboardInterrupt):
        Dataset.load(str(path))
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []


def test_an_unwritable_cache_reads_the_file_instead(tmp_path, cache, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("MAKEMORE_CACHE", str(blocker / "cache"))
    path = tmp_path / "data.txt"
    path.write_text("\n".join(words(100)) + "\n", encoding="utf-8")
    ds = Dataset.load(str(path))
    assert ds.prepared.entry is None and ds.items == words(100)


def test_a_run_vocabulary_renumbers_the_tokens(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("\n".join(words(40, alphabet="bcd")) + "\n", encoding="utf-8")
    vocab = Vocabulary(list("abcde"))
    ds = Dataset.load(str(path), vocab=vocab)
    table = pack(vocab, ds.splits["val"])
    assert torch.equal(ds.packed("val").x, table.x)
    with pytest.raises(DataError, match="has characters the model never saw in training \\('d'\\)"):
        Dataset.load(str(path), vocab=Vocabulary(list("bc")))


def test_seen_answers_as_a_set_does_even_when_hashes_collide(monkeypatch):
    monkeypatch.setattr(seen, "SMALL", 10)
    texts = list(dict.fromkeys(words(20000, seed=3, alphabet="abcz𝒜")))
    compact = seen.of_lines(texts)
    assert isinstance(compact, seen.Seen) and len(compact) == len(texts)
    probes = words(3000, seed=4, alphabet="abcz𝒜y") + texts[:3000] + ["", "\0"]
    assert [p in compact for p in probes] == [p in set(texts) for p in probes]
    both = frozenset({"new"}) | compact
    assert "new" in both and texts[0] in both and "yyyyy" not in both and set(texts[:5]) & compact == set(texts[:5])
    # every hash the same: the exact comparison alone decides
    monkeypatch.setattr(seen, "hash_text", lambda text: np.uint64(0))
    few = seen.Seen(np.zeros(3, dtype=np.uint64), ["ab", "cd", "ef"].__getitem__)
    assert "cd" in few and "gh" not in few


def test_seen_of_a_dataset_holds_its_items(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(seen, "SMALL", 10)
    monkeypatch.setattr(seen, "CHUNK", 77)  # texts hashed a few at a time: the same hashes
    path = tmp_path / "data.txt"
    items = words(2000, seed=5, alphabet="abcé")
    path.write_text("\n".join(items) + "\n", encoding="utf-8")
    probes = words(2000, seed=6, alphabet="abcéd")
    for _ in range(2):  # hashed, then (a cached file) mapped from beside its tokens
        compact = seen.of_dataset(Dataset.load(str(path)))
        assert isinstance(compact, seen.Seen) and [p in compact for p in probes] == [p in set(items) for p in probes]
    assert isinstance(compact.keys, np.memmap)


def test_evaluation_of_flat_splits_is_that_of_tables(names_path):
    from makemore.evaluate import item_nll
    from makemore.models import ModelConfig, build

    ds = Dataset.load(str(names_path))
    model = build("mlp", ModelConfig(vocab_size=len(ds.vocab), max_len=ds.max_len, block_size=3, n_embd=4, n_hidden=8))
    table = pack(ds.vocab, ds.splits["val"])
    assert torch.equal(item_nll(model, ds.packed("val")), item_nll(model, table))
    assert isinstance(ds.packed("val"), Tokens)


def test_the_numpy_shuffle_is_random_shuffle():
    from makemore.shuffle import shuffled

    for n in [*range(0, 40), 2047, 2048, 2049, 4097, 70_000, 200_003]:
        for seed in (42, 0, 1337, 2**64 - 1):
            order = list(range(n))
            random.Random(seed).shuffle(order)
            assert shuffled(n, seed).tolist() == order, (n, seed)
