"""Human output of the ``chatmodel`` command: compact aligned tables and ``key: value``
lines, one renderer per command, and the lines that report a failed run or a refused key.
``--json`` bypasses the renderers."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Mapping, Sequence

from chatmodel._admin import JsonObject
from chatmodel._errors import APIError

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


def retention(days: object) -> str:
    return "forever" if days is None else f"{days} days"


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
            ("retention", retention(document.get("retention_days"))),
            ("created", when(document["created_at"])),
            ("updated", when(document["updated_at"])),
        ]
    )


def model_created(document: JsonObject, _: argparse.Namespace) -> list[str]:
    return [f"created chat model {document['name']}"]


def model_updated(document: JsonObject, args: argparse.Namespace) -> list[str]:
    return [f"updated chat model {document['name']}", *model(document, args)]


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
        f"release {document['release']} ({document['kind']}) of {document['chat_model']}"
        f"{_on_label(document)}: "
        f"{weights(document['versions'])} (was {weights(document['previous_versions'])})",
        f"id: {document['id']}",
        *(
            f"warning ({warning['code']}): {warning['detail']}"
            for warning in document.get("warnings") or []
        ),
    ]


def _on_label(release: JsonObject) -> str:
    """`` on staging`` (nothing for production, what 'deploy' means)."""
    name = release.get("label", "production")
    return "" if name == "production" else f" on {name}"


def release_list(document: JsonObject, _: argparse.Namespace) -> list[str]:
    rows = [
        [
            str(r["release"]),
            r.get("label", "production"),
            r["kind"],
            weights(r["versions"]),
            value(r["published_by"]),
            when(r["created_at"]),
            r["id"],
            one_line(r["note"], 40),
        ]
        for r in document["data"]
    ]
    return table(["RELEASE", "LABEL", "KIND", "VERSIONS", "BY", "CREATED", "ID", "NOTE"], rows)


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


def _optional_columns(
    rows: list[JsonObject], columns: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The (field, header) pairs of ``columns`` the server sent: a field an older server
    does not send is left out rather than shown as ``-`` everywhere."""
    return [(name, header) for name, header in columns if any(name in row for row in rows)]


SESSION_EXTRAS = (
    ("user_id", "USER"),
    ("run_count", "RUNS"),
    ("failed_runs", "FAILED"),
)


def session_list(document: JsonObject, _: argparse.Namespace) -> list[str]:
    sessions: list[JsonObject] = document["data"]
    if not sessions:
        return ["no sessions"]
    extras = _optional_columns(sessions, SESSION_EXTRAS)
    first = any("first_user_message" in s for s in sessions)
    headers = ["SESSION", "CHAT MODEL", "MESSAGES", *(h for _, h in extras), "LAST ACTIVE"]
    rows = []
    for item in sessions:
        row = [
            item["uuid"],
            f"{item['chat_model']} v{item['version']}",
            str(item["message_count"]),
            *(value(item.get(name)) for name, _ in extras),
            when(item.get("last_message_at") or item["created_at"]),
        ]
        rows.append([*row, one_line(item.get("first_user_message"), 40)] if first else row)
    lines = table([*headers, "FIRST MESSAGE"] if first else headers, rows)
    if document.get("next_cursor"):
        lines.append(f"... more sessions: add --cursor {document['next_cursor']}")
    return lines


# The columns that name a group, for each grouping ``group_by`` may list (``version,day``).
USAGE_GROUPS = {
    "version": (("chat_model", "CHAT MODEL"), ("version", "VERSION")),
    "day": (("day", "DAY"),),
    "key": (("key_name", "KEY"),),
}


def _figures(item: JsonObject) -> list[str]:
    cost = item.get("cost")
    return [
        str(item["runs"]),
        str(item["errors"]),
        str(item["total_tokens"]),
        "-" if cost is None else f"{cost:.6f}",
    ]


def usage(document: JsonObject, _: argparse.Namespace) -> list[str]:
    grouping = [part.strip() for part in str(document["group_by"]).split(",")]
    named = [column for part in grouping for column in USAGE_GROUPS.get(part, ())]
    headers = [*(header for _, header in named), "RUNS", "ERRORS", "TOKENS", "COST"]
    rows = [
        [*(_group_cell(name, g.get(name)) for name, _ in named), *_figures(g)]
        for g in document["data"]
    ]
    total = ["total", *([""] * (len(named) - 1))] if named else []
    scope = document.get("chat_model") or "all chat models"
    return [
        f"usage of {scope} from {when(document['from'])} to {when(document['to'])}",
        *table(headers, [*rows, [*total, *_figures(document["total"])]]),
    ]


def _group_cell(name: str, cell: object) -> str:
    if cell is None:
        return "-"
    return f"v{cell}" if name == "version" else str(cell)


def reply(document: JsonObject, _: argparse.Namespace) -> list[str]:
    """A run's (or a version test's) reply: its text, or the call it asks for. A failed
    one prints nothing here: :func:`run_failure` goes to stderr."""
    if document.get("error"):
        return []
    lines = [document["content"]] if document.get("content") else []
    return lines + calls_asked(document.get("function_call"), document.get("tool_calls"))


def calls_asked(function_call: object, tool_calls: object) -> list[str]:
    """``-> name(arguments)`` for each function or tool call a reply asks for."""
    calls: list[object] = [function_call]
    if isinstance(tool_calls, list):
        calls += [c.get("function") for c in tool_calls if isinstance(c, dict)]
    return [
        f"-> {call.get('name')}({call.get('arguments', '')})"
        for call in calls
        if isinstance(call, dict)
    ]


# -- failures -------------------------------------------------------------------------

NEEDS_KEY = "this server needs an API key: pass --api-key KEY or set CHATMODEL_API_KEY"


def key_refused(code: str, detail: str, *, key_given: bool) -> str | None:
    """What to say when the server refused the caller's key (``unauthorized``,
    ``forbidden``); ``None`` for any other error."""
    if code == "unauthorized":
        if not key_given:
            return NEEDS_KEY
        return f"{detail} Pass another key with --api-key KEY or CHATMODEL_API_KEY."
    if code == "forbidden":
        return (
            f"{detail} This command needs a key with the admin scope: pass one with "
            "--api-key KEY or CHATMODEL_API_KEY."
        )
    return None


def refusal(exc: APIError, *, key_given: bool) -> str:
    """What to say when the server refused a request: the key advice, else its detail
    and the field it names."""
    advice = key_refused(exc.code, exc.detail, key_given=key_given)
    if advice is not None:
        return advice
    return f"{exc.detail} (field: {exc.field})" if exc.field else exc.detail


def run_failure(error_type: object, error_log: object, *, key_given: bool) -> str:
    """The line that reports a failed run: what failed and the run's error log."""
    kind = str(error_type or "error")
    log = str(error_log or "no error log")
    advice = key_refused(kind, log, key_given=key_given)
    return f"error: the run failed ({kind}): {advice or log}"


RENDERERS: dict[str, Renderer] = {
    "models list": model_list,
    "models show": model,
    "models create": model_created,
    "models update": model_updated,
    "versions create": version_created,
    "versions list": version_list,
    "versions show": version,
    "versions test": reply,
    "diff": diff,
    "publish": release,
    "rollback": release,
    "releases": release_list,
    "stats": stats,
    "sessions list": session_list,
    "sessions show": session,
    "usage": usage,
}
