"""Random sessions for property-based tests of the context window: user, assistant,
function and tool messages (several tool calls answered out of order, results of several
calls interleaved, ids used twice, orphan results, legacy function results after later
turns), each message with a token count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from chatmodel_service.runs.window import WindowMessage

RESULTS = ("tool", "function")
CALL_IDS = ("a", "b", "c", "d")  # few, so ids repeat across assistant messages
FUNCTIONS = ("f", "g")


@dataclass(frozen=True)
class Generated:
    """A session as OpenAI-format messages, each with its tokens."""

    messages: list[dict[str, Any]]
    tokens: list[int]

    def entries(self) -> list[WindowMessage]:
        return [WindowMessage.of(m, t) for m, t in zip(self.messages, self.tokens, strict=True)]

    def owner(self, index: int) -> int | None:
        """The ground truth, written out: a result belongs to the newest assistant message
        before it."""
        return next(
            (i for i in range(index - 1, -1, -1) if self.messages[i]["role"] == "assistant"),
            None,
        )

    def answered(self, index: int) -> bool:
        """Whether result ``index`` answers a call of its assistant message."""
        owner = self.owner(index)
        if owner is None:
            return False
        call, result = self.messages[owner], self.messages[index]
        if result["role"] == "tool":
            return result["tool_call_id"] in {c["id"] for c in call.get("tool_calls") or ()}
        function_call = call.get("function_call")
        return function_call is not None and result.get("name") in (None, function_call["name"])

    def results(self) -> list[int]:
        return [i for i, m in enumerate(self.messages) if m["role"] in RESULTS]


def tool_call(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "f", "arguments": "{}"}}


@st.composite
def sessions(draw: st.DrawFn, max_units: int = 16) -> Generated:
    messages: list[dict[str, Any]] = []
    chatter = st.sampled_from(["user", "system", "assistant"])

    def between() -> None:  # maybe a turn between a call and its result
        if draw(st.integers(0, 4)) == 0:
            messages.append({"role": draw(chatter), "content": "between"})

    def tool_result(call_id: str) -> None:
        messages.append({"role": "tool", "content": "result", "tool_call_id": call_id})

    def function_result() -> None:
        name = draw(st.sampled_from([None, *FUNCTIONS]))  # None: left out, as clients may
        messages.append({"role": "function", "content": "result"})
        if name is not None:
            messages[-1]["name"] = name

    kinds = ["user", "assistant", "system", "tools", "function", "tool result", "function result"]
    for unit in range(draw(st.integers(0, max_units))):
        kind = draw(st.sampled_from(kinds))
        if kind in ("user", "assistant", "system"):
            messages.append({"role": kind, "content": f"{kind} {unit}"})
        elif kind == "tools":  # several calls (an id maybe twice), answered in any order
            ids = draw(st.lists(st.sampled_from(CALL_IDS), min_size=1, max_size=3))
            calls = [tool_call(i) for i in ids]
            messages.append({"role": "assistant", "content": None, "tool_calls": calls})
            for answered in draw(st.permutations(ids)):
                if draw(st.integers(0, 5)) == 0:
                    continue  # never answered
                between()
                tool_result(answered)
                if draw(st.integers(0, 6)) == 0:
                    tool_result(answered)  # answered twice
        elif kind == "function":
            function_call = {"name": draw(st.sampled_from(FUNCTIONS)), "arguments": "{}"}
            messages.append({"role": "assistant", "content": None, "function_call": function_call})
            for _ in range(draw(st.integers(0, 2))):
                between()
                function_result()
        elif kind == "tool result":  # of an earlier call (interleaved, late) or of none
            tool_result(draw(st.sampled_from([*CALL_IDS, "nowhere"])))
        else:  # a legacy function result, maybe after later turns
            function_result()
    tokens = draw(st.lists(st.integers(1, 60), min_size=len(messages), max_size=len(messages)))
    return Generated(messages, tokens)
