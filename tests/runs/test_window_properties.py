"""The context window builder (runs/window.py), property-based: for random sessions of
user, assistant, function and tool messages (several tool calls answered out of order,
results of several calls interleaved, ids used twice, orphan results, legacy function
results after later turns) and random budgets and strategies, what is sent keeps the
system prompt, never separates a call from its results, never sends a result without its
call, fits the budget, keeps the order, always contains the newest user message (or the
builder refuses, exactly when even that does not fit), and drops no more than it must.
Built on the newest messages only, a window the builder calls final is the one the whole
history gives."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chatmodel_service.runs.window import (
    STRATEGIES,
    Window,
    WindowMessage,
    build_window,
    units,
)
from chatmodel_service.sessions.messages import PendingCalls, answers
from tests.support.generated_sessions import RESULTS, Generated, sessions, tool_call


def acceptable_cut(session: Generated, k: int) -> bool:
    """The ground truth: messages[k:] starts no later than the assistant message of any
    result in it (results before any assistant message count from the session's start)."""
    for result in session.results():
        owner = session.owner(result)
        if (owner if owner is not None else 0) < k <= result:
            return False
    return True


def must_send_from(session: Generated) -> int:
    """Where the part that has to be sent starts: the newest user message (without one,
    the newest message), moved back to the start of the unit it sits in."""
    roles = [m["role"] for m in session.messages]
    if not roles:
        return 0
    start = len(roles) - 1 - roles[::-1].index("user") if "user" in roles else len(roles) - 1
    while not acceptable_cut(session, start):
        start -= 1
    return start


def tokens_from(session: Generated, k: int) -> int:
    return sum(session.tokens[k:])


def sent_indices(session: Generated, window: Window) -> list[int]:
    return window.sent_of(list(range(len(session.messages))))


@settings(max_examples=400, deadline=None)
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
    required = must_send_from(session)
    needed = system_tokens + tokens_from(session, required)
    budget = max(0, needed + slack)
    window = build_window(
        system_tokens, session.entries(), budget, strategy, last_n if strategy == "last_n" else None
    )
    assert window.final

    if not window.fits:
        # Refused exactly when even the required part does not fit, or (fail) the history.
        whole = system_tokens + tokens_from(session, 0)
        assert needed > budget or (strategy == "fail" and whole > budget)
        assert (window.sent, window.dropped, window.start) == (0, n, n)
        assert window.allowed == budget
        assert window.needed > budget
        assert window.no_user_message == ("user" not in [m["role"] for m in session.messages])
        return
    assert needed <= budget

    sent = sent_indices(session, window)
    assert window.sent == len(sent) and window.dropped == n - len(sent)
    # The newest part of the history, in order, less only the orphan results.
    assert sent == sorted(sent)
    skipped = set(range(window.start, n)) - set(sent)
    assert skipped == {
        r for r in session.results() if r >= window.start and not session.answered(r)
    }
    # The system prompt is kept and counted; the total fits (orphans take their room).
    assert window.tokens == system_tokens + sum(session.tokens[i] for i in sent)
    assert system_tokens + tokens_from(session, window.start) <= budget
    # As a model checks it: every result sent answers the newest assistant message sent
    # before it, so none comes first; every call sent comes with all its results.
    newest_assistant: int | None = None
    for i in sent:
        role = session.messages[i]["role"]
        if role == "assistant":
            newest_assistant = i
        elif role in RESULTS:
            assert newest_assistant is not None and session.owner(i) == newest_assistant, sent
            assert session.answered(i), sent
    for result in session.results():
        if session.answered(result) and session.owner(result) in sent:
            assert result in sent, (result, sent)
    # The newest user message (and its unit) is always sent.
    assert window.start <= required
    if "user" in [m["role"] for m in session.messages]:
        newest_user = max(i for i, m in enumerate(session.messages) if m["role"] == "user")
        assert newest_user in sent
    if strategy == "fail":
        assert window.start == 0
    if strategy == "last_n":
        assert n - window.start <= last_n or window.start == required
    # Nothing was dropped that could have been sent.
    for k in range(window.start):
        if not acceptable_cut(session, k):
            continue
        too_long = system_tokens + tokens_from(session, k) > budget
        too_many = strategy == "last_n" and n - k > last_n
        assert too_long or too_many, (k, window)


@settings(max_examples=400, deadline=None)
@given(
    session=sessions(max_units=24),
    system_tokens=st.integers(0, 80),
    budget=st.integers(0, 700),
    strategy=st.sampled_from(STRATEGIES),
    last_n=st.integers(1, 12),
    data=st.data(),
)
def test_a_final_window_of_the_newest_messages_is_the_whole_historys(
    session: Generated,
    system_tokens: int,
    budget: int,
    strategy: Any,
    last_n: int,
    data: st.DataObject,
) -> None:
    entries = session.entries()
    options: dict[str, Any] = {"last_n": last_n if strategy == "last_n" else None}
    whole = build_window(system_tokens, entries, budget, strategy, **options)
    read = data.draw(st.integers(1, max(1, len(entries))), label="messages read")
    older = len(entries) - read
    if older <= 0:
        return
    user_before = any(m["role"] == "user" for m in session.messages[:older])
    tail = build_window(
        system_tokens,
        entries[older:],
        budget,
        strategy,
        **options,
        older=True,
        user_before=user_before,
    )
    if not tail.final:
        return
    assert tail.fits == whole.fits
    assert tail.history_too_long == whole.history_too_long
    assert tail.no_user_message == whole.no_user_message
    if whole.fits:
        assert (older + tail.start, tail.sent, older + tail.dropped) == (
            whole.start,
            whole.sent,
            whole.dropped,
        )
        assert [older + i for i in tail.omitted] == list(whole.omitted)
        assert tail.tokens == whole.tokens
    elif tail.at_least:
        assert tail.needed <= whole.needed
    else:
        assert tail.needed == whole.needed


@settings(max_examples=300, deadline=None)
@given(session=sessions(max_units=20))
def test_linking_and_the_window_pair_results_alike(session: Generated) -> None:
    """A result that ``link_results`` would link to a waiting call is one the window sends
    with that call; one the window calls an orphan answers no waiting call."""
    orphans = set(units(session.entries()).orphans)
    assert orphans == {r for r in session.results() if not session.answered(r)}
    pending = PendingCalls()
    for index, message in enumerate(session.messages):
        if message["role"] in RESULTS:
            waiting = answers(
                message["role"],
                message.get("name"),
                message.get("tool_call_id"),
                pending.function_name,
                pending.tool_calls,
            )
            if waiting:
                assert index not in orphans
        pending.see(
            message["role"],
            message.get("name"),
            message.get("function_call"),
            message.get("tool_calls"),
            message.get("tool_call_id"),
        )


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
    assert not refused.history_too_long and not refused.no_user_message


def test_fail_sends_everything_or_nothing_and_last_n_counts_messages() -> None:
    messages = [{"role": "user", "content": str(i)} for i in range(5)]
    assert window_of(messages, 60, strategy="fail").start == 0
    refused = window_of(messages, 59, strategy="fail")
    assert not refused.fits and refused.history_too_long and refused.needed == 60
    assert window_of(messages, 1000, strategy="last_n", last_n=2).start == 3
    assert window_of(messages, 30, strategy="last_n", last_n=4).start == 3


ORPHAN = {"role": "tool", "tool_call_id": "nowhere", "content": "result"}


def sent_messages(messages: list[dict[str, Any]], window: Window) -> list[dict[str, Any]]:
    return window.sent_of(messages)


def test_an_orphan_result_is_never_sent_first_nor_anywhere() -> None:
    question = {"role": "user", "content": "q"}
    first = window_of([ORPHAN, question], 100)
    assert sent_messages([ORPHAN, question], first) == [question]
    assert (first.sent, first.dropped, first.tokens) == (1, 1, 20)

    middle = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    messages = [*middle, ORPHAN, question]
    window = window_of(messages, 100)
    assert sent_messages(messages, window) == [*middle, question]
    assert (window.sent, window.dropped, window.tokens) == (3, 1, 40)
    # It still takes its room: with space for three messages, only the newest unit fits.
    assert sent_messages(messages, window_of(messages, 40)) == [middle[1], question]


def test_results_answer_only_the_newest_assistant_message() -> None:
    first = {"role": "assistant", "content": None, "tool_calls": [tool_call("c1")]}
    second = {"role": "assistant", "content": None, "tool_calls": [tool_call("c2")]}
    late = {"role": "tool", "tool_call_id": "c1", "content": "late"}
    answer = {"role": "tool", "tool_call_id": "c2", "content": "on time"}
    question = {"role": "user", "content": "q"}
    messages: list[dict[str, Any]] = [question, first, second, late, answer, question]
    window = window_of(messages, 1000)
    assert sent_messages(messages, window) == [question, first, second, answer, question]


def test_a_legacy_function_result_after_later_turns_pairs_with_no_older_call() -> None:
    """[user, A(function_call), F, assistant, user, F2]: F2 comes after a plain assistant
    message, so it answers nothing (as ``link_results`` would say) and is not sent; the
    newest user message's unit starts at that assistant message, not back at A."""
    call = {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": ""}}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "weather?"},
        call,
        {"role": "function", "name": "f", "content": "13 degrees"},
        {"role": "assistant", "content": "13 degrees."},
        {"role": "user", "content": "q"},
        {"role": "function", "name": "f", "content": "stray"},
    ]
    window = window_of(messages, 40)  # the system prompt and three messages
    assert window.fits, window
    assert sent_messages(messages, window) == messages[3:5]
    assert (window.sent, window.dropped) == (2, 4)
    assert sent_messages(messages, window_of(messages, 1000)) == messages[:5]


def test_with_no_user_message_the_newest_unit_is_required_and_the_refusal_says_so() -> None:
    messages = [{"role": "assistant", "content": "a"}, *tool_unit("c1")]
    window = window_of(messages, 30)
    assert window.fits and window.start == 1
    refused = window_of(messages, 29)
    assert not refused.fits and refused.no_user_message and refused.needed == 30
