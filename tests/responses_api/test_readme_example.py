"""The README's Responses and Conversations example runs as written against a real server
(uvicorn, the demo chat model on the offline model), with only its base URL changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.servers import LiveApp

README = Path(__file__).parents[2] / "docs" / "compat.md"  # linked from the README


def test_the_readme_responses_example_runs_as_written(
    live_app: LiveApp, capsys: pytest.CaptureFixture[str]
) -> None:
    section = README.read_text().split("## Responses and Conversations API", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert example.count("http://127.0.0.1:8000/v1") == 1
    example = example.replace("http://127.0.0.1:8000/v1", f"{live_app.base_url}/v1")

    exec(compile(example, "README.md", "exec"), {})

    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "Hello there",
        "And again",
        "['message', 'message', 'message', 'message']",
        'get_weather {"location": "Paris"}',
        "get_weather returned: 22 degrees",
        "Stream this",
        "completed",
    ]
