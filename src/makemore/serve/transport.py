"""The server under the app: uvicorn, the socket, and the bounds on how a request arrives (its body's
size, the time its head and body take)."""

from __future__ import annotations

import json
import socket

import anyio
import uvicorn
from fastapi.responses import JSONResponse

from ..errors import MakemoreError
from .bodies import error
from .limits import Limits


class BodyLimit:
    """ASGI middleware: read the whole request body first; one over `limit` bytes gets a 413
    before the app sees it (whether it says its length or streams it in chunks), and one that
    has not all arrived within `seconds` a 408, and the connection is closed."""

    def __init__(self, app, limit, seconds: float):
        self.app, self.seconds = app, seconds
        self.limit_of = limit if callable(limit) else (lambda path: limit)  # bytes for a request's path

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_of(scope.get("path", ""))
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await self.too_large(scope, receive, send, limit)
        chunks, size, more = [], 0, True
        with anyio.move_on_after(self.seconds):
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    return await self.too_large(scope, receive, send, limit)
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

    async def too_large(self, scope, receive, send, limit: int):
        await closing(error(413, f"the request body is over {limit:,} bytes; send fewer or shorter items"))(scope, receive, send)


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
