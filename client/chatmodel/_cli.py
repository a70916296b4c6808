"""The ``chatmodel`` command: API commands over the REST API (``chat`` and ``run`` among
them), plus ``serve``, ``db``, ``keys``, ``gc``.

The API commands need only this package (httpx + pydantic) and talk to a running
server; ``serve``, ``db ...``, ``keys ...`` and ``gc`` are handed to ``chatmodel_service.cli``,
imported only then (it needs ``chatmodel[server]``). The server, the API key and the timeout are
resolved like a ``ChatModel``'s: ``--base-url``/``--api-key``/``--timeout``, then the
environment (``CHATMODEL_BASE_URL``, ``CHATMODEL_API_KEY``), then the defaults.
``--verbose`` says on stderr which were used and where they came from (a key by its prefix,
never its secret); a ``--base-url`` that overrides another ``CHATMODEL_BASE_URL`` is said
always.

The grammar (commands, options, argument types) is ``_cli_parser``'s, the human output
``_cli_render``'s and the conversations (``chat``, ``run``) ``_cli_chat``'s; this module asks
the server what each other command needs and reports.

Exit status: 0 done, 1 the server refused (``error: <detail> (field: <field>)``), could
not be reached, or the run failed (``error: the run failed (<error_type>): <error_log>``),
2 a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from chatmodel._admin import AdminClient, JsonObject
from chatmodel._cli_chat import chat, run_once
from chatmodel._cli_parser import VALUE_OPTIONS, UsageError, parse_arguments
from chatmodel._cli_render import RENDERERS, Renderer, refusal, run_failure
from chatmodel._cli_types import ReleaseRef
from chatmodel._config import (
    API_KEY_ENV,
    BASE_URL_ENV,
    ClientSettings,
    resolve_settings,
)
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
Conversation = Callable[[AdminClient, ClientSettings, argparse.Namespace, bool], int]
CONVERSATIONS: dict[str, Conversation] = {"chat": chat, "run": run_once}
# Commands whose answer is an LLMResponse: exit 1 when it says the run failed.
RUN_RESULTS = frozenset({"versions test"})


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


def _release_id(admin: AdminClient, name: str, release: ReleaseRef) -> str:
    """``--expect-release``'s release id: as given, or found by its number."""
    if not isinstance(release, int):
        return str(release)
    history = admin.list_releases(name, "all")["data"]
    for item in history:
        if item["release"] == release:
            return str(item["id"])
    known = f"its newest is #{history[0]['release']}" if history else "it has none yet"
    raise CommandFailed(
        f"--expect-release {release}: chat model '{name}' has no release #{release} ({known})"
    )


def _release_change(admin: AdminClient, args: argparse.Namespace) -> JsonObject:
    change: JsonObject = {"note": args.note}
    if args.label is not None:
        change["label"] = args.label
    if args.by is not None:
        change["by"] = args.by
    if args.expect_release is not None:
        change["expected_release"] = _release_id(admin, args.name, args.expect_release)
    return change


def _publish(admin: AdminClient, args: argparse.Namespace) -> JsonObject:
    if (args.version is None) == (args.weights is None):
        raise UsageError("give a VERSION to publish, or --weights for a split (not both)")
    chosen: JsonObject = (
        {"version": args.version} if args.weights is None else {"weights": args.weights}
    )
    if args.allow_variable_mismatch:
        if args.weights is None:
            raise UsageError("--allow-variable-mismatch goes with --weights (a split)")
        chosen["allow_variable_mismatch"] = True
    return admin.publish(args.name, _release_change(admin, args) | chosen)


def _model_changes(admin: AdminClient, args: argparse.Namespace) -> JsonObject:
    changes: JsonObject = {}
    if args.description is not None:
        changes["description"] = args.description
    if args.retention_days is not None:
        changes["retention_days"] = args.retention_days.days
    if not changes:
        raise UsageError("give --description or --retention-days (or both)")
    return admin.update_chat_model(args.name, changes)


def _trial(admin: AdminClient, args: argparse.Namespace) -> JsonObject:
    message = _read_text("-").rstrip("\n") if args.message == "-" else args.message
    trial: JsonObject = {"message": message}
    if args.var:
        trial["variables"] = dict(args.var)
    return admin.trial_version(args.name, args.number, trial)


def _given(query: dict[str, str | int | bool | None]) -> dict[str, str | int]:
    """The query parameters that were given; booleans as ``true``/``false``."""
    return {
        key: ("true" if item else "false") if isinstance(item, bool) else item
        for key, item in query.items()
        if item is not None
    }


def _sessions(admin: AdminClient, args: argparse.Namespace) -> JsonObject:
    query = {
        "chat_model": args.name,
        "version": args.pin_version,
        "user_id": args.user_id,
        "created_after": args.since,
        "created_before": args.until,
        "has_errors": args.has_errors,
        "q": args.search,
        "limit": args.limit,
        "cursor": args.cursor,
    }
    return admin.list_sessions(_given(query))


def _usage(admin: AdminClient, args: argparse.Namespace) -> JsonObject:
    query = {
        "chat_model": args.chat_model,
        "from": args.since,
        "to": args.until,
        "group_by": args.group_by,
    }
    return admin.usage(_given(query))


def _session(admin: AdminClient, args: argparse.Namespace) -> JsonObject:
    session = admin.get_session(str(args.uuid))
    return {"session": session, "messages": admin.list_messages(str(args.uuid), args.limit)}


FETCHES: dict[str, Fetch] = {
    "models list": lambda admin, args: admin.list_chat_models(),
    "models show": lambda admin, args: admin.get_chat_model(args.name),
    "models create": lambda admin, args: admin.create_chat_model(args.name, args.description),
    "models update": _model_changes,
    "versions create": lambda admin, args: admin.create_version(args.name, _version_body(args)),
    "versions list": lambda admin, args: admin.list_versions(args.name),
    "versions show": lambda admin, args: admin.get_version(args.name, args.number),
    "versions test": _trial,
    "diff": lambda admin, args: admin.diff(args.name, args.from_number, args.to_number),
    "publish": _publish,
    "rollback": lambda admin, args: admin.roll_back(args.name, _release_change(admin, args)),
    "releases": lambda admin, args: admin.list_releases(args.name, args.label),
    "stats": lambda admin, args: admin.version_stats(args.name, args.number),
    "sessions list": _sessions,
    "sessions show": _session,
    "usage": _usage,
}


# -- running --------------------------------------------------------------------------


def _server_command(argv: Sequence[str]) -> list[str] | None:
    """``argv`` from the command on if the command is ``serve``, ``db``, ``keys`` or ``gc``
    (after ``--json``, when that came before the command: the server's parser knows it)."""
    index = 0
    while index < len(argv):
        token = argv[index]
        if not token.startswith("-"):
            if token not in SERVER_COMMANDS:
                return None
            return ["--json"] * ("--json" in argv[:index]) + list(argv[index:])
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


class CommandFailed(Exception):
    """The command could not be done as asked, for a reason the server's data gives
    (exit status 1), e.g. an ``--expect-release`` number the chat model does not have."""


# -- where the server and the key came from -------------------------------------------

KEY_PREFIX = re.compile(r"cm_[0-9a-f]{8}_")


def _key_given(args: argparse.Namespace) -> bool:
    return bool(args.api_key or os.environ.get(API_KEY_ENV))


def _origin(option: str | None, name: str, env: str) -> str:
    if option:
        return f"from {name}"
    return f"from {env}" if os.environ.get(env) else "the default"


def describe_settings(args: argparse.Namespace, settings: ClientSettings) -> list[str]:
    """``--verbose``'s lines: the server and the key used, and where each came from. A key
    is named by its prefix (``cm_1a2b3c4d_…``), never shown whole."""
    origin = _origin(args.base_url, "--base-url", BASE_URL_ENV)
    hint = f"; set --base-url or {BASE_URL_ENV}" if origin == "the default" else ""
    lines = [f"server {settings.base_url} ({origin}{hint})"]
    key = settings.api_key
    if not key:
        lines.append(f"no API key (set --api-key or {API_KEY_ENV} if the server needs one)")
    else:
        prefix = KEY_PREFIX.match(key)
        shown = f"{prefix.group(0)}…" if prefix else "not of the form cm_<prefix>_…"
        lines.append(f"API key {shown} ({_origin(args.api_key, '--api-key', API_KEY_ENV)})")
    return lines


def _overridden_server(args: argparse.Namespace, settings: ClientSettings) -> str | None:
    """The line that says a ``--base-url`` is used instead of the configured server."""
    configured = (os.environ.get(BASE_URL_ENV) or "").rstrip("/")
    if not args.base_url or not configured or configured == settings.base_url:
        return None
    return f"server {settings.base_url} (from --base-url, not {BASE_URL_ENV}'s {configured})"


def _settings(args: argparse.Namespace) -> ClientSettings:
    try:
        settings = resolve_settings(args.base_url, args.api_key, args.timeout)
    except ValueError as exc:  # a --base-url / CHATMODEL_BASE_URL that is not http(s)
        raise UsageError(str(exc)) from None
    announced = describe_settings(args, settings) if args.verbose else []
    overridden = _overridden_server(args, settings)
    if not args.verbose and overridden is not None:
        announced = [overridden]
    for line in announced:
        print(f"chatmodel: {line}", file=sys.stderr)
    return settings


def _run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with AdminClient(settings) as admin:
        conversation = CONVERSATIONS.get(args.command)
        if conversation is not None:
            return conversation(admin, settings, args, _key_given(args))
        document = FETCHES[args.command](admin, args)
    _print_document(document, args)
    if args.command in RUN_RESULTS and document.get("error"):
        failure = run_failure(
            document.get("error_type"), document.get("error_log"), key_given=_key_given(args)
        )
        print(failure, file=sys.stderr)
        return 1
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
    except CommandFailed as exc:
        _report(str(exc))
        return 1
    except APIError as exc:
        _report(refusal(exc, key_given=_key_given(args)))
        return 1
    except APIConnectionError as exc:
        hint = "" if isinstance(exc, APITimeoutError) else " (set --base-url or CHATMODEL_BASE_URL)"
        _report(f"{exc}{hint}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
