"""Where a webhook may be sent (SSRF guard).

A URL must be `https` and every address its host resolves to must be public:
no private, loopback, link-local, shared (CGNAT), multicast, reserved or
unspecified address, IPv4-mapped IPv6 included. It is checked when the endpoint
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


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            ip = mapped
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
