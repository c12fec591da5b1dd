"""Property-based tests (hypothesis) of the readers issue #10 hardened: whatever the bytes of a
data file or of a run directory's files, the result is what it should be or one clear
MakemoreError, never another exception."""

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import makemore
from makemore.checkpoint import CONFIG, METRICS, MODEL, STATE, RunDir
from makemore.training.state import read as read_state
from makemore.data import fingerprint, read_items, resolve_data
from makemore.errors import DataError, MakemoreError

CHEAP = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
TORCH = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LIMIT = 40  # a small item-length limit, so long lines are among the examples


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("properties")


@pytest.fixture(scope="module")
def trained(workdir) -> Path:
    items = resolve_data("names").read_text(encoding="utf-8").splitlines()[:300]
    data = workdir / "small.txt"
    data.write_text("\n".join(items) + "\n", encoding="utf-8")
    makemore.train(data=str(data), out=workdir / "run", model="mlp", max_steps=30, eval_interval=10, batch_size=16,
                   quiet=True, log=lambda msg: None)
    return workdir / "run"


def fresh_copy(run: Path) -> Path:
    target = Path(tempfile.mkdtemp(dir=run.parent)) / "run"
    shutil.copytree(run, target)
    return target


def assert_one_line(e: MakemoreError) -> None:
    message = str(e)
    assert message and "\n" not in message and "Traceback" not in message


# ---- the data reader ----------------------------------------------------------------------------

SEPARATORS = ["\n", "\r\n", "\r", "\x0c", "\x0b", "\x85", "\u2028", "\u2029", "\x1c", "\x00", " ", "\t", "\ufeff"]
text_with_odd_characters = st.lists(st.one_of(st.sampled_from(SEPARATORS), st.text(max_size=6)), max_size=60).map("".join)
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "utf-32-be", "latin-1"]


@st.composite
def file_bytes(draw) -> bytes:
    """Arbitrary bytes, or text in one of several encodings (with or without a BOM), maybe cut short."""
    kind = draw(st.sampled_from(["bytes", "text", "text"]))
    if kind == "bytes":
        return draw(st.binary(max_size=600))
    text = draw(text_with_odd_characters)
    encoding = draw(st.sampled_from(ENCODINGS))
    raw = text.encode(encoding, errors="replace") if encoding == "latin-1" else text.encode(encoding, errors="surrogatepass")
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw)))]
    if draw(st.booleans()):  # a long line somewhere
        raw += b"x" * draw(st.integers(LIMIT - 2, LIMIT + 2))
    return raw


@CHEAP
@given(raw=file_bytes())
def test_any_bytes_give_non_empty_items_or_one_data_error(workdir, raw):
    path = workdir / "items.txt"
    path.write_bytes(raw)
    try:
        items = read_items(path, max_item_chars=LIMIT)
    except DataError as e:
        assert_one_line(e)
        event("refused")
        return
    event("read")
    assert items
    for item in items:
        assert item and item == item.strip() and "\n" not in item and "\0" not in item and len(item) <= LIMIT


ordinary_line = st.text(alphabet=st.sampled_from(list("abcxyzéßŁ-' .\t")), max_size=12)


@CHEAP
@given(lines=st.lists(ordinary_line, min_size=1, max_size=30), crlf=st.booleans(), bom=st.booleans())
def test_ordinary_files_read_as_before(workdir, lines, crlf, bom):
    # the reader before issue #10: str.splitlines, strip, drop blanks. On files without exotic
    # separators both agree, so fingerprints of existing run directories still match their data.
    text = ("\r\n" if crlf else "\n").join(lines)
    raw = ("\ufeff" if bom else "").encode() + text.encode("utf-8")
    before = [line.strip() for line in raw.decode("utf-8-sig").splitlines() if line.strip()]
    assume(before)
    path = workdir / "ordinary.txt"
    path.write_bytes(raw)
    assert read_items(path) == before and fingerprint(read_items(path)) == fingerprint(before)


# ---- metrics.jsonl ------------------------------------------------------------------------------


@CHEAP
@given(cut=st.integers(min_value=0, max_value=10_000), step=st.integers(0, 10**6))
def test_a_metrics_file_cut_anywhere_keeps_every_whole_record_and_appends_cleanly(trained, cut, step):
    run = fresh_copy(trained)
    rd = RunDir(run)
    raw = (run / METRICS).read_bytes()
    records = rd.read_metrics()
    cut = min(cut, len(raw))
    (run / METRICS).write_bytes(raw[:cut])  # a crash during an append can only cut the end
    whole = raw[:cut].count(b"\n")
    kept = rd.read_metrics()
    assert kept[:whole] == records[:whole] and len(kept) in (whole, whole + 1)  # + 1: cut just before its newline
    rd.append_metrics({"step": step, "val_loss": 1.5})
    assert rd.read_metrics() == kept + [{"step": step, "val_loss": 1.5}]
    shutil.rmtree(run.parent)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                           max_leaves=6)


@CHEAP
@given(line=st.one_of(st.binary(max_size=80), json_values.map(lambda v: json.dumps(v).encode())),
       where=st.integers(0, 2), newline=st.booleans())
def test_any_metrics_line_gives_records_or_one_run_error(trained, line, where, newline):
    run = fresh_copy(trained)
    lines = (run / METRICS).read_bytes().splitlines(keepends=True)
    lines.insert(min(where, len(lines)), line + (b"\n" if newline else b""))
    (run / METRICS).write_bytes(b"".join(lines))
    try:
        records = RunDir(run).read_metrics()
    except MakemoreError as e:
        assert_one_line(e)
        assert "metrics.jsonl is damaged: line" in str(e)
        event("refused")
    else:
        event("read")
        assert all(isinstance(r, dict) and type(r["step"]) is int for r in records)
        assert len(records) >= 1  # the good records around a damaged line are never dropped silently
    shutil.rmtree(run.parent)


# ---- config.json and the weights -----------------------------------------------------------------


def key_paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from key_paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            yield from key_paths(v, prefix + (i,))


def load_and_use(run: Path) -> None:
    """What eval, sample and score start with; either it works or it is one MakemoreError."""
    try:
        loaded = makemore.load(run, device="cpu")
        loaded.sample(2, seed=0)
        RunDir(run).read_metrics()
    except MakemoreError as e:
        assert_one_line(e)
        event(f"refused: {type(e).__name__}")
    else:
        event("loaded and sampled")


@TORCH
@given(data=st.data())
def test_any_change_to_config_json_loads_or_is_one_run_error(trained, data):
    run = fresh_copy(trained)
    cfg = json.loads((run / CONFIG).read_text())
    path = data.draw(st.sampled_from(list(key_paths(cfg))))
    if not path:
        cfg = data.draw(json_values)
    else:
        parent = cfg
        for k in path[:-1]:
            parent = parent[k]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(st.one_of(json_values, st.integers(-10, 10**6)))
    (run / CONFIG).write_text(json.dumps(cfg))
    load_and_use(run)
    shutil.rmtree(run.parent)


@TORCH
@given(data=st.data(), name=st.sampled_from([MODEL, STATE]))
def test_truncated_or_garbled_weights_load_or_are_one_run_error(trained, data, name):
    run = fresh_copy(trained)
    raw = bytearray((run / name).read_bytes())
    how = data.draw(st.sampled_from(["truncate", "flip", "header"]))
    if how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    else:  # somewhere in the length or the JSON header, where a flip changes the meaning most
        n = int.from_bytes(raw[:8], "little")
        raw[data.draw(st.integers(0, 8 + n - 1))] = data.draw(st.integers(0, 255))
    (run / name).write_bytes(bytes(raw))
    if name == MODEL:
        load_and_use(run)
    else:
        try:
            read_state(run / name)
        except MakemoreError as e:
            assert_one_line(e)
            event("refused")
        else:
            event("read")
    shutil.rmtree(run.parent)
