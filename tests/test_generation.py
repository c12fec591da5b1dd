"""Issue #11: sampling constraints, output formats and files, and `score --explain`."""

import csv
import io
import json
import math
import os
import re
from pathlib import Path

import pytest
import torch

import makemore
from makemore import api
from makemore.store import files
from makemore.config import OptionError
from makemore.constraints import NotEnough, budget
from makemore.data import Vocabulary
from makemore.explain import explain_many
from makemore.models import ModelConfig, build
from makemore.sample import generate


@pytest.fixture(scope="module")
def run_dir(shared_data, tmp_path_factory) -> Path:
    """A bigram counted on 300 names: its items look like names, and it samples fast."""
    out = tmp_path_factory.mktemp("generation") / "run"
    makemore.train(data=str(shared_data), model="bigram", out=str(out), quiet=True, log=lambda m: None)
    return out


@pytest.fixture(scope="module")
def run(run_dir):
    return makemore.load(run_dir, device="cpu")


def one_line_error(status, err, expect=2):
    assert status == expect, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


# --- constraints, one at a time -------------------------------------------------------------

def test_suffix(run):
    items = run.sample(30, seed=1, suffix="a")
    assert len(items) == 30 and all(item.endswith("a") for item in items)
    assert all(i.endswith("na") for i in run.sample(5, seed=1, suffix="na"))


def test_contains(run):
    items = run.sample(30, seed=2, contains="li")
    assert len(items) == 30 and all("li" in item for item in items)


def test_min_len_shapes_items_without_rejecting(run):
    # max_draws=n: had any item been rejected, n draws could not give n items
    items = run.sample(200, seed=3, min_len=7, max_draws=200)
    assert len(items) == 200 and min(map(len, items)) >= 7
    plain = run.sample(200, seed=3)
    assert min(map(len, plain)) < 7  # without it the model makes shorter items


def test_max_len_ends_items_at_n(run):
    items = run.sample(200, seed=4, max_len=3)  # no filter: the end is forced at 3 characters
    assert len(items) == 200 and max(map(len, items)) == 3
    assert 1 <= min(map(len, items))
    both = run.sample(100, seed=4, min_len=4, max_len=4, max_draws=100)
    assert {len(i) for i in both} == {4}


def test_prefix_with_lengths(run):
    items = run.sample(50, seed=5, prefix="ma", min_len=5, max_len=6)
    assert all(i.startswith("ma") and 5 <= len(i) <= 6 for i in items)


def test_exclude_file(run, tmp_path):
    plain = run.sample(100, seed=6)
    common = sorted(set(plain))[:10]
    assert common
    path = tmp_path / "used.txt"
    path.write_text("\r\n".join(["  " + common[0] + " ", *common[1:], ""]), encoding="utf-8")
    items = run.sample(100, seed=6, exclude=path)  # a pathlib.Path is accepted, as elsewhere
    assert len(items) == 100 and not set(items) & set(common)
    assert set(plain) - set(common) & set(items)  # the rest still comes out


def test_an_empty_exclude_file_excludes_nothing(run, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert run.sample(20, seed=7, exclude=str(empty)) == run.sample(20, seed=7)


def test_unique(run):
    plain = run.sample(300, seed=8)
    assert len(set(plain)) < 300  # a bigram repeats its common items...
    items = run.sample(300, seed=8, unique=True)
    assert len(items) == 300 == len(set(items))  # ...unique does not


def test_novel_is_unique_and_outside_the_data(run, shared_data):
    known = set(shared_data.read_text().split())
    items = run.sample(50, seed=9, novel=True)
    assert len(items) == 50 == len(set(items)) and not set(items) & known


def test_combined(run, shared_data):
    known = set(shared_data.read_text().split())
    items = run.sample(10, seed=10, novel=True, suffix="a", contains="e", min_len=4, max_len=8)
    assert len(items) == 10 == len(set(items))
    assert all(i.endswith("a") and "e" in i and 4 <= len(i) <= 8 and i not in known for i in items)


# --- the draw budget and NotEnough ----------------------------------------------------------

def test_the_budget_rule():
    assert [budget(n) for n in (1, 20, 21, 1000)] == [1000, 1000, 1050, 50000]


def test_not_enough_stops_at_the_budget_with_what_it_found(run):
    # top_k=1 makes one item over and over: unique finds one, then draws until the budget is spent
    with pytest.raises(NotEnough) as e:
        run.sample(5, seed=0, top_k=1, unique=True)
    assert len(e.value.found) == 1 and e.value.draws == budget(5) == 1000 and e.value.wanted == 5
    assert str(e.value).startswith("found only 1 of 5 distinct items in 1000 draws;") and e.value.exit_code == 1
    with pytest.raises(NotEnough) as e:
        run.sample(5, seed=0, top_k=1, unique=True, max_draws=300)
    assert e.value.draws == 300
    assert api.NotEnoughNovel is NotEnough  # the name makemore serve catches


def test_not_enough_describes_the_constraints(run, tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("ab\n")
    with pytest.raises(NotEnough) as e:
        run.sample(3, seed=0, novel=True, suffix="q", contains="zz", exclude=path, max_draws=50)
    assert str(e.value).startswith(f"found only 0 of 3 novel items (ending with 'q', containing 'zz', not in {path}) in 50 draws")
    with pytest.raises(NotEnough) as e:
        run.sample(3, seed=0, prefix="m", contains="zz", min_len=3, max_len=5, unique=True, max_draws=50)
    assert str(e.value).startswith("found only 0 of 3 distinct items (starting with 'm', containing 'zz', of 3 to 5 characters) "
                                   "in 50 draws")
    with pytest.raises(NotEnough, match=r"^found only 0 of 3 items \(containing 'zz', of at most 5 characters\)"):
        run.sample(3, seed=0, contains="zz", max_len=5, max_draws=50)


# --- impossible constraints: one line at once, before any drawing --------------------------

@pytest.fixture
def no_drawing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("sampled before refusing an impossible constraint")

    monkeypatch.setattr(api, "generate", refuse)


@pytest.mark.parametrize("options, message", [
    ({"suffix": "aZ"}, "suffix has characters the model never saw in training ('Z')"),
    ({"contains": "é"}, "contains has characters the model never saw in training ('é')"),
    ({"prefix": "#"}, "prefix has characters the model never saw in training ('#')"),
    ({"min_len": 40}, "min_len is 40, but this model makes items of at most {longest} characters"),
    ({"min_len": 5, "max_len": 4}, "min_len 5 is more than max_len 4; no item can meet both"),
    ({"prefix": "mar", "max_len": 3}, "prefix has 3 characters, which leaves no room under max_len 3"),
    ({"suffix": "anna", "max_len": 3}, "suffix has 4 characters, more than max_len 3"),
    ({"contains": "a" * 40}, "contains has 40 characters, more than this model's longest item ({longest} characters)"),
    ({"exclude": "/no/such/file.txt"}, "exclude: cannot read /no/such/file.txt"),
])
def test_impossible_constraints(run, no_drawing, options, message):
    with pytest.raises(OptionError) as e:
        run.sample(5, **options)
    text = str(e.value)
    assert message.format(longest=run.model_config.max_len) in text and "\n" not in text


def test_an_exclude_that_is_a_folder_or_binary(run, no_drawing, tmp_path):
    with pytest.raises(OptionError, match="is a directory"):
        run.sample(5, exclude=tmp_path)
    binary = tmp_path / "b.txt"
    binary.write_bytes(b"ab\0cd")
    with pytest.raises(OptionError, match="binary"):
        run.sample(5, exclude=binary)


def test_wrong_types_are_refused_by_the_declarations(run):
    for options, message in [({"min_len": 0}, "min_len must be at least 1"), ({"unique": 1}, "unique must be True or False"),
                             ({"suffix": None}, "suffix must be given"), ({"exclude": 3}, "exclude must be text")]:
        with pytest.raises(OptionError, match=message):
            run.sample(5, **options)


def test_min_len_where_the_model_allows_only_the_end():
    # counts without smoothing: after "b" the model has only ever seen the end, so it must end
    # there even before min_len, rather than give NaN probabilities; the filter then drops it
    vocab = Vocabulary(["a", "b"])
    model = build("bigram", ModelConfig(vocab_size=3, max_len=6, smoothing=0.0))
    model.counts.copy_(torch.tensor([[0.0, 1, 1], [1, 1, 1], [1, 0, 0]]))  # rows: after end, a, b
    items = generate(model, vocab, 200, 6, torch.Generator().manual_seed(0), min_len=4)
    assert all(len(i) >= 4 or i.endswith("b") for i in items)
    assert any(len(i) < 4 for i in items) and any(len(i) >= 4 for i in items)


# --- the command line: constraints ---------------------------------------------------------

def test_cli_constraints(run_dir, run_cli):
    status, out, err = run_cli("sample", run_dir, "-n", "8", "--seed", "1", "--suffix", "n", "--min-len", "4",
                               "--max-len", "6", "--unique")
    items = out.split()
    assert status == 0 and len(items) == 8 == len(set(items)), err
    assert all(i.endswith("n") and 4 <= len(i) <= 6 for i in items)


def test_cli_not_enough_prints_what_it_found(run_dir, run_cli):
    status, out, err = run_cli("sample", run_dir, "-n", "4", "--seed", "0", "--top-k", "1", "--unique")
    one_line_error(status, err, expect=1)
    assert len(out.split()) == 1 and "found only 1 of 4 distinct items in 1000 draws" in err


@pytest.mark.parametrize("args, message", [
    (["--suffix", "Q"], "--suffix has characters the model never saw"),
    (["--min-len", "9", "--max-len", "2"], "--min-len 9 is more than --max-len 2"),
    (["--min-len", "0"], "--min-len must be at least 1"),
    (["--exclude", "/no/such/file"], "--exclude: cannot read /no/such/file"),
    (["--prefix", "abcdef", "--max-len", "4"], "--prefix has 6 characters, which leaves no room under --max-len 4"),
])
def test_cli_impossible_constraints(run_dir, run_cli, no_drawing, args, message):
    status, out, err = run_cli("sample", run_dir, *args)
    one_line_error(status, err)
    assert message in err and out == ""


def test_help_states_the_budget(run_cli):
    status, out, _ = run_cli("sample", "--help")
    text = " ".join(out.split())
    assert status == 0 and "max(1000, 50 n)" in text and "--exclude FILE" in text


# --- output: formats and files -------------------------------------------------------------

def test_formats_on_stdout(run_dir, run, run_cli):
    items = run.sample(6, seed=11)
    status, out, _ = run_cli("sample", run_dir, "-n", "6", "--seed", "11")
    assert status == 0 and out.splitlines() == items
    for args in (["--json"], ["--format", "json"]):
        assert json.loads(run_cli("sample", run_dir, "-n", "6", "--seed", "11", *args)[1]) == items
    status, out, _ = run_cli("sample", run_dir, "-n", "6", "--seed", "11", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert status == 0 and [r["item"] for r in rows] == items and list(rows[0]) == ["item", "nll_per_char"]
    scores = run.score(items)
    assert [float(r["nll_per_char"]) for r in rows] == pytest.approx([s.nll_per_char for s in scores], abs=1e-4)


def test_csv_quotes_what_needs_quoting(tmp_path):
    from makemore.output import render
    from makemore.sample import Score

    text = render(['a,b', 'say "hi"'], "csv", [Score('a,b', 2.0, 0.5, 4), Score('say "hi"', 9.0, 1.0, 9)])
    assert list(csv.reader(io.StringIO(text))) == [["item", "nll_per_char"], ["a,b", "0.5000"], ['say "hi"', "1.0000"]]


def test_out_writes_the_file_and_refuses_to_replace_it(run_dir, run, run_cli, tmp_path):
    out = tmp_path / "names.csv"
    status, stdout, err = run_cli("sample", run_dir, "-n", "5", "--seed", "12", "--out", out)
    assert status == 0 and stdout == "" and f"wrote 5 items to {out} (csv)" in err  # the extension picks the format
    first = out.read_text()
    assert [r["item"] for r in csv.DictReader(io.StringIO(first))] == run.sample(5, seed=12)
    status, stdout, err = run_cli("sample", run_dir, "-n", "5", "--seed", "13", "--out", out)
    one_line_error(status, err)
    assert "exists; pass --force" in err and out.read_text() == first
    status, _, err = run_cli("sample", run_dir, "-n", "5", "--seed", "13", "--out", out, "--force", "--format", "txt")
    assert status == 0 and out.read_text().splitlines() == run.sample(5, seed=13)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["names.csv"]  # no temporary file left


def test_out_with_not_enough_writes_what_was_found(run_dir, run_cli, tmp_path):
    out = tmp_path / "few.json"
    status, stdout, err = run_cli("sample", run_dir, "-n", "4", "--seed", "0", "--top-k", "1", "--unique", "--out", out)
    assert status == 1 and "found only 1 of 4" in err and len(json.loads(out.read_text())) == 1


def test_out_mistakes_are_refused_before_sampling(run_dir, run_cli, tmp_path, monkeypatch, no_drawing):
    for args, message in [(["--out", tmp_path / "no" / "x.txt"], "does not exist; create it first"),
                          (["--out", tmp_path], "is a directory; name a file"),
                          (["--json", "--format", "csv"], "--json is --format json")]:
        status, out, err = run_cli("sample", run_dir, *args)
        one_line_error(status, err)
        assert message in err and out == ""
    assert not (tmp_path / "no").exists()


def test_a_failed_write_leaves_nothing(run_dir, run_cli, tmp_path, monkeypatch):
    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", disk_full)
    out = tmp_path / "items.txt"
    status, _, err = run_cli("sample", run_dir, "-n", "5", "--out", out)
    one_line_error(status, err)
    assert f"cannot write --out {out}: the disk is full; free some space" in err
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary


def test_a_failed_write_keeps_the_old_file_with_force(run_dir, run_cli, tmp_path, monkeypatch):
    out = tmp_path / "items.txt"
    out.write_text("precious\n")
    monkeypatch.setattr(files.os, "replace", lambda a, b: (_ for _ in ()).throw(OSError(5, "I/O error")))
    status, _, err = run_cli("sample", run_dir, "-n", "5", "--out", out, "--force")
    one_line_error(status, err)
    assert out.read_text() == "precious\n" and os.listdir(tmp_path) == ["items.txt"]


def test_csv_with_nothing_found_is_the_header(run_dir, run_cli, tmp_path):
    status, out, err = run_cli("sample", run_dir, "-n", "3", "--contains", "zzz", "--format", "csv", "--seed", "0")
    one_line_error(status, err, expect=1)
    assert out == "item,nll_per_char\n" and "found only 0 of 3 items (containing 'zzz') in 1000 draws" in err


# --- score --explain -----------------------------------------------------------------------

def test_explain_layout(run_dir, run, run_cli):
    status, out, err = run_cli("score", "--explain", run_dir, "emma", " ava ")
    assert status == 0, err
    blocks = out.strip().split("\n\n")
    assert len(blocks) == 2
    for text, block, positions, s in zip(["emma", "ava"], blocks, explain_many(run.model, run.vocab, ["emma", "ava"], 3),
                                         run.score(["emma", "ava"])):
        lines = block.splitlines()
        assert lines[0] == f"{text}  nll {s.nll:.4f}  per char {s.nll_per_char:.4f}"
        assert lines[1].split() == ["char", "prob", "rank", "model's", "top", "choices"]
        rows = [line.split() for line in lines[2:]]
        assert [r[0] for r in rows] == [*text, "end"]
        for row, p in zip(rows, positions):
            assert row[1] == f"{100 * p.prob:.2f}%" and int(row[2]) == p.rank
            shown = ["end" if a.end else a.char for a in p.top]
            assert row[3::2] == shown and row[4::2] == [f"{100 * a.prob:.1f}%" for a in p.top]
        assert rows[-1][0] == "end" and len(rows) == len(text) + 1


def test_explain_json(run_dir, run, run_cli):
    status, out, _ = run_cli("score", "--explain", run_dir, "emma", "--json")
    [row] = json.loads(out)
    assert status == 0 and row["text"] == "emma"
    assert row["nll"] == pytest.approx(run.score(["emma"])[0].nll, rel=1e-5)
    assert [p["char"] for p in row["positions"]] == ["e", "m", "m", "a", "."]
    assert [p["end"] for p in row["positions"]] == [False] * 4 + [True]
    for p in row["positions"]:
        assert len(p["top"]) == 3 and p["rank"] >= 1 and p["surprise"] == pytest.approx(-math.log(p["prob"]))
        assert set(p["top"][0]) == {"char", "end", "prob"}


def test_explain_bad_items(run_dir, run_cli):
    for text, message in [("Emma", "never saw in training ('E')"), ("  ", "needs at least one character")]:
        status, out, err = run_cli("score", "--explain", run_dir, text)
        one_line_error(status, err)
        assert message in err and out == ""


def test_sample_takes_sampleconfig_s_options_by_name(tmp_path):
    """Run.sample's keywords are SampleConfig's (shown by help() and editors), checked by name: a
    typo is refused with the nearest option, never silently ignored."""
    import inspect

    from makemore.config import SAMPLE_OPTIONS

    run = makemore.load_pretrained(device="cpu")
    for method in (run.sample, run.stream):
        assert list(inspect.signature(method).parameters) == list(SAMPLE_OPTIONS)
    with pytest.raises(makemore.MakemoreError, match="unknown option 'sead'; did you mean 'seed'"):
        run.sample(3, sead=1)
    assert run.sample(4, seed=5) == [i for part in run.stream(4, seed=5) for i in part]


def test_max_draws_bounds_the_cli_as_it_bounds_the_api(run_cli):
    status, out, err = run_cli("sample", "-n", 3, "--seed", 0, "--contains", "zzz", "--max-draws", 40)
    assert status == 1 and out == "" and "found only 0 of 3 items (containing 'zzz') in 40 draws" in err


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    """A counted bigram on Latin and Cyrillic names mixed: it makes items of both, and of both at once."""
    root = tmp_path_factory.mktemp("mixed")
    latin = makemore.data.resolve_data("names").read_text(encoding="utf-8").split()[:400]
    cyrillic = ["анна", "мария", "елена", "ольга", "татьяна", "наталья", "ирина", "светлана", "марина", "юлия"] * 20
    (root / "mixed.txt").write_text("\n".join(latin + cyrillic) + "\n", encoding="utf-8")
    makemore.train(data=str(root / "mixed.txt"), model="bigram", out=root / "run", quiet=True, log=lambda m: None)
    return makemore.load(root / "run", device="cpu")


def test_script_and_alphabet_keep_items_to_one_alphabet(mixed_run):
    import unicodedata

    def scripts(item):
        return {unicodedata.name(ch).split()[0] for ch in item if ch.isalpha()}

    free = mixed_run.sample(300, seed=1)
    assert any(len(scripts(i)) > 1 for i in free)  # the failure the option is for: Marаrett, a Cyrillic а inside
    for script in ("latin", "cyrillic"):
        kept = mixed_run.sample(300, seed=1, script=script)
        assert len(kept) == 300 and all(scripts(i) <= {script.upper()} for i in kept)
        assert kept == mixed_run.sample(300, seed=1, script=script.upper())  # the same seed, the same items
    only = mixed_run.sample(100, seed=2, alphabet="aeimnr")
    assert all(set(i) <= set("aeimnr") for i in only) and len(set(only)) > 10


@pytest.mark.parametrize("options, says", [
    ({"script": "greek"}, "script greek: this model has no letter of that script; its letters are of: cyrillic, latin"),
    ({"alphabet": "xyz", "prefix": "a"}, "prefix has characters outside alphabet ('a')"),
    ({"script": "latin", "contains": "а"}, "contains has characters outside script ('а')"),
    ({"alphabet": "#%"}, "alphabet has none of the characters this model makes"),
])
def test_an_alphabet_no_item_can_keep_to_is_refused_at_once(mixed_run, options, says):
    with pytest.raises(OptionError, match=re.escape(says)):
        mixed_run.sample(3, seed=0, **options)
