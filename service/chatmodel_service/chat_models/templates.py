"""System prompt templates: ``{{name}}`` placeholders filled per session. Pure functions.

Syntax:

* ``{{customer_name}}`` is a placeholder; whitespace inside the braces is allowed
  (``{{ customer_name }}``). Names match ``VARIABLE_NAME_PATTERN``.
* ``\\{{`` is a literal ``{{`` (the backslash is dropped). It is the only escape: any other
  backslash is kept as written, and ``}}`` on its own is plain text.
* Any other ``{{`` (``{{customer-name}}``, ``{{ }}``, an unclosed ``{{name``) is an error,
  so a typo in a placeholder is caught when the version is created, not sent to the model.

Values are inserted as written, in one pass: a value containing ``{{x}}`` stays literal.

A version declares its variables. ``check_prompt`` checks a new version's prompt against
them; ``check_values`` checks the values a session (or a trial run) fills in;
``render_system_prompt`` produces the prompt sent to the model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chatmodel_service.errors import InvalidInput

VARIABLE_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$"
MAX_VARIABLES = 64
MAX_VALUE_LENGTH = 10_000

_OPENING = re.compile(r"\\\{\{|\{\{")  # an escaped or a real "{{", leftmost first
_PLACEHOLDER = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]{0,63})\s*\}\}")
_ESCAPE = "\\{{"


class TemplateError(ValueError):
    """A ``{{`` that does not start a placeholder, or a placeholder without a value."""


@dataclass(frozen=True)
class Placeholder:
    name: str


Segment = str | Placeholder


def _where(text: str, position: int) -> str:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f"line {line}, column {column}"


def _snippet(text: str, start: int) -> str:
    end = text.find("}}", start + 2)
    if end != -1 and end - start <= 80 and "\n" not in text[start:end]:
        return text[start : end + 2]
    return text[start : start + 20].split("\n")[0] + "…"


def parse(text: str) -> tuple[Segment, ...]:
    """Split a template into literal text and placeholders; raises ``TemplateError``."""
    segments: list[Segment] = []
    literal: list[str] = []
    position = 0
    while (opening := _OPENING.search(text, position)) is not None:
        literal.append(text[position : opening.start()])
        if opening.group() == _ESCAPE:
            literal.append("{{")
            position = opening.end()
            continue
        placeholder = _PLACEHOLDER.match(text, opening.start())
        if placeholder is None:
            raise TemplateError(
                f"'{_snippet(text, opening.start())}' at {_where(text, opening.start())} is not "
                "a placeholder: write {{name}} with a name of letters, digits and _ (not "
                "starting with a digit, at most 64 characters), or \\{{ for literal braces"
            )
        if any(literal):
            segments.append("".join(literal))
        literal = []
        segments.append(Placeholder(placeholder.group(1)))
        position = placeholder.end()
    literal.append(text[position:])
    if any(literal):
        segments.append("".join(literal))
    return tuple(segments)


def placeholders(text: str) -> list[str]:
    """The placeholder names in order of first use, each once."""
    names = (s.name for s in parse(text) if isinstance(s, Placeholder))
    return list(dict.fromkeys(names))


def render(text: str, values: Mapping[str, str]) -> str:
    """The template with every placeholder replaced and every ``\\{{`` unescaped."""
    out: list[str] = []
    for segment in parse(text):
        if isinstance(segment, Placeholder):
            if segment.name not in values:
                raise TemplateError(f"no value for {{{{{segment.name}}}}}")
            out.append(values[segment.name])
        else:
            out.append(segment)
    return "".join(out)


def render_system_prompt(
    system_prompt: str, declared: Sequence[str] | None, values: Mapping[str, str] | None
) -> str:
    """The prompt sent to the model. A version that declares no variables (``None``, as
    every version before templates) is not a template: its prompt is sent verbatim."""
    if declared is None:
        return system_prompt
    return render(system_prompt, values or {})


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def check_prompt(system_prompt: str, declared: Sequence[str] | None) -> list[str] | None:
    """Check a new version's prompt against its declared variables; returns the variables
    to store. Raises ``InvalidInput`` naming ``system_prompt`` or ``variables``.

    A prompt without ``{{`` and without declared variables stays a plain prompt (``None``);
    a prompt that only escapes braces is stored as a template without variables (``[]``)
    so its ``\\{{`` are unescaped when it is sent.
    """
    try:
        used = placeholders(system_prompt)
    except TemplateError as exc:
        raise InvalidInput(str(exc), field="system_prompt") from None
    names = list(declared or [])
    undeclared = [n for n in used if n not in names]
    if undeclared:
        braces = ", ".join(f"{{{{{n}}}}}" for n in undeclared)
        raise InvalidInput(
            f"The system prompt uses {braces}, which variables does not declare; add "
            f"{_quoted(undeclared)} to variables, or write \\{{{{ for literal braces.",
            field="system_prompt",
        )
    unused = [n for n in names if n not in used]
    if unused:
        is_are, it = ("is", "it") if len(unused) == 1 else ("are", "them")
        braces = ", ".join(f"{{{{{n}}}}}" for n in unused)
        raise InvalidInput(
            f"{_quoted(unused)} {is_are} declared but the system prompt never uses {braces}; "
            f"remove {it} from variables or use {it} in the prompt.",
            field="variables",
        )
    if declared is None and "{{" not in system_prompt:
        return None
    return names


def check_values(
    declared: Sequence[str] | None, values: Mapping[str, str] | None, *, version: int | str
) -> dict[str, str] | None:
    """Check the values filled in for a version's variables: every declared one, nothing
    else. Returns what to store (``None`` for a version without variables). Raises
    ``InvalidInput`` naming ``variables.<name>``; ``version`` is its number, or what the
    messages call an unsaved one."""
    given = dict(values or {})
    who = f"version {version}" if isinstance(version, int) else version
    names = list(declared or [])
    missing = [n for n in names if n not in given]
    if missing:
        also = f" (also missing: {_quoted(missing[1:])})" if len(missing) > 1 else ""
        raise InvalidInput(
            f"missing: {who} declares '{missing[0]}'; give it a value in variables{also}.",
            field=f"variables.{missing[0]}",
        )
    extra = [n for n in given if n not in names]
    if extra:
        declares = f"it declares {_quoted(names)}" if names else "it declares no variables"
        raise InvalidInput(f"not declared by {who} ({declares}).", field=f"variables.{extra[0]}")
    return given if declared is not None else None
