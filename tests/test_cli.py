"""Every command end to end on a small slice of data, and every bad input."""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import makemore
from makemore.cli import main

TINY = ["--max-steps", "30", "--eval-interval", "15", "--batch-size", "16", "--quiet", "--samples", "3"]


@pytest.fixture(scope="module")
def shared_run(shared_data, tmp_path_factory):
    """One small mlp trained through the command line, for every test here that needs a run."""
    out = tmp_path_factory.mktemp("cli") / "run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        status = main(["train", "--data", str(shared_data), "--model", "mlp", "--out", str(out), *TINY])
    assert status == 0, err.getvalue()
    return out


@pytest.fixture
def trained(shared_run, tmp_path):
    """A copy of the shared run that a test may damage or extend."""
    return Path(shutil.copytree(shared_run, tmp_path / "run"))


def test_train_prints_final_losses_and_samples(small_data, tmp_path, run_cli):
    status, out, err = run_cli("train", "--data", small_data, "--model", "bigram", "--out", tmp_path / "b", "--quiet")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"run: {tmp_path / 'b'}")
    assert [line.split()[0] for line in lines[1:4]] == ["train", "val", "test"]
    assert lines[4] == "samples:" and len(lines) == 5 + 10


def test_eval_json(trained, run_cli):
    status, out, _ = run_cli("eval", trained, "--split", "test", "--json")
    r = json.loads(out)
    assert status == 0 and r["split"] == "test"
    assert set(r) == {"split", "nll", "bits_per_char", "perplexity", "chars", "items"}
    assert r["items"] == 30 and r["bits_per_char"] == pytest.approx(r["nll"] / 0.693147, rel=1e-5)


def test_eval_on_another_file(trained, tmp_path, run_cli):
    other = tmp_path / "other.txt"
    other.write_text("\n".join(["anna", "bob", "clara", "dave", "eve", "fay", "gus", "hal", "ida", "jon", "kim", "lea"]))
    status, out, _ = run_cli("eval", trained, "--data", other, "--split", "train", "--json")
    assert status == 0 and json.loads(out)["items"] == 9


def test_sample_is_seeded_batched_and_bounded(trained, run_cli):
    a = run_cli("sample", trained, "-n", "50", "--seed", "7")
    b = run_cli("sample", trained, "-n", "50", "--seed", "7")
    c = run_cli("sample", trained, "-n", "50", "--seed", "8")
    assert a[0] == 0 and a[1] == b[1] != c[1]
    assert len(a[1].splitlines()) == 50


def test_sample_options(trained, run_cli):
    status, out, _ = run_cli("sample", trained, "-n", "20", "--seed", "1", "--prefix", "ma", "--top-k", "3", "--top-p", "0.9",
                             "--temperature", "0.8", "--json")
    items = json.loads(out)
    assert status == 0 and len(items) == 20 and all(item.startswith("ma") for item in items)


def test_sample_novel_avoids_training_items(trained, shared_data, run_cli):
    status, out, _ = run_cli("sample", trained, "-n", "15", "--seed", "2", "--novel", "--json")
    items = json.loads(out)
    known = set(shared_data.read_text().split())
    assert status == 0 and len(items) == 15 == len(set(items)) and not set(items) & known


def test_sample_novel_says_when_it_cannot_find_enough(trained, run_cli):
    # at a tiny temperature the model repeats its few most likely items
    status, out, err = run_cli("sample", trained, "-n", "500", "--seed", "2", "--novel", "--temperature", "0.01")
    assert status == 1 and "found only" in err and len(out.splitlines()) < 500


def test_score_json(trained, run_cli):
    status, out, _ = run_cli("score", trained, "emma", "zzzzzz", "--json")
    rows = json.loads(out)
    assert status == 0 and [r["text"] for r in rows] == ["emma", "zzzzzz"]
    assert set(rows[0]) == {"text", "nll", "nll_per_char", "chars"} and rows[0]["chars"] == 5
    assert rows[0]["nll_per_char"] < rows[1]["nll_per_char"]


def test_models_lists_every_model(run_cli):
    from makemore.models import REGISTRY

    from makemore.models import DEFAULT_MODEL

    status, out, _ = run_cli("models", "--json")
    assert status == 0 and [r["name"] for r in json.loads(out)] == list(REGISTRY)
    assert [r["name"] for r in json.loads(out) if r["default"]] == [DEFAULT_MODEL]
    status, out, _ = run_cli("models")
    assert status == 0 and f"\n{DEFAULT_MODEL} * " in out and "On a short list" in out.splitlines()[-1]


SRC = str(Path(__file__).resolve().parents[1] / "src")


def modules_after(code: str) -> set[str]:
    """The modules a fresh `python -c code` has imported when it ends (this checkout's makemore)."""
    done = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": SRC}, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines()[-1].split())


def test_importing_the_command_line_does_not_import_torch():
    assert "torch" not in modules_after("import makemore.cli")
    assert "torch" not in modules_after("import makemore")


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["sample", "--help"], ["lr-find", "--help"],
                                  ["train", "--bogus"], ["sample", "--top-k", "x"], ["nope"]])
def test_help_and_argument_errors_answer_without_torch(argv):
    # as `python -m makemore ARGV` runs (through __main__), stopped by argparse's exit
    modules = modules_after(f"import runpy, sys\nsys.argv = ['makemore', *{argv!r}]\ntry:\n"
                            "    runpy.run_module('makemore', run_name='__main__')\nexcept SystemExit:\n    pass")
    assert "makemore.cli" in modules and "torch" not in modules and "matplotlib" not in modules


def test_the_api_still_comes_from_the_package():
    import makemore
    from makemore import Run, load, train

    assert makemore.train is train and makemore.load is load and makemore.Run is Run
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        makemore.nope




# ---- bad input: one line on stderr, exit 2, no traceback, nothing written ----------------------


def bad_files(tmp_path):
    (tmp_path / "dir").mkdir()
    files = {
        "empty": b"",
        "blank": b"\n \n\t\n",
        "latin1": "jos\xe9\n".encode("latin-1") * 20,
        "binary": b"\x7fELF\x00\x01\x02" * 10,
        "small": b"a\nb\nc\n",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {"missing": tmp_path / "missing.txt", "dir": tmp_path / "dir", **{n: tmp_path / n for n in files}}


def assert_user_error(status, out, err, expect=2):
    assert status == expect
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("kind", ["missing", "dir", "empty", "blank", "latin1", "binary", "small"])
def test_bad_data_files(tmp_path, run_cli, kind):
    path = bad_files(tmp_path)[kind]
    status, out, err = run_cli("train", "--data", path, "--out", tmp_path / "run", "--quiet")
    assert_user_error(status, out, err)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--model", "gpt5"],
        ["--bogus-option"],
        ["--max-steps", "-1"],
        ["--batch-size", "0"],
        ["--n-embd", "0"],
        ["--n-hidden", "-3"],
        ["--block-size", "0"],
        ["--lr", "0"],
        ["--ema", "1"],
        ["--ema", "-0.5"],
        ["--time-budget", "0"],
        ["--optimizer", "adam"],
        ["--model", "bigram", "--n-embd", "8"],
        ["--device", "tpu"],
        ["--max-steps", "ten"],
    ],
)
def test_bad_options(small_data, tmp_path, run_cli, args):
    status, out, err = run_cli("train", "--data", small_data, "--out", tmp_path / "run", "--quiet", *args)
    assert_user_error(status, out, err)
    assert not (tmp_path / "run").exists()


def test_unavailable_device_is_a_clear_error(small_data, tmp_path, run_cli):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    status, out, err = run_cli("train", "--data", small_data, "--out", tmp_path / "run", "--device", "cuda", "--quiet")
    assert_user_error(status, out, err)
    assert "cuda" in err


@pytest.mark.parametrize("command", ["eval", "sample", "score"])
def test_missing_or_corrupted_run_directory(tmp_path, trained, run_cli, command):
    extra = ["emma"] if command == "score" else []
    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    assert_user_error(*run_cli(command, tmp_path / "nope", *extra))
    assert_user_error(*run_cli(command, not_a_run, *extra))
    weights = trained / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    assert_user_error(*run_cli(command, trained, *extra))
    (trained / "config.json").write_text("{not json")
    assert_user_error(*run_cli(command, trained, *extra))


def test_unknown_characters_in_prefix_and_score(trained, run_cli):
    status, out, err = run_cli("sample", trained, "--prefix", "m#")
    assert_user_error(status, out, err)
    assert "'#'" in err
    status, out, err = run_cli("score", trained, "emma", "Ωmega")  # the others are scored, the exit status says not all
    assert_user_error(status, out, err, expect=1)
    assert out.startswith("emma\tnll ") and out.count("\n") == 1 and "cannot score 'Ωmega'" in err and "'Ω'" in err


@pytest.mark.parametrize("args", [["-n", "0"], ["--temperature", "0"], ["--top-k", "0"], ["--top-p", "1.5"]])
def test_bad_sampling_options(trained, run_cli, args):
    assert_user_error(*run_cli("sample", trained, *args))


def test_resume_refuses_changed_settings_and_missing_runs(trained, tmp_path, run_cli):
    assert_user_error(*run_cli("train", "--resume", trained, "--lr", "0.5", "--quiet"))
    assert_user_error(*run_cli("train", "--resume", tmp_path / "nope", "--quiet"))
    status, out, err = run_cli("train", "--resume", trained, "--max-steps", "45", "--quiet", "--samples", "0")
    assert status == 0, err
    assert "(45 steps" in out


def test_changed_training_data_is_detected(trained, tmp_path, run_cli):
    config = json.loads((trained / "config.json").read_text())
    data = tmp_path / "moved.txt"
    shutil.copy(config["data"]["source"], data)
    config["data"]["source"] = str(data)
    (trained / "config.json").write_text(json.dumps(config))
    assert run_cli("eval", trained)[0] == 0  # the same items elsewhere: still the run's data
    data.write_text("anna\nbob\n" * 10)
    status, out, err = run_cli("eval", trained)
    assert_user_error(status, out, err)
    assert "changed" in err


def test_module_entry_point_gives_one_line_and_no_traceback(tmp_path):
    """`python -m makemore` in a real process: the entry point works and a user error is one line."""
    proc = subprocess.run([sys.executable, "-m", "makemore", "train", "--data", str(tmp_path / "none.txt")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "none.txt not found" in proc.stderr


def test_items_longer_than_a_transformer_context_are_a_clear_error(small_data, tmp_path, run_cli):
    status, out, err = run_cli("train", "--data", small_data, "--model", "transformer", "--out", tmp_path / "t",
                               "--max-steps", "2", "--quiet", "--samples", "0")
    assert status == 0, err
    longest = max(len(line) for line in small_data.read_text().split())
    assert_user_error(*run_cli("score", tmp_path / "t", "a" * (longest + 1)), expect=1)
    other = tmp_path / "long.txt"
    other.write_text("\n".join(["a" * (longest + 5)] * 12))
    status, out, err = run_cli("eval", tmp_path / "t", "--data", other)
    assert_user_error(status, out, err)
    assert "at most" in err
    status, out, _ = run_cli("score", tmp_path / "t", "a" * longest, "--json")
    assert status == 0 and json.loads(out)[0]["chars"] == longest + 1


# ---- score, classify and eval over many items: arguments, a file, standard input, the bundled model ----

@pytest.fixture
def stdin_of(monkeypatch, tmp_path):
    """Standard input holding `text`, as a pipe would give it."""
    def give(text: str):
        path = tmp_path / "stdin.txt"
        path.write_bytes(text.encode("utf-8"))
        monkeypatch.setattr(sys, "stdin", open(path, encoding="utf-8"))
    return give


def test_score_reads_items_from_a_file_and_standard_input_in_order(trained, tmp_path, run_cli, stdin_of):
    listed = tmp_path / "items.txt"
    listed.write_text("olivia\n\n  ava \n", encoding="utf-8")
    stdin_of("liam\nnoah\n")
    status, out, err = run_cli("score", trained, "emma", "-", "--items", listed)
    assert status == 0, err
    assert [line.split("\t")[0] for line in out.splitlines()] == ["emma", "liam", "noah", "olivia", "ava"]
    one_call = run_cli("score", trained, "emma", "liam", "noah", "olivia", "ava")[1]
    assert out == one_call  # the same figures, chunked or not


def test_score_names_each_item_it_cannot_score_and_scores_the_rest(trained, run_cli):
    status, out, err = run_cli("score", trained, "emma", "Emma", "liam", "--json")
    entries = json.loads(out)
    assert status == 1 and [e["text"] for e in entries] == ["emma", "Emma", "liam"]
    assert "nll" in entries[0] and "nll" in entries[2] and "it knows 'emma', in lower case" in entries[1]["error"]
    assert err.count("\n") == 1 and "cannot score 'Emma'" in err and "it knows 26 characters" in err


def test_without_a_run_score_classify_and_eval_use_the_bundled_model(run_cli, stdin_of):
    bundled = makemore.load_pretrained(device="cpu")
    status, out, err = run_cli("score", "emma")
    assert status == 0 and out.startswith(f"emma\tnll {bundled.score(['emma'])[0].nll:.4f}") and "bundled model" in err
    stdin_of("kendall\ntaylor\n")
    status, out, err = run_cli("classify", "-", "--json")
    expected = bundled.classify(["kendall", "taylor"])
    assert status == 0 and [e["text"] for e in json.loads(out)] == ["kendall", "taylor"]
    assert all(e["posterior"] == pytest.approx(p, abs=1e-9) for e, p in zip(json.loads(out), expected))
    status, out, _ = run_cli("eval", "--split", "test", "--json")
    assert status == 0 and json.loads(out)["nll"] == pytest.approx(bundled.evaluate("test").nll, abs=1e-12)


def test_eval_over_given_items(trained, tmp_path, run_cli):
    listed = tmp_path / "items.txt"
    listed.write_text("emma\nolivia\nava\n", encoding="utf-8")
    status, out, _ = run_cli("eval", trained, "--items", listed, "--json")
    scores = makemore.load(trained).score(["emma", "olivia", "ava"])
    got = json.loads(out)
    assert status == 0 and (got["items"], got["chars"]) == (3, sum(s.chars for s in scores))
    assert got["nll"] == pytest.approx(sum(s.nll for s in scores) / got["chars"], rel=1e-9)
    assert_user_error(*run_cli("eval", trained, "--items", listed, "--data", listed))


@pytest.mark.parametrize("args, words", [
    (["score"], "give items to work on"),
    (["score", "-", "--items", "-"], "standard input ('-') can be read once"),
    (["score", "no/such/run", "emma"], "not found"),
    (["classify", "emma", "--items", "/nonexistent.txt"], "cannot read /nonexistent.txt"),
])
def test_item_commands_refuse_what_they_cannot_do_in_one_line(run_cli, args, words):
    status, out, err = run_cli(*args)
    assert_user_error(status, out, err)
    assert words in err


def test_classify_names_an_item_it_cannot_classify_and_classifies_the_rest(run_cli):
    status, out, err = run_cli("classify", "kendall", "Zoë", "taylor")
    assert status == 1 and [line.split("\t")[0] for line in out.splitlines()] == ["kendall", "taylor"]
    assert "cannot classify 'Zoë'" in err and "'Z', 'ë'" in err and err.count("\n") == 2  # the bundled model's note, then this


def test_sample_s_seed_help_is_its_own_not_train_s(run_cli, capsys):
    """sample's --seed shares a name with train's, not where train's applies ("every model but bigram")."""
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--seed N same seed, same items (default: random) --temperature" in shown
