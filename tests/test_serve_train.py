"""Training from the page (serve/jobs.py): POST /api/train, a job's states, its events, one job at
a time, every bad list refused before anything is written, and a run the CLI can use after."""

import json
import threading
import time
import warnings

import pytest

pytest.importorskip("fastapi", reason="makemore serve needs the serve extra: pip install 'makemore[serve]'")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx (in the test extra)")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

import makemore  # noqa: E402
import makemore.trainer  # noqa: E402
from makemore.data import resolve_data  # noqa: E402
from makemore.serve import Limits, create_app, serve_runs  # noqa: E402

NAMES = resolve_data("names").read_text(encoding="utf-8").splitlines()[:300]
LABELLED = resolve_data("names-sex").read_text(encoding="utf-8").splitlines()[:300]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One small run to serve beside the page's (the counted bigram on the 300 names)."""
    root = tmp_path_factory.mktemp("served")
    (root / "small.txt").write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    makemore.train(data=str(root / "small.txt"), model="bigram", out=root / "bigram", quiet=True, log=lambda m: None)
    return {"bigram": makemore.load(root / "bigram", device="cpu")}


def client_of(served, runs_dir, limits=Limits()) -> TestClient:
    return TestClient(create_app(dict(served), limits, runs_dir=runs_dir), base_url="http://localhost")


def wait(client, job, states=("done", "failed", "cancelled"), seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        view = client.get(f"/api/jobs/{job}").json()
        if view["state"] in states:
            return view
        time.sleep(0.05)
    raise AssertionError(f"job {job} still {view['state']} after {seconds} s")


def start(client, **body):
    r = client.post("/api/train", json={"items": NAMES, "name": "mine", **body})
    assert r.status_code == 202, r.text
    return r.json()["job"]


def test_a_job_trains_a_run_that_is_served_and_the_cli_can_use(served, tmp_path):
    runs = tmp_path / "runs"
    with client_of(served, runs) as client:
        job = start(client, model="mlp", time_budget=2)
        view = wait(client, job)
        assert view["state"] == "done" and view["error"] is None and view["model"] == "mine"
        assert view["step"] > 0 and 0 < view["seconds"] <= 10 and view["val_nll"] < 3.3 and view["train_nll"] < 3.3
        assert "mine" in client.get("/api/health").json()["models"]
        card = next(c for c in client.get("/api/models").json()["models"] if c["name"] == "mine")
        assert card["model"] == "mlp" and card["data"]["items"] == 300 and card["curve"]
        r = client.post("/api/sample", json={"model": "mine", "n": 5, "seed": 1})
        assert r.status_code == 200 and len(r.json()["items"]) == 5
        r = client.post("/api/sample", json={"model": "mine", "n": 5, "novel": True, "seed": 1})
        assert r.status_code == 200  # its data file, inside the run, is there to check novelty against
    run = runs / "mine"
    assert (run / "items.txt").read_text(encoding="utf-8").splitlines() == NAMES
    assert makemore.load(run, device="cpu").sample(3, seed=1)  # an ordinary run directory
    resumed = makemore.resume(run, quiet=True, log=lambda m: None, time_budget=3)
    assert resumed.steps > view["step"]


def test_events_stream_the_job_from_queued_to_done(served, tmp_path):
    with client_of(served, tmp_path / "runs") as client:
        job = start(client, model="mlp", time_budget=1.5)
        with client.stream("GET", f"/api/jobs/{job}/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = [json.loads(line[5:]) for line in stream.iter_lines() if line.startswith("data:")]
    kinds = [e["event"] for e in events]
    assert kinds[:3] == ["queued", "running", "started"] and kinds[-2:] == ["finished", "done"]
    curve = [e for e in events if e["event"] == "evaluated"]
    assert len(curve) >= 2 and all(e["val_nll"] is not None for e in curve)
    assert [e["step"] for e in curve] == sorted(e["step"] for e in curve)
    assert events[-1]["model"] == "mine" and events[-1]["state"] == "done"
    samples = [e for e in events if e["event"] == "samples"]
    assert samples and all(len(e["items"]) == 6 and all(isinstance(t, str) for t in e["items"]) for e in samples)


def test_a_closed_form_model_trains_without_a_budget(served, tmp_path):
    with client_of(served, tmp_path / "runs") as client:
        view = wait(client, start(client, model="ngram"))
        assert view["state"] == "done" and view["val_nll"] is not None and view["time_budget"] == 120
        assert client.post("/api/sample", json={"model": "mine", "n": 3}).status_code == 200


def test_labels_given_apart_train_a_labelled_model(served, tmp_path):
    items, labels = zip(*(line.split("\t") for line in LABELLED))
    with client_of(served, tmp_path / "runs") as client:
        r = client.post("/api/train", json={"items": list(items), "labels": list(labels), "name": "sexed", "model": "bigram"})
        view = wait(client, r.json()["job"])
        assert view["state"] == "done"
        card = next(c for c in client.get("/api/models").json()["models"] if c["name"] == "sexed")
        assert card["labels"] == sorted(set(labels))


def test_two_jobs_never_train_at_once_and_the_queue_is_bounded(served, tmp_path, monkeypatch):
    running, most = [0], [0]
    lock = threading.Lock()
    real = makemore.trainer.train

    def counted(**kwargs):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return real(**kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(makemore.trainer, "train", counted)
    with client_of(served, tmp_path / "runs", Limits(queued_jobs=2)) as client:
        first = start(client, model="mlp", time_budget=2)
        wait(client, first, ("running",))
        second = client.post("/api/train", json={"items": NAMES, "name": "two", "model": "bigram"}).json()
        third = client.post("/api/train", json={"items": NAMES, "name": "three", "model": "bigram"}).json()
        assert (second["state"], second["position"], third["position"]) == ("queued", 1, 2)
        assert client.get(f"/api/jobs/{third['job']}").json()["position"] == 2
        r = client.post("/api/train", json={"items": NAMES, "name": "four", "model": "bigram"})
        assert r.status_code == 409 and "waiting" in r.json()["error"] and "\n" not in r.json()["error"]
        assert client.delete(f"/api/jobs/{second['job']}").json()["state"] == "cancelled"
        assert client.get(f"/api/jobs/{third['job']}").json()["position"] == 1
        assert wait(client, third["job"])["state"] == "done"
        assert wait(client, first)["state"] == "done"
    assert most[0] == 1
    assert not (tmp_path / "runs" / "two").exists()  # cancelled while queued: nothing written


def test_stopping_a_running_job_keeps_its_best_model(served, tmp_path):
    with client_of(served, tmp_path / "runs") as client:
        job = start(client, model="mlp", time_budget=60)
        deadline = time.monotonic() + 60
        while client.get(f"/api/jobs/{job}").json()["val_nll"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.delete(f"/api/jobs/{job}").status_code == 200
        view = wait(client, job)
        assert view["state"] == "cancelled" and view["model"] == "mine" and view["seconds"] < 30
        assert client.post("/api/sample", json={"model": "mine", "n": 2}).status_code == 200
        assert client.delete(f"/api/jobs/{job}").json()["state"] == "cancelled"  # stopping an ended job changes nothing


def test_stopping_the_server_during_a_job_leaves_a_run_resume_continues(served, tmp_path):
    run = tmp_path / "runs" / "mine"
    with client_of(served, tmp_path / "runs") as client:
        job = start(client, model="mlp", time_budget=60)
        deadline = time.monotonic() + 60
        while not (run / "state.safetensors").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        jobs = client.app.state.jobs
    # leaving the client ran the app's shutdown: the job stopped after its step, the run directory whole
    view = jobs.get(job).view()
    assert view["state"] == "cancelled" and "--resume" in view["error"]
    assert (run / "state.safetensors").exists() and (run / "model.safetensors").exists()
    steps = json.loads((run / "summary.json").read_text())["step"]
    result = makemore.resume(run, quiet=True, log=lambda m: None, time_budget=view["seconds"] + 1)
    assert result.steps > steps


BAD_LISTS = [
    ({"items": []}, 422, "no items"),
    ({"items": ["", "  "]}, 422, "no items"),
    ({"items": NAMES[:5]}, 422, "at least 10"),
    ({"items": [1, 2, 3]}, 422, "items.0"),
    ({"items": "emma\nolivia"}, 422, "items"),
    ({"items": NAMES[:20] + ["a\0b"]}, 422, "binary"),
    ({"items": NAMES[:20] + ["a\nb"]}, 422, "line break"),
    ({"items": NAMES[:20] + ["x" * 1001]}, 422, "1,001 characters"),
    ({"items": NAMES[:20] + ["\ufeffemma"]}, 422, "byte-order mark"),
    ({"items": NAMES[:20], "labels": ["f"] * 19}, 422, "one label per item"),
    ({"items": NAMES[:20], "labels": ["f\tm"] * 20}, 422, "TAB"),
    ({"items": [f"{n}\tf" for n in NAMES[:20]] + ["emma"]}, 422, "no TAB on line 21"),
    ({"items": NAMES[:20], "name": "../etc"}, 422, "cannot name a model"),
    ({"items": NAMES[:20], "name": ""}, 422, "cannot name a model"),
    ({"items": NAMES[:20], "name": "bigram"}, 409, "already exists"),
    ({"items": NAMES[:20], "model": "gpt5"}, 422, "unknown model"),
    ({"items": NAMES[:20], "time_budget": 601}, 422, "at most 600"),
    ({"items": NAMES[:20], "time_budget": 0}, 422, "above 0"),
    ({"items": NAMES[:20], "epochs": 3}, 422, "unknown field"),
    ({"items": ["emma"] * 1001, "labels": [f"l{i}" for i in range(1001)]}, 422, "distinct labels"),
]


@pytest.mark.parametrize("body,status,words", BAD_LISTS, ids=[w for _, _, w in BAD_LISTS])
def test_a_bad_list_is_one_line_before_anything_is_written(served, tmp_path, body, status, words):
    with client_of(served, tmp_path / "runs") as client:
        r = client.post("/api/train", json={"name": "mine", **body})
        assert r.status_code == status, r.text
        message = r.json()["error"]
        assert words in message and "\n" not in message
    assert not (tmp_path / "runs").exists()


def test_limits_refuse_a_list_too_large_and_are_shown(served, tmp_path):
    limits = Limits(train_items=100, train_bytes=20_000, train_seconds=30)
    with client_of(served, tmp_path / "runs", limits) as client:
        shown = client.get("/api/limits").json()
        assert (shown["train_items"], shown["train_bytes"], shown["train_seconds"], shown["training"]) == (100, 20_000, 30, True)
        r = client.post("/api/train", json={"items": NAMES[:101], "name": "mine"})
        assert r.status_code == 413 and "at most 100" in r.json()["error"]
        r = client.post("/api/train", json={"items": ["x" * 500] * 50, "name": "mine"})
        assert r.status_code == 413 and "20,000 bytes" in r.json()["error"]
        r = client.post("/api/sample", json={"n": 1, "prefix": "x" * 70_000})  # other requests keep their own limit
        assert r.status_code == 413
        view = wait(client, client.post("/api/train", json={"items": NAMES[:100], "name": "mine", "model": "ngram"}).json()["job"])
        assert view["time_budget"] == 30  # no budget asked for: the server's limit, under 120
    assert not (tmp_path / "runs" / "mine" / "items.txt").exists() or view["state"] == "done"


def test_training_is_refused_where_it_is_off(served, tmp_path):
    for app in (create_app(dict(served), Limits(training=False), runs_dir=tmp_path / "runs"), create_app(dict(served))):
        with TestClient(app, base_url="http://localhost") as client:
            r = client.post("/api/train", json={"items": NAMES, "name": "mine"})
            assert r.status_code == 403 and "--allow-training" in r.json()["error"]
            assert client.get("/api/jobs/nope").status_code == 404
    assert not (tmp_path / "runs").exists()


def test_a_failed_job_says_why_in_one_line_and_leaves_nothing(served, tmp_path, monkeypatch):
    def broken(**kwargs):
        raise makemore.MakemoreError("the disk is full\nsecond line")

    monkeypatch.setattr(makemore.trainer, "train", broken)
    with client_of(served, tmp_path / "runs") as client:
        view = wait(client, start(client, model="mlp", time_budget=2))
        assert view["state"] == "failed" and view["error"] == "the disk is full" and view["model"] is None
    assert list((tmp_path / "runs").iterdir()) == []


def test_the_runs_in_the_runs_directory_are_served_at_startup(served, tmp_path):
    runs = tmp_path / "runs"
    with client_of(served, runs) as client:
        wait(client, start(client, model="bigram"))
    (runs / "unstarted").mkdir()
    (runs / "unstarted" / "config.json").write_text("{}")
    (runs / "notes").mkdir()
    lines = []
    loaded = serve_runs([str(served["bigram"].path)], runs, device="cpu", log=lines.append)
    assert list(loaded) == ["bigram", "mine"]
    assert any("unstarted" in line and "no model" in line for line in lines)
    again = serve_runs([str(runs / "mine")], runs, device="cpu", log=lines.append)
    assert list(again) == ["mine"]  # a RUN argument inside --runs is served once


def test_a_folder_that_appears_while_the_job_waits_is_left_alone(served, tmp_path):
    runs = tmp_path / "runs"
    with client_of(served, runs) as client:
        first = start(client, model="mlp", time_budget=2)
        wait(client, first, ("running",))
        second = client.post("/api/train", json={"items": NAMES, "name": "later", "model": "bigram"}).json()["job"]
        (runs / "later").mkdir()
        (runs / "later" / "items.txt").write_text("the user's own\n")
        view = wait(client, second)
        assert view["state"] == "failed" and "appeared" in view["error"]
    assert (runs / "later" / "items.txt").read_text() == "the user's own\n"


def test_the_page_trains_auto_by_default(served, tmp_path):
    """auto is the page's default (/api/limits) and trains like any model: the ngram at once, a neural
    model kept only if it does better, into an ordinary run the page then serves."""
    runs = tmp_path / "runs"
    with client_of(served, runs) as client:
        limits = client.get("/api/limits").json()
        assert limits["train_default"] == "auto" and limits["train_models"][0] == "auto"
        view = wait(client, start(client, model="auto", time_budget=4))
        assert view["state"] == "done" and view["error"] is None, view["error"]
        assert client.post("/api/sample", json={"model": "mine", "n": 3, "seed": 1}).status_code == 200
    config = json.loads((runs / "mine" / "config.json").read_text())
    assert config["model"] in makemore.models.REGISTRY and "model" in config["choice"]
    assert (runs / "mine" / "items.txt").exists() and [p.name for p in runs.iterdir()] == ["mine"]


# ---- the list as a file: multipart/form-data with a `file` field ----


def test_a_list_sent_as_a_file_trains_as_the_same_list_sent_as_json(served, tmp_path):
    text = ("\ufeff" + "\r\n".join(NAMES) + "\r\n").encode("utf-8")  # a BOM and Windows line ends, as editors save
    with client_of(served, tmp_path / "runs") as client:
        r = client.post("/api/train", files={"file": ("names.txt", text, "text/plain")},
                        data={"name": "filed", "model": "ngram", "time_budget": "30"})
        assert r.status_code == 202, r.text
        view = wait(client, r.json()["job"])
        assert view["state"] == "done" and view["model"] == "filed" and view["time_budget"] == 30
        json_view = wait(client, start(client, model="ngram", name="sent"))
        assert view["val_nll"] == json_view["val_nll"]
    assert (tmp_path / "runs" / "filed" / "items.txt").read_text(encoding="utf-8").splitlines() == NAMES


def test_a_labelled_file_trains_a_labelled_model(served, tmp_path):
    with client_of(served, tmp_path / "runs") as client:
        r = client.post("/api/train", files={"file": ("sexed.tsv", "\n".join(LABELLED).encode(), "text/tab-separated-values")},
                        data={"name": "sexed", "model": "bigram"})
        assert wait(client, r.json()["job"])["state"] == "done"
        card = next(c for c in client.get("/api/models").json()["models"] if c["name"] == "sexed")
        assert card["labels"] == sorted({line.split("\t")[1] for line in LABELLED})


BAD_FILES = [
    ({"file": ("x.bin", b"\x00\x01" * 50)}, {"name": "x"}, "binary"),
    ({"file": ("x.txt", "émile\n".encode("latin-1") * 20)}, {"name": "x"}, "not UTF-8"),
    ({"file": ("x.txt", b"\n\n")}, {"name": "x"}, "no items"),
    ({"file": ("x.txt", "\n".join(NAMES[:5]).encode())}, {"name": "x"}, "at least 10"),
    ({"file": ("x.txt", "\n".join(NAMES[:20]).encode())}, {"name": "x", "time_budget": "soon"}, "number of seconds"),
    ({"file": ("x.txt", "\n".join(NAMES[:20]).encode())}, {"name": "x", "epochs": "3"}, "unknown form field"),
    ({"list": ("x.txt", "\n".join(NAMES[:20]).encode())}, {"name": "x"}, "unknown form field 'list'"),
    ({"file": ("x.txt", b"")}, {"name": "x"}, "no items"),
    ({"name": (None, "x"), "file": (None, "emma")}, {}, "file field named 'file'"),  # a text field, not a file
    ({"file": ("x.txt", "\n".join(NAMES[:20]).encode())}, {}, "name"),
    ({"file": ("x.txt", "\n".join(NAMES[:20]).encode())}, {"name": "../up"}, "cannot name a model"),
]


@pytest.mark.parametrize("files,data,words", BAD_FILES, ids=[w for _, _, w in BAD_FILES])
def test_a_bad_file_is_one_line_before_anything_is_written(served, tmp_path, files, data, words):
    with client_of(served, tmp_path / "runs") as client:
        r = client.post("/api/train", files=files, data=data)
        assert r.status_code == 422, r.text
        message = r.json()["error"]
        assert words in message and "\n" not in message
    assert not (tmp_path / "runs").exists()


def test_the_schema_offers_both_bodies(served, tmp_path):
    with client_of(served, tmp_path / "runs") as client:
        body = client.get("/api/openapi.json").json()["paths"]["/api/train"]["post"]["requestBody"]["content"]
    assert set(body["application/json"]["schema"]["properties"]) == {"items", "name", "model", "time_budget", "labels"}
    assert body["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"


def test_a_urlencoded_form_is_refused_with_what_to_send(served, tmp_path):
    with client_of(served, tmp_path / "runs") as client:
        r = client.post("/api/train", data={"name": "x", "file": "emma"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]
