"""Where webhooks may point: URL syntax, the address policy, and URLs shown masked.

One module owns the rule. The API applies it when a webhook is registered, and the
notifier applies it again each time it connects, to the very addresses it then
connects to (so a DNS answer that changes between the check and the connection,
"DNS rebinding", cannot slip through).

The policy: a webhook may reach public addresses only. Loopback, link-local,
private (RFC 1918, fc00::/7), unspecified, multicast, reserved, shared
(carrier-grade NAT, 100.64.0.0/10) and other special-purpose addresses are
refused, including their IPv4-mapped, IPv4-compatible, 6to4 and NAT64 forms,
unless ``AEROVISION_WEBHOOK_ALLOW_PRIVATE=1``. Cloud metadata addresses are
refused even then. Host names are judged by every address they resolve to: one
refused address refuses the name. Hex, octal, decimal and short IPv4 forms
(``0x7f.1``, ``017700000001``, ``2852039166``) are resolved the way the
connection would resolve them (the system's ``getaddrinfo``), so they are judged
by the address they really mean.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

MAX_URL_LENGTH = 2048
"""Longest webhook URL accepted (characters)."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean… instance metadata
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "169.254.169.253",  # AWS VPC DNS resolver
        "fd00:ec2::254",  # AWS instance metadata over IPv6
        "100.100.100.200",  # Alibaba Cloud metadata
        "168.63.129.16",  # Azure WireServer (a public address, so named here)
        "192.0.0.192",  # Oracle Cloud metadata
    )
)
"""Refused even with AEROVISION_WEBHOOK_ALLOW_PRIVATE=1: never a webhook receiver."""

_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fec0::/10")
)
_SHARED_NETWORK = ipaddress.ip_network("100.64.0.0/10")
_NAT64_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
MAPPED, NAT64 = "an IPv4-mapped", "a NAT64"


class InvalidWebhookURL(ValueError):
    """The URL cannot be a webhook's: wrong scheme, no host, control characters…"""


class AddressRefused(Exception):
    """The host is (or resolves to) an address webhooks may not reach."""

    def __init__(self, host: str, address: str | None, why: str, *, always: bool = False) -> None:
        self.host = host
        self.address = address
        self.why = why
        self.always = always
        """Refused even with AEROVISION_WEBHOOK_ALLOW_PRIVATE=1 (a metadata address)."""
        if address is None:
            text = f"{host} is {why}"
        elif _same_address(host, address):
            text = f"{host.strip('[]')} is {why}"
        else:
            text = f"{host} resolves to {address}, {why}"
        super().__init__(text)


class Unresolvable(Exception):
    """The host name does not resolve (now)."""

    def __init__(self, host: str, detail: str) -> None:
        self.host = host
        super().__init__(f"{host} does not resolve ({detail})")


def _same_address(host: str, address: str) -> bool:
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address(address)
    except ValueError:
        return False


# ------------------------------------------------------------------ URL syntax


def validate_url(url: str) -> str:
    """``url`` if it can be a webhook's URL, else :class:`InvalidWebhookURL` saying why.

    http or https, a host, a valid port, at most :data:`MAX_URL_LENGTH` characters,
    and no control character, whitespace or other invisible character anywhere
    (CR, LF, TAB, NUL, DEL, C1 controls, spaces, zero-width and bidi marks, lone
    surrogates). Only syntax: nothing is resolved or connected to.
    """
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookURL(f"url is longer than {MAX_URL_LENGTH} characters")
    for position, char in enumerate(url):
        if unicodedata.category(char)[0] in "CZ":
            raise InvalidWebhookURL(
                f"url must not contain control characters or whitespace: U+{ord(char):04X} "
                f"at position {position}"
            )
    import httpx  # the notifier's URL parser: what it refuses must be refused here

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise InvalidWebhookURL(f"url is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise InvalidWebhookURL(f"url must be an http:// or https:// URL, got {mask_url(url)!r}")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise InvalidWebhookURL(f"url is not a valid URL: port {parsed.port} is not 1–65535")
    return url


def destination(url: str) -> tuple[str, int]:
    """The host (IDNA-encoded, IPv6 without brackets) and port a URL's request goes to."""
    import httpx

    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.raw_host.decode("ascii"), port


def mask_url(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***``
    (``https://user:***@host/…``); a user name alone, often a token, is masked
    whole (``https://***@host/…``). The rest is kept as given."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority = rest[:end]
    if "@" not in authority:
        return url
    userinfo, _, hostport = authority.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    masked = f"{user}:***" if colon else "***"
    return f"{scheme}://{masked}@{hostport}{rest[end:]}"


def secrets_of(url: str) -> list[str]:
    """The parts of ``url`` that must never appear in a log line or an error text:
    its user info, password and (percent-decoded) password."""
    from urllib.parse import unquote

    _, sep, rest = url.partition("://")
    if not sep:
        return []
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority = rest[:end]
    if "@" not in authority:
        return []
    userinfo = authority.rpartition("@")[0]
    user, colon, password = userinfo.partition(":")
    found = [userinfo, password, unquote(password)] if colon else [userinfo, unquote(user)]
    return sorted({s for s in found if s}, key=len, reverse=True)


# ------------------------------------------------------------------ addresses


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address stands for, and the name of that form."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, MAPPED
    if any(address in net for net in _NAT64_NETWORKS):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), NAT64
    if address.sixtofour is not None:
        return address.sixtofour, "a 6to4"
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "an IPv4-compatible"
    return None


def why_refused(address: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why webhooks may not reach ``address`` ("a loopback address"…), or None."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner, form = embedded
            why = why_refused(inner, allow_private=allow_private)
            if why is not None:
                return f"{form} form of {inner}, {why}"
            if form in (MAPPED, NAT64):
                return None  # the IPv4 address itself, which is allowed
    if allow_private:
        return None
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if any(address in net for net in _PRIVATE_NETWORKS if net.version == address.version):
        return "a private address"
    if address in _SHARED_NETWORK:
        return "a shared (carrier-grade NAT) address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "a special-purpose address (not globally routable)"
    return None


def is_always_refused(address: IPAddress) -> bool:
    """Refused even with AEROVISION_WEBHOOK_ALLOW_PRIVATE=1."""
    return why_refused(address, allow_private=True) is not None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _is_localhost_name(host: str) -> bool:
    """``localhost`` and every ``*.localhost`` name (RFC 6761), with or without the
    final dot: loopback whatever a resolver says."""
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def judge(
    host: str, addresses: Iterable[str], *, allow_private: bool
) -> list[str]:
    """``addresses`` (what ``host`` resolved to) if every one is allowed; else
    :class:`AddressRefused` naming the first refused one."""
    allowed: list[str] = []
    for text in addresses:
        address = _literal(text)
        if address is None:  # not an IP address: refuse rather than guess
            raise AddressRefused(host, text, "not an IP address")
        why = why_refused(address, allow_private=allow_private)
        if why is not None:
            raise AddressRefused(host, str(address), why, always=is_always_refused(address))
        if text not in allowed:
            allowed.append(text)
    return allowed


def _before_lookup(host: str, *, allow_private: bool) -> list[str] | None:
    """Decide without a lookup when the host is an IP literal or a localhost name."""
    literal = _literal(host)
    if literal is not None:
        return judge(host, [str(literal)], allow_private=allow_private)
    if _is_localhost_name(host) and not allow_private:
        raise AddressRefused(host, None, "a loopback name (RFC 6761)")
    return None


def _addresses(infos: list[tuple[Any, ...]]) -> list[str]:
    return [str(info[4][0]) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]


def check_host(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Resolve ``host`` and return its addresses, all allowed, in the resolver's order;
    :class:`AddressRefused` or :class:`Unresolvable` otherwise (blocking)."""
    decided = _before_lookup(host, allow_private=allow_private)
    if decided is not None:
        return decided
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolvable(host, _gai_detail(exc)) from None
    return _judged(host, _addresses(infos), allow_private=allow_private)


Lookup = Callable[[str, int], Awaitable[list[str]]]
"""An asynchronous resolver: (host, port) → addresses, :class:`Unresolvable` if none."""


async def system_lookup(host: str, port: int) -> list[str]:
    """The system resolver's addresses for ``host`` (``getaddrinfo``, off the event loop)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolvable(host, _gai_detail(exc)) from None
    return _addresses(infos)


async def check_host_async(
    host: str, port: int, *, allow_private: bool, lookup: Lookup = system_lookup
) -> list[str]:
    """:func:`check_host` without blocking the event loop (``lookup`` resolves)."""
    decided = _before_lookup(host, allow_private=allow_private)
    if decided is not None:
        return decided
    return _judged(host, await lookup(host, port), allow_private=allow_private)


def _judged(host: str, addresses: list[str], *, allow_private: bool) -> list[str]:
    if not addresses:
        raise Unresolvable(host, "no IPv4 or IPv6 address")
    return judge(host, addresses, allow_private=allow_private)


def _gai_detail(exc: Exception) -> str:
    if isinstance(exc, socket.gaierror) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def check_url(url: str, *, allow_private: bool) -> list[str]:
    """:func:`validate_url`, then :func:`check_host` on its destination (blocking)."""
    host, port = destination(validate_url(url))
    return check_host(host, port, allow_private=allow_private)
