"""The ``chatmodel`` command: admin commands over the REST API, plus ``serve``, ``db``, ``keys``,
``gc``.

The admin commands need only this package (httpx + pydantic) and talk to a running
server; ``serve``, ``db ...``, ``keys ...`` and ``gc`` are handed to ``chatmodel_service.cli``,
imported only then (it needs ``chatmodel[server]``). The server, the API key and the timeout are
resolved like a ``ChatModel``'s: ``--base-url``/``--api-key``/``--timeout``, then the
environment (``CHATMODEL_BASE_URL``, ``CHATMODEL_API_KEY``), then the defaults.

Exit status: 0 done, 1 the server refused (``error: <detail> (field: <field>)``) or could
not be reached, 2 a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from chatmodel import __version__
from chatmodel._admin import AdminClient, JsonObject
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
_VALUE_OPTIONS = frozenset({"--base-url", "--api-key", "--timeout"})

Fetch = Callable[[AdminClient, argparse.Namespace], JsonObject]


class UsageError(Exception):
    """A problem with the command line or the files it names (exit status 2)."""


# -- argument types -------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _param(text: str) -> tuple[str, Any]:
    """``key=value``; the value is JSON when it parses (0.2, ["x"], true), else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def _weights(text: str) -> dict[str, int]:
    """``3=50,4=50`` -> ``{"3": 50, "4": 50}`` (the server checks the numbers)."""
    weights: dict[str, int] = {}
    for item in text.split(","):
        version, sep, weight = item.strip().partition("=")
        if not sep or not version.strip().isdigit() or not weight.strip().lstrip("-").isdigit():
            raise argparse.ArgumentTypeError(f"expected VERSION=PERCENT[,...], not {text!r}")
        weights[str(int(version))] = int(weight)
    return weights


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


# -- the parser -----------------------------------------------------------------------


def _add_global_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """On the top level with defaults; on each command with none (SUPPRESS), so an option
    given before the command is not reset by the command's parser."""

    def default(value: object) -> object:
        return value if top_level else argparse.SUPPRESS

    parser.add_argument("--base-url", default=default(None), help="server URL (CHATMODEL_BASE_URL)")
    parser.add_argument("--api-key", default=default(None), help="API key (CHATMODEL_API_KEY)")
    parser.add_argument(
        "--timeout", type=_seconds, default=default(None), help="seconds per request"
    )
    parser.add_argument(
        "--json", action="store_true", default=default(False), help="print the API's JSON"
    )


class _Commands:
    """Adds leaf commands that accept the global options too; most take a chat model NAME."""

    def __init__(self, parser: argparse.ArgumentParser, prefix: str = "") -> None:
        self.prefix = prefix
        self.common = argparse.ArgumentParser(add_help=False)
        _add_global_options(self.common, top_level=False)
        self.actions = parser.add_subparsers(
            dest=f"{prefix.strip() or 'top'}_command", required=True, metavar="COMMAND"
        )

    def add(self, name: str, help_text: str, *, named: bool = True) -> argparse.ArgumentParser:
        parser = self.actions.add_parser(
            name, help=help_text, description=help_text, parents=[self.common]
        )
        parser.set_defaults(command=self.prefix + name)
        if named:
            parser.add_argument("name", metavar="NAME", help="the chat model")
        return parser

    def group(self, name: str, help_text: str) -> _Commands:
        parser = self.actions.add_parser(name, help=help_text, description=help_text)
        return _Commands(parser, f"{name} ")


def _add_release_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--note", default="", help="why (kept in the release history)")
    parser.add_argument("--by", help="who (free text)")
    parser.add_argument(
        "--expect-release",
        type=uuid.UUID,
        metavar="ID",
        help="fail (409) unless release ID is still the current one",
    )


def _add_version_create(versions: _Commands) -> None:
    create = versions.add("create", "add a version (immutable)")
    prompt = create.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--prompt-file", metavar="PATH", help="system prompt file ('-': stdin)")
    prompt.add_argument("--prompt", metavar="TEXT", help="system prompt text")
    create.add_argument("--model", required=True, help="LiteLLM model string")
    create.add_argument(
        "--param",
        type=_param,
        action="append",
        metavar="KEY=VALUE",
        help="model parameter, VALUE parsed as JSON if it can be (repeatable)",
    )
    create.add_argument("--api-base", metavar="URL", help="OpenAI-compatible server to call")
    create.add_argument("--memo", default="", help="what changed in this version")
    create.add_argument(
        "--variable", action="append", metavar="NAME", help="template variable (repeatable)"
    )
    create.add_argument("--functions-file", metavar="PATH", help="JSON list of functions")
    create.add_argument("--publish", action="store_true", help="publish it right away")


def _add_catalog_commands(commands: _Commands) -> None:
    models = commands.group("models", "chat models")
    models.add("list", "list the chat models", named=False)
    models.add("show", "show one chat model")
    models.add("create", "create a chat model").add_argument("--description", default="")

    versions = commands.group("versions", "versions of a chat model")
    _add_version_create(versions)
    versions.add("list", "list a chat model's versions")
    versions.add("show", "show one version").add_argument("number", type=_positive_int, metavar="N")
    diff = commands.add("diff", "what changes from version A to version B")
    diff.add_argument("from_number", type=_positive_int, metavar="A")
    diff.add_argument("to_number", type=_positive_int, metavar="B")


def _add_release_commands(commands: _Commands) -> None:
    publish = commands.add("publish", "point 'deploy' at VERSION, or split it with --weights")
    publish.add_argument(
        "version", nargs="?", type=_positive_int, metavar="VERSION", help="omit with --weights"
    )
    publish.add_argument(
        "--weights", type=_weights, metavar="V=PCT,...", help="a split, e.g. 3=50,4=50"
    )
    _add_release_options(publish)
    _add_release_options(commands.add("rollback", "republish the previous release"))
    commands.add("releases", "release history, newest first")
    commands.add("stats", "sessions, runs, tokens, cost and latency").add_argument(
        "number", type=_positive_int, metavar="N"
    )
    show = commands.group("sessions", "sessions").add(
        "show", "a session and its messages", named=False
    )
    show.add_argument("uuid", type=uuid.UUID, metavar="UUID")
    show.add_argument(
        "--limit", type=_positive_int, default=100, help="messages to show (default 100)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatmodel",
        description="Manage chat models on a chatmodel server, or run one.",
        epilog="Global options may also follow the command. Exit status: 0 ok, "
        "1 refused by or could not reach the server, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"chatmodel {__version__}")
    _add_global_options(parser, top_level=True)
    commands = _Commands(parser)
    commands.actions.add_parser("serve", help="start the server (needs chatmodel[server])")
    commands.actions.add_parser("db", help="database migrations (needs chatmodel[server])")
    commands.actions.add_parser(
        "keys", help="create/list API keys in the database (needs chatmodel[server])"
    )
    commands.actions.add_parser(
        "gc", help="delete sessions past their chat model's retention (needs chatmodel[server])"
    )
    _add_catalog_commands(commands)
    _add_release_commands(commands)
    return parser


# -- running --------------------------------------------------------------------------


def _server_command(argv: Sequence[str]) -> list[str] | None:
    """``argv`` from the command on if the command is ``serve``, ``db``, ``keys`` or ``gc``."""
    index = 0
    while index < len(argv):
        token = argv[index]
        if not token.startswith("-"):
            return list(argv[index:]) if token in SERVER_COMMANDS else None
        index += 2 if token in _VALUE_OPTIONS else 1
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


def _take_late_version(
    parser: argparse.ArgumentParser, args: argparse.Namespace, extras: list[str]
) -> None:
    """argparse fills ``publish NAME [VERSION]`` from the first run of positionals only, so
    ``publish NAME --note x 3`` leaves ``3`` over: take it as the VERSION."""
    late = len(extras) == 1 and not extras[0].startswith("-")
    if args.command == "publish" and args.version is None and late:
        try:
            args.version = _positive_int(extras[0])
        except argparse.ArgumentTypeError as exc:
            parser.error(f"argument VERSION: {exc}")
        return
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")


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
    arguments = list(sys.argv[1:] if argv is None else argv)
    delegated = _server_command(arguments)
    if delegated is not None:
        return run_server_command(delegated)
    parser = build_parser()
    args, extras = parser.parse_known_args(arguments)
    _take_late_version(parser, args, extras)
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
