"""The Australian Business Number's check: 11 digits whose weighted sum, after
taking 1 from the first digit, is a multiple of 89 (the ABR's published method)."""
from __future__ import annotations

ABN_WEIGHTS = (10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19)


def abn_normalise(value: str | None) -> str:
    return "".join(ch for ch in (value or "") if not ch.isspace())


def abn_is_valid(value: str | None) -> bool:
    digits = abn_normalise(value)
    if len(digits) != 11 or not digits.isascii() or not digits.isdigit() or digits[0] == "0":
        return False
    numbers = [int(d) for d in digits]
    numbers[0] -= 1
    return sum(w * n for w, n in zip(ABN_WEIGHTS, numbers)) % 89 == 0


def abn_format(value: str | None) -> str:
    """`51824753556` → `51 824 753 556`."""
    d = abn_normalise(value)
    return f"{d[:2]} {d[2:5]} {d[5:8]} {d[8:]}" if len(d) == 11 else d
