"""The context window builder (runs/window.py), property-based: for random sessions of
user, assistant, function and tool messages and random budgets and strategies, what is
sent keeps the system prompt, never separates a call from its results, never starts with
a result, fits the budget, keeps the order, always contains the newest user message (or
the builder refuses, exactly when even that does not fit), and drops no more than it
must."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chatmodel_service.runs.window import (
    STRATEGIES,
    Window,
    WindowMessage,
    build_window,
)


@dataclass(frozen=True)
class Generated:
    """A session as OpenAI-format messages, each with its tokens and, for a result, the
    index of the call it answers (the ground truth the builder must respect)."""

    messages: list[dict[str, Any]]
    tokens: list[int]
    answers: list[int | None]

    def entries(self) -> list[WindowMessage]:
        return [WindowMessage.of(m, t) for m, t in zip(self.messages, self.tokens, strict=True)]

    def pairs(self) -> list[tuple[int, int]]:
        return [(call, i) for i, call in enumerate(self.answers) if call is not None]


FUNCTION_CALL = {"name": "f", "arguments": "{}"}


def tool_call(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": FUNCTION_CALL}


@st.composite
def sessions(draw: st.DrawFn) -> Generated:
    messages: list[dict[str, Any]] = []
    answers: list[int | None] = []
    chatter = st.sampled_from(["user", "assistant", "system"])

    def add(message: dict[str, Any], answer: int | None = None) -> None:
        messages.append(message)
        answers.append(answer)

    def maybe_chatter() -> None:  # a message between a call and its result
        if draw(st.integers(0, 4)) == 0:
            add({"role": draw(chatter), "content": "between"})

    for unit in range(draw(st.integers(0, 14))):
        kind = draw(st.sampled_from(["user", "assistant", "system", "tools", "function"]))
        if kind in ("user", "assistant", "system"):
            add({"role": kind, "content": f"{kind} {unit}"})
        elif kind == "tools":
            ids = [f"call_{unit}_{k}" for k in range(draw(st.integers(1, 3)))]
            call = len(messages)
            add({"role": "assistant", "content": None, "tool_calls": [tool_call(i) for i in ids]})
            for answered in draw(st.permutations(ids)):
                if draw(st.integers(0, 5)) == 0:
                    continue  # never answered
                maybe_chatter()
                add({"role": "tool", "content": "result", "tool_call_id": answered}, call)
        else:
            call = len(messages)
            add({"role": "assistant", "content": None, "function_call": FUNCTION_CALL})
            for _ in range(draw(st.integers(0, 2))):
                maybe_chatter()
                add({"role": "function", "name": "f", "content": "result"}, call)
    tokens = draw(st.lists(st.integers(1, 60), min_size=len(messages), max_size=len(messages)))
    return Generated(messages, tokens, answers)


def acceptable_cut(session: Generated, k: int) -> bool:
    """The ground truth: messages[k:] separates no call from its result and does not
    start with a result."""
    if any(call < k <= result for call, result in session.pairs()):
        return False
    if k in (0, len(session.messages)):
        return True
    return session.messages[k]["role"] not in ("tool", "function")


def must_send_from(session: Generated) -> int:
    """Where the part that has to be sent starts: the newest user message, moved back to
    the start of any call/result unit it sits in."""
    roles = [m["role"] for m in session.messages]
    if "user" not in roles:
        return max((k for k in range(len(roles)) if acceptable_cut(session, k)), default=len(roles))
    start = len(roles) - 1 - roles[::-1].index("user")
    while not acceptable_cut(session, start):
        start -= 1
    return start


def tokens_from(session: Generated, k: int) -> int:
    return sum(session.tokens[k:])


@settings(max_examples=200, deadline=None)
@given(
    session=sessions(),
    system_tokens=st.integers(0, 80),
    slack=st.integers(-100, 400),
    strategy=st.sampled_from(STRATEGIES),
    last_n=st.integers(1, 12),
)
def test_the_window_keeps_units_whole_fits_and_sends_the_newest_user_message(
    session: Generated, system_tokens: int, slack: int, strategy: Any, last_n: int
) -> None:
    n = len(session.messages)
    budget = max(0, system_tokens + tokens_from(session, must_send_from(session)) + slack)
    window = build_window(
        system_tokens, session.entries(), budget, strategy, last_n if strategy == "last_n" else None
    )
    required = must_send_from(session)
    needed = system_tokens + tokens_from(session, required)

    if not window.fits:
        # Refused exactly when even the required part does not fit, or (fail) the history.
        whole = system_tokens + tokens_from(session, 0)
        assert needed > budget or (strategy == "fail" and whole > budget)
        assert (window.sent, window.dropped, window.start) == (0, n, n)
        assert window.allowed == budget
        assert window.needed > budget
        return
    assert needed <= budget

    kept = list(range(window.start, n))  # in order, the newest part of the history
    assert window.sent == len(kept) and window.dropped == window.start
    # The system prompt is kept and counted; the total fits.
    assert window.tokens == system_tokens + sum(session.tokens[i] for i in kept)
    assert window.tokens <= budget
    # No orphan result, no call without its results, no result first.
    for call, result in session.pairs():
        assert (call in kept) == (result in kept), (call, result, window)
    if kept:
        assert session.messages[kept[0]]["role"] not in ("tool", "function")
    # The newest user message (and its unit) is always sent.
    assert window.start <= required
    if strategy == "fail":
        assert window.start == 0
    if strategy == "last_n":
        assert window.sent <= last_n or window.start == required
    # Nothing was dropped that could have been sent.
    for k in range(window.start):
        if not acceptable_cut(session, k):
            continue
        too_long = system_tokens + tokens_from(session, k) > budget
        too_many = strategy == "last_n" and n - k > last_n
        assert too_long or too_many, (k, window)


def tool_unit(call_id: str) -> list[dict[str, Any]]:
    return [
        {"role": "assistant", "content": None, "tool_calls": [tool_call(call_id)]},
        {"role": "tool", "tool_call_id": call_id, "content": "result"},
    ]


def window_of(messages: list[dict[str, Any]], budget: int, **options: Any) -> Window:
    return build_window(10, [WindowMessage.of(m, 10) for m in messages], budget, **options)


def test_a_tool_call_unit_at_the_boundary_is_dropped_whole() -> None:
    messages = [
        {"role": "user", "content": "old"},
        *tool_unit("c1"),
        {"role": "user", "content": "new"},
    ]
    # Room for the system prompt and two messages: the tool result would fit, its call not.
    window = window_of(messages, 30)
    assert (window.start, window.sent, window.dropped, window.tokens) == (3, 1, 3, 20)
    assert window_of(messages, 40).start == 1  # the unit, whole
    assert window_of(messages, 50).start == 0


def test_the_newest_user_message_and_what_follows_it_is_never_cut() -> None:
    messages = [{"role": "user", "content": "do it"}, *tool_unit("c1"), *tool_unit("c2")]
    assert window_of(messages, 60).start == 0
    refused = window_of(messages, 59)
    assert not refused.fits and (refused.needed, refused.allowed) == (60, 59)
    assert not refused.history_too_long


def test_fail_sends_everything_or_nothing_and_last_n_counts_messages() -> None:
    messages = [{"role": "user", "content": str(i)} for i in range(5)]
    assert window_of(messages, 60, strategy="fail").start == 0
    refused = window_of(messages, 59, strategy="fail")
    assert not refused.fits and refused.history_too_long and refused.needed == 60
    assert window_of(messages, 1000, strategy="last_n", last_n=2).start == 3
    assert window_of(messages, 30, strategy="last_n", last_n=4).start == 3
