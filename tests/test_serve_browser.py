"""The page in a real headless Chromium: generate, score, and check what a person sees.

Drives the system's Chromium (Debian's `chromium` package; `.ci/run` installs it where it can)
with Playwright's pip package; it never downloads a browser. Skips, saying why, without them.

    MAKEMORE_SCREENSHOT=docs/img/serve.png    also save the page as a PNG (the README's picture)
    MAKEMORE_TRAIN_SCREENSHOTS=docs/img       also save the training panel, during and after (train-*.png)
    MAKEMORE_SERVE_RUN=runs/lstm              serve this run instead of a tiny one trained here
    MAKEMORE_CHROMIUM=/path/to/chromium       the browser, if it is not `chromium` on the PATH
"""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="makemore serve needs the serve extra: pip install 'makemore[serve]'")
pytest.importorskip("playwright", reason="the browser test drives Chromium with Playwright: pip install playwright")

from playwright.sync_api import expect, sync_playwright  # noqa: E402

import makemore  # noqa: E402
from makemore.data import resolve_data  # noqa: E402
from makemore.serve import url  # noqa: E402
from conftest import real_server  # noqa: E402


def find_chromium() -> str | None:
    given = os.environ.get("MAKEMORE_CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=f"no Chromium at {os.environ['MAKEMORE_CHROMIUM']}" if os.environ.get("MAKEMORE_CHROMIUM")
                                else "no Chromium found: apt-get install chromium, or set MAKEMORE_CHROMIUM to the browser")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny mlp, a tiny labelled bigram (names with their sex) and a bigram whose characters
    include two beyond U+FFFF, or the run MAKEMORE_SERVE_RUN names."""
    if os.environ.get("MAKEMORE_SERVE_RUN"):
        path = Path(os.environ["MAKEMORE_SERVE_RUN"])
        return {path.resolve().name: makemore.load(path, device="cpu")}
    root = tmp_path_factory.mktemp("browser")
    for name, source in (("small.txt", "names"), ("labelled.txt", "names-sex")):
        lines = resolve_data(source).read_text(encoding="utf-8").splitlines()[:300]
        (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    quiet = dict(quiet=True, log=lambda m: None)
    makemore.train(data=str(root / "small.txt"), model="mlp", out=root / "mlp", max_steps=60, eval_interval=20, batch_size=32, **quiet)
    makemore.train(data=str(root / "labelled.txt"), model="bigram", out=root / "sex", **quiet)
    names = resolve_data("names").read_text(encoding="utf-8").splitlines()[:200]
    astral = [n[:2] + ASTRAL[i % 2] + n[2:] if i % 3 == 0 else n for i, n in enumerate(names)]
    (root / "astral.txt").write_text("\n".join(astral) + "\n", encoding="utf-8")
    makemore.train(data=str(root / "astral.txt"), model="bigram", out=root / "astral", **quiet)
    return {name: makemore.load(root / name, device="cpu") for name in ("mlp", "sex", "astral")}


ASTRAL = ("\U0001d49c", "\U0001f600")  # 𝒜 and 😀: one character each, two UTF-16 units each


@pytest.fixture(scope="module")
def run(runs):
    """The model the page shows first."""
    return next(iter(runs.values()))


@pytest.fixture(scope="module")
def server(runs):
    """makemore serve's own server on a free 127.0.0.1 port, in a thread (conftest.real_server)."""
    with real_server(runs) as sock:
        yield url(sock)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1200, "height": 860}, accept_downloads=True)
    page = context.new_page()
    problems, requests = [], []
    # the browser logs every 4xx as an error; the bad-input test causes 422s on purpose
    expected = "Failed to load resource: the server responded with a status of 422"
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" and not m.text.startswith(expected) else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server)
    expect(page.locator("#card-facts")).to_contain_text("parameters")
    yield page
    # nothing but our own server (and the download's blob: URL) was ever asked for anything
    assert [u for u in requests if not u.startswith((server, "blob:"))] == []
    assert problems == []
    context.close()


def generate(page, n: int, seed: int):
    page.fill("#n", str(n))
    page.fill("#seed", str(seed))
    page.click("#generate-btn")
    expect(page.locator("#results li")).to_have_count(n)


def test_the_page_shows_the_model_card_and_loss_curve(page, run, runs):
    facts = page.locator("#card-facts").inner_text()
    assert f"{run.model.num_params():,}" in facts and run.config["model"] in facts
    summary = json.loads(run.dir.file("summary.json").read_text())
    assert f"test {summary['test']['nll']:.4f}" in facts
    assert page.locator("#chart svg polyline").count() == 2  # train and val
    assert page.locator("#model option").all_inner_texts() == [f"{name} ({r.config['model']})" for name, r in runs.items()]


def test_generate_shows_the_items_with_their_nll(page, run):
    generate(page, 7, seed=5)
    shown = page.locator("#results li .item").all_inner_texts()
    assert shown == run.sample(7, seed=5, novel=True, unique=True)  # the page's defaults: new items, none twice
    nlls = page.locator("#results li .nll").all_inner_texts()
    expected = run.score(shown)
    assert nlls == [f"{s.nll_per_char:.3f}/char" for s in expected]
    expect(page.locator("#sample-status")).to_contain_text("7 items from")
    expect(page.locator("#sample-status")).to_contain_text("seed 5")


def test_a_seed_from_the_page_makes_the_same_list_through_the_cli(page, run, run_cli):
    """Any list can be made again: the seed the page shows (drawn by the server when none is given)
    gives the CLI the same items, and a seed past 2^53, which a JavaScript number would round, is
    sent and shown digit for digit."""
    page.fill("#n", "6")
    page.fill("#seed", "")
    page.click("#generate-btn")
    expect(page.locator("#results li")).to_have_count(6)
    seed = re.search(r"seed (\d+)", page.locator("#sample-status").inner_text()).group(1)
    status, out, _ = run_cli("sample", run.path, "-n", 6, "--seed", seed, "--novel", "--unique")
    assert status == 0 and out.splitlines() == page.locator("#results li .item").all_inner_texts()
    big = 2827865494970326896  # as a double: 2827865494970327040
    generate(page, 6, seed=big)
    expect(page.locator("#sample-status")).to_contain_text(f"seed {big},")
    assert page.locator("#results li .item").all_inner_texts() == run.sample(6, seed=big, novel=True, unique=True)
    assert run.sample(6, seed=big, novel=True, unique=True) != run.sample(6, seed=2827865494970327040, novel=True, unique=True)
    page.fill("#seed", "0042")
    page.click("#generate-btn")
    expect(page.locator("#sample-status")).to_contain_text("seed 42,")
    page.fill("#seed", "4.5")
    page.click("#generate-btn")
    expect(page.locator("#sample-status")).to_have_text("seed must be a whole number of 0 or more")


def test_a_model_of_several_scripts_offers_to_keep_items_to_one(page, runs):
    """The astral model's letters are Latin and MATHEMATICAL (𝒜): the page offers its scripts, and
    the items it gives are those the CLI's --script gives."""
    expect(page.locator("#script-box")).to_be_hidden()  # the first model has Latin letters alone
    page.select_option("#model", "astral")
    expect(page.locator("#script-box")).to_be_visible()
    assert page.locator("#script option").all_inner_texts() == ["any script", "latin", "mathematical"]
    page.select_option("#script", "latin")
    generate(page, 6, seed=4)
    shown = page.locator("#results li .item").all_inner_texts()
    assert shown == runs["astral"].sample(6, seed=4, novel=True, unique=True, script="latin")
    assert not any("\U0001d49c" in item for item in shown)


def test_constraints_shape_the_items(page, run):
    page.fill("#suffix", "a")
    page.fill("#min_len", "4")
    page.fill("#max_len", "7")
    generate(page, 5, seed=9)
    shown = page.locator("#results li .item").all_inner_texts()
    assert shown == run.sample(5, seed=9, novel=True, unique=True, suffix="a", min_len=4, max_len=7)
    page.fill("#max_len", "2")
    page.click("#generate-btn")
    expect(page.locator("#sample-status")).to_contain_text("min_len 4 is more than max_len 2; no item can meet both")


def test_download_and_copy_the_list(page, run):
    generate(page, 5, seed=2)
    items = page.locator("#results li .item").all_inner_texts()
    with page.expect_download() as download:
        page.click("#download-btn")
    assert Path(download.value.path()).read_text() == "\n".join(items) + "\n"
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("#copy-btn")
    expect(page.locator("#sample-status")).to_have_text("copied 5 items")
    assert page.evaluate("navigator.clipboard.readText()") == "\n".join(items) + "\n"


def test_score_shows_one_cell_per_character_and_the_end(page, run):
    page.fill("#text", "emma")
    page.click("#score-btn")
    cells = page.locator("#strip .cell")
    expect(cells).to_have_count(5)
    assert [c.strip() for c in page.locator("#strip .cell .ch").all_inner_texts()] == ["e", "m", "m", "a", "END"]
    assert "end" in (cells.nth(4).get_attribute("class") or "")
    s = run.score(["emma"])[0]
    expect(page.locator("#totals")).to_contain_text(f"NLL {s.nll:.3f} over 5 characters, {s.nll_per_char:.3f} per character")
    # each cell's probability matches the model's, and a click explains that position
    from makemore.explain import explain

    positions = explain(run.model, run.vocab, "emma", prior=run.label_prior() if run.labels else None)
    shown = [p.strip() for p in page.locator("#strip .cell .p").all_inner_texts()]
    assert len(shown) == 5 and all(re.fullmatch(r"(\d+(\.\d)?|<0\.1)%", p) for p in shown)
    cells.nth(1).click()
    why = page.locator("#why")
    expect(why).to_contain_text("After “e”, the model gave “m”")
    expect(why).to_contain_text(f"choice no. {positions[1].rank}")
    assert why.locator(".a-ch").count() == 5
    assert why.locator(".a-ch").all_inner_texts() == [a.char if not a.end else "end" for a in positions[1].top]


def test_a_labelled_model_generates_and_scores_by_label(page, runs):
    labelled = [(name, r) for name, r in runs.items() if r.labels]
    if not labelled:
        pytest.skip("MAKEMORE_SERVE_RUN names a run without labels")
    name, run = labelled[0]
    if next(iter(runs.values())).labels:
        expect(page.locator("#label-box")).to_be_visible()
    else:
        expect(page.locator("#label-box")).to_be_hidden()  # an unlabelled model has no label picker
    page.select_option("#model", name)
    expect(page.locator("#label-box")).to_be_visible()
    assert page.locator("#label option").all_inner_texts() == ["any", *run.labels]
    expect(page.locator("#card-facts")).to_contain_text("labels")
    label = run.labels[0]
    page.select_option("#label", label)
    generate(page, 5, seed=3)
    assert page.locator("#results li .item").all_inner_texts() == run.sample(5, seed=3, novel=True, unique=True, label=label)
    page.fill("#text", "emma")
    page.click("#score-btn")
    expect(page.locator("#totals")).to_contain_text(f"“emma” given label {label}: NLL {run.score(['emma'], label)[0].nll:.3f}")
    page.select_option("#label", "")
    page.click("#score-btn")
    expect(page.locator("#totals")).to_contain_text(f"“emma” under any label: NLL {run.score(['emma'])[0].nll:.3f}")


def test_clicking_a_result_scores_it(page):
    generate(page, 3, seed=1)
    first = page.locator("#results li .item").first.inner_text()
    page.locator("#results li").first.click()
    expect(page.locator("#strip .cell")).to_have_count(len(first) + 1)
    assert page.input_value("#text") == first


def test_bad_input_shows_the_servers_one_line_message(page):
    page.fill("#text", "Emma!")
    page.click("#score-btn")
    expect(page.locator("#score-status")).to_contain_text("characters the model never saw in training ('E', '!')")
    assert page.locator("#explained").is_hidden()
    page.fill("#temperature", "0")
    page.click("#generate-btn")
    expect(page.locator("#sample-status")).to_contain_text("temperature must be at least 1e-06 (got 0.0)")


def test_phone_width(browser, server, run):
    context = browser.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(server)
    expect(page.locator("#card-facts")).to_contain_text("parameters")
    generate(page, 6, seed=0)
    longest = ("christopher" * 4)[: run.model_config.max_len]  # the longest item the model takes
    page.fill("#text", longest)
    page.click("#score-btn")
    expect(page.locator("#strip .cell")).to_have_count(len(longest) + 1)
    # nothing wider than the screen, and the three sections stacked in one column
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    boxes = [page.locator(s).bounding_box() for s in ("#generate", "#score", "#card")]
    assert boxes[0]["x"] == boxes[1]["x"] == boxes[2]["x"] and boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"]
    assert all(b["width"] <= 375 for b in boxes)
    strip = page.locator("#strip").bounding_box()
    assert strip["x"] + strip["width"] <= 375
    context.close()


def test_screenshot_for_the_readme(page, tmp_path):
    """The whole page after a generate and a score, as the README shows it (saved there only when
    MAKEMORE_SCREENSHOT names the file)."""
    page.fill("#temperature", "0.8")
    generate(page, 12, seed=7)
    page.fill("#text", "emmeline")
    page.click("#score-btn")
    expect(page.locator("#strip .cell")).to_have_count(9)
    png = page.screenshot(path=tmp_path / "serve.png", full_page=True)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 1200  # PNG width: the viewport's
    if os.environ.get("MAKEMORE_SCREENSHOT"):
        Path(os.environ["MAKEMORE_SCREENSHOT"]).write_bytes(png)


def test_characters_beyond_the_basic_plane_count_as_one_as_the_api_counts_them(page, runs):
    """The page counts and cuts text by code points, as the API does, not by JavaScript's UTF-16 units."""
    if "astral" not in runs:
        pytest.skip("MAKEMORE_SERVE_RUN serves a run of its own")
    run = runs["astral"]
    assert set(ASTRAL) <= set(run.config["vocab"])
    page.select_option("#model", "astral")
    expect(page.locator("#card-facts")).to_contain_text(f"{len(run.config['vocab'])}, items up to {run.model_config.max_len} long")
    text = "a" + ASTRAL[0] + ASTRAL[1] + "b"  # four characters, six UTF-16 units
    page.fill("#text", text)
    page.click("#score-btn")
    expect(page.locator("#strip .cell")).to_have_count(5)
    assert [c.strip() for c in page.locator("#strip .cell .ch").all_inner_texts()] == ["a", ASTRAL[0], ASTRAL[1], "b", "END"]
    s = run.score([text])[0]
    expect(page.locator("#totals")).to_contain_text(f"NLL {s.nll:.3f} over 5 characters")
    why = page.locator("#why")
    for i, before in ((2, "a" + ASTRAL[0]), (3, "a" + ASTRAL[0] + ASTRAL[1])):
        page.locator("#strip .cell").nth(i).click()
        expect(why).to_contain_text(f"After “{before}”, the model gave “{text[i]}”")
    page.locator("#strip .cell").nth(4).click()
    expect(why).to_contain_text(f"After “{text}”, the model gave the item to end")
    # the page sends the text as typed; the server strips it by its own rules
    page.fill("#text", "  " + text + " ")
    page.click("#score-btn")
    expect(page.locator("#totals")).to_contain_text(f"“{text}”: NLL {s.nll:.3f}")


@pytest.fixture
def training_page(browser, runs, tmp_path):
    """The page of a server that trains lists posted to it into tmp_path/runs."""
    with real_server(runs, runs_dir=tmp_path / "runs") as sock:
        context = browser.new_context(viewport={"width": 1200, "height": 1400})
        page = context.new_page()
        problems = []
        refused = "Failed to load resource: the server responded with a status of 422"  # the bad list's, on purpose
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" and not m.text.startswith(refused) else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(url(sock))
        expect(page.locator("#card-facts")).to_contain_text("parameters")
        yield page
        assert problems == []
        context.close()


def test_train_on_a_pasted_list_then_generate_from_it(training_page, tmp_path):
    """Paste 300 names, start a short training, watch the curve grow, and generate from the new model."""
    page = training_page
    names = resolve_data("names").read_text(encoding="utf-8").splitlines()[:300]
    expect(page.locator("#train-status")).to_contain_text("Up to")
    page.fill("#train-items", "\n".join(names))
    expect(page.locator("#train-count")).to_have_text("300 items")
    page.fill("#train-name", "pasted")
    page.select_option("#train-model", "mlp")
    page.fill("#train-seconds", "6")
    page.click("#train-btn")
    expect(page.locator("#train-status")).to_contain_text("Training pasted: step", timeout=30_000)
    expect(page.locator("#stop-btn")).to_be_enabled()
    expect(page.locator("#train-chart svg polyline")).to_have_count(2, timeout=30_000)  # the curve, as it grows
    expect(page.locator("#train-samples")).to_contain_text("it makes:")
    shots = os.environ.get("MAKEMORE_TRAIN_SCREENSHOTS")
    if shots:
        page.locator("#train").screenshot(path=Path(shots) / "train-during.png")
    expect(page.locator("#train-status")).to_contain_text("Done: pasted", timeout=60_000)
    assert page.locator("#model").input_value() == "pasted"  # the new model, selected
    expect(page.locator("#card-facts")).to_contain_text("300 items")
    if shots:
        page.locator("#train").screenshot(path=Path(shots) / "train-after.png")
    generate(page, 5, seed=3)
    shown = page.locator("#results li .item").all_inner_texts()
    assert shown == makemore.load(tmp_path / "runs" / "pasted", device="cpu").sample(5, seed=3, novel=True, unique=True)


def test_a_bad_list_on_the_page_is_one_line(training_page, tmp_path):
    page = training_page
    page.fill("#train-items", "emma\nolivia")
    page.fill("#train-name", "short")
    page.click("#train-btn")
    expect(page.locator("#train-status")).to_have_text("the list has 2 items; a train/val/test split needs at least 10")
    expect(page.locator("#train-status")).to_have_class(re.compile("error"))
    assert not (tmp_path / "runs").exists()
