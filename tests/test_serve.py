"""makemore serve's JSON API and page: every endpoint, and every class of bad input is a 4xx
with a one-line JSON error, never a 5xx."""

import asyncio
import dataclasses
import json
import re
import socket
import sys
import threading
import warnings

import pytest

pytest.importorskip("fastapi", reason="makemore serve needs the serve extra: pip install 'makemore[serve]'")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx (in the test extra)")

import httpx  # noqa: E402

with warnings.catch_warnings():  # newer Starlette prefers httpx2 for its TestClient; httpx works with every version
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

import makemore  # noqa: E402
from makemore.cli import build_parser  # noqa: E402
from makemore.data import resolve_data  # noqa: E402
from makemore.serve import Limits, create_app, load_runs, run_names  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny runs on 300 real names: an mlp trained 30 steps and the counted bigram."""
    root = tmp_path_factory.mktemp("serve")
    data = root / "small.txt"
    data.write_text("\n".join(resolve_data("names").read_text(encoding="utf-8").splitlines()[:300]) + "\n", encoding="utf-8")
    quiet = dict(quiet=True, log=lambda m: None)
    makemore.train(data=str(data), model="mlp", out=root / "mlp", max_steps=30, eval_interval=15, batch_size=16, **quiet)
    makemore.train(data=str(data), model="bigram", out=root / "bigram", **quiet)
    labelled = root / "labelled.txt"  # item<TAB>label lines
    labelled.write_text("\n".join(resolve_data("names-sex").read_text(encoding="utf-8").splitlines()[:300]) + "\n", encoding="utf-8")
    makemore.train(data=str(labelled), model="bigram", out=root / "sex", **quiet)
    return {name: makemore.load(root / name, device="cpu") for name in ("mlp", "bigram", "sex")}


def local(app) -> TestClient:
    """A test client whose requests are addressed to localhost, as a browser on this machine's are
    (TestClient's own default, Host: testserver, is a name the server does not answer)."""
    return TestClient(app, base_url="http://localhost")


@pytest.fixture(scope="module")
def client(runs):
    return local(create_app(runs))


def post(client, path, body):
    return client.post(path, json=body)


# ---- the endpoints ----

def test_health(client):
    r = client.get("/api/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "version": makemore.__version__, "models": ["mlp", "bigram", "sex"]}


def test_models_card(client, runs):
    cards = {c["name"]: c for c in client.get("/api/models").json()["models"]}
    assert list(cards) == ["mlp", "bigram", "sex"]
    mlp, run = cards["mlp"], runs["mlp"]
    summary = json.loads(run.dir.file("summary.json").read_text())
    assert mlp["model"] == "mlp" and mlp["params"] == run.model.num_params() == run.config["params"]
    assert mlp["data"] == {"source": "small.txt", "items": 300, "split": {"train": 240, "val": 30, "test": 30}}
    assert mlp["nll"] == {s: summary[s]["nll"] for s in ("train", "val", "test")}
    assert mlp["steps"] == 30 and mlp["novel"] is True
    assert mlp["curve"] == [{"step": r["step"], "train": r["train_loss"], "val": r["val_loss"]} for r in run.dir.read_metrics()]
    assert [p["step"] for p in mlp["curve"]] == [15, 30]
    assert mlp["vocab"] == "".join(run.config["vocab"]) and mlp["max_len"] == run.model_config.max_len and mlp["labels"] == []
    assert cards["bigram"]["params"] == 0
    assert cards["sex"]["labels"] == ["F", "M"] and cards["sex"]["label_counts"] == runs["sex"].config["data"]["label_counts"]
    assert sum(cards["sex"]["label_counts"].values()) == 240  # the training split


def test_openapi_lists_every_endpoint(client):
    schema = client.get("/api/openapi.json").json()
    assert {p: sorted(m) for p, m in schema["paths"].items()} == {
        "/api/health": ["get"], "/api/models": ["get"], "/api/sample": ["post"], "/api/score": ["post"],
        "/api/limits": ["get"], "/api/train": ["post"], "/api/jobs/{job_id}": ["delete", "get"], "/api/jobs/{job_id}/events": ["get"]}
    train = schema["paths"]["/api/train"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"items", "name", "model", "time_budget", "labels"} == set(train["properties"])
    assert {"n", "temperature", "top_k", "top_p", "prefix", "novel", "seed", "model"} <= set(schema["components"]["schemas"]["SampleRequest"]["properties"])


def test_the_sample_request_is_sampleconfig_s_options(client):
    """One declaration: the page's fields are SampleConfig's, with its help and its ranges (a file
    path, exclude, is not offered: the server reads no path a request names)."""
    from makemore.config import SAMPLE_OPTIONS

    fields = client.get("/api/openapi.json").json()["components"]["schemas"]["SampleRequest"]["properties"]
    assert list(fields) == ["model", *(name for name in SAMPLE_OPTIONS if name != "exclude")]
    for name, field in fields.items():
        if name != "model":
            spec = SAMPLE_OPTIONS[name].spec
            assert field["description"].startswith(spec.help) and field.get("default") == SAMPLE_OPTIONS[name].default
    assert (fields["n"]["minimum"], fields["n"]["maximum"]) == (1, 10**7)
    assert fields["top_p"]["exclusiveMinimum"] == 0.0 and fields["temperature"]["minimum"] == 1e-6


def test_the_page_samples_as_the_api_does_under_every_constraint(client, runs):
    """Same seed, same items through the page and Run.sample, min_len (shaped and checked) included."""
    asked = {"n": 6, "seed": 11, "min_len": 5, "max_len": 7, "contains": "a", "max_draws": 5000}
    body = post(client, "/api/sample", {"model": "bigram", **asked}).json()
    assert [it["text"] for it in body["items"]] == runs["bigram"].sample(**asked)


def test_the_card_lists_the_scripts_of_the_model_s_letters(client):
    cards = {c["name"]: c for c in client.get("/api/models").json()["models"]}
    assert cards["mlp"]["scripts"] == ["latin"]
    body = post(client, "/api/sample", {"model": "mlp", "n": 2, "script": "greek"})
    assert body.status_code == 422 and body.json()["error"].startswith("script greek: this model has no letter of that script")


def test_page_is_one_self_contained_file(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "<script src" not in page and "@import" not in page and "url(" not in page
    assert re.findall(r'<link [^>]*href="([^:"]*):', page) == ["data"]  # the icon is inline
    # the only URL in it is SVG's namespace name, which is never fetched
    assert set(re.findall(r"https?://[^\s\"'`)]+", page)) == {"http://www.w3.org/2000/svg"}
    for id_ in ("model", "n", "temperature", "top_k", "top_p", "prefix", "novel", "seed", "results", "text", "strip", "chart"):
        assert f'id="{id_}"' in page


def test_sample_matches_the_python_api(client, runs):
    r = post(client, "/api/sample", {"model": "mlp", "n": 8, "seed": 3, "temperature": 0.9, "top_k": 20})
    assert r.status_code == 200
    body = r.json()
    texts = [it["text"] for it in body["items"]]
    assert body["model"] == "mlp" and body["seed"] == 3 and "warning" not in body
    assert texts == runs["mlp"].sample(8, seed=3, temperature=0.9, top_k=20)
    scored = runs["mlp"].score([t for t in texts if t])
    got = [it for it in body["items"] if it["text"]]
    assert [it["nll"] for it in got] == pytest.approx([s.nll for s in scored], abs=1e-5)
    assert [it["chars"] for it in got] == [s.chars for s in scored]
    assert all(it["nll_per_char"] == pytest.approx(it["nll"] / it["chars"]) for it in body["items"])


def test_sample_defaults_to_the_first_model_and_takes_an_integer_temperature(client, runs):
    body = post(client, "/api/sample", {"n": 3, "seed": 0, "temperature": 1}).json()
    assert body["model"] == "mlp" and [it["text"] for it in body["items"]] == runs["mlp"].sample(3, seed=0)


def test_sample_without_a_seed_returns_the_one_it_drew(client, runs):
    first = post(client, "/api/sample", {"n": 4}).json()
    again = post(client, "/api/sample", {"n": 4, "seed": first["seed"]}).json()
    assert 0 <= first["seed"] < 2**53 and again["seed"] == first["seed"] and again["items"] == first["items"]


def test_sample_prefix_and_novel(client, runs):
    items = [it["text"] for it in post(client, "/api/sample", {"model": "bigram", "n": 20, "seed": 1, "prefix": "ma", "novel": True}).json()["items"]]
    assert len(items) == len(set(items)) == 20
    assert all(t.startswith("ma") for t in items) and not set(items) & runs["bigram"].training_items()


def test_sample_constraints_as_the_python_api_applies_them(client, runs):
    asked = {"n": 5, "seed": 2, "suffix": "a", "contains": "e", "min_len": 4, "max_len": 8, "unique": True}
    texts = [it["text"] for it in post(client, "/api/sample", {"model": "bigram", **asked}).json()["items"]]
    assert texts == runs["bigram"].sample(**asked)
    assert all(t.endswith("a") and "e" in t and 4 <= len(t) <= 8 for t in texts) and len(set(texts)) == 5


def test_not_enough_novel_items_returns_those_found_and_says_so(client):
    # top_k=1 makes every draw the same greedy item: at most one novel item exists
    r = post(client, "/api/sample", {"n": 3, "top_k": 1, "novel": True, "seed": 0})
    assert r.status_code == 200
    body = r.json()
    assert len(body["items"]) < 3 and body["warning"].startswith(f"found only {len(body['items'])} of 3 ")
    body = post(client, "/api/sample", {"model": "bigram", "n": 3, "suffix": "zzq", "seed": 0}).json()
    assert body["items"] == [] and body["warning"].startswith("found only 0 of 3 ")


def test_score_matches_the_python_api_and_explains_each_character(client, runs):
    r = post(client, "/api/score", {"model": "mlp", "texts": ["emma", " olivia "], "top": 3})
    assert r.status_code == 200
    scores = r.json()["scores"]
    expected = runs["mlp"].score(["emma", "olivia"])
    assert [(s["text"], s["nll"], s["nll_per_char"], s["chars"]) for s in scores] == [(e.text, e.nll, e.nll_per_char, e.chars) for e in expected]
    for s in scores:
        positions = s["positions"]
        assert [p["char"] for p in positions] == list(s["text"]) + ["."]
        assert [p["end"] for p in positions] == [False] * len(s["text"]) + [True]
        assert sum(p["surprise"] for p in positions) == pytest.approx(s["nll"], abs=1e-5)
        assert all(len(p["top"]) == 3 and p["rank"] >= 1 for p in positions)
        assert all(p["rank"] > 3 or p["top"][p["rank"] - 1]["char"] == p["char"] for p in positions)


def test_score_without_explanation(client):
    scores = post(client, "/api/score", {"model": "bigram", "texts": ["ava"], "explain": False}).json()["scores"]
    assert list(scores[0]) == ["text", "nll", "nll_per_char", "chars"]


def test_a_run_whose_data_is_gone_serves_everything_but_novel(tmp_path):
    data = tmp_path / "gone.txt"
    data.write_text("\n".join(resolve_data("names").read_text(encoding="utf-8").splitlines()[:100]) + "\n", encoding="utf-8")
    makemore.train(data=str(data), model="bigram", out=tmp_path / "run", quiet=True, log=lambda m: None)
    data.unlink()
    client = local(create_app({"run": makemore.load(tmp_path / "run", device="cpu")}))
    assert client.get("/api/models").json()["models"][0]["novel"] is False
    assert len(post(client, "/api/sample", {"n": 4}).json()["items"]) == 4
    assert_json_error(post(client, "/api/sample", {"n": 4, "novel": True}), 422, "model 'run' cannot check novelty: the data it was trained on (gone.txt) is missing or has changed; ask without novel")


def test_labelled_model_samples_and_scores_by_label(client, runs):
    run = runs["sex"]
    body = post(client, "/api/sample", {"model": "sex", "n": 6, "seed": 4, "label": "F"}).json()
    texts = [it["text"] for it in body["items"]]
    assert texts == run.sample(6, seed=4, label="F")
    assert [it["nll"] for it in body["items"]] == pytest.approx([s.nll for s in run.score(texts, "F")], abs=1e-9)
    # without a label: each item's label drawn from the prior; NLLs under any label
    body = post(client, "/api/sample", {"model": "sex", "n": 6, "seed": 4}).json()
    texts = [it["text"] for it in body["items"]]
    assert texts == run.sample(6, seed=4)
    assert [it["nll"] for it in body["items"]] == pytest.approx([s.nll for s in run.score(texts)], abs=1e-9)
    for label in ("F", "M", None):
        request = {"model": "sex", "texts": ["emma", "noah"], **({"label": label} if label else {})}
        scores = post(client, "/api/score", request).json()["scores"]
        assert [s["nll"] for s in scores] == [s.nll for s in run.score(["emma", "noah"], label)]
        assert all(sum(p["surprise"] for p in s["positions"]) == pytest.approx(s["nll"], abs=1e-5) for s in scores)


# ---- bad input: a 4xx with {"error": "one line"}: the CLI's checks and words, naming the JSON fields ----

BAD = [
    # (path, JSON body, status, part of the message)
    ("/api/sample", {"n": 0}, 422, "n must be at least 1 (got 0)"),
    ("/api/sample", {"n": -5}, 422, "n must be at least 1 (got -5)"),
    ("/api/sample", {"n": 1001}, 422, "n must be at most 1000 per request (got 1001)"),
    ("/api/sample", {"n": "3"}, 422, "n: Input should be a valid integer"),
    ("/api/sample", {"n": 2.5}, 422, "n: Input should be a valid integer"),
    ("/api/sample", {"n": None}, 422, "n: Input should be a valid integer"),
    ("/api/sample", {"n": 10**30}, 422, "n must be at most 1000"),
    ("/api/sample", {"temperature": 0}, 422, "temperature must be at least 1e-06 (got 0.0)"),
    ("/api/sample", {"temperature": -1.0}, 422, "temperature must be at least 1e-06 (got -1.0)"),
    ("/api/sample", {"temperature": 1e-40}, 422, "temperature must be at least 1e-06 (got 1e-40)"),
    ("/api/sample", {"temperature": 1e300}, 422, "temperature must be at most 1e+06 (got 1e+300)"),
    ("/api/sample", {"temperature": "hot"}, 422, "temperature: Input should be a valid number"),
    ("/api/sample", {"top_k": 0}, 422, "top_k must be at least 1 (got 0)"),
    ("/api/sample", {"top_p": 1.5}, 422, "top_p must be at most 1 (got 1.5)"),
    ("/api/sample", {"top_p": 0}, 422, "top_p must be > 0 (got 0.0)"),
    ("/api/sample", {"seed": -1}, 422, "seed must be at least 0 (got -1)"),
    ("/api/sample", {"seed": 2**64}, 422, "seed must be at most 18,446,744,073,709,551,615"),
    ("/api/sample", {"prefix": "Zo!"}, 422, "characters the model never saw in training ('Z', '!')"),
    ("/api/sample", {"prefix": "a" * 40}, 422, "prefix has 40 characters, which leaves no room under this model's longest item"),
    ("/api/sample", {"min_len": 5, "max_len": 3}, 422, "min_len 5 is more than max_len 3; no item can meet both"),
    ("/api/sample", {"min_len": 0}, 422, "min_len must be at least 1 (got 0)"),
    ("/api/sample", {"contains": "Q"}, 422, "characters the model never saw in training ('Q')"),
    ("/api/sample", {"exclude": "/etc/passwd"}, 422, "unknown field 'exclude'"),  # a file: never from a request
    ("/api/sample", {"unique": "yes"}, 422, "unique: Input should be a valid boolean"),
    ("/api/sample", {"prefix": 7}, 422, "prefix: Input should be a valid string"),
    ("/api/sample", {"novel": "yes"}, 422, "novel: Input should be a valid boolean"),
    ("/api/sample", {"model": "nope"}, 422, "unknown model 'nope'; choose one of: mlp, bigram, sex"),
    ("/api/sample", {"model": "../mlp"}, 422, "unknown model '../mlp'"),
    ("/api/sample", {"model": ["mlp"]}, 422, "model: Input should be a valid string"),
    ("/api/sample", {"temprature": 0.5}, 422, "unknown field 'temprature'"),
    ("/api/sample", {"model": "sex", "label": "X"}, 422, "unknown label 'X'; this model knows: F, M"),
    ("/api/sample", {"model": "mlp", "label": "F"}, 422, "this model was trained without labels, so it has no label 'F'"),
    ("/api/sample", {"model": "sex", "label": 1}, 422, "label: Input should be a valid string"),
    ("/api/score", {"model": "sex", "texts": ["emma"], "label": "X"}, 422, "unknown label 'X'; this model knows: F, M"),
    ("/api/score", {"model": "bigram", "texts": ["emma"], "label": "M"}, 422, "trained without labels"),
    ("/api/sample", [1, 2], 422, "body: Input should be a valid dictionary"),
    ("/api/sample", "n=3", 422, "body: Input should be a valid dictionary"),
    ("/api/score", {}, 422, "texts: Field required"),
    ("/api/score", {"texts": []}, 422, "texts must hold 1 to 100 items (got 0)"),
    ("/api/score", {"texts": ["ab"] * 101}, 422, "texts must hold 1 to 100 items (got 101)"),
    ("/api/score", {"texts": "emma"}, 422, "texts: Input should be a valid list"),
    ("/api/score", {"texts": [1]}, 422, "texts.0: Input should be a valid string"),
    ("/api/score", {"texts": [""]}, 422, "cannot score '': an item needs at least one character"),
    ("/api/score", {"texts": ["emma", "  "]}, 422, "an item needs at least one character"),
    ("/api/score", {"texts": ["Emma!"]}, 422, "'Emma!' has characters the model never saw in training ('E', '!')"),
    ("/api/score", {"texts": ["em\nma"]}, 422, "'em\\nma' has characters the model never saw in training ('\\n')"),
    ("/api/score", {"texts": ["a" * 50]}, 422, "an item has 50 characters; this model takes items of at most"),
    ("/api/score", {"texts": ["emma"], "top": 0}, 422, "top must be between 1 and 10 (got 0)"),
    ("/api/score", {"texts": ["emma"], "top": 11}, 422, "top must be between 1 and 10 (got 11)"),
    ("/api/score", {"texts": ["emma"], "explain": 1}, 422, "explain: Input should be a valid boolean"),
    ("/api/score", {"texts": ["emma"], "model": "bigram2"}, 422, "unknown model 'bigram2'"),
]


def assert_json_error(r, status, message=""):
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == ["error"] and body["error"] and "\n" not in body["error"]
    assert message in body["error"]


@pytest.mark.parametrize("path, body, status, message", BAD)
def test_bad_input_is_a_one_line_4xx(client, path, body, status, message):
    assert_json_error(post(client, path, body), status, message)


def test_malformed_json_is_a_400(client):
    r = client.post("/api/sample", content=b'{"n": 3,', headers={"Content-Type": "application/json"})
    assert_json_error(r, 400, "the request body is not valid JSON")
    r = client.post("/api/score", content=b"\xff\xfe", headers={"Content-Type": "application/json"})
    assert_json_error(r, 400, "not valid JSON")


@pytest.mark.parametrize("raw, message", [(b'{"temperature": NaN}', "temperature must be a finite number (got nan)"),
                                          (b'{"top_p": Infinity}', "top_p must be a finite number (got inf)")])
def test_numbers_json_should_not_hold_are_refused(client, raw, message):
    assert_json_error(client.post("/api/sample", content=raw, headers={"Content-Type": "application/json"}), 422, message)


def test_a_lone_surrogate_is_named_not_crashed_on(client):
    r = client.post("/api/score", content=b'{"texts": ["a\\ud800"]}', headers={"Content-Type": "application/json"})
    assert_json_error(r, 422, "has characters the model never saw in training ('\\ud800')")


def test_a_body_that_is_not_json_says_to_send_json(client):
    assert_json_error(client.post("/api/sample", content=b"n=3", headers={"Content-Type": "application/x-www-form-urlencoded"}),
                      422, "send the request body as a JSON object, with Content-Type: application/json")
    assert_json_error(client.post("/api/score"), 422, "send the request body as a JSON object")


def test_oversize_body_is_a_413(client):
    huge = {"texts": ["emma"] * 20_000}
    assert_json_error(post(client, "/api/score", huge), 413, "the request body is over 65,536 bytes")


def test_oversize_streamed_body_is_a_413(client):
    chunks = (b"x" * 8192 for _ in range(20))  # no Content-Length: sent in chunks
    assert_json_error(client.post("/api/score", content=chunks, headers={"Content-Type": "application/json"}), 413)


@pytest.mark.parametrize("method, path, allowed", [
    ("GET", "/api/sample", "POST"), ("GET", "/api/score", "POST"), ("POST", "/api/health", "GET"),
    ("DELETE", "/api/models", "GET"), ("PUT", "/api/sample", "POST"),
])
def test_wrong_method_is_a_405(client, method, path, allowed):
    assert_json_error(client.request(method, path), 405, f"{method} is not allowed on {path}; use {allowed}")


@pytest.mark.parametrize("path", ["/api/nope", "/api", "/static/index.html", "/../../etc/passwd", "/docs"])
def test_unknown_path_is_a_404(client, path):
    assert_json_error(client.get(path), 404, "no such page")


# ---- concurrency: inference off the event loop, on a bounded number of threads ----

class Gate:
    """Wraps run.sampling so that drawing counts how many draws run at once, and holds them until opened."""

    def __init__(self, run):
        self.run, self.inner = run, run.sampling
        self.lock, self.active, self.most, self.entered = threading.Lock(), 0, 0, threading.Semaphore(0)
        self.open, self.held = threading.Event(), []

    def __call__(self, **options):
        sampling = self.inner(**options)

        def draw(k):
            with self.lock:
                self.held.append(k)
                self.active += 1
                self.most = max(self.most, self.active)
            self.entered.release()
            self.open.wait(30)
            try:
                return sampling.draw(k)
            finally:
                with self.lock:
                    self.active -= 1

        return dataclasses.replace(sampling, draw=draw)


@pytest.fixture
def gate(runs, monkeypatch):
    g = Gate(runs["bigram"])
    monkeypatch.setattr(runs["bigram"], "sampling", g)
    yield g
    g.open.set()


async def wait_for(semaphore, count):
    """Until `count` more calls have entered the gate (failing, not hanging, if they never do)."""
    for _ in range(count):
        for _ in range(3000):
            if semaphore.acquire(blocking=False):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("a request never reached inference")


def test_inference_uses_at_most_the_workers_and_leaves_the_loop_free(runs, gate):
    async def scenario():
        app = create_app(runs, Limits(workers=2))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
            pending = [asyncio.create_task(c.post("/api/sample", json={"model": "bigram", "n": 2})) for _ in range(6)]
            await wait_for(gate.entered, 2)  # two requests are inside inference, held there
            health = await c.get("/api/health")  # the event loop still answers
            assert health.status_code == 200 and gate.active == 2
            gate.open.set()
            return await asyncio.gather(*pending)

    responses = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200] * 6 and gate.most == 2


def test_big_requests_take_one_lane_and_leave_a_worker_for_small_ones(runs, gate):
    async def scenario():
        app = create_app(runs, Limits(workers=2, big_draws=50))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
            big = [asyncio.create_task(c.post("/api/sample", json={"model": "bigram", "n": 500})) for _ in range(3)]
            await wait_for(gate.entered, 1)
            await asyncio.sleep(0.2)  # let the other big requests queue for a worker
            small = asyncio.create_task(c.post("/api/sample", json={"model": "bigram", "n": 2}))
            await wait_for(gate.entered, 1)  # the small one got the other worker while the big ones wait
            assert gate.held == [500, 2]
            gate.open.set()
            return await asyncio.gather(*big, small)

    responses = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200] * 4 and gate.most == 2
    assert [len(r.json()["items"]) for r in responses] == [500, 500, 500, 2]


# ---- the command line ----

def test_serve_binds_this_machine_only_by_default():
    args = build_parser().parse_args(["serve", "runs/x"])
    assert (args.host, args.port, args.run) == ("127.0.0.1", 8000, ["runs/x"])


def test_serve_without_a_run_serves_the_bundled_model():
    said = []
    runs = load_runs([], device="cpu", log=said.append)
    assert list(runs) == ["names-sex"] and runs["names-sex"].labels == ["F", "M"]
    assert said == ["makemore: no run given, so serving the bundled model (lstm trained on names-sex); pass run directories to serve your own"]
    assert [c["name"] for c in local(create_app(runs)).get("/api/models").json()["models"]] == ["names-sex"]


def test_serve_a_missing_run_is_one_line(run_cli, tmp_path):
    status, _, err = run_cli("serve", tmp_path / "nothing")
    assert status == 2 and err.count("\n") == 1 and "not found" in err


@pytest.mark.parametrize("port, message", [(70000, "--port must be between 0 and 65535 (got 70000)"), (-1, "--port must be")])
def test_serve_bad_port(run_cli, runs, port, message):
    status, _, err = run_cli("serve", runs["bigram"].path, "--port", port)
    assert status == 2 and message in err and err.count("\n") == 1


def test_serve_port_in_use(run_cli, runs):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        status, _, err = run_cli("serve", runs["bigram"].path, "--port", port)
    assert status == 2 and f"cannot listen on 127.0.0.1:{port}" in err and err.count("\n") == 1


def test_serve_without_the_extra_says_what_to_install(run_cli, runs, monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if FastAPI were not installed
    monkeypatch.delitem(sys.modules, "makemore.serve")
    status, _, err = run_cli("serve", runs["bigram"].path)
    assert status == 2
    assert err == "makemore: error: makemore serve needs FastAPI and uvicorn (fastapi is not installed): pip install 'makemore[serve]'\n"


def test_run_names_are_directory_names_made_unique(tmp_path):
    assert run_names(["runs/lstm", "other/lstm/", "runs/mlp", "x/lstm"]) == ["lstm", "lstm-2", "mlp", "lstm-3"]
