"""``chatmodel chat`` and ``chatmodel run``: talking to a chat model from the terminal.

Both open their session first: a new one is made at once (``POST /v1/sessions``, so an
unknown chat model or version, or a missing template value, is reported before anything
is typed, and the version it is pinned to can be named), and a ``--session`` is read
through its chat model's config (which says when there is no such session of NAME). Each
message is then added to the session and answered by the client's own run
(:class:`chatmodel.ChatModel`), streamed: the pieces are printed as they come. A failed
run is reported as its LLMResponse gives it, ``error_type`` and ``error_log``, on stderr;
``chat`` then goes on, ``run`` exits 1.

``chat`` reads stdin a line at a time, with a prompt and line editing on a terminal:
``exit``/``!exit`` or the end of the input (Ctrl-D) ends it with status 0, ``!multi``
starts a message of several lines that a line ``!end`` closes, Ctrl-C during a reply stops
it (the run is cancelled, so nothing is stored for it) and Ctrl-C at the prompt ends the
conversation (130).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import uuid
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from chatmodel._admin import AdminClient
from chatmodel._cli_parser import UsageError
from chatmodel._cli_render import calls_asked, refusal, run_failure
from chatmodel._client import ChatModel
from chatmodel._config import ClientSettings
from chatmodel._errors import APIConnectionError, APIError
from chatmodel._models import AssembledMessage, LLMResponse

PROMPT = "> "
MORE_PROMPT = "... "
EXIT_WORDS = frozenset({"exit", "!exit", "quit", "!quit"})
MULTI_START, MULTI_END = "!multi", "!end"
INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped with Ctrl-C
HELP_LINE = (
    "Type a message and press Enter; exit or Ctrl-D ends, !multi starts several lines "
    "(ended by !end), Ctrl-C stops a reply."
)


@dataclass
class Terminal:
    """Where the conversation is read from and written to, and whether a person types."""

    stdin: TextIO
    out: TextIO
    err: TextIO
    key_given: bool

    @property
    def interactive(self) -> bool:
        return self.stdin.isatty()

    def note(self, text: str) -> None:
        print(text, file=self.err, flush=True)


@dataclass
class Conversation:
    session: ChatModel
    version: int
    model: str
    continued: bool
    messages_so_far: int = 0

    @property
    def uuid(self) -> str:
        return self.session.session_uuid


def _new_session_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {
        "chat_model": args.name,
        "version": "deploy" if args.pin_version is None else args.pin_version,
        "session_uuid": str(uuid.uuid4()),
    }
    if args.var:
        body["variables"] = dict(args.var)
    if args.user_id is not None:
        body["metadata"] = {"user_id": args.user_id}
    return body


def open_conversation(
    admin: AdminClient, settings: ClientSettings, http: httpx.Client, args: argparse.Namespace
) -> Conversation:
    """The session to talk in: ``--session`` continued as it is, else a new one."""

    def chat_model(session_uuid: str) -> ChatModel:
        return ChatModel(
            args.name,
            session_uuid,
            base_url=settings.base_url,
            api_key=settings.api_key,
            timeout=settings.timeout,
            http_client=http,
        )

    if args.session is None:
        made = admin.create_session(_new_session_body(args))
        return Conversation(chat_model(made["uuid"]), made["version"], made["model"], False)
    if args.pin_version is not None or args.var or args.user_id is not None:
        raise UsageError(
            "--version, --var and --user-id set up a new session; a --session keeps its own"
        )
    session = chat_model(str(args.session))
    config = session.get_config()  # SessionNotFound unless NAME has this session
    return Conversation(
        session, config.version, config.model, True, messages_so_far=len(config.message_logs)
    )


def _announce(conversation: Conversation, args: argparse.Namespace, term: Terminal) -> None:
    who = f"{args.name} v{conversation.version} ({conversation.model})"
    if conversation.continued:
        count = conversation.messages_so_far
        term.note(f"{who}: session {conversation.uuid}, {count} messages so far")
    else:
        term.note(
            f"{who}: new session {conversation.uuid} "
            f"(continue it with --session {conversation.uuid})"
        )


# -- one reply ------------------------------------------------------------------------


def _calls(message: AssembledMessage | LLMResponse | None) -> list[str]:
    if message is None:
        return []
    dumped = message.model_dump(mode="json")
    return calls_asked(dumped.get("function_call"), dumped.get("tool_calls"))


def stream_reply(conversation: Conversation, term: Terminal) -> bool:
    """Stream the session's next reply to ``term.out``; whether the run worked. Ctrl-C
    (KeyboardInterrupt) closes the stream, which cancels the run, and is raised again."""
    wrote = False
    last = None
    with contextlib.closing(conversation.session.run(stream=True)) as chunks:
        try:
            for chunk in chunks:
                if chunk.content:
                    term.out.write(chunk.content)
                    term.out.flush()
                    wrote = True
                if chunk.done:
                    last = chunk
        except KeyboardInterrupt:
            if wrote:
                term.out.write("\n")
            raise
    if wrote:
        term.out.write("\n")
    for line in _calls(last.message if last is not None else None):
        term.out.write(line + "\n")
    term.out.flush()
    if last is None:  # the client always ends a stream with its last chunk; no guessing
        term.note("error: the reply's stream ended without its last event")
        return False
    if last.error:
        term.note(run_failure(last.error_type, last.error_log, key_given=term.key_given))
        return False
    return True


def whole_reply(conversation: Conversation, term: Terminal, *, as_json: bool) -> bool:
    """Wait for the session's next reply and print it (or its LLMResponse as JSON)."""
    response = conversation.session.run()
    if as_json:
        term.out.write(json.dumps(response.model_dump(mode="json"), indent=2) + "\n")
    else:
        lines = [response.content] if response.content else []
        for line in [*lines, *_calls(response)]:
            term.out.write(line + "\n")
    term.out.flush()
    if response.error:
        term.note(run_failure(response.error_type, response.error_log, key_given=term.key_given))
        return False
    return True


def _say(conversation: Conversation, text: str) -> None:
    conversation.session.add_messages([{"role": "user", "content": text}])


# -- the commands ---------------------------------------------------------------------


def run_once(
    admin: AdminClient, settings: ClientSettings, args: argparse.Namespace, key_given: bool
) -> int:
    """``chatmodel run NAME MESSAGE``: 0 when the reply came, 1 when the run failed."""
    term = Terminal(sys.stdin, sys.stdout, sys.stderr, key_given)
    text = term.stdin.read().rstrip("\n") if args.message == "-" else args.message
    if not text.strip():
        raise UsageError("the message is empty")
    with httpx.Client() as http:
        conversation = open_conversation(admin, settings, http, args)
        _say(conversation, text)
        streamed = term.out.isatty() and not args.no_stream and not args.json
        if streamed:
            worked = stream_reply(conversation, term)
        else:
            worked = whole_reply(conversation, term, as_json=args.json)
    if args.verbose or term.out.isatty():
        term.note(f"session {conversation.uuid} (continue it with --session {conversation.uuid})")
    return 0 if worked else 1


class LineReader:
    """The typed messages: a line each, or the lines between ``!multi`` and ``!end``;
    ``None`` once the input ends or says exit."""

    def __init__(self, term: Terminal) -> None:
        self.term = term
        self.ended = False

    def _line(self, prompt: str) -> str | None:
        if self.ended:
            return None
        if self.term.interactive:
            try:
                return input(prompt)
            except EOFError:
                self.ended = True
                self.term.out.write("\n")
                return None
        raw = self.term.stdin.readline()
        if not raw:
            self.ended = True
            return None
        return raw.rstrip("\r\n")

    def message(self) -> str | None:
        line = self._line(PROMPT)
        if line is None or line.strip() in EXIT_WORDS:
            return None
        if line.strip() != MULTI_START:
            return line
        lines: list[str] = []
        while (more := self._line(MORE_PROMPT)) is not None and more.strip() != MULTI_END:
            lines.append(more)
        return "\n".join(lines)


def _turn(conversation: Conversation, text: str, term: Terminal) -> None:
    """Send one message and stream its reply; a refusal is reported and the chat goes on."""
    try:
        _say(conversation, text)
    except APIError as exc:
        term.note(f"error: {refusal(exc, key_given=term.key_given)}")
        return
    except APIConnectionError as exc:
        term.note(f"error: {exc}")
        return
    stream_reply(conversation, term)


def chat(
    admin: AdminClient, settings: ClientSettings, args: argparse.Namespace, key_given: bool
) -> int:
    """``chatmodel chat NAME``: 0 when the conversation ends by exit or end of input."""
    if args.json:
        raise UsageError("chat prints a conversation; run --json prints one reply as JSON")
    term = Terminal(sys.stdin, sys.stdout, sys.stderr, key_given)
    if term.interactive:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing and history for input())
    with httpx.Client() as http:
        conversation = open_conversation(admin, settings, http, args)
        _announce(conversation, args, term)
        if term.interactive:
            term.note(HELP_LINE)
        reader = LineReader(term)
        while True:
            try:
                text = reader.message()
            except KeyboardInterrupt:
                term.out.write("\n")
                return INTERRUPTED
            if text is None:
                return 0
            if not text.strip():
                continue
            try:
                _turn(conversation, text, term)
            except KeyboardInterrupt:
                term.note("[stopped: the reply was cancelled]")
