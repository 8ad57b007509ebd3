"""How every benchmark group prints: titled sections, figure rows with PASS/MISS goals."""

from __future__ import annotations

import math
from collections.abc import Sequence


def leaves(error: BaseException) -> list[str]:
    """The distinct errors inside nested exception groups: what actually went wrong."""
    if isinstance(error, BaseExceptionGroup):
        found: list[str] = []
        for inner in error.exceptions:
            found.extend(leaf for leaf in leaves(inner) if leaf not in found)
        return found
    return [f"{type(error).__module__}.{type(error).__qualname__}: {error}"]


def title(text: str) -> None:
    print(f"\n{text}\n{'-' * len(text)}", flush=True)


def note(text: str) -> None:
    print(f"  {text}", flush=True)


def row(label: str, figure: str, goal: str = "", detail: str = "") -> None:
    print(f"  {label:<58} {figure:>13}  {goal:<26} {detail}".rstrip(), flush=True)


def goal(ok: bool, text: str) -> str:
    return f"{'PASS' if ok else 'MISS'} (goal {text})"


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of `samples`."""
    ordered = sorted(samples)
    rank = math.ceil(fraction * len(ordered)) - 1
    return ordered[min(len(ordered) - 1, max(0, rank))]
