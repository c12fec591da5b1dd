"""`makemore serve`: a web page and a JSON API over trained runs.

    GET  /                  the page (one HTML file shipped in the package: no build step, no CDN)
    GET  /api/health        is it up, and which models it serves
    GET  /api/models        each model's card: data, size, train/val/test NLL, loss curve
    POST /api/sample        generate items, each with its NLL per character
    POST /api/score         NLL of given items, and how surprised the model was at each character
    GET  /api/openapi.json  the API's OpenAPI schema

Runs are loaded once at startup and looked up by name in a dict: nothing in a request ever
becomes a file path. Bad input is a 4xx with `{"error": "one line"}`, worded as the CLI words
it. Inference runs in a few worker threads off the event loop (see `Limits`). Only requests
addressed to the server's own names are answered (`AllowedHosts`), so that no other web page
can reach it through DNS rebinding. What one request may cost is bounded (`Limits`): its size,
its items x labels, its seconds of inference, and the time its client takes to send it.
"""

from __future__ import annotations

import ipaddress
import json
import math
import random
import socket
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import MakemoreError, RunError

try:
    import anyio
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse
    from pydantic import BaseModel, ConfigDict, Field
    from starlette.exceptions import HTTPException
except ImportError as e:
    raise MakemoreError(f"makemore serve needs FastAPI and uvicorn ({e.name} is not installed): pip install 'makemore[serve]'") from None

import torch

from .version import __version__
from .api import PRETRAINED, Run, load, load_pretrained
from .config import SampleConfig
from .constraints import NotEnough
from .data import BUILTIN
from .deadline import TimeLimit, time_limit
from .explain import explain_many


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how much of the machine inference may use."""

    max_n: int = 1000  # items per sample request
    max_texts: int = 100  # items per score request
    max_top: int = 10  # alternatives shown per position
    max_body: int = 64 * 1024  # bytes of request body
    # Inference threads. Each runs PyTorch on one thread (serve() sets that): requests are small,
    # so running two at once uses two cores better than splitting one tiny matmul across them,
    # and worker threads that each spun up their own OpenMP pool would oversubscribe the CPU.
    workers: int = 2
    # A request that generates more items than this at once (counting the extra draws that novel,
    # suffix, contains or unique need) waits for a lane of its own, one such request at a time, so
    # it never holds every worker.
    big_draws: int = 256
    # Items x labels one request may score. A labelled model scores an item under any label once
    # per label (and a sample request scores what it drew): with thousands of labels even a few
    # items are a lot of work, refused up front rather than run into the time limit.
    max_pairs: int = 5_000
    # Seconds of inference one request may take; it is stopped between two model steps or batches
    # (deadline.py), answered 503, and its worker freed.
    time_limit: float = 10.0
    # Seconds a client has to send a request's head (request line and headers; from the
    # connection's opening or its previous response), and again its body. A connection that
    # stalls is answered 408 and closed, so half-sent requests cannot hold connections open.
    read_timeout: float = 10.0


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


# Request bodies. Types are checked strictly (no "10" for 10); values by SampleConfig, the one
# declaration of the sampling options that the CLI and Python API check with, so the messages are
# theirs, naming the options as the JSON fields are named.
class SampleRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    model: str | None = Field(None, description="a name from /api/models (default: the first)")
    n: int = Field(10, description="how many items (1 to 1000)")
    temperature: float = Field(1.0, description="1.0 samples the model as trained; below 1: safer, more typical items; above 1: wilder ones")
    top_k: int | None = Field(None, description="keep only the k most likely characters at each step")
    top_p: float | None = Field(None, description="keep the most likely characters whose mass reaches p, in (0, 1]")
    prefix: str = Field("", description="items start with this text")
    novel: bool = Field(False, description="only distinct items that are not in the training data")
    suffix: str = Field("", description="only items that end with this text")
    contains: str = Field("", description="only items that contain this text")
    min_len: int | None = Field(None, description="items of at least this many characters")
    max_len: int | None = Field(None, description="items of at most this many characters")
    unique: bool = Field(False, description="no item twice in the answer")
    label: str | None = Field(None, description="a labelled model: items of this label (default: each item's label "
                                                "drawn from the labels' frequencies in the training data)")
    seed: int | None = Field(None, description="same seed, same items (default: a random one, returned with the items)")


class ScoreRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    model: str | None = Field(None, description="a name from /api/models (default: the first)")
    texts: list[str] = Field(description="items to score (1 to 100)")
    label: str | None = Field(None, description="a labelled model: score given this label (default: under any label, "
                                                "weighted by the labels' frequencies)")
    explain: bool = Field(True, description="also give each position's probability, rank and top alternatives")
    top: int = Field(5, description="alternatives per position (1 to 10)")


def source_name(source: str) -> str:
    """The data's name for the card: a built-in's name or the file's name, never a server path."""
    return source if source in BUILTIN else Path(source).name


def curve(records: list[dict], points: int = 200) -> list[dict]:
    """The loss curve from metrics.jsonl, thinned to at most `points` evaluations (the last kept)."""
    rows = [{"step": r["step"], "train": r.get("train_loss"), "val": r.get("val_loss")} for r in records if "step" in r]
    if len(rows) > points:
        stride = math.ceil(len(rows) / points)
        rows = rows[::stride] + ([rows[-1]] if (len(rows) - 1) % stride else [])
    return rows


def card(name: str, run: Run) -> dict:
    cfg = run.config
    data = cfg.get("data", {})
    try:
        summary = run.dir.read_summary() or {}  # none: training never finished, a card without NLLs
    except RunError:  # a damaged summary.json (checkpoint.read_json: a regular file of bounded size) gives no NLLs either
        summary = {}
    return {
        "name": name,
        "model": cfg["model"],
        "params": cfg.get("params", run.model.num_params()),
        "vocab": "".join(run.config["vocab"]),
        "labels": run.labels,
        "label_counts": data.get("label_counts") or {},
        "max_len": run.model_config.max_len,
        "data": {
            "source": source_name(data.get("source", "?")),
            "items": data.get("items"),
            "split": {s: v.get("items") for s, v in data.get("split", {}).items()},
        },
        "steps": summary.get("step"),
        "nll": {s: summary[s]["nll"] for s in ("train", "val", "test") if s in summary},
        "curve": curve(run.dir.read_metrics()),
    }


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def host_name(value: str) -> str | None:
    """The name in a Host header (or an --allowed-host), lower case, without its port or a final
    dot, an IPv6 address in brackets and compressed; None if it is not a host[:port] at all."""
    value = value.strip().lower()
    if value.startswith("[") or value.count(":") > 1:  # IPv6: [::1] or [::1]:8000 (bare ::1 only as --allowed-host)
        address, bracket, rest = value[1:].partition("]") if value.startswith("[") else (value, "]", "")
        if not bracket:
            return None
        try:
            name = f"[{ipaddress.IPv6Address(address).compressed}]"
        except ValueError:
            return None
    else:
        name, colon, port = value.partition(":")
        name, rest = name.removesuffix("."), colon + port
        if not name or not name.isascii() or not all(c.isalnum() or c in "-._" for c in name):
            return None
    if rest and not (rest[0] == ":" and rest[1:].isdigit()):
        return None
    return name


def is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class AllowedHosts:
    """The Host headers the server answers. A page on another site can reach a server on this
    machine through DNS rebinding (its own name, made to resolve to 127.0.0.1), and then reads
    what the server answers; its requests carry that name, so a server that answers only its
    own names stops it. The port is not compared: rebinding changes the name, not the port."""

    names: frozenset[str]
    addresses: bool = False  # any IP address: a server on every interface (an address is never rebound)
    anything: bool = False  # --allowed-host '*': no check (behind a proxy that checks the host itself)

    @classmethod
    def of(cls, host: str, address: str, extra: list[str] = ()) -> "AllowedHosts":
        """For a server started with --host `host`, listening on `address`, plus the `extra`
        names (--allowed-host; '*' for any). A loopback address answers localhost, 127.0.0.1 and
        [::1]; another address that address (and the --host name it was given as); 0.0.0.0 or ::
        (every interface) any IP address, the loopback names and this machine's own names
        (socket.gethostname, getfqdn): other names of it need --allowed-host."""
        names = {n for n in (host_name(host), host_name(address), *cls.given(extra)) if n and n != "*"}
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_loopback or ip.is_unspecified:
            names.update(LOOPBACK_NAMES)
        if ip.is_unspecified:
            names.update(n for n in (host_name(socket.gethostname()), host_name(socket.getfqdn())) if n)
        return cls(frozenset(names), ip.is_unspecified, "*" in cls.given(extra))

    @staticmethod
    def given(extra: list[str]) -> list[str]:
        """The --allowed-host values as names ('*' kept), or one line about the first that is not one."""
        names = []
        for value in extra:
            name = "*" if value.strip() == "*" else host_name(value)
            if name is None:
                raise MakemoreError(f"--allowed-host {value!r} is not a host name or address; give one such as "
                                    "example.com, 192.168.1.5 or '*' (any host)")
            names.append(name)
        return names

    def allows(self, header: str) -> bool:
        name = host_name(header)
        return self.anything or (name is not None and (name in self.names or (self.addresses and is_address(name))))

    def __str__(self) -> str:
        shown = [n for n in LOOPBACK_NAMES if n in self.names] + sorted(self.names - set(LOOPBACK_NAMES))
        return ", ".join(shown) + (" or any IP address" if self.addresses else "")


LOCAL = AllowedHosts(frozenset(LOOPBACK_NAMES))  # a server on 127.0.0.1


class HostCheck:
    """ASGI middleware: a request whose Host header is not one the server answers gets a 421 (no
    Host at all: a 400) before anything else reads it."""

    def __init__(self, app, hosts: AllowedHosts):
        self.app, self.hosts = app, hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.hosts.anything:
            return await self.app(scope, receive, send)
        values = [v for k, v in scope["headers"] if k == b"host"]
        if len(values) != 1:
            response = error(400, f"send one Host header naming this server ({self.hosts})")
        elif not self.hosts.allows(values[0].decode("latin-1")):
            shown = values[0].decode("latin-1")
            shown = shown if len(shown) <= 100 else shown[:100] + "..."
            response = error(421, f"this server answers to {self.hosts}, not to Host {shown!r}; open it by one of those "
                                  "names, or start it with --allowed-host NAME")
        else:
            return await self.app(scope, receive, send)
        await response(scope, receive, send)


def create_app(runs: dict[str, Run], limits: Limits = Limits(), hosts: AllowedHosts = LOCAL) -> FastAPI:
    """The app over already loaded runs, keyed by the names requests use, answering requests
    addressed to `hosts` (default: this machine's loopback names)."""
    if not runs:
        raise MakemoreError("makemore serve needs at least one run directory")
    page = resources.files("makemore").joinpath("static/index.html").read_text(encoding="utf-8")
    cards = {name: card(name, run) for name, run in runs.items()}
    novel_error = {}  # runs whose training data cannot be read cannot check novelty
    for name, run in runs.items():
        try:
            run.training_items()
        except MakemoreError:  # the data file is gone or changed
            novel_error[name] = (f"model {name!r} cannot check novelty: the data it was trained on "
                                 f"({cards[name]['data']['source']}) is missing or has changed; ask without novel")
    workers = anyio.CapacityLimiter(limits.workers)
    big_lane = anyio.CapacityLimiter(max(1, limits.workers - 1))

    app = FastAPI(title="makemore", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json",
                  description="Generate and score items with makemore's character-level models.")
    app.add_middleware(BodyLimit, limit=limits.max_body, seconds=limits.read_timeout)
    app.add_middleware(HostCheck, hosts=hosts)  # added last, so it runs first: before the body is read

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

    def pick(name: str | None) -> tuple[str, Run]:
        if name is None:
            name = next(iter(runs))
        if name not in runs:  # a key into the loaded runs, never a path
            raise ApiError(422, f"unknown model {name!r}; choose one of: {', '.join(runs)}")
        return name, runs[name]

    def timed(fn):  # the time limit starts when a worker takes the request, not while it waits for one
        def run():
            with time_limit(limits.time_limit):
                return fn()
        return run

    async def infer(fn, draws: int = 0):
        if draws > limits.big_draws:
            async with big_lane:
                return await anyio.to_thread.run_sync(timed(fn), limiter=workers)
        return await anyio.to_thread.run_sync(timed(fn), limiter=workers)

    def check_pairs(name: str, run: Run, items: int, label: str | None) -> None:
        """Scoring without a label scores each item under every label: refuse more than max_pairs."""
        labels = len(run.labels) if label is None and run.labels else 1
        if items * labels > limits.max_pairs:
            most = max(1, limits.max_pairs // labels)
            raise ApiError(422, f"scoring {items:,} items under each of the {labels:,} labels of model {name!r} is "
                                f"{items * labels:,} item-label pairs, over the {limits.max_pairs:,} one request may ask for; "
                                f"ask for at most {most:,} items per request, or give a label")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return HTMLResponse(page)

    @app.get("/api/health", summary="Is the server up, and which models does it serve")
    async def health():
        return {"status": "ok", "version": __version__, "models": list(runs)}

    @app.get("/api/models", summary="Every model with its card: data, size, NLL and loss curve")
    async def models():
        return JSONResponse({"models": [{**c, "novel": name not in novel_error} for name, c in cards.items()]})

    @app.post("/api/sample", summary="Generate items, each with its NLL per character")
    async def sample(req: SampleRequest):
        name, run = pick(req.model)
        if req.n > limits.max_n:
            raise ApiError(422, f"n must be at most {limits.max_n} per request (got {req.n})")
        options = req.model_dump(exclude={"model"})  # SampleConfig's and Run.sample's names (exclude, a file, is not offered)
        SampleConfig(**options)  # OptionError: a 422
        if req.label is not None:
            run.vocab.label_token(req.label)  # an unknown label, or a label for an unlabelled model
        if req.novel and name in novel_error:
            raise ApiError(422, novel_error[name])
        run.vocab.encode(req.prefix)  # unknown characters: the CLI's message, before any work
        options["seed"] = seed = random.randrange(2**63) if req.seed is None else req.seed  # as Run.sample would; returned, to repeat
        filtered = req.novel or req.suffix or req.contains or req.unique  # items are drawn until enough pass
        check_pairs(name, run, req.n, req.label)

        def work():
            warning = None
            try:
                items = run.sample(**options)
            except NotEnough as e:
                items, warning = e.found, str(e)
            # given the label asked for; without one, under any label (what /api/score gives)
            nll = [s.nll for s in run.score(items, req.label)] if items else []
            return items, nll, warning

        start = time.perf_counter()
        items, nll, warning = await infer(work, draws=max(256, 2 * req.n) if filtered else req.n)
        body = {"model": name, "seed": seed, "items": [{"text": t, "nll": v, "nll_per_char": v / (len(t) + 1), "chars": len(t) + 1}
                                         for t, v in zip(items, nll)],
                "seconds": round(time.perf_counter() - start, 4)}
        if warning:
            body["warning"] = warning
        return JSONResponse(body)

    @app.post("/api/score", summary="NLL of each item and, per character, how surprised the model was")
    async def score(req: ScoreRequest):
        name, run = pick(req.model)
        if not 1 <= len(req.texts) <= limits.max_texts:
            raise ApiError(422, f"texts must hold 1 to {limits.max_texts} items (got {len(req.texts)})")
        if not 1 <= req.top <= limits.max_top:
            raise ApiError(422, f"top must be between 1 and {limits.max_top} (got {req.top})")
        too_long = [t.strip() for t in req.texts if len(t.strip()) > run.model_config.max_len]
        if too_long:
            raise ApiError(422, f"an item has {len(too_long[0])} characters; this model takes items of at most "
                                f"{run.model_config.max_len} (the longest in its training data); leave longer items out")

        if req.label is not None:
            run.vocab.label_token(req.label)
        check_pairs(name, run, len(req.texts), req.label)

        def work():
            scores = run.score(req.texts, req.label)
            explained = None
            if req.explain:
                labels = None if req.label is None else [req.label] * len(req.texts)
                prior = run.label_prior() if run.labels and req.label is None else None
                explained = explain_many(run.model, run.vocab, req.texts, req.top, labels, prior)
            return scores, explained

        scores, explained = await infer(work, draws=len(req.texts))
        out = []
        for i, s in enumerate(scores):
            item = s.to_dict()
            if explained is not None:
                item["positions"] = [p.to_dict() for p in explained[i]]
            out.append(item)
        return JSONResponse({"model": name, "scores": out})

    return app


def validation_error(errors) -> JSONResponse:
    """FastAPI's validation errors in our shape: the first problem, on one line."""
    first = errors[0] if errors else {"type": "", "loc": (), "msg": "invalid request"}
    if first["type"] == "json_invalid":
        return error(400, "the request body is not valid JSON; send a JSON object")
    where = ".".join(str(x) for x in first["loc"][1:]) if first["loc"][:1] == ("body",) else ".".join(map(str, first["loc"]))
    if first["type"] == "extra_forbidden":
        return error(422, f"unknown field {where!r}; see /api/openapi.json")
    if not where and (first["type"] == "missing" or isinstance(first.get("input"), bytes)):
        return error(422, "send the request body as a JSON object, with Content-Type: application/json")
    msg = first["msg"] + (f", got {type(first['input']).__name__}" if first["type"].endswith("_type") else "")
    return error(422, f"{where or 'body'}: {msg}")


class BodyLimit:
    """ASGI middleware: read the whole request body first; one over `limit` bytes gets a 413
    before the app sees it (whether it says its length or streams it in chunks), and one that
    has not all arrived within `seconds` a 408, and the connection is closed."""

    def __init__(self, app, limit: int, seconds: float):
        self.app, self.limit, self.seconds = app, limit, seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await self.too_large(scope, receive, send)
        chunks, size, more = [], 0, True
        with anyio.move_on_after(self.seconds):
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.limit:
                    return await self.too_large(scope, receive, send)
                chunks.append(chunk)
                more = message.get("more_body", False)
        if more:
            return await closing(error(408, f"the request body did not arrive within {self.seconds:g} s; "
                                            "send it whole, at once"))(scope, receive, send)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def too_large(self, scope, receive, send):
        await closing(error(413, f"the request body is over {self.limit:,} bytes; send fewer or shorter items"))(scope, receive, send)


def closing(response: JSONResponse) -> JSONResponse:
    """The response, and the connection closed after it: the rest of the body is never read."""
    response.headers["connection"] = "close"
    return response


class HeadTimeout:
    """Mixed into uvicorn's HTTP protocol, of which there is one per connection. uvicorn waits for
    a request's head (its request line and headers) as long as the client likes, so clients that
    send half a head and stall would hold connections open for good. Here the head must arrive
    within `seconds` of the connection opening or of the previous response on it; the body is
    BodyLimit's. A connection that sent part of a head by then is answered 408 and closed, one
    that sent nothing is closed (as uvicorn's keep-alive timeout closes idle ones)."""

    seconds = 10.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.head_timer, self.head_started = None, False
        app = self.app  # called once a head has arrived, for each request

        async def watched(scope, receive, send):
            self.stop_head_timer()

            async def sent(message):
                await send(message)
                if message["type"] == "http.response.body" and not message.get("more_body", False):
                    self.start_head_timer()  # the next request on this connection

            await app(scope, receive, sent)

        self.app = watched

    def connection_made(self, transport):
        super().connection_made(transport)
        self.start_head_timer()

    def data_received(self, data):
        self.head_started = self.head_started or self.head_timer is not None
        super().data_received(data)

    def connection_lost(self, exc):
        self.stop_head_timer()
        super().connection_lost(exc)

    def start_head_timer(self):
        self.stop_head_timer()
        self.head_timer, self.head_started = self.loop.call_later(self.seconds, self.head_timed_out), False

    def stop_head_timer(self):
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def head_timed_out(self):
        self.head_timer = None
        if self.transport.is_closing():
            return
        if self.head_started:
            body = json.dumps({"error": f"the request's headers did not arrive within {self.seconds:g} s; "
                                        "send the whole request at once"}).encode()
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
        self.transport.close()


def server(app, limits: Limits = Limits(), log_level: str = "info") -> uvicorn.Server:
    """uvicorn serving `app`, with the head timeout of `limits` (call .run(sockets=[...]))."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol  # h11, or httptools where installed

    protocol = type("Protocol", (HeadTimeout, AutoHTTPProtocol), {"seconds": limits.read_timeout})
    return uvicorn.Server(uvicorn.Config(app, http=protocol, log_level=log_level, timeout_graceful_shutdown=5))


def run_names(paths: list[str]) -> list[str]:
    """Each run's name on the page: its directory's name, with -2, -3, ... for repeats."""
    names = []
    for p in paths:
        base = Path(p).resolve().name or "run"
        name, k = base, 1
        while name in names:
            k += 1
            name = f"{base}-{k}"
        names.append(name)
    return names


def listen(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise MakemoreError(f"--port must be between 0 and 65535 (got {port}); 0 picks a free port")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        raise MakemoreError(f"cannot listen on {host}:{port} ({e.strerror or e}); pick another --port or --host") from None
    sock.listen(2048)
    return sock


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def load_runs(paths: list[str], device: str = "auto", log=print) -> dict[str, Run]:
    """The runs by the names requests use; with no path, the model bundled with makemore."""
    if not paths:
        run = load_pretrained(device=device)
        log(f"makemore: no run given, so serving the bundled model ({run.config['model']} trained on "
            f"{run.config['data']['source']}); pass run directories to serve your own")
        return {run_names([PRETRAINED])[0]: run}
    return {name: load(p, device=device) for name, p in zip(run_names(paths), paths)}


def serve(paths: list[str], host: str = "127.0.0.1", port: int = 8000, device: str = "auto",
          limits: Limits = Limits(), log_level: str = "info", allowed_hosts: list[str] = ()) -> None:
    """Load the runs (or the bundled model), then serve them until Ctrl-C, answering requests
    addressed to the names of `host` and `allowed_hosts` (AllowedHosts.of)."""
    torch.set_num_threads(1)  # see Limits.workers
    AllowedHosts.given(allowed_hosts)  # a bad --allowed-host: one line before the runs load
    runs = load_runs(paths, device, log=lambda message: print(message, file=sys.stderr))
    sock = listen(host, port)
    app = create_app(runs, limits, AllowedHosts.of(host, sock.getsockname()[0], allowed_hosts))
    print(f"makemore: serving {', '.join(runs)} at {url(sock)}  (Ctrl-C stops)", flush=True)
    server(app, limits, log_level).run(sockets=[sock])
