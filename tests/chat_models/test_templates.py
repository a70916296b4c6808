"""System prompt templates (``chat_models/templates.py``): parsing, rendering, and the
checks made when a version is created and when a session fills in its variables."""

from __future__ import annotations

import pytest

from chatmodel_service.chat_models.templates import (
    TemplateError,
    check_prompt,
    check_values,
    placeholders,
    render,
    render_system_prompt,
)
from chatmodel_service.errors import InvalidInput

# --- rendering -------------------------------------------------------------------------------


def test_placeholders_are_replaced() -> None:
    text = "Hello {{customer_name}}, you are on the {{plan}} plan."

    rendered = render(text, {"customer_name": "Ada", "plan": "pro"})

    assert rendered == "Hello Ada, you are on the pro plan."


@pytest.mark.parametrize("placeholder", ["{{ name }}", "{{name  }}", "{{\tname\n}}"])
def test_whitespace_inside_the_braces_is_allowed(placeholder: str) -> None:
    assert render(f"Hi {placeholder}!", {"name": "Ada"}) == "Hi Ada!"


def test_a_placeholder_used_twice_is_filled_twice_and_listed_once() -> None:
    text = "{{b}} and {{a}}, then {{ b }} again"

    assert placeholders(text) == ["b", "a"]
    assert render(text, {"a": "1", "b": "2"}) == "2 and 1, then 2 again"


def test_backslash_escapes_literal_braces() -> None:
    text = r"Reply in the form \{{answer}} and greet {{name}}."

    assert placeholders(text) == ["name"]
    assert render(text, {"name": "Ada"}) == "Reply in the form {{answer}} and greet Ada."


@pytest.mark.parametrize(
    "text",
    [
        r"A regex: \d+ and a path C:\temp",  # backslashes not before {{ are kept
        "JSON {'a': {'b': 1}} and closing braces }} alone",
        "single { braces } stay",
        "",
    ],
)
def test_text_without_placeholders_renders_unchanged(text: str) -> None:
    assert placeholders(text) == []
    assert render(text, {}) == text


def test_values_are_inserted_verbatim_in_one_pass() -> None:
    rendered = render("Hi {{name}}", {"name": r"{{plan}} \{{x}}"})

    assert rendered == r"Hi {{plan}} \{{x}}"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Hi {{customer-name}}", "{{customer-name}}"),
        ("Hi {{ }}", "{{ }}"),
        ("Hi {{1st}}", "{{1st}}"),
        ("Hi {{{name}}}", "{{{name}}"),
        ("Hi {{name", "{{name"),
        ("Hi {{" + "a" * 65 + "}}", "{{" + "a" * 65 + "}}"),
    ],
)
def test_a_double_brace_that_is_no_placeholder_is_an_error(text: str, shown: str) -> None:
    with pytest.raises(TemplateError) as caught:
        placeholders(text)

    message = str(caught.value)
    assert shown in message
    assert "line 1, column 4" in message
    assert r"\{{" in message  # says how to write literal braces


def test_error_position_counts_lines() -> None:
    with pytest.raises(TemplateError, match="line 3, column 6"):
        placeholders("one\ntwo\nthree{{ bad name }}")


def test_longest_name_is_a_placeholder() -> None:
    name = "a" * 64

    assert render("{{" + name + "}}", {name: "ok"}) == "ok"


def test_render_needs_every_value() -> None:
    with pytest.raises(TemplateError, match="name"):
        render("Hi {{name}}", {})


def test_a_prompt_without_declared_variables_is_sent_verbatim() -> None:
    # Versions stored before templates (variables NULL) keep their prompt exactly.
    text = r"Literal {{braces}} and \{{ stay"

    assert render_system_prompt(text, None, None) == text
    assert render_system_prompt(text, None, {"braces": "x"}) == text


def test_a_template_is_rendered_with_the_session_values() -> None:
    text = r"Hi {{name}} \{{"

    assert render_system_prompt(text, ["name"], {"name": "Ada"}) == "Hi Ada {{"
    assert render_system_prompt(r"Only \{{ here", [], None) == "Only {{ here"


# --- checks at version creation ------------------------------------------------------------


def test_declared_and_used_variables_are_stored() -> None:
    assert check_prompt("{{b}} {{a}}", ["a", "b"]) == ["a", "b"]


def test_a_plain_prompt_stays_plain() -> None:
    assert check_prompt("You are helpful.", None) is None
    assert check_prompt("You are helpful.", []) == []


def test_a_prompt_with_escapes_only_becomes_a_template_without_variables() -> None:
    assert check_prompt(r"Answer as \{{json}}", None) == []


@pytest.mark.parametrize("declared", [None, [], ["name"]])
def test_an_undeclared_placeholder_is_named(declared: list[str] | None) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_prompt("Hi {{name}}, on {{plan}}", declared)

    assert caught.value.field == "system_prompt"
    assert "{{plan}}" in caught.value.detail
    assert ("{{name}}" in caught.value.detail) is (declared != ["name"])


def test_a_declared_variable_never_used_is_named() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_prompt("Hi {{name}}", ["name", "plan", "tier"])

    assert caught.value.field == "variables"
    assert "'plan', 'tier'" in caught.value.detail
    assert "'name'" not in caught.value.detail


def test_an_escaped_placeholder_does_not_count_as_used() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_prompt(r"Hi \{{name}}", ["name"])

    assert (caught.value.field, "'name'" in caught.value.detail) == ("variables", True)


def test_a_malformed_placeholder_is_reported_on_the_prompt() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_prompt("Hi {{customer name}}", ["customer"])

    assert caught.value.field == "system_prompt"
    assert "{{customer name}}" in caught.value.detail


# --- checks when values are filled in ------------------------------------------------------


def test_every_declared_value_is_kept() -> None:
    values = {"name": "Ada", "plan": ""}

    assert check_values(["name", "plan"], values, version=3) == values


def test_a_missing_value_is_named() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_values(["name", "plan", "tier"], {"plan": "pro"}, version=3)

    assert caught.value.field == "variables.name"
    assert caught.value.detail.startswith("missing")
    assert "'tier'" in caught.value.detail  # the others are listed too


def test_an_extra_value_is_named() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_values(["name"], {"name": "Ada", "nickname": "A"}, version=3)

    assert caught.value.field == "variables.nickname"
    assert caught.value.detail.startswith("not declared by version 3")


def test_a_version_without_variables_takes_none() -> None:
    assert check_values(None, None, version=1) is None
    assert check_values(None, {}, version=1) is None
    with pytest.raises(InvalidInput) as caught:
        check_values(None, {"name": "Ada"}, version=1)
    assert caught.value.field == "variables.name"
    assert "declares no variables" in caught.value.detail
