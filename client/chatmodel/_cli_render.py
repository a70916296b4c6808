"""Human output of the ``chatmodel`` command: compact aligned tables and ``key: value``
lines, one renderer per command. ``--json`` bypasses all of this."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Mapping, Sequence

from chatmodel._admin import JsonObject

Renderer = Callable[[JsonObject, argparse.Namespace], Iterable[str]]

_RED, _GREEN, _CYAN, _BOLD, _RESET = "\033[31m", "\033[32m", "\033[36m", "\033[1m", "\033[0m"


# -- building blocks ------------------------------------------------------------------


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell, two spaces apart; the last one unpadded."""
    cells = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers) - 1)]
    return [
        "  ".join(
            [*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]
        ).rstrip()
        for row in cells
    ]


def fields(pairs: Iterable[tuple[str, str]]) -> list[str]:
    pairs = list(pairs)
    width = max((len(label) for label, _ in pairs), default=0) + 1
    return [f"{label + ':':<{width}} {value}".rstrip() for label, value in pairs]


def one_line(text: object, width: int = 60) -> str:
    flat = " ".join(str(text if text is not None else "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def weights(versions: Mapping[str, int]) -> str:
    """``{"1": 50, "2": 50}`` -> ``v1 50%, v2 50%``; ``-`` for nothing published."""
    ordered = sorted(versions.items(), key=lambda item: int(item[0]))
    return ", ".join(f"v{number} {weight}%" for number, weight in ordered) or "-"


def when(timestamp: object) -> str:
    """An ISO timestamp to the second: ``2026-01-02 03:04:05``."""
    return str(timestamp or "-")[:19].replace("T", " ")


def value(item: object) -> str:
    if item is None:
        return "-"
    return item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)


# -- chat models and versions ---------------------------------------------------------


def model_list(document: JsonObject, _: argparse.Namespace) -> list[str]:
    rows = [
        [
            model["name"],
            value(model["latest_version"]),
            weights(model["published_versions"]),
            one_line(model["description"]),
        ]
        for model in document["data"]
    ]
    return table(["NAME", "LATEST", "DEPLOYED", "DESCRIPTION"], rows)


def model(document: JsonObject, _: argparse.Namespace) -> list[str]:
    return fields(
        [
            ("name", document["name"]),
            ("description", one_line(document["description"], 100)),
            ("latest version", value(document["latest_version"])),
            ("deployed", weights(document["published_versions"])),
            ("archived", "yes" if document["archived"] else "no"),
            ("created", when(document["created_at"])),
            ("updated", when(document["updated_at"])),
        ]
    )


def model_created(document: JsonObject, _: argparse.Namespace) -> list[str]:
    return [f"created chat model {document['name']}"]


def version_created(document: JsonObject, args: argparse.Namespace) -> list[str]:
    published = " and published it" if args.publish else ""
    return [f"created {document['chat_model']} v{document['number']}{published}"]


def version_list(document: JsonObject, _: argparse.Namespace) -> list[str]:
    rows = [
        [f"v{v['number']}", v["model"], when(v["created_at"]), one_line(v["memo"])]
        for v in document["data"]
    ]
    return table(["VERSION", "MODEL", "CREATED", "MEMO"], rows)


def version(document: JsonObject, _: argparse.Namespace) -> list[str]:
    functions = document.get("functions") or []
    lines = fields(
        [
            ("version", f"{document['chat_model']} v{document['number']}"),
            ("model", document["model"]),
            ("api base", value(document.get("api_base"))),
            ("params", value(document["params"]) if document["params"] else "-"),
            ("functions", ", ".join(f.get("name", "?") for f in functions) or "-"),
            ("variables", ", ".join(document.get("variables") or []) or "-"),
            ("memo", one_line(document["memo"], 100) or "-"),
            ("created", when(document["created_at"])),
            ("uuid", document["uuid"]),
        ]
    )
    prompt = document["system_prompt"].splitlines() or [""]
    return [*lines, "system prompt:", *(f"  {line}" for line in prompt)]


def _colored(line: str) -> str:
    if line.startswith(("---", "+++")):
        return f"{_BOLD}{line}{_RESET}"
    color = {"-": _RED, "+": _GREEN, "@": _CYAN}.get(line[:1])
    return f"{color}{line}{_RESET}" if color else line


def diff(document: JsonObject, args: argparse.Namespace) -> list[str]:
    prompt_lines: list[str] = document["system_prompt_diff"]
    changes = document["changes"]
    if not prompt_lines and not changes:
        return [f"v{document['from']} and v{document['to']} are the same"]
    lines = [_colored(line) if args.color else line for line in prompt_lines]
    if not prompt_lines:
        lines.append("system prompt: unchanged")
    if changes:
        rows = [[c["field"], one_line(value(c["from"])), one_line(value(c["to"]))] for c in changes]
        lines += ["", *table(["FIELD", f"v{document['from']}", f"v{document['to']}"], rows)]
    return lines


# -- releases, figures, sessions ------------------------------------------------------


def release(document: JsonObject, _: argparse.Namespace) -> list[str]:
    return [
        f"release {document['release']} ({document['kind']}) of {document['chat_model']}: "
        f"{weights(document['versions'])} (was {weights(document['previous_versions'])})",
        f"id: {document['id']}",
    ]


def release_list(document: JsonObject, _: argparse.Namespace) -> list[str]:
    rows = [
        [
            str(r["release"]),
            r["kind"],
            weights(r["versions"]),
            value(r["published_by"]),
            when(r["created_at"]),
            r["id"],
            one_line(r["note"], 40),
        ]
        for r in document["data"]
    ]
    return table(["RELEASE", "KIND", "VERSIONS", "BY", "CREATED", "ID", "NOTE"], rows)


def stats(document: JsonObject, _: argparse.Namespace) -> list[str]:
    latency = document["latency_ms"]
    mean = latency["mean"]
    return fields(
        [
            ("version", f"v{document['version']}"),
            ("sessions", str(document["sessions"])),
            ("runs", str(document["runs"])),
            ("errors", str(document["errors"])),
            (
                "tokens",
                f"{document['total_tokens']} ({document['prompt_tokens']} prompt, "
                f"{document['completion_tokens']} completion)",
            ),
            ("cost", "-" if document["cost"] is None else f"{document['cost']:.6f}"),
            ("latency mean", "-" if mean is None else f"{mean:.0f} ms"),
            ("latency p95", "-" if latency["p95"] is None else f"{latency['p95']} ms"),
        ]
    )


def _message_text(message: JsonObject) -> str:
    call = message.get("function_call")
    if call:
        return one_line(f"-> {call.get('name')}({call.get('arguments', '')})", 80)
    calls = message.get("tool_calls") or []
    if calls:
        names = ", ".join(str(c.get("function", {}).get("name")) for c in calls)
        return one_line(f"-> tools: {names}", 80)
    return one_line(message.get("content"), 80)


def session(document: JsonObject, _: argparse.Namespace) -> list[str]:
    info, page = document["session"], document["messages"]
    lines = fields(
        [
            ("session", info["uuid"]),
            ("chat model", f"{info['chat_model']} v{info['version']} ({info['model']})"),
            ("created", when(info["created_at"])),
            ("metadata", value(info["metadata"]) if info["metadata"] else "-"),
            ("variables", value(info.get("variables"))),
        ]
    )
    rows = [[str(m["seq"]), m["role"], _message_text(m)] for m in page["data"]]
    lines += ["", *table(["SEQ", "ROLE", "CONTENT"], rows)] if rows else ["", "no messages"]
    if page["has_more"]:
        lines.append("... more messages; raise --limit to see them")
    return lines


RENDERERS: dict[str, Renderer] = {
    "models list": model_list,
    "models show": model,
    "models create": model_created,
    "versions create": version_created,
    "versions list": version_list,
    "versions show": version,
    "diff": diff,
    "publish": release,
    "rollback": release,
    "releases": release_list,
    "stats": stats,
    "sessions show": session,
}
