"""Where longhaul may send a request whose address a tenant chose (an alert webhook): public addresses
only, unless the deployment names private hosts or networks it trusts (``LONGHAUL_ALERT_PRIVATE_HOSTS``).

Without this a tenant's key could aim longhaul at what only the server can reach: the metadata service
(169.254.169.254), the Temporal port, the payment provider's admin endpoints, the API itself. So a URL is
checked where it is registered *and* where it is used: its host is resolved, every address it resolves
to must be allowed, and the connection is made to an address that was checked (no second lookup a
rebinding DNS server could answer differently). :func:`guarded_client` does that for every connection
it opens and follows no redirects; it uses no proxy (a proxy would make the checked address the proxy's).

Why not a library: the maintained SSRF guards are for ``requests`` (advocate) or fetch whole URLs
themselves; an httpcore network backend is the one place httpx lets a check see the address it connects
to, and it keeps TLS verified against the URL's own host name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class EgressRefusedError(httpcore.ConnectError):
    """The address is not one longhaul may send to. An httpcore connect error, so that httpx raises it as
    :class:`httpx.ConnectError` with this message, like any unreachable address."""


def _kind(address: Address) -> str | None:
    """What makes ``address`` off limits (None: a public address)."""
    for kind, matches in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if matches:
            return kind
    return None if address.is_global else "non-public"


@dataclass(frozen=True)
class EgressPolicy:
    """Public addresses, and the private ones the deployment allows: by host name (whatever it resolves
    to) or by network (any name that resolves into it)."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def allowing(cls, allowed: Iterable[str]) -> EgressPolicy:
        """From the setting's entries: ``alerts.internal``, ``10.0.0.7``, ``10.1.0.0/16``, ``[fd00::/8]``."""
        hosts: set[str] = set()
        networks: list[Network] = []
        for entry in allowed:
            text = entry.strip().strip("[]")
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                hosts.add(text.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def refusal(self, host: str, address: str) -> str | None:
        """Why ``host`` may not be reached at ``address`` (None: it may)."""
        if host.lower().rstrip(".") in self.hosts:
            return None
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is no part
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if any(ip in network for network in self.networks):
            return None
        kind = _kind(ip)
        if kind is None:
            return None
        shown = host if host == str(ip) else f"{host} resolves to {ip}, which"
        return (
            f"{shown} is a {kind} address: alerts go to public addresses only "
            "(a deployment allows private ones with LONGHAUL_ALERT_PRIVATE_HOSTS)"
        )

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of ``host``, each checked; refused if any one is not allowed (a name that
        resolves to a public and a private address could be made to connect to either)."""
        host = host.strip("[]")
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            raise EgressRefusedError(f"{host} does not resolve: {error}") from error
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        for address in addresses:
            if (why := self.refusal(host, address)) is not None:
                raise EgressRefusedError(why)
        return addresses

    async def check(self, url: str) -> None:
        """Refuse (:class:`EgressRefusedError`) a URL whose host may not be reached."""
        parsed = httpx.URL(url)
        await self.addresses(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80))


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy allows, to the very addresses it checked."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        error: Exception | None = None
        for address in await self.policy.addresses(host, port):
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as failed:  # the next address, as a resolver's client would
                error = failed
        raise error or EgressRefusedError(f"{host} has no address")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefusedError("no Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_client(policy: EgressPolicy) -> httpx.AsyncClient:
    """An HTTP client that connects only where ``policy`` allows, follows no redirects and ignores the
    environment's proxies."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx builds its httpcore pool without a way to pass a network backend: the same pool, with one.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False), network_backend=_GuardedBackend(policy)
    )
    return httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False)
