"""``python -m bench``: run the benchmark scenarios and print one table.

Run from the repository root with the venv that has the ``[server]`` extra installed::

    .venv/bin/python -m bench            # every scenario, about 10 minutes
    .venv/bin/python -m bench --quick    # every scenario, smaller, about 2 minutes
    .venv/bin/python -m bench --only a,c --databases sqlite

Everything listens on 127.0.0.1 and is stopped at the end (or at --time-limit).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

from bench.processes import REPO
from bench.report import NOTE, Row, table
from bench.rig import DEFAULT_CLIENT_VENV, DEFAULT_PROXY_VENV, Plan, Rig
from bench.scenarios import SCENARIOS, select


def _numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of chatmodel against direct LiteLLM and LiteLLM's proxy.",
        epilog="scenarios: "
        + "; ".join(f"{name} ({letter}): {what}" for name, (letter, what, _) in SCENARIOS.items()),
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 2 minutes)")
    parser.add_argument(
        "--only", default="all", help="comma-separated scenario names or letters (default all)"
    )
    parser.add_argument("--databases", help="comma-separated: sqlite,postgresql (default both)")
    parser.add_argument("--concurrency", type=_numbers, help="for (b), default 32,128")
    parser.add_argument("--history-sizes", type=_numbers, help="default 10,1000,10000")
    parser.add_argument("--rounds", type=int, help="c=1 calls per side for (a), (c), (d)")
    parser.add_argument("--requests", type=int, help="calls per throughput block for (b), (d)")
    parser.add_argument("--stream-gap-ms", type=float, help="upstream pause between pieces")
    parser.add_argument("--paced-counts", type=_numbers, help="for (p), default 20,100,200")
    parser.add_argument(
        "--paced-ladder", type=_numbers, help="for (p)'s capacity, default 10,20,40,...,300"
    )
    parser.add_argument("--paced-chunks", type=int, help="for (p), pieces per reply (50)")
    parser.add_argument("--paced-gap-ms", type=float, help="for (p), ms between pieces (40)")
    parser.add_argument("--proxy-venv", type=Path, default=DEFAULT_PROXY_VENV)
    parser.add_argument("--client-venv", type=Path, default=DEFAULT_CLIENT_VENV)
    parser.add_argument(
        "--install-venvs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="pip-install LiteLLM's proxy into --proxy-venv and this repository's client "
        "alone into --client-venv when missing (default: yes, but not with --quick)",
    )
    parser.add_argument(
        "--profile",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also py-spy the server (first of --databases) for this long under c=32 load "
        "(needs py-spy)",
    )
    parser.add_argument("--json", type=Path, help="also write the rows and notes here")
    parser.add_argument(
        "--time-limit", type=float, help="stop everything after this many seconds (900/300)"
    )
    return parser


def build_plan(args: argparse.Namespace) -> Plan:
    scenarios = select(args.only)
    plan = Plan.quick_plan(scenarios) if args.quick else Plan(scenarios=scenarios)
    if args.databases:
        plan.databases = [d.strip() for d in args.databases.split(",")]
    if args.concurrency:
        plan.concurrencies = args.concurrency
    if args.history_sizes:
        plan.history_sizes = args.history_sizes
    if args.rounds:
        plan.latency_rounds = plan.stream_rounds = plan.proxy_rounds = args.rounds
    if args.requests:
        plan.throughput_requests = args.requests
    if args.stream_gap_ms is not None:
        plan.stream_gap_ms = args.stream_gap_ms
    if args.paced_counts:
        plan.paced_counts = args.paced_counts
    if args.paced_ladder:
        plan.paced_ladder = args.paced_ladder
    if args.paced_chunks:
        plan.paced_chunks = args.paced_chunks
    if args.paced_gap_ms:
        plan.paced_gap_ms = args.paced_gap_ms
    plan.proxy_venv = args.proxy_venv
    plan.client_venv = args.client_venv
    if args.install_venvs is not None:
        plan.install_venvs = args.install_venvs
    plan.profile_seconds = args.profile
    return plan


def machine() -> str:
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = "?"
    return (
        f"{datetime.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, litellm {version('litellm')}, "
        f"load average {os.getloadavg()[0]:.1f}, commit {commit or '?'}"
    )


def install_venv(venv: Path, requirement: str) -> str:
    """A separate venv holding ``requirement`` (never the project's own venv)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", requirement],
        check=True,
        timeout=900,
        stdout=subprocess.DEVNULL,
    )
    return f"installed {requirement} in {venv} ({time.perf_counter() - started:.0f} s)"


def install_venvs(plan: Plan) -> list[str]:
    """LiteLLM's proxy at the version this project pins, and the client alone (no extras),
    each in its own venv, when a scenario needs them and they are missing."""
    wanted = []
    needs_proxy = {"proxy", "paced"} & set(plan.scenarios)
    if needs_proxy and not (plan.proxy_venv / "bin" / "litellm").exists():
        wanted.append((plan.proxy_venv, f"litellm[proxy]=={version('litellm')}"))
    if "footprint" in plan.scenarios and not (plan.client_venv / "bin" / "python").exists():
        wanted.append((plan.client_venv, str(REPO)))
    notes = []
    for venv, requirement in wanted:
        print(f"... installing {requirement} into {venv}", file=sys.stderr, flush=True)
        try:
            notes.append(install_venv(venv, requirement))
        except (subprocess.SubprocessError, OSError) as exc:
            notes.append(f"could not install {requirement} into {venv}: {exc}")
    return notes


async def run_all(plan: Plan, rows: list[Row], notes: list[str], profiled: list[str]) -> None:
    rig = Rig(plan)
    try:
        await rig.start()
        for name in plan.scenarios:
            started = time.perf_counter()
            print(f"... {name}", file=sys.stderr, flush=True)
            try:
                found = await SCENARIOS[name][2](rig)
            except Exception as exc:  # one broken scenario must not hide the others' rows
                notes.append(f"{name} failed: {type(exc).__name__}: {exc}"[:2000])
                rig.failed = True
                continue
            rows += found
            print(f"    {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
            for row in found:
                print(f"    {row.measure}: {row.ours} {row.ratio} {row.status}", file=sys.stderr)
        if plan.profile_seconds > 0:
            from bench.profile import profile, profile_streams

            profiled += await profile(rig, plan.profile_seconds)
            if "paced" in plan.scenarios:
                profiled += await profile_streams(rig, plan.profile_seconds)
    finally:
        notes += rig.notes
        await rig.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        plan = build_plan(args)
    except ValueError as exc:
        print(f"python -m bench: {exc}", file=sys.stderr)
        return 2
    notes = install_venvs(plan) if plan.install_venvs else []
    header = f"chatmodel bench, {machine()}"
    print(header, file=sys.stderr)
    rows: list[Row] = []
    profiled: list[str] = []
    limit = args.time_limit or (300 if plan.quick else 900)
    try:
        asyncio.run(asyncio.wait_for(run_all(plan, rows, notes, profiled), timeout=limit))
    except TimeoutError:
        notes.append(f"stopped at the time limit ({limit:g} s): the table is partial")
    print(header)
    print()
    print(table(rows))
    print()
    for note in [NOTE, *notes]:
        print(f"- {note}")
    if profiled:
        print()
        print("\n".join(profiled))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": header,
                    "rows": [r.as_dict() for r in rows],
                    "notes": notes,
                    "profile": profiled,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
