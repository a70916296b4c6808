"""Rows of results and the table they print as (Markdown, so it pastes into the README)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

NOTE = (
    "Ratios compare figures measured in this run, A/B interleaved (each round calls every "
    "side in turn), so a noisy shared machine slows every side alike; absolute times are "
    "this machine's at this moment only."
)


@dataclass(frozen=True)
class Row:
    scenario: str
    measure: str
    ours: str
    reference: str = ""
    ratio: str = ""
    target: str = ""
    met: bool | None = None  # None: a figure with no target

    @property
    def status(self) -> str:
        return {True: "met", False: "NOT MET", None: ""}[self.met]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"status": self.status}


def ms(seconds_or_ms: float, *, already_ms: bool = True) -> str:
    value = seconds_or_ms if already_ms else seconds_or_ms * 1000
    if math.isnan(value):
        return "n/a"
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def per_s(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0f}/s"


def mb(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0f} MB"


def secs(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f} s"


def ratio(ours: float, reference: float) -> str:
    if math.isnan(ours) or math.isnan(reference) or reference == 0:
        return "n/a"
    return f"{ours / reference:.2f}x"


def within(value: float, limit: float) -> bool | None:
    return None if math.isnan(value) else value <= limit


def at_least(value: float, floor: float) -> bool | None:
    return None if math.isnan(value) else value >= floor


def table(rows: Sequence[Row]) -> str:
    header = ("scenario", "measure", "ours", "reference", "ratio", "target", "status")
    cells = [header] + [
        (r.scenario, r.measure, r.ours, r.reference, r.ratio, r.target, r.status) for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(c) for c in cells[1:]]
    return "\n".join(out)
