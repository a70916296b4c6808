"""Which of a session's messages a run sends: the context window. Pure, no I/O.

Units. A function or tool result belongs to the newest assistant message before it (the
rule ``link_results`` follows too: ``sessions.messages.answers``). That assistant message,
the results after it up to the next assistant message, and whatever lies between are one
unit, sent whole or not at all. Results before the session's first assistant message form
one unit from the session's start.

Orphans. A result that does not answer its assistant message (none before it, one without
that call, a function result naming another function) is never sent: models reject a
result without its call. It is left out where it stands and counted as dropped; it still
takes its tokens' room in the window, so what a run reads stays bounded by what it sends.

The window is the newest part of the history (oldest messages dropped first, none from
the middle but orphans), starting only between units. The newest user message and
everything after it (with no user message, the newest unit) are always in the window; if
even that does not fit, nothing is sent.

Strategies: ``truncate`` keeps as many of the newest messages as fit; ``last_n`` also keeps
at most ``last_n`` of them, orphans included (fewer when the N-th would split a unit; more
only when the newest user message is further back); ``fail`` sends the whole history or,
when it does not fit, nothing.

Built on the newest messages only (``older``: older ones exist and were not read), the
builder says whether its window is ``final``: the one the whole history gives, whatever
the older messages are. It is once older messages could not be sent anyway (what was read
is over the budget, or over ``last_n`` messages) and what must be sent begins among those
read; or, when what must be sent begins further back and what was read is already over
the budget, the refusal is final.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Literal, TypeVar

from chatmodel_service.sessions.messages import answers

Strategy = Literal["truncate", "last_n", "fail"]
STRATEGIES: tuple[Strategy, ...] = ("truncate", "last_n", "fail")
RESULT_ROLES = frozenset({"function", "tool"})

T = TypeVar("T")


@dataclass(frozen=True)
class WindowMessage:
    """What the builder needs to know of one message: its role, its tokens, and the
    calls it makes or answers."""

    role: str
    tokens: int
    tool_call_ids: frozenset[str] = frozenset()  # assistant: the ids of its tool calls
    function_name: str | None = None  # assistant: the function its function_call calls
    name: str | None = None  # function result: the function it answers
    tool_call_id: str | None = None  # tool result: the call it answers

    @classmethod
    def of(cls, message: dict[str, Any], tokens: int) -> WindowMessage:
        """From an OpenAI-format message."""
        function_call = message.get("function_call")
        return cls(
            role=str(message["role"]),
            tokens=tokens,
            tool_call_ids=frozenset(str(c["id"]) for c in message.get("tool_calls") or ()),
            function_name=str(function_call.get("name") or "") if function_call else None,
            name=message.get("name"),
            tool_call_id=message.get("tool_call_id"),
        )

    def answered_by(self, result: WindowMessage) -> bool:
        """Whether ``result`` answers one of this (assistant) message's calls."""
        return answers(
            result.role, result.name, result.tool_call_id, self.function_name, self.tool_call_ids
        )


@dataclass(frozen=True)
class Window:
    """The builder's answer. When ``fits``, ``messages[start:]`` but the ``omitted``
    orphans are sent (``sent`` of them); ``dropped`` counts those before ``start`` and the
    orphans.

    ``tokens`` is the system prompt's tokens plus those of the sent messages. When the
    window does not fit (``fits`` False, ``start == len(messages)``), ``needed`` is what
    the smallest acceptable prompt needs (``fail``: the whole history), or at least needs
    (``at_least``: it reaches into older messages not read), against ``allowed``, the
    budget; ``history_too_long`` says it was the ``fail`` strategy's whole history, not
    the newest user message, that did not fit; ``no_user_message`` that the session has
    none (what must be sent is then its newest unit). Not ``final``: read older messages
    and build again (the other fields mean nothing yet).
    """

    start: int
    sent: int
    dropped: int
    tokens: int
    fits: bool
    needed: int
    allowed: int
    history_too_long: bool = False
    omitted: tuple[int, ...] = ()
    final: bool = True
    at_least: bool = False
    no_user_message: bool = False

    def sent_of(self, items: Sequence[T]) -> list[T]:
        """The items sent, of items in step with the messages the window was built on."""
        if not self.fits:
            return []
        omitted = set(self.omitted)
        return [item for i, item in enumerate(items) if i >= self.start and i not in omitted]


@dataclass(frozen=True)
class Units:
    """Where a window may start, ascending (``len(messages)``, nothing, always may), and
    the orphan results, which are never sent."""

    cuts: list[int]
    orphans: list[int]


def units(messages: Sequence[WindowMessage], *, older: bool = False) -> Units:
    """Cut the messages into units (see the module's doc). ``older``: the messages are the
    newest of the history, so results before the first assistant message among them belong
    to an older one, and no window of these messages alone may begin before them."""
    n = len(messages)
    spanning = [0] * (n + 2)  # difference array: cuts owner+1..result split a unit
    orphans: list[int] = []
    assistant: int | None = None
    for index, message in enumerate(messages):
        if message.role == "assistant":
            assistant = index
        elif message.role in RESULT_ROLES:
            owner = assistant if assistant is not None else (-1 if older else 0)
            spanning[owner + 1] += 1
            spanning[index + 1] -= 1
            if assistant is None or not messages[assistant].answered_by(message):
                orphans.append(index)
    cuts: list[int] = []
    open_units = 0
    for k in range(n + 1):
        open_units += spanning[k]
        if open_units == 0:
            cuts.append(k)
    return Units(cuts, orphans)


def required_start(
    messages: Sequence[WindowMessage], cuts: Sequence[int], *, older: bool, user_before: bool
) -> int | None:
    """Where the part that must be sent begins: the last cut at or before the newest user
    message; without a user message, the last cut before the end (the newest unit), or
    the end when there are no messages. None: it begins among older messages not read
    (``older``; ``user_before``: a user message is among them)."""
    n = len(messages)
    newest_user = next((i for i in range(n - 1, -1, -1) if messages[i].role == "user"), None)
    if newest_user is None and older and user_before:
        return None
    limit = newest_user if newest_user is not None else n - 1
    start = max((k for k in cuts if k <= limit), default=None)
    if start is None and not older:
        return n
    return start


def build_window(
    system_tokens: int,
    messages: Sequence[WindowMessage],
    budget: int,
    strategy: Strategy = "truncate",
    last_n: int | None = None,
    *,
    older: bool = False,
    user_before: bool = False,
) -> Window:
    """The newest messages that fit ``budget`` tokens together with the system prompt
    (``system_tokens``), following ``strategy`` (see the module's rules). ``older``: these
    are the newest messages of a longer history (``user_before``: the older ones hold a
    user message); the window may then not be ``final``."""
    n = len(messages)
    # suffix[k]: the tokens of messages[k:], orphans included
    suffix = list(accumulate((m.tokens for m in reversed(messages)), initial=0))[::-1]
    found = units(messages, older=older)
    required = required_start(messages, found.cuts, older=older, user_before=user_before)
    no_user = not any(m.role == "user" for m in messages) and not (older and user_before)
    read = system_tokens + suffix[0]  # every message older than these comes on top

    def window(start: int) -> Window:
        omitted = tuple(i for i in found.orphans if i >= start)
        tokens = system_tokens + suffix[start] - sum(messages[i].tokens for i in omitted)
        sent = n - start - len(omitted)
        return Window(start, sent, n - sent, tokens, True, tokens, budget, omitted=omitted)

    def refused(needed: int, *, history: bool = False, at_least: bool = False) -> Window:
        return Window(
            n,
            0,
            n,
            system_tokens,
            False,
            needed,
            budget,
            history_too_long=history,
            at_least=at_least,
            no_user_message=no_user,
        )

    unfinished = Window(n, 0, n, system_tokens, False, read, budget, final=False)
    if required is None:  # what must be sent holds all that was read, and more
        return refused(read, at_least=True) if read > budget else unfinished
    if system_tokens + suffix[required] > budget:
        return refused(system_tokens + suffix[required])
    if strategy == "fail":
        if read > budget:
            return refused(read, history=True, at_least=older)
        return unfinished if older else window(0)
    limit = last_n if strategy == "last_n" and last_n is not None else None
    if older and read <= budget and (limit is None or n < limit):
        return unfinished  # an older window might still fit
    start = next(
        k
        for k in found.cuts
        if k == required
        or (system_tokens + suffix[k] <= budget and (limit is None or n - k <= limit))
    )
    return window(start)
