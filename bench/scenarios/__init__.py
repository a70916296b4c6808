"""The scenarios, in the order a full run takes them. Each is ``async run(rig) -> rows``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bench.report import Row
from bench.rig import Rig
from bench.scenarios import (
    footprint,
    history,
    latency,
    paced,
    proxy,
    streaming,
    throughput,
    upstream,
)

Scenario = Callable[[Rig], Awaitable[list[Row]]]

# name -> (letter in issue 9 / 8, what it measures, the scenario)
SCENARIOS: dict[str, tuple[str, str, Scenario]] = {
    "upstream": ("u", "the bench upstream's own latency and ceiling", upstream.run),
    "latency": ("a", "run p50/p95 at c=1 vs direct litellm", latency.run),
    "streaming": ("c", "first/last event vs direct litellm and the upstream", streaming.run),
    "throughput": ("b", "runs/s and p95 at c=32, 128 on SQLite and PostgreSQL", throughput.run),
    "history": ("h", "run and add latency at 10 / 1,000 / 10,000 stored messages", history.run),
    "proxy": ("d", "the same requests through LiteLLM's proxy", proxy.run),
    "paced": (
        "p",
        "N streams at once at a real model's pace, vs direct litellm and LiteLLM's proxy; "
        "capacity with --workers 2",
        paced.run,
    ),
    "footprint": ("e", "import chatmodel; serve's ready time and RSS", footprint.run),
}


def select(names: str) -> list[str]:
    """Scenario names from a comma-separated list of names or letters ('all': every one)."""
    if names.strip() == "all":
        return list(SCENARIOS)
    letters = {letter: name for name, (letter, _, _) in SCENARIOS.items()}
    chosen = []
    for raw in names.split(","):
        name = letters.get(raw.strip(), raw.strip())
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {raw!r}; choose from {', '.join(SCENARIOS)}")
        chosen.append(name)
    return [name for name in SCENARIOS if name in chosen]
