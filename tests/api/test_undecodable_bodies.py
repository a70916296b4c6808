"""A body that cannot be read as JSON is a 422 ``validation_error`` with ``field: "body"``
and a message saying why, like truncated JSON; on the OpenAI-compatible routes the same
error in OpenAI's shape (400, ``param: "body"``)."""

from __future__ import annotations

import httpx
import pytest

JSON = "application/json"

# (body, content type, words the message has)
UNDECODABLE = [
    pytest.param(b'{"chat_model": "caf\xe9"}', JSON, "not valid UTF-8", id="invalid-utf-8"),
    pytest.param(
        '{"chat_model": "café"}'.encode("latin-1"),
        f"{JSON}; charset=latin-1",
        "charset latin-1 is not supported",
        id="latin-1-charset",
    ),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, JSON, "nested too deeply", id="deep-nesting"),
    pytest.param(
        b'{"chat_model": "assistant", "metadata": {"n": ' + b"9" * 5000 + b"}}",
        JSON,
        "integer with too many digits",
        id="5000-digit-integer",
    ),
    pytest.param(b'{"chat_model": ', JSON, "not valid JSON", id="truncated"),
]


@pytest.mark.parametrize(("body", "content_type", "words"), UNDECODABLE)
@pytest.mark.parametrize("path", ["/v1/sessions", "/v1/chat-models"])
async def test_an_undecodable_body_is_a_422_for_the_body(
    client: httpx.AsyncClient, path: str, body: bytes, content_type: str, words: str
) -> None:
    response = await client.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "validation_error", error
    assert error["field"] == "body", error
    assert error["errors"] == [{"field": "body", "message": error["errors"][0]["message"]}]
    assert words in error["detail"], error


@pytest.mark.parametrize(("body", "content_type", "words"), UNDECODABLE)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
async def test_an_undecodable_body_on_an_openai_route_is_openais_400_for_the_body(
    client: httpx.AsyncClient, path: str, body: bytes, content_type: str, words: str
) -> None:
    response = await client.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error", error
    assert error["code"] == "validation_error", error
    assert error["param"] == "body", error
    assert words in error["message"], error


async def test_a_utf_8_body_declaring_another_charset_is_read_as_utf_8(
    client: httpx.AsyncClient,
) -> None:
    # JSON is UTF-8 (RFC 8259): a body that is valid UTF-8 is read, whatever it declares.
    response = await client.post(
        "/v1/chat-models",
        content=b'{"name": "assistant"}',
        headers={"content-type": f"{JSON}; charset=latin-1"},
    )
    assert response.status_code == 201, response.text


async def test_nesting_up_to_the_parsers_limit_is_never_a_500(client: httpx.AsyncClient) -> None:
    # The NUL check parses the body again, deeper in the stack: a body the route's parser
    # had read could be too deep for it (a RecursionError, a 500).
    async def post_nested(levels: int) -> httpx.Response:
        body = b'{"chat_model": "assistant", "metadata": %s"\\u0000"%s}' % (
            b"[" * levels,
            b"]" * levels,
        )
        return await client.post("/v1/sessions", content=body, headers={"content-type": JSON})

    readable, unreadable = 1, 100_000  # the parser reads the first, and not the second
    while unreadable - readable > 1:
        levels = (readable + unreadable) // 2
        if (await post_nested(levels)).json()["field"] == "body":
            unreadable = levels
        else:
            readable = levels
    for levels in range(readable - 30, readable + 1):
        response = await post_nested(levels)
        assert response.status_code == 422, (levels, response.text)
        assert response.json()["field"].startswith("metadata"), (levels, response.text)
