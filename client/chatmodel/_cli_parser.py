"""The ``chatmodel`` command line's grammar: the argparse tree of admin commands, the
global options every command accepts, and the argument types that check values before
anything is sent. ``_cli`` runs what :func:`parse_arguments` returns.
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Sequence
from typing import Any

from chatmodel._version import __version__

# The global options that take a value (the word after them is not a command).
VALUE_OPTIONS = frozenset({"--base-url", "--api-key", "--timeout"})


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


def parse_arguments(arguments: Sequence[str]) -> argparse.Namespace:
    """The admin command line parsed (argparse exits with status 2 on a usage error)."""
    parser = build_parser()
    args, extras = parser.parse_known_args(arguments)
    _take_late_version(parser, args, extras)
    return args
