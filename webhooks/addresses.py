"""Where a webhook may be sent (SSRF guard).

A URL must be `https` and every address its host resolves to must be public:
no private, loopback, link-local, shared (CGNAT), multicast, reserved or
unspecified address, in any IPv6 spelling: an IPv4 address embedded in an
IPv6 one (mapped, SIIT, NAT64 64:ff9b::/96, 6to4) is judged as IPv4, and the
IPv4-compatible, NAT64 local-use, Teredo and site-local ranges are refused.
It is checked when the endpoint
is saved and again at each delivery, where the connection is then made to the
very address that was checked (so a DNS answer that changes between the check
and the connect, DNS rebinding, cannot slip through). `WEBHOOKS_ALLOW_PRIVATE_URLS`
(development and tests) lifts both checks and allows `http`.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from django.conf import settings


class UnsafeUrl(Exception):
    """The URL may not receive webhooks; the message says why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL (the TLS server name and the Host header)
    port: int
    address: str | None  # the vetted IP to connect to; None: connect by name (private URLs allowed)
    path: str  # path and query

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def private_urls_allowed() -> bool:
    return bool(settings.WEBHOOKS_ALLOW_PRIVATE_URLS)


def parse(url: str) -> Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"The URL is not valid: {exc}.") from None
    scheme = (parts.scheme or "").lower()
    allowed = ("https", "http") if private_urls_allowed() else ("https",)
    if scheme not in allowed:
        raise UnsafeUrl("Webhook URLs must use https.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("Webhook URLs may not contain credentials.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeUrl("The URL has no host.")
    try:
        host = host.encode("idna").decode("ascii")  # the Host header and TLS name are ASCII
    except UnicodeError:
        raise UnsafeUrl("The URL's host is not a valid name.") from None
    if parts.fragment:
        raise UnsafeUrl("Webhook URLs may not contain a fragment.")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    path = quote(path, safe="/:@!$&'()*+,;=-._~%?")  # spaces, controls and non-ASCII percent-encoded
    return Target(scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80), address=None, path=path)


# IPv6 ranges refused whatever follows the prefix: their traffic goes somewhere
# local, or the embedded IPv4 address is not where a plain reading puts it.
# (Python's own tables call several of these "global" before 3.12.)
_REFUSED_V6 = [ipaddress.IPv6Network(n) for n in (
    "::/96",           # IPv4-compatible (deprecated; also :: and ::1)
    "64:ff9b:1::/48",  # NAT64 local-use prefix (RFC 8215): translated by local policy
    "2001::/32",       # Teredo: a tunnel whose client address is obfuscated IPv4
    "fec0::/10",       # site-local (deprecated, still routed internally by some networks)
    "fc00::/7",        # unique local
    "fe80::/10",       # link-local
    "100::/64",        # discard-only
    "2001:db8::/32",   # documentation
)]

# IPv6 ranges that carry an IPv4 address in their last 32 bits; the IPv4 address is judged.
_EMBEDDING_V6 = [ipaddress.IPv6Network(n) for n in (
    "::ffff:0:0/96",    # IPv4-mapped
    "::ffff:0:0:0/96",  # SIIT, IPv4-translated (RFC 2765)
    "64:ff9b::/96",     # NAT64 well-known prefix (RFC 6052): 64:ff9b::a9fe:a9fe is 169.254.169.254
)]


# IPv4 ranges refused besides what `is_global` says (its tables vary between Python versions).
_REFUSED_V4 = [ipaddress.IPv4Network(n) for n in (
    "0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.88.99.0/24", "198.18.0.0/15", "240.0.0.0/4",
)]


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a translating or tunnelling IPv6 spelling reaches, if any."""
    if any(ip in net for net in _EMBEDDING_V6):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour  # 2002::/16 (6to4): bits 16-48


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in net for net in _REFUSED_V6):
            return False
        embedded = embedded_ipv4(ip)
        if embedded is not None:
            ip = embedded
    if isinstance(ip, ipaddress.IPv4Address) and any(ip in net for net in _REFUSED_V4):
        return False
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrl(f"The host {host} does not resolve ({exc}).") from None
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        if sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    if not addresses:
        raise UnsafeUrl(f"The host {host} does not resolve.")
    return addresses


def vet(url: str) -> Target:
    """The target to connect to, or UnsafeUrl. Resolves the host unless private URLs are allowed."""
    target = parse(url)
    if private_urls_allowed():
        return target
    addresses = resolve(target.host, target.port)
    refused = [a for a in addresses if not is_public(a)]
    if refused:
        raise UnsafeUrl(
            f"The host {target.host} resolves to {refused[0]}, a private, loopback, link-local or reserved address; "
            "webhooks are only sent to public addresses."
        )
    return Target(scheme=target.scheme, host=target.host, port=target.port, address=addresses[0], path=target.path)
