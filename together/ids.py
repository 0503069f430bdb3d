"""Public identifiers: opaque, URL-safe, collision-resistant, cuid-style.

24 characters of lower-case letters and digits starting with ``c``: ``c`` + the
creation time in milliseconds (base 36, 8 characters) + 15 random base-36
characters (77 bits). Clients must treat them as opaque.
"""
from __future__ import annotations

import secrets
import string
import time

ALPHABET = string.digits + string.ascii_lowercase
ID_LENGTH = 24


def _base36(n: int, width: int) -> str:
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(ALPHABET[r])
    return "".join(reversed(out)).rjust(width, "0")[-width:]


def _random_base36(length: int) -> str:
    """`length` uniformly random base-36 characters in one draw from the system's generator
    (not one call per character: ids are made by the thousand, request ids on every request)."""
    return _base36(secrets.randbelow(36 ** length), length)


def new_id() -> str:
    stamp = _base36(int(time.time() * 1000), 8)
    return f"c{stamp}{_random_base36(ID_LENGTH - 9)}"


def looks_like_id(value: str) -> bool:
    return (
        isinstance(value, str)
        and len(value) == ID_LENGTH
        and value[0] == "c"
        and all(ch in ALPHABET for ch in value)
    )


def request_id() -> str:
    return "req_" + _random_base36(24)
