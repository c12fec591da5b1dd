"""The app: its routes over a `Models` (the loaded runs and how requests reach them), and its errors
as one JSON line each."""

from __future__ import annotations

import json
import threading
import time
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from ..api import Run
from ..constraints import NotEnough
from ..deadline import TimeLimit, time_limit
from ..errors import MakemoreError, too_long
from ..explain import explain_many
from ..models import AUTO, REGISTRY
from ..version import __version__
from .bodies import ApiError, SampleRequest, ScoreRequest, error, train_request, train_schema, validation_error
from .cards import card
from .hosts import LOCAL, AllowedHosts, HostCheck
from .jobs import Jobs
from .limits import Limits
from .transport import BodyLimit


class Models:
    """The loaded runs, keyed by the names requests use, with what each request asks of them: which
    run, whether it may ask that much, and a worker thread to compute it on (Limits.workers)."""

    def __init__(self, runs: dict[str, Run], limits: Limits):
        if not runs:
            raise MakemoreError("makemore serve needs at least one run directory")
        self.limits = limits
        self.lock = threading.Lock()  # runs are added while requests read them (a job's model, when it is trained)
        self.runs, self.cards, self.novel_error = {}, {}, {}  # novel_error: runs whose data cannot be read cannot check novelty
        for name, run in runs.items():
            self.add(name, run)
        self.workers = anyio.CapacityLimiter(limits.workers)
        self.big_lane = anyio.CapacityLimiter(max(1, limits.workers - 1))

    def add(self, name: str, run: Run) -> str:
        """Serve `run` as `name` from now on (a new name); returns the name."""
        made = card(name, run)
        try:
            run.training_items()
            novel_error = None
        except MakemoreError:  # the data file is gone or changed
            novel_error = (f"model {name!r} cannot check novelty: the data it was trained on "
                           f"({made['data']['source']}) is missing or has changed; ask without novel")
        with self.lock:
            self.runs, self.cards = {**self.runs, name: run}, {**self.cards, name: made}  # new dicts: readers hold the old
            if novel_error:
                self.novel_error = {**self.novel_error, name: novel_error}
        return name

    def names(self) -> list[str]:
        return list(self.runs)

    def pick(self, name: str | None) -> tuple[str, Run]:
        runs = self.runs
        if name is None:
            name = next(iter(runs))
        if name not in runs:  # a key into the loaded runs, never a path
            raise ApiError(422, f"unknown model {name!r}; choose one of: {', '.join(runs)}")
        return name, runs[name]

    async def infer(self, fn, draws: int = 0):
        """fn() on a worker thread, within the time limit (which starts when a worker takes it, not
        while it waits for one); a request drawing more than big_draws items waits for the big lane."""
        def timed():
            with time_limit(self.limits.time_limit):
                return fn()

        if draws > self.limits.big_draws:
            async with self.big_lane:
                return await anyio.to_thread.run_sync(timed, limiter=self.workers)
        return await anyio.to_thread.run_sync(timed, limiter=self.workers)

    def check_pairs(self, name: str, run: Run, items: int, label: str | None) -> None:
        """Scoring without a label scores each item under every label: refuse more than max_pairs."""
        labels = len(run.labels) if label is None and run.labels else 1
        if items * labels > self.limits.max_pairs:
            most = max(1, self.limits.max_pairs // labels)
            raise ApiError(422, f"scoring {items:,} items under each of the {labels:,} labels of model {name!r} is "
                                f"{items * labels:,} item-label pairs, over the {self.limits.max_pairs:,} one request "
                                f"may ask for; ask for at most {most:,} items per request, or give a label")

    async def sample(self, req: SampleRequest) -> dict:
        name, run = self.pick(req.model)
        if req.n > self.limits.max_n:
            raise ApiError(422, f"n must be at most {self.limits.max_n} per request (got {req.n})")
        if req.novel and name in self.novel_error:
            raise ApiError(422, self.novel_error[name])
        # the CLI's path: the options checked by SampleConfig and against the model, the seed drawn
        # when none is given (and returned, to repeat), the same constraints, chunks and budget
        sampling = run.sampling(**req.model_dump(exclude={"model"}))
        self.check_pairs(name, run, req.n, req.label)

        def work():
            warning = None
            try:
                items = sampling.items()
            except NotEnough as e:
                items, warning = e.found, str(e)
            # given the label asked for; without one, under any label (what /api/score gives)
            nll = [s.nll for s in run.score(items, req.label)] if items else []
            return items, nll, warning

        start = time.perf_counter()
        items, nll, warning = await self.infer(work, draws=sampling.first_draw)
        body = {"model": name, "seed": sampling.config.seed,
                "items": [{"text": t, "nll": v, "nll_per_char": v / (len(t) + 1), "chars": len(t) + 1}
                          for t, v in zip(items, nll)],
                "seconds": round(time.perf_counter() - start, 4)}
        return body | ({"warning": warning} if warning else {})

    async def score(self, req: ScoreRequest) -> dict:
        name, run = self.pick(req.model)
        if not 1 <= len(req.texts) <= self.limits.max_texts:
            raise ApiError(422, f"texts must hold 1 to {self.limits.max_texts} items (got {len(req.texts)})")
        if not 1 <= req.top <= self.limits.max_top:
            raise ApiError(422, f"top must be between 1 and {self.limits.max_top} (got {req.top})")
        longer = [t.strip() for t in req.texts if len(t.strip()) > run.model_config.max_len]
        if longer:
            raise ApiError(422, str(too_long(len(longer[0]), run.model_config.max_len)))
        if req.label is not None:
            run.vocab.label_token(req.label)
        self.check_pairs(name, run, len(req.texts), req.label)

        def work():
            scores = run.score(req.texts, req.label)
            explained = None
            if req.explain:
                labels = None if req.label is None else [req.label] * len(req.texts)
                prior = run.label_prior() if run.labels and req.label is None else None
                explained = explain_many(run.model, run.vocab, req.texts, req.top, labels, prior)
            return scores, explained

        scores, explained = await self.infer(work, draws=len(req.texts))
        out = [s.to_dict() | ({"positions": [p.to_dict() for p in explained[i]]} if explained is not None else {})
               for i, s in enumerate(scores)]
        return {"model": name, "scores": out}


def create_app(runs: dict[str, Run], limits: Limits = Limits(), hosts: AllowedHosts = LOCAL,
               runs_dir: str | Path | None = None) -> FastAPI:
    """The app over already loaded runs, keyed by the names requests use, answering requests
    addressed to `hosts` (default: this machine's loopback names). With `runs_dir`, lists posted to
    /api/train are trained into run directories there (when limits.training) and served once trained."""
    models = Models(runs, limits)
    jobs = Jobs(Path(runs_dir) if runs_dir is not None else None, limits, models.add)
    page = resources.files("makemore").joinpath("static/index.html").read_text(encoding="utf-8")

    @asynccontextmanager
    async def lifespan(app):
        yield
        await anyio.to_thread.run_sync(jobs.close)  # a running job stops after its step, its run directory whole

    app = FastAPI(title="makemore", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json", lifespan=lifespan,
                  description="Generate and score items with makemore's character-level models, and train new ones.")
    app.state.jobs = jobs
    app.add_middleware(BodyLimit, limit=limits.body_limit, seconds=limits.read_timeout)
    app.add_middleware(HostCheck, hosts=hosts)  # added last, so it runs first: before the body is read
    add_error_handlers(app)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return HTMLResponse(page)

    @app.get("/api/health", summary="Is the server up, and which models does it serve")
    async def health():
        return {"status": "ok", "version": __version__, "models": models.names()}

    @app.get("/api/limits", summary="What one request may ask for, and whether and how much this server trains")
    async def shown_limits():
        # the page's default is auto: the ngram at once, a neural model only where it does better
        return {**limits.shown(), "train_models": [AUTO, *REGISTRY], "train_default": AUTO}

    @app.get("/api/models", summary="Every model with its card: data, size, NLL and loss curve")
    async def cards():
        novel_error = models.novel_error
        return JSONResponse({"models": [{**c, "novel": name not in novel_error} for name, c in models.cards.items()]})

    @app.post("/api/sample", summary="Generate items, each with its NLL per character")
    async def sample(req: SampleRequest):
        return JSONResponse(await models.sample(req))

    @app.post("/api/score", summary="NLL of each item and, per character, how surprised the model was")
    async def score(req: ScoreRequest):
        return JSONResponse(await models.score(req))

    @app.post("/api/train", status_code=202, summary="Train a new model on a list (JSON, or a form with the list as a "
              "file); answers the job's id at once", openapi_extra=train_schema())
    async def train(request: Request):
        req = await train_request(request)
        job = jobs.submit(req, lambda name: name in models.runs)
        return JSONResponse({"job": job.id, **jobs.view(job)}, status_code=202)

    @app.get("/api/jobs/{job_id}", summary="A training job: its state, step, seconds, NLLs and, once trained, its model")
    async def job(job_id: str):
        return jobs.view(jobs.get(job_id))

    @app.delete("/api/jobs/{job_id}", summary="Stop a job: a queued one is cancelled, a running one keeps its best model")
    async def stop(job_id: str):
        return jobs.view(jobs.stop(job_id))

    @app.get("/api/jobs/{job_id}/events", summary="A job's events as server-sent events, from its start until it ends",
             response_class=StreamingResponse)
    async def job_events(job_id: str):
        job = jobs.get(job_id)

        async def stream():
            sent, ended = 0, False
            while not ended:
                batch, ended = jobs.events_since(job, sent)
                for event in batch:
                    yield f"event: {event['event']}\ndata: {json.dumps(event)}\n\n"
                sent += len(batch)
                if not ended:  # the job's end is noted with its last event, under one lock: none is missed
                    await anyio.sleep(0.2)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache", "x-accel-buffering": "no"})

    return app


def add_error_handlers(app: FastAPI) -> None:
    """Every error a request can meet, as `{"error": "one line"}` with its status."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return error(e.status, str(e))

    @app.exception_handler(MakemoreError)
    async def user_error(request: Request, e: MakemoreError):
        return error(422, str(e))

    @app.exception_handler(TimeLimit)
    async def too_slow(request: Request, e: TimeLimit):
        return error(503, f"the request needed more than {e.seconds:g} s of computing and was stopped; "
                          "ask for fewer items (or, for a labelled model, give a label) per request")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        return validation_error(e.errors())

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):
        if e.status_code == 404:
            return error(404, f"no such page: {request.url.path} (the API is under /api; see /api/openapi.json)")
        if e.status_code == 405:
            allowed = e.headers.get("Allow", "") if e.headers else ""
            return error(405, f"{request.method} is not allowed on {request.url.path}; use {allowed or 'another method'}")
        return error(e.status_code, str(e.detail))

    @app.exception_handler(Exception)
    async def crash(request: Request, e: Exception):  # a bug, not the user's doing: still one JSON line
        return error(500, f"internal error ({type(e).__name__}); please report it")
