"""The egress policy: where the hub and its hosting nodes may connect on someone's behalf.

Every outbound connection made for a caller goes through it: A2A cards and calls (``services/a2a_bridge.py``), MCP
upstreams (``agora/gateway``), push-notification webhooks (``services/a2a_push.py``) and listing repositories (the
hosting node's ``git clone``). For a caller who is not the admin it refuses every address that is not globally
reachable: loopback, private (RFC 1918, fc00::/7), link-local (169.254/16 with the cloud metadata address,
fe80::/10), CGNAT (100.64/10), multicast, unspecified, reserved and documentation ranges, and the IPv6 forms that
carry such an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo). The operator widens it with an allowlist (networks or
host names every caller may reach) and narrows it with a denylist, which binds the admin too.

The check is made where the connection is made: the host is resolved here, the addresses the policy refuses are
dropped and the connection goes to one that was checked (TLS still verifies the URL's host name). A name that
resolves elsewhere a moment later (DNS rebinding) gains nothing, and neither does a redirect: every connection of
a redirected request is checked again. What was refused, and why, goes to the log (info), never to the caller.
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import anyio
import httpx
import idna

from agora_sdk.tls import tls_context
from agora_sdk.wire.common import redact_url

log = logging.getLogger("agora.egress")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

RESOLVE_TIMEOUT = 10.0  # seconds a look-up may take when a URL is checked before it is stored
HTTP_PORTS = {"http": 80, "https": 443}

# Not reachable on the internet, or not meant to be reached from it. ``is_global`` covers most of these on recent
# Pythons; the list makes the policy the same on every one (3.11's misses multicast, ::/96 and site-local).
_NOT_GLOBAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
        "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
        "224.0.0.0/4", "240.0.0.0/4",
        "::/96", "64:ff9b:1::/48", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
)  # fmt: skip
# IPv6 ranges whose last 32 bits are an IPv4 address a gateway translates to (NAT64, SIIT).
_CARRY_IPV4 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::ffff:0:0:0/96"))
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_NAME_RULE = re.compile(r"^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$")


class EgressRefused(Exception):
    """A destination this caller may not reach (or that does not resolve): said in the log, never to the caller."""


def literal_address(host: str) -> Address | None:
    """The IP address ``host`` spells literally (``[::1]`` too), or None for a name."""
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def _forms(address: Address) -> list[Address]:
    """The address and the IPv4 addresses it carries, each of which must pass (an IPv4-mapped one is only that)."""
    if isinstance(address, ipaddress.IPv4Address):
        return [address]
    address = ipaddress.IPv6Address(int(address))  # without a scope id
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    forms: list[Address] = [address]
    if any(address in net for net in _CARRY_IPV4):
        forms.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        forms.append(address.sixtofour)
    if address.teredo is not None:
        forms.extend(address.teredo)
    return forms


def _global(address: Address) -> bool:
    return address.is_global and not any(address in net for net in _NOT_GLOBAL)


def _host_name(host: str) -> str:
    return host.lower().removesuffix(".")


@dataclass(frozen=True)
class Rules:
    """Networks (CIDR) and host names; a name rule ``*.example.com`` matches every name under example.com."""

    networks: tuple[Network, ...] = ()
    names: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Rules:
        """From flag values: each a CIDR, an address or a host name; several may share one value, comma-separated."""
        networks: list[Network] = []
        names: list[str] = []
        for entry in (part.strip().lower() for value in entries for part in value.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.removeprefix("[").removesuffix("]"), strict=False))
                continue
            except ValueError:
                pass  # not a network or an address: it must be a host name
            if not _NAME_RULE.match(entry):
                raise ValueError(f"{entry!r} is neither a network (CIDR), an address nor a host name")
            names.append(_host_name(entry))
        return cls(tuple(networks), tuple(names))

    def match(self, host: str, forms: list[Address]) -> bool:
        name = _host_name(host)
        named = any(name == rule or (rule.startswith("*.") and name.endswith(rule[1:])) for rule in self.names)
        return named or any(form in net for form in forms for net in self.networks)


@dataclass(frozen=True)
class EgressPolicy:
    """The operator's settings (``--egress-allow``, ``--egress-deny``, ``--egress-admin-exempt``)."""

    allow: Rules = field(default_factory=Rules)
    deny: Rules = field(default_factory=Rules)
    admin_exempt: bool = True

    @classmethod
    def parse(cls, allow: Iterable[str] = (), deny: Iterable[str] = (), admin_exempt: bool = True) -> EgressPolicy:
        return cls(Rules.parse(allow), Rules.parse(deny), admin_exempt)

    def acting_for(self, admin: bool) -> Egress:
        """What one caller may reach: anything but the denylist for the admin (unless not exempt), else the rules."""
        return Egress(self, unrestricted=admin and self.admin_exempt)


@dataclass(frozen=True)
class Egress:
    """The policy as it applies to one caller."""

    policy: EgressPolicy
    unrestricted: bool = False

    def permits(self, host: str, address: Address) -> bool:
        forms = _forms(address)
        if self.policy.deny.match(host, forms):
            return False
        if self.unrestricted or self.policy.allow.match(host, forms):
            return True
        return all(_global(form) for form in forms)

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` this caller may connect to, in the resolver's order; EgressRefused if none."""
        literal = literal_address(host)
        if literal is not None:
            candidates: list[Address] = [literal]
        else:
            try:
                found = await anyio.getaddrinfo(_host_name(host), port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError) as exc:
                raise EgressRefused(f"{host} does not resolve: {exc}") from None
            candidates = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found))
        permitted = [str(a) for a in candidates if self.permits(host, a)]
        if not permitted:
            shown = ", ".join(str(a) for a in candidates)
            raise EgressRefused(f"{host}:{port} is {shown}, which the egress policy does not let this caller reach")
        return permitted

    async def admits(self, url: httpx.URL) -> bool:
        """Whether ``url``'s host resolves now to an address this caller may reach: a check before a URL is stored
        (its connections are checked again when they are made). The reason for a no is logged."""
        try:
            with anyio.fail_after(RESOLVE_TIMEOUT):
                await self.addresses(url.raw_host.decode("ascii"), url.port or HTTP_PORTS[url.scheme])
        except (EgressRefused, TimeoutError) as exc:
            log.info("egress refused: %s", exc or f"looking up {url.host} timed out")
            return False
        return True

    def client(self, http: ModuleType = httpx, **options: Any) -> Any:
        """An ``httpx.AsyncClient`` (or ``httpx2``'s, for the ``mcp`` SDK) whose every connection goes through this
        policy; a refusal is the library's ConnectError, like a closed port."""
        core = importlib.import_module(http.__name__.replace("httpx", "httpcore"))
        transport = http.AsyncHTTPTransport(verify=tls_context())
        # httpx takes no network backend, but its transport hands every request to one connection pool: that pool
        # is replaced by one (same TLS settings and limits) that connects through the policy.
        transport._pool = core.AsyncConnectionPool(  # noqa: SLF001
            ssl_context=tls_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(core, self),
        )
        return http.AsyncClient(transport=transport, **options)

    async def git_options(self, url: str) -> tuple[list[str], str]:
        """``git -c`` options for cloning ``url``, and the URL to clone.

        An http(s) URL (anyone's listing) may use only http(s), to an address this caller may reach: its host is
        resolved and checked here and pinned for curl (``http.curloptResolve``), so git connects to that address and
        nowhere else (no redirects, no alternates, no proxy, no credential helper). Any other repository (a path, ssh
        or git URL) only the admin may list: every protocol but ``ext::`` (a command) is allowed for it."""
        if not url.lower().startswith(("http://", "https://")):
            return _config("protocol.allow=never", "protocol.file.allow=always", "protocol.git.allow=always", "protocol.ssh.allow=always"), url
        parsed = http_url(url)
        host, port = parsed.raw_host.decode("ascii"), parsed.port or HTTP_PORTS[parsed.scheme]
        with anyio.fail_after(RESOLVE_TIMEOUT):
            addresses = await self.addresses(host, port)
        options = ["protocol.allow=never", "protocol.http.allow=always", "protocol.https.allow=always",
                   "http.followRedirects=false", "http.proxy=", "credential.helper="]  # fmt: skip
        if literal_address(host) is None:
            name = _host_name(host)
            options.append(f"http.curloptResolve={name}:{port}:{','.join(f'[{a}]' if ':' in a else a for a in addresses)}")
            url = str(parsed.copy_with(host=name))  # the very name pinned, so curl finds the pin
        return _config(*options), url


def _config(*settings: str) -> list[str]:
    return [arg for setting in settings for arg in ("-c", setting)]


class _GuardedBackend:
    """An httpcore (or httpcore2) network backend that resolves the host itself and connects only to an address the
    policy permits. TLS is started by httpcore on the stream returned, with the URL's host name (SNI and the
    certificate check), whatever address was connected to."""

    def __init__(self, core: ModuleType, egress: Egress):
        self.core, self.egress, self.inner = core, egress, core.AnyIOBackend()

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None, socket_options: Any = None
    ) -> Any:
        try:
            with anyio.fail_after(timeout):
                failure: Exception | None = None
                for address in await self.egress.addresses(host, port):
                    try:
                        return await self.inner.connect_tcp(address, port, local_address=local_address, socket_options=socket_options)
                    except self.core.ConnectError as exc:
                        failure = exc
                assert failure is not None
                raise failure
        except TimeoutError:
            raise self.core.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except EgressRefused as exc:
            log.info("egress refused: %s", exc)
            raise self.core.ConnectError(f"could not connect to {host}:{port}") from None

    async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        raise self.core.ConnectError("a unix socket is not a destination the egress policy knows")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def http_url(value: str) -> httpx.URL:
    """``value`` as an http(s) URL whose host is an address or a well-formed host name (IDNA labels that decode,
    each at most 63 characters, 253 in all); ValueError saying what is wrong otherwise."""
    try:
        url = httpx.URL(value)
        host = url.raw_host.decode("ascii")
        url.host  # decodes the IDNA labels: a malformed A-label fails here  # noqa: B018
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    if url.scheme not in HTTP_PORTS:
        raise ValueError("must be an http:// or https:// URL")
    if not host:
        raise ValueError("has no host")
    if "%" in host:
        raise ValueError("an address with a zone (%) is not a destination")
    if literal_address(host) is None:
        name = _host_name(host)
        labels = name.split(".")
        if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
            raise ValueError(f"'{host}' is not a valid host name")
        try:
            for label in labels:
                if label.startswith("xn--"):
                    idna.decode(label)
        except idna.IDNAError as exc:
            raise ValueError(f"'{host}' is not a valid host name ({exc})") from None
    return url


def unreachable(url: str, what: str) -> str:
    """What a caller is told when ``url`` could not be reached as ``what``: the same words for a refused address, a
    name that does not resolve, a closed port, a timeout, a TLS failure or a server that is not ``what``."""
    return f"could not reach {redact_url(url)} as {what}"


def display(url: httpx.URL | str) -> str:
    """A URL for the log: scheme, host and port only (no credentials, no query)."""
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else url
        return f"{parsed.scheme}://{parsed.raw_host.decode('ascii')}{':' + str(parsed.port) if parsed.port else ''}"
    except (httpx.InvalidURL, UnicodeError, ValueError):
        return "(an invalid URL)"
