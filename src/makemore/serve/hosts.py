"""Which Host headers the server answers (DNS rebinding), and the middleware that checks them."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from ..errors import MakemoreError
from .bodies import error


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
