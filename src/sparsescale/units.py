"""Parsing the quantities users type: counts like "200k", budgets like "2e18",
and n:m sparsity patterns. Pure Python, shared by the CLI, configs and specs."""

from __future__ import annotations

import math
import re
from typing import Any

from sparsescale.errors import SparsescaleError

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_NUMBER = re.compile(
    r"\s*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBgGtT]?)\s*"
)
UNSTRUCTURED_NAMES = ("unstructured", "dense", "none")


def parse_quantity(value: Any, what: str) -> float:
    """200000, "200k", "1.5M", "2e18", "3B" -> float (k=1e3, M=1e6, B/G=1e9,
    T=1e12). `what` names the flag or key in the error."""
    if isinstance(value, bool):
        raise SparsescaleError(f"{what}: expected a number like 2e7, 200k or 1.5M, got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        m = _NUMBER.fullmatch(str(value))
        if not m:
            raise SparsescaleError(
                f"{what}: {value!r} is not a number (examples: 2e7, 200k, 1.5M, 3B)"
            )
        number = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    if not math.isfinite(number):
        raise SparsescaleError(f"{what}: {value!r} is not finite")
    return number


def parse_count(value: Any, what: str) -> int:
    """A positive whole count: 200000, "200k", "0.5M", "1e6" -> int."""
    number = parse_quantity(value, what)
    if number <= 0 or abs(number - round(number)) > 1e-6 * max(1.0, number):
        raise SparsescaleError(f"{what}: expected a positive whole count like 200k, got {value!r}")
    return int(round(number))


def parse_count_or_zero(value: Any, what: str) -> int:
    """parse_count, with 0 (or "0") allowed: an amount of data to skip or to
    train dense first, where 0 means none."""
    return 0 if value in (0, "0") else parse_count(value, what)


_NM = re.compile(r"\s*(\d+)\s*:\s*(\d+)\s*([tT]?)\s*")
# Transposable masks are solved exactly by scoring every m x m block pattern;
# there are 90 for 2:4 and the count explodes beyond m = 4 (4:8 has ~1.2e11).
MAX_TRANSPOSABLE_M = 4


def _match_pattern(value: Any, what: str) -> tuple[int, int, bool] | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in UNSTRUCTURED_NAMES):
        return None
    m = _NM.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise SparsescaleError(
            f"{what}: unknown pattern {value!r}; expected 'unstructured', n:m such as '2:4', or "
            "n:mT such as '2:4T'"
        )
    n, m_, transposable = int(m.group(1)), int(m.group(2)), bool(m.group(3))
    if not 0 < n < m_:
        raise SparsescaleError(
            f"{what}: pattern {value!r}: need 0 < n < m (n weights kept in every m)"
        )
    if transposable and m_ > MAX_TRANSPOSABLE_M:
        raise SparsescaleError(
            f"{what}: pattern {value!r}: transposable masks are supported for m <= "
            f"{MAX_TRANSPOSABLE_M} (such as 2:4T)"
        )
    return n, m_, transposable


def parse_pattern(value: str | None, what: str = "pattern") -> tuple[int, int] | None:
    """None or "unstructured" -> None; "n:m" or "n:mT" -> (n, m) with 0 < n < m.

    n:m keeps n weights in every group of m consecutive weights along the input
    dimension (2:4 keeps 2 of 4). n:mT ("transposable", m <= 4) is n:m along the
    output dimension too: every m x m block keeps n per row and n per column.
    Both keep the fraction n/m; `pattern_name` tells them apart."""
    found = _match_pattern(value, what)
    return None if found is None else found[:2]


def pattern_name(value: str | None, what: str = "pattern") -> str | None:
    """The one spelling of a pattern: None for unstructured, else "n:m" or
    "n:mT" (see parse_pattern)."""
    found = _match_pattern(value, what)
    return None if found is None else f"{found[0]}:{found[1]}" + ("T" if found[2] else "")


def is_transposable(value: str | None) -> bool:
    """Whether a pattern is n:mT (n:m along the output dimension as well)."""
    found = _match_pattern(value, "pattern")
    return found is not None and found[2]
