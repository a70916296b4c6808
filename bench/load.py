"""The load generator: a fixed number of calls at a fixed concurrency, and their figures.

``closed_loop`` keeps ``concurrency`` calls in flight until ``total`` have been made (each
worker starts its next call when its last one ends), timing each call. A call is an
async function of (worker, index) that returns whether it succeeded; a raised exception
counts as a failure too, so one bad answer never stops a run.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

Call = Callable[[int, int], Awaitable[bool]]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Sample:
    """Latencies (seconds) of successful calls, failures, and the wall time of the block."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    wall: float = 0.0
    first_error: str | None = None

    @property
    def count(self) -> int:
        return len(self.latencies) + self.failures

    @property
    def throughput(self) -> float:
        """Successful calls per second of wall time."""
        return len(self.latencies) / self.wall if self.wall else float("nan")

    def p(self, q: float) -> float:
        """The q-th percentile latency in milliseconds."""
        return percentile(self.latencies, q) * 1000

    def merge(self, other: Sample) -> Sample:
        return Sample(
            self.latencies + other.latencies,
            self.failures + other.failures,
            self.wall + other.wall,
            self.first_error or other.first_error,
        )


def median_throughput(samples: Sequence[Sample]) -> float:
    return statistics.median(s.throughput for s in samples) if samples else float("nan")


async def timed(call: Call, worker: int, index: int, sample: Sample) -> None:
    started = time.perf_counter()
    try:
        ok = await call(worker, index)
    except Exception as exc:  # a failed call is a figure, not the end of the benchmark
        ok = False
        sample.first_error = sample.first_error or f"{type(exc).__name__}: {exc}"
    if ok:
        sample.latencies.append(time.perf_counter() - started)
    else:
        sample.failures += 1


async def closed_loop(call: Call, concurrency: int, total: int) -> Sample:
    """``total`` calls, ``concurrency`` at a time."""
    sample = Sample()
    counter = iter(range(total))

    async def worker(number: int) -> None:
        for index in counter:
            await timed(call, number, index, sample)

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(min(concurrency, total))))
    sample.wall = time.perf_counter() - started
    return sample


async def interleaved(calls: Sequence[Call], rounds: int) -> list[Sample]:
    """Concurrency 1, A/B(/C...) interleaved: each round makes one call of each, in turn,
    so every side sees the same moments of a noisy machine."""
    samples = [Sample() for _ in calls]
    for index in range(rounds):
        for call, sample in zip(calls, samples, strict=True):
            started = time.perf_counter()
            await timed(call, 0, index, sample)
            sample.wall += time.perf_counter() - started
    return samples
