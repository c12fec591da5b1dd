"""makemore serve against hostile requests (issue 19): other sites' names in the Host header (DNS
rebinding), requests whose work nothing bounded (thousands of labels, long inference), and
clients that send half a request and stall. The real server is started on 127.0.0.1 only."""

import json
import socket
import time
import warnings
from contextlib import contextmanager

import pytest

pytest.importorskip("fastapi", reason="makemore serve needs the serve extra: pip install 'makemore[serve]'")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx (in the test extra)")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

import makemore  # noqa: E402
from conftest import real_server as served  # noqa: E402
from makemore.data import resolve_data  # noqa: E402
from makemore.errors import MakemoreError  # noqa: E402
from makemore.serve import AllowedHosts, Limits, create_app, host_name, listen, server  # noqa: E402

QUIET = dict(quiet=True, log=lambda m: None)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A counted bigram on 300 names, and one on the same names with 300 labels (a label each)."""
    root = tmp_path_factory.mktemp("hostile")
    names = resolve_data("names").read_text(encoding="utf-8").splitlines()[:300]
    (root / "small.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    (root / "many.txt").write_text("".join(f"{name}\tL{i}\n" for i, name in enumerate(names)), encoding="utf-8")
    makemore.train(data=str(root / "small.txt"), model="bigram", out=root / "bigram", **QUIET)
    makemore.train(data=str(root / "many.txt"), model="bigram", out=root / "many", **QUIET)
    return {name: makemore.load(root / name, device="cpu") for name in ("bigram", "many")}


def one_line_error(r, status, message=""):
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == ["error"] and body["error"] and "\n" not in body["error"]
    assert message in body["error"], body["error"]
    return body["error"]


# ---- Host: only the server's own names ----

@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "LOCALHOST:8000", "localhost.", "127.0.0.1",
                                  "127.0.0.1:1234", "[::1]", "[::1]:8000", "[0:0:0:0:0:0:0:1]:80"])
def test_the_loopback_names_are_answered_with_or_without_a_port(runs, host):
    client = TestClient(create_app(runs))
    assert client.get("/api/health", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8000", "localhost.attacker.example",
                                  "127.0.0.1.nip.io:8000", "0.0.0.0:8000", "192.168.1.5", "[::2]", "testserver",
                                  "localhost:80:80", "localhost:x", "local host", "", "[::1", "x" * 300])
def test_other_hosts_get_a_421_on_every_path(runs, host):
    client = TestClient(create_app(runs))
    for method, path in (("GET", "/"), ("GET", "/api/models"), ("POST", "/api/sample")):
        r = client.request(method, path, headers={"Host": host}, json={"n": 1} if method == "POST" else None)
        message = one_line_error(r, 421, "this server answers to localhost, 127.0.0.1, [::1], not to Host ")
        assert message.endswith("open it by one of those names, or start it with --allowed-host NAME")
        assert len(message) < 300  # a long Host is cut, not echoed whole


def test_allowed_host_adds_names_and_star_allows_any(runs):
    app = create_app(runs, hosts=AllowedHosts.of("127.0.0.1", "127.0.0.1", ["makemore.lan", "10.0.0.7"]))
    client = TestClient(app)
    assert [client.get("/api/health", headers={"Host": h}).status_code
            for h in ("makemore.lan:8000", "MAKEMORE.LAN", "10.0.0.7", "localhost", "other.lan", "10.0.0.8")] == [200] * 4 + [421] * 2
    anything = TestClient(create_app(runs, hosts=AllowedHosts.of("127.0.0.1", "127.0.0.1", ["*"])))
    assert anything.get("/api/health", headers={"Host": "whatever.example"}).status_code == 200


def test_the_names_each_kind_of_bind_answers(monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "box")
    monkeypatch.setattr(socket, "getfqdn", lambda: "box.home.arpa")
    loopback = AllowedHosts.of("localhost", "::1")
    assert loopback.names == {"localhost", "127.0.0.1", "[::1]"} and not loopback.addresses
    specific = AllowedHosts.of("192.168.1.5", "192.168.1.5")
    assert specific.names == {"192.168.1.5"} and not specific.allows("localhost") and not specific.allows("192.168.1.6")
    named = AllowedHosts.of("box.lan", "192.168.1.5")
    assert named.names == {"box.lan", "192.168.1.5"}
    every = AllowedHosts.of("0.0.0.0", "0.0.0.0")
    assert {"localhost", "127.0.0.1", "[::1]", "box", "box.home.arpa"} <= every.names
    # on every interface any IP address is answered (DNS rebinding needs a name), and no other name
    assert every.allows("192.168.1.5:8000") and every.allows("[fe80::1]") and every.allows("box.home.arpa:8000")
    assert not every.allows("attacker.example") and not every.allows("box.attacker.example")
    assert str(every).endswith(" or any IP address")
    assert AllowedHosts.of("::", "::").addresses


@pytest.mark.parametrize("given", ["a b", "http://x.example", "x.example/", "[::1", "x.example:port", "ünï.example", ""])
def test_a_bad_allowed_host_is_one_line(given):
    with pytest.raises(MakemoreError, match="--allowed-host .* is not a host name or address; give one such as"):
        AllowedHosts.given([given])


def test_host_names_are_read_as_a_browser_writes_them():
    assert [host_name(h) for h in ("Example.COM:8000", "example.com.", "[::1]:8000", "::1", "127.0.0.1:80")] == [
        "example.com", "example.com", "[::1]", "[::1]", "127.0.0.1"]
    assert [host_name(h) for h in ("example.com:", "example.com:8o", "[::1]8000", "a@b", "a/b", "")] == [None] * 6


def test_serve_refuses_a_bad_allowed_host_and_time_limit_in_one_line(run_cli, runs):
    status, _, err = run_cli("serve", runs["bigram"].path, "--allowed-host", "a b")
    assert status == 2 and err.count("\n") == 1 and "--allowed-host 'a b' is not a host name or address" in err
    for bad in ("0", "-1", "nan", "inf"):
        status, _, err = run_cli("serve", runs["bigram"].path, "--time-limit", bad)
        assert status == 2 and err.count("\n") == 1 and "--time-limit must be a number of seconds above 0" in err


# ---- the cost of one request: items x labels, and a time limit ----

def test_items_times_labels_is_bounded_per_request(runs):
    client = TestClient(create_app(runs, Limits(max_pairs=1000)), base_url="http://localhost")
    message = one_line_error(client.post("/api/score", json={"model": "many", "texts": ["emma"] * 4}), 422,
                             "scoring 4 items under each of the 300 labels of model 'many' is 1,200 item-label pairs, over the "
                             "1,000 one request may ask for; ask for at most 3 items per request, or give a label")
    assert message
    ok = client.post("/api/score", json={"model": "many", "texts": ["emma"] * 3})
    assert ok.status_code == 200 and len(ok.json()["scores"]) == 3
    assert client.post("/api/score", json={"model": "many", "texts": ["emma"] * 4, "label": "L0"}).status_code == 200
    # a sample without a label scores what it drew under every label too
    one_line_error(client.post("/api/sample", json={"model": "many", "n": 4}), 422, "1,200 item-label pairs")
    assert len(client.post("/api/sample", json={"model": "many", "n": 4, "label": "L7"}).json()["items"]) == 4
    assert len(client.post("/api/sample", json={"model": "bigram", "n": 1000}).json()["items"]) == 1000  # no labels: n


def test_a_request_over_the_time_limit_is_a_503_and_frees_its_worker(runs, ticking_clock, count_calls):
    app = create_app(runs, Limits(workers=1, time_limit=5, max_pairs=10_000))
    client = TestClient(app, base_url="http://localhost")
    steps = count_calls(runs["bigram"].model, "step")
    with ticking_clock():
        r = client.post("/api/sample", json={"model": "bigram", "n": 1000, "suffix": "zzq", "seed": 0})
        one_line_error(r, 503, "the request needed more than 5 s of computing and was stopped; ask for fewer items")
        assert len(steps) == 5  # the start token's step and four more: stopped, not run through its 50,000 draws
        r = client.post("/api/score", json={"model": "many", "texts": ["emma"] * 30, "explain": False})
        one_line_error(r, 503, "needed more than 5 s")
    # the one worker is free again: the next request is answered
    assert client.post("/api/score", json={"model": "many", "texts": ["emma"]}).status_code == 200


# ---- the real server: Host, and half-sent requests ----

@contextmanager
def real_server(runs, limits: Limits):
    with served(runs, limits) as sock:
        yield sock.getsockname()[1]


def until_closed(conn: socket.socket, limit: float = 20.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed (seconds
    from now); fails if it keeps the connection open past `limit`."""
    start, got = time.monotonic(), b""
    conn.settimeout(limit)
    while True:
        try:
            chunk = conn.recv(65536)
        except socket.timeout:
            raise AssertionError(f"the server kept the connection open for {limit} s") from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return got, time.monotonic() - start
        got += chunk


def exchange(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        conn.sendall(raw)
        return until_closed(conn)[0]


def json_body(response: bytes) -> dict:
    head, _, body = response.partition(b"\r\n\r\n")
    return json.loads(body)


def test_the_real_server_refuses_a_rebound_name_and_answers_its_own(runs):
    with real_server(runs, Limits()) as port:
        refused = exchange(port, f"GET / HTTP/1.1\r\nHost: attacker.example:{port}\r\nConnection: close\r\n\r\n".encode())
        assert refused.startswith(b"HTTP/1.1 421 ") and "not to Host 'attacker.example:" in json_body(refused)["error"]
        page = exchange(port, f"GET / HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n".encode())
        assert page.startswith(b"HTTP/1.1 200 ") and b"<title>makemore</title>" in page
        nameless = exchange(port, b"GET /api/health HTTP/1.0\r\n\r\n")  # HTTP/1.0 needs no Host: asked for
        assert nameless.startswith(b"HTTP/1.1 400 ") and json_body(nameless)["error"].startswith("send one Host header")


HEAD = b"POST /api/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
BODY = b'{"model": "bigram", "texts": ["emma"], "explain": false}'


def test_half_sent_requests_are_answered_408_and_closed_within_the_read_timeout(runs):
    bound = 0.5
    with real_server(runs, Limits(read_timeout=bound)) as port:
        # half a head
        with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
            conn.sendall(b"POST /api/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")
            got, seconds = until_closed(conn)
        assert got.startswith(b"HTTP/1.1 408 ") and bound * 0.9 <= seconds
        assert json_body(got) == {"error": "the request's headers did not arrive within 0.5 s; send the whole request at once"}
        # the whole head, part of the body
        with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
            conn.sendall(HEAD % len(BODY) + BODY[:10])
            got, seconds = until_closed(conn)
        assert got.startswith(b"HTTP/1.1 408 ") and bound * 0.9 <= seconds
        assert json_body(got) == {"error": "the request body did not arrive within 0.5 s; send it whole, at once"}
        # nothing at all: closed without an answer
        with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
            got, seconds = until_closed(conn)
        assert got == b"" and bound * 0.9 <= seconds
        # a whole request is answered, and the connection is kept; half of a second one is timed out again
        with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
            conn.sendall(HEAD % len(BODY) + BODY)
            first = b""
            while b'"scores"' not in first or not first.endswith(b"}"):
                first += conn.recv(65536)
            assert first.startswith(b"HTTP/1.1 200 ")
            conn.sendall(b"GET /api/health HTTP/1.1\r\nHo")
            got, seconds = until_closed(conn)
        assert got.startswith(b"HTTP/1.1 408 ") and bound * 0.9 <= seconds


def test_a_request_sent_in_pieces_within_the_read_timeout_is_answered(runs):
    with real_server(runs, Limits(read_timeout=5)) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
            raw = HEAD % len(BODY) + BODY
            for i in range(0, len(raw), 40):
                conn.sendall(raw[i : i + 40])
                time.sleep(0.02)
            conn.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            got, _ = until_closed(conn)
    assert got.startswith(b"HTTP/1.1 200 ") and got.count(b"HTTP/1.1 200 ") == 2 and b'"nll"' in got


def test_a_body_over_the_limit_is_refused_and_its_connection_closed_without_reading_the_rest(runs):
    with real_server(runs, Limits(read_timeout=60)) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
            conn.sendall(HEAD % 1_000_000 + b"x" * 1000)  # says a megabyte is coming, sends a kilobyte
            got, seconds = until_closed(conn)
    assert got.startswith(b"HTTP/1.1 413 ") and json_body(got)["error"].startswith("the request body is over 65,536 bytes")
    assert seconds < 30  # closed after the answer, not left for the 60-s read timeout
