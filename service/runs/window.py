"""Which of a session's messages a run sends: the context window. Pure, no I/O.

The window is always the newest part of the history (oldest messages are dropped
first, none from the middle), cut only where no call is separated from its result:

* an assistant message with ``tool_calls`` and the ``tool`` messages answering them
  (matched by ``tool_call_id``), and an assistant ``function_call`` and the
  ``function`` messages after it, are one unit with everything between them;
* the window never starts with a function or tool result;
* the newest user message and everything after it are always in the window (with no
  user message, the newest unit); if even that does not fit, nothing is sent.

Strategies: ``truncate`` keeps as many of the newest messages as fit; ``last_n`` also
keeps at most ``last_n`` of them (fewer when the N-th would split a unit; more only
when the newest user message is further back); ``fail`` sends the whole history or,
when it does not fit, nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Literal

Strategy = Literal["truncate", "last_n", "fail"]
STRATEGIES: tuple[Strategy, ...] = ("truncate", "last_n", "fail")
RESULT_ROLES = frozenset({"function", "tool"})


@dataclass(frozen=True)
class WindowMessage:
    """What the builder needs to know of one message: its role, its tokens, and the
    calls it makes or answers."""

    role: str
    tokens: int
    tool_call_ids: tuple[str, ...] = ()  # assistant: the ids of its tool calls
    calls_function: bool = False  # assistant: it has a function_call
    tool_call_id: str | None = None  # tool: the call it answers

    @classmethod
    def of(cls, message: dict[str, Any], tokens: int) -> WindowMessage:
        """From an OpenAI-format message."""
        return cls(
            role=str(message["role"]),
            tokens=tokens,
            tool_call_ids=tuple(str(c["id"]) for c in message.get("tool_calls") or ()),
            calls_function=bool(message.get("function_call")),
            tool_call_id=message.get("tool_call_id"),
        )


@dataclass(frozen=True)
class Window:
    """The builder's answer. ``messages[start:]`` are sent when ``fits``.

    ``tokens`` is the system prompt's tokens plus those of the sent messages. When the
    window does not fit (``fits`` False, ``start == len(messages)``), ``needed`` is what
    the smallest acceptable prompt needs (``fail``: the whole history) against
    ``allowed``, the budget; ``history_too_long`` says it was the ``fail`` strategy's
    whole history, not the newest user message, that did not fit.
    """

    start: int
    sent: int
    dropped: int
    tokens: int
    fits: bool
    needed: int
    allowed: int
    history_too_long: bool = False


def answered_calls(messages: Sequence[WindowMessage]) -> tuple[list[tuple[int, int]], list[int]]:
    """(call index, result index) pairs, and the indices of results with no call before
    them among ``messages``. A tool result answers the newest earlier assistant message
    with its ``tool_call_id``; a function result the newest earlier function call."""
    pairs: list[tuple[int, int]] = []
    unanswered: list[int] = []
    function_call: int | None = None
    tool_calls: dict[str, int] = {}
    for index, message in enumerate(messages):
        call: int | None = None
        if message.role == "assistant":
            if message.calls_function:
                function_call = index
            for call_id in message.tool_call_ids:
                tool_calls[call_id] = index
            continue
        if message.role == "function":
            call = function_call
        elif message.role == "tool":
            call = tool_calls.get(message.tool_call_id or "")
        else:
            continue
        if call is None:
            unanswered.append(index)
        else:
            pairs.append((call, index))
    return pairs, unanswered


def cut_points(messages: Sequence[WindowMessage]) -> list[int]:
    """Every ``k`` for which ``messages[k:]`` is an acceptable window, ascending: no call
    before ``k`` with its result at or after it, and no result at ``k``. ``0`` (the whole
    history, as stored) and ``len(messages)`` (nothing) are always acceptable."""
    n = len(messages)
    spanning = [0] * (n + 2)  # difference array: cuts a+1..b split the pair (a, b)
    pairs, _ = answered_calls(messages)
    for call, result in pairs:
        spanning[call + 1] += 1
        spanning[result + 1] -= 1
    cuts = [0]
    open_pairs = spanning[0]
    for k in range(1, n + 1):
        open_pairs += spanning[k]
        if open_pairs == 0 and (k == n or messages[k].role not in RESULT_ROLES):
            cuts.append(k)
    return cuts


def required_start(messages: Sequence[WindowMessage], cuts: Sequence[int]) -> int:
    """Where the part that must be sent begins: the last cut at or before the newest
    user message; without a user message, the last cut before the end (the newest
    unit), or the end when there are no messages."""
    n = len(messages)
    newest_user = next((i for i in range(n - 1, -1, -1) if messages[i].role == "user"), None)
    limit = newest_user if newest_user is not None else n - 1
    return max((k for k in cuts if k <= limit), default=n)


def build_window(
    system_tokens: int,
    messages: Sequence[WindowMessage],
    budget: int,
    strategy: Strategy = "truncate",
    last_n: int | None = None,
) -> Window:
    """The newest messages that fit ``budget`` tokens together with the system prompt
    (``system_tokens``), following ``strategy`` (see the module's rules)."""
    n = len(messages)
    # suffix[k]: the tokens of messages[k:]
    suffix = list(accumulate((m.tokens for m in reversed(messages)), initial=0))[::-1]
    cuts = cut_points(messages)
    required = required_start(messages, cuts)

    def window(start: int) -> Window:
        tokens = system_tokens + suffix[start]
        return Window(start, n - start, start, tokens, True, tokens, budget)

    def refused(needed: int, *, history: bool = False) -> Window:
        return Window(n, 0, n, system_tokens, False, needed, budget, history)

    if system_tokens + suffix[required] > budget:
        return refused(system_tokens + suffix[required])
    if strategy == "fail":
        if system_tokens + suffix[0] > budget:
            return refused(system_tokens + suffix[0], history=True)
        return window(0)
    limit = last_n if strategy == "last_n" and last_n is not None else n
    start = next(
        k for k in cuts if k == required or (system_tokens + suffix[k] <= budget and n - k <= limit)
    )
    return window(start)
