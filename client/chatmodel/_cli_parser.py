"""The ``chatmodel`` command line's grammar: the argparse tree of API commands and the
global options every command accepts (the argument types are ``_cli_types``'). ``_cli``
runs what :func:`parse_arguments` returns.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Sequence

from chatmodel._cli_types import (
    label,
    param,
    positive_int,
    release_ref,
    retention,
    seconds,
    variable,
    version_number,
    version_selector,
    weights,
    when,
)
from chatmodel._version import __version__

# The global options that take a value (the word after them is not a command).
VALUE_OPTIONS = frozenset({"--base-url", "--api-key", "--timeout"})


class UsageError(Exception):
    """A problem with the command line or the files it names (exit status 2)."""


# -- the parser -----------------------------------------------------------------------

NAME_HELP = "the chat model's name"
VERSION_HELP = "a version number, as the tables print it (3 or v3)"

DESCRIPTION = """\
Talk to a chat model on a chatmodel server (chat, run), manage its versions and releases,
and look back at its sessions and usage. serve, db, keys and gc run the server itself, on
its machine (they need chatmodel[server])."""

EPILOG = """\
examples:
  chatmodel chat simple_assistant
  chatmodel run simple_assistant "Hello" --json
  chatmodel diff simple_assistant v1 v2
  chatmodel publish simple_assistant v2 --expect-release 3

The server is --base-url, else CHATMODEL_BASE_URL, else http://127.0.0.1:8000; the key is
--api-key, else CHATMODEL_API_KEY (--verbose says which is used). Global options may also
follow the command. Exit status: 0 ok, 1 refused by or could not reach the server (or the
run failed), 2 usage error."""


def _add_global_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """On the top level with defaults; on each command with none (SUPPRESS), so an option
    given before the command is not reset by the command's parser."""

    def default(value: object) -> object:
        return value if top_level else argparse.SUPPRESS

    parser.add_argument("--base-url", default=default(None), help="server URL (CHATMODEL_BASE_URL)")
    parser.add_argument("--api-key", default=default(None), help="API key (CHATMODEL_API_KEY)")
    parser.add_argument(
        "--timeout", type=seconds, default=default(None), help="seconds per request"
    )
    parser.add_argument(
        "--json", action="store_true", default=default(False), help="print the API's JSON"
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        default=default(False),
        help="say on stderr which server and key are used, and where they came from",
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

    def add(
        self, name: str, help_text: str, *, named: bool = True, description: str | None = None
    ) -> argparse.ArgumentParser:
        parser = self.actions.add_parser(
            name, help=help_text, description=description or help_text, parents=[self.common]
        )
        parser.set_defaults(command=self.prefix + name)
        if named:
            parser.add_argument("name", metavar="NAME", help=NAME_HELP)
        return parser

    def group(self, name: str, help_text: str) -> _Commands:
        parser = self.actions.add_parser(name, help=help_text, description=help_text)
        return _Commands(parser, f"{name} ")


def _add_variables(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--var",
        type=variable,
        action="append",
        metavar="KEY=VALUE",
        help="a template variable's value (repeatable)",
    )


def _add_session_options(parser: argparse.ArgumentParser) -> None:
    """What ``chat`` and ``run`` share: which session, on which version, for whom."""
    parser.add_argument("--session", type=uuid.UUID, metavar="UUID", help="continue this session")
    parser.add_argument(
        "--version",
        dest="pin_version",
        type=version_selector,
        metavar="N",
        help="a new session's version: 3 or v3, latest, or a label: deploy (the published "
        "one, the default), staging, ...",
    )
    _add_variables(parser)
    parser.add_argument("--user-id", metavar="ID", help="a new session's metadata.user_id")


def _add_conversation_commands(commands: _Commands) -> None:
    chat = commands.add(
        "chat",
        "talk to a chat model in the terminal, replies streamed",
        description="A conversation in the terminal: each line you type is sent and the "
        "reply streamed as it comes. exit, !exit or Ctrl-D ends it; !multi starts a message "
        "of several lines, ended by a line !end; Ctrl-C stops a reply. Reads stdin line by "
        "line when it is no terminal.",
    )
    _add_session_options(chat)
    run = commands.add("run", "send one message, print the reply (exit 1 if the run failed)")
    run.add_argument("message", metavar="MESSAGE", help="the user message ('-': read stdin)")
    _add_session_options(run)
    run.add_argument(
        "--no-stream", action="store_true", help="wait for the whole reply (a terminal streams)"
    )


def _add_label(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--label", type=label, metavar="NAME", help=help_text)


def _add_release_options(parser: argparse.ArgumentParser) -> None:
    _add_label(parser, "the label to change (default production, what 'deploy' means)")
    parser.add_argument("--note", default="", help="why (kept in the release history)")
    parser.add_argument("--by", help="who (free text)")
    parser.add_argument(
        "--expect-release",
        type=release_ref,
        metavar="RELEASE",
        help="fail (409) unless this release (a number, 7 or #7, or its id) is still the "
        "label's current one",
    )


def _add_version_create(versions: _Commands) -> None:
    create = versions.add("create", "add a version (immutable)")
    prompt = create.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--prompt-file", metavar="PATH", help="system prompt file ('-': stdin)")
    prompt.add_argument("--prompt", metavar="TEXT", help="system prompt text")
    create.add_argument("--model", required=True, help="LiteLLM model string")
    create.add_argument(
        "--param",
        type=param,
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
    update = models.add("update", "change a chat model's description or retention")
    update.add_argument("--description", metavar="TEXT", help="the new description")
    update.add_argument(
        "--retention-days",
        type=retention,
        metavar="N|none",
        help="`chatmodel gc` deletes its sessions idle for longer than N days; none: keep "
        "them forever",
    )

    versions = commands.group("versions", "versions of a chat model")
    _add_version_create(versions)
    versions.add("list", "list a chat model's versions")
    versions.add("show", "show one version").add_argument(
        "number", type=version_number, metavar="N", help=VERSION_HELP
    )
    trial = versions.add("test", "one model call on a version with a message; stores nothing")
    trial.add_argument("number", type=version_number, metavar="N", help=VERSION_HELP)
    trial.add_argument("message", metavar="MESSAGE", help="the user message ('-': read stdin)")
    _add_variables(trial)
    diff = commands.add("diff", "what changes from version A to version B")
    diff.add_argument(
        "from_number", type=version_number, metavar="A", help="the version before (3 or v3)"
    )
    diff.add_argument(
        "to_number", type=version_number, metavar="B", help="the version after (4 or v4)"
    )


def _add_release_commands(commands: _Commands) -> None:
    publish = commands.add(
        "publish", "point 'deploy' (or --label) at VERSION, or split it with --weights"
    )
    publish.add_argument(
        "version",
        nargs="?",
        type=version_number,
        metavar="VERSION",
        help="the version to publish (3 or v3); omit with --weights",
    )
    publish.add_argument(
        "--weights", type=weights, metavar="V=PCT,...", help="a split, e.g. v3=50,v4=50"
    )
    publish.add_argument(
        "--allow-variable-mismatch",
        action="store_true",
        help="publish a split of versions that declare different template variables",
    )
    _add_release_options(publish)
    _add_release_options(commands.add("rollback", "republish the previous release"))
    _add_label(
        commands.add("releases", "release history, newest first"),
        "this label's history (default production; 'all': every label's)",
    )
    commands.add("stats", "sessions, runs, tokens, cost and latency").add_argument(
        "number", type=version_number, metavar="N", help=VERSION_HELP
    )


def _add_session_commands(commands: _Commands) -> None:
    sessions = commands.group("sessions", "sessions")
    listed = sessions.add("list", "sessions, newest first, filtered", named=False)
    listed.add_argument("name", nargs="?", metavar="NAME", help="only this chat model's")
    listed.add_argument(
        "--version",
        dest="pin_version",
        type=version_number,
        metavar="N",
        help="only sessions on this version (3 or v3)",
    )
    listed.add_argument("--user-id", metavar="ID", help="only this metadata.user_id's")
    listed.add_argument("--since", type=when, metavar="DATE", help="created at or after")
    listed.add_argument("--until", type=when, metavar="DATE", help="created before")
    errors = listed.add_mutually_exclusive_group()
    errors.add_argument(
        "--has-errors",
        dest="has_errors",
        action="store_const",
        const=True,
        help="only sessions with a failed run",
    )
    errors.add_argument(
        "--no-errors",
        dest="has_errors",
        action="store_const",
        const=False,
        help="only sessions without one",
    )
    listed.add_argument("--search", metavar="TEXT", help="only sessions whose messages hold it")
    listed.add_argument(
        "--limit", type=positive_int, default=50, help="sessions to show (default 50)"
    )
    listed.add_argument("--cursor", metavar="CURSOR", help="the next page, as the last one said")
    show = sessions.add("show", "a session and its messages", named=False)
    show.add_argument("uuid", type=uuid.UUID, metavar="UUID", help="the session's uuid")
    show.add_argument(
        "--limit", type=positive_int, default=100, help="messages to show (default 100)"
    )


def _add_usage_command(commands: _Commands) -> None:
    usage = commands.add("usage", "runs, errors, tokens and cost per group", named=False)
    usage.add_argument("--chat-model", metavar="NAME", help="only this chat model's runs")
    usage.add_argument("--since", type=when, metavar="DATE", help="from (default: 30 days ago)")
    usage.add_argument("--until", type=when, metavar="DATE", help="to, excluded (default: now)")
    usage.add_argument(
        "--group-by",
        default="version",
        metavar="GROUPING",
        help="version (the default), day, key, or version,day",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatmodel",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"chatmodel {__version__}")
    _add_global_options(parser, top_level=True)
    commands = _Commands(parser)
    _add_conversation_commands(commands)
    _add_catalog_commands(commands)
    _add_release_commands(commands)
    _add_session_commands(commands)
    _add_usage_command(commands)
    server = "(needs chatmodel[server])"
    commands.actions.add_parser("serve", help=f"start the server {server}")
    commands.actions.add_parser("db", help=f"database migrations {server}")
    commands.actions.add_parser("keys", help=f"API keys, in the database {server}")
    commands.actions.add_parser("gc", help=f"delete sessions past their retention {server}")
    return parser


def _take_late_version(
    parser: argparse.ArgumentParser, args: argparse.Namespace, extras: list[str]
) -> None:
    """argparse fills ``publish NAME [VERSION]`` from the first run of positionals only, so
    ``publish NAME --note x 3`` leaves ``3`` over: take it as the VERSION."""
    late = len(extras) == 1 and not extras[0].startswith("-")
    if args.command == "publish" and args.version is None and late:
        try:
            args.version = version_number(extras[0])
        except argparse.ArgumentTypeError as exc:
            parser.error(f"argument VERSION: {exc}")
        return
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")


def parse_arguments(arguments: Sequence[str]) -> argparse.Namespace:
    """The command line parsed (argparse exits with status 2 on a usage error)."""
    parser = build_parser()
    args, extras = parser.parse_known_args(arguments)
    _take_late_version(parser, args, extras)
    return args
