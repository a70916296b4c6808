"""The ``chatmodel`` command: admin commands over the REST API, plus ``serve``, ``db``, ``keys``,
``gc``.

The admin commands need only this package (httpx + pydantic) and talk to a running
server; ``serve``, ``db ...``, ``keys ...`` and ``gc`` are handed to ``chatmodel_service.cli``,
imported only then (it needs ``chatmodel[server]``). The server, the API key and the timeout are
resolved like a ``ChatModel``'s: ``--base-url``/``--api-key``/``--timeout``, then the
environment (``CHATMODEL_BASE_URL``, ``CHATMODEL_API_KEY``), then the defaults.

The grammar (commands, options, argument types) is ``_cli_parser``'s and the human output
``_cli_render``'s; this module asks the server what each command needs and reports.

Exit status: 0 done, 1 the server refused (``error: <detail> (field: <field>)``) or could
not be reached, 2 a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from chatmodel._admin import AdminClient, JsonObject
from chatmodel._cli_parser import VALUE_OPTIONS, parse_arguments
from chatmodel._cli_render import RENDERERS, Renderer
from chatmodel._config import resolve_settings
from chatmodel._errors import APIConnectionError, APIError, APITimeoutError

SERVER_COMMANDS = frozenset({"serve", "db", "keys", "gc"})
# Top-level modules of the ``server`` extra: missing one means "install chatmodel[server]".
SERVER_MODULES = frozenset(
    {
        "chatmodel_service",
        "fastapi",
        "starlette",
        "uvicorn",
        "sqlalchemy",
        "alembic",
        "litellm",
        "aiosqlite",
        "asyncpg",
        "pydantic_settings",
        "jsonschema",
    }
)

Fetch = Callable[[AdminClient, argparse.Namespace], JsonObject]


class UsageError(Exception):
    """A problem with the command line or the files it names (exit status 2)."""


# -- what each command asks the server ------------------------------------------------


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _read_functions(path: str) -> list[Any]:
    try:
        functions = json.loads(_read_text(path))
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(functions, list):
        raise UsageError(f"{path} must hold a JSON list of function definitions")
    return functions


def _version_body(args: argparse.Namespace) -> JsonObject:
    prompt = args.prompt if args.prompt is not None else _read_text(args.prompt_file)
    body: JsonObject = {
        "system_prompt": prompt,
        "model": args.model,
        "params": dict(args.param or []),
        "memo": args.memo,
        "publish": args.publish,
    }
    if args.api_base is not None:
        body["api_base"] = args.api_base
    if args.variable:
        body["variables"] = args.variable
    if args.functions_file is not None:
        body["functions"] = _read_functions(args.functions_file)
    return body


def _release_change(args: argparse.Namespace) -> JsonObject:
    change: JsonObject = {"note": args.note}
    if args.by is not None:
        change["by"] = args.by
    if args.expect_release is not None:
        change["expected_release"] = str(args.expect_release)
    return change


def _publish(admin: AdminClient, args: argparse.Namespace) -> JsonObject:
    if (args.version is None) == (args.weights is None):
        raise UsageError("give a VERSION to publish, or --weights for a split (not both)")
    chosen = {"version": args.version} if args.weights is None else {"weights": args.weights}
    return admin.publish(args.name, _release_change(args) | chosen)


def _session(admin: AdminClient, args: argparse.Namespace) -> JsonObject:
    session = admin.get_session(str(args.uuid))
    return {"session": session, "messages": admin.list_messages(str(args.uuid), args.limit)}


FETCHES: dict[str, Fetch] = {
    "models list": lambda admin, args: admin.list_chat_models(),
    "models show": lambda admin, args: admin.get_chat_model(args.name),
    "models create": lambda admin, args: admin.create_chat_model(args.name, args.description),
    "versions create": lambda admin, args: admin.create_version(args.name, _version_body(args)),
    "versions list": lambda admin, args: admin.list_versions(args.name),
    "versions show": lambda admin, args: admin.get_version(args.name, args.number),
    "diff": lambda admin, args: admin.diff(args.name, args.from_number, args.to_number),
    "publish": _publish,
    "rollback": lambda admin, args: admin.roll_back(args.name, _release_change(args)),
    "releases": lambda admin, args: admin.list_releases(args.name),
    "stats": lambda admin, args: admin.version_stats(args.name, args.number),
    "sessions show": _session,
}


# -- running --------------------------------------------------------------------------


def _server_command(argv: Sequence[str]) -> list[str] | None:
    """``argv`` from the command on if the command is ``serve``, ``db``, ``keys`` or ``gc``."""
    index = 0
    while index < len(argv):
        token = argv[index]
        if not token.startswith("-"):
            return list(argv[index:]) if token in SERVER_COMMANDS else None
        index += 2 if token in VALUE_OPTIONS else 1
    return None


def _needs_server_extra(exc: ModuleNotFoundError) -> int:
    missing = (exc.name or "").split(".")[0]
    if missing not in SERVER_MODULES:
        raise exc
    print(
        f"chatmodel: this command runs the server, which needs the server extra "
        f"(missing module: {missing}); install chatmodel[server], "
        "e.g. pip install 'chatmodel[server]'",
        file=sys.stderr,
    )
    return 2


def run_server_command(argv: list[str]) -> int:
    """Hand ``serve``/``db ...`` to the server package's command line."""
    try:
        server_cli = importlib.import_module("chatmodel_service.cli")
        return int(server_cli.main(argv))
    except ModuleNotFoundError as exc:
        return _needs_server_extra(exc)


def _print_document(document: JsonObject, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return
    render: Renderer = RENDERERS[args.command]
    for line in render(document, args):
        print(line)


def _report(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    try:
        settings = resolve_settings(args.base_url, args.api_key, args.timeout)
    except ValueError as exc:  # a --base-url / CHATMODEL_BASE_URL that is not http(s)
        raise UsageError(str(exc)) from None
    with AdminClient(settings) as admin:
        document = FETCHES[args.command](admin, args)
    _print_document(document, args)
    return 0


def main(argv: Iterable[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at the interpreter's exit
        return code
    except BrokenPipeError:
        # The reader went away (`chatmodel ... | head`): stop quietly, and point stdout at
        # nothing so the interpreter's last flush does not fail on the closed pipe again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return PIPE_CLOSED


PIPE_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for a command its reader left


def _main(argv: Iterable[str] | None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    delegated = _server_command(arguments)
    if delegated is not None:
        return run_server_command(delegated)
    args = parse_arguments(arguments)
    args.color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    try:
        return _run(args)
    except UsageError as exc:
        print(f"chatmodel: error: {exc}", file=sys.stderr)
        return 2
    except APIError as exc:
        _report(f"{exc.detail} (field: {exc.field})" if exc.field else exc.detail)
        return 1
    except APIConnectionError as exc:
        hint = "" if isinstance(exc, APITimeoutError) else " (set --base-url or CHATMODEL_BASE_URL)"
        _report(f"{exc}{hint}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
