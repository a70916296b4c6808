"""The run engine's declared surface: ``chatmodel_service.runs.__all__`` is what other
domains use, and the OpenAI-compatible and Responses APIs import nothing of runs but
those names."""

from __future__ import annotations

import ast
from pathlib import Path
from types import ModuleType

import pytest

import chatmodel_service.openai_compat
import chatmodel_service.responses_api
import chatmodel_service.runs as runs


def test_the_surface_is_sorted_and_every_name_exists() -> None:
    assert runs.__all__ == sorted(runs.__all__)
    missing = [name for name in runs.__all__ if not hasattr(runs, name)]
    assert missing == []


@pytest.mark.parametrize(
    "package", [chatmodel_service.openai_compat, chatmodel_service.responses_api]
)
def test_an_adapter_imports_only_the_surface_of_runs(package: ModuleType) -> None:
    folder = Path(str(package.__file__)).parent
    used: set[str] = set()
    for module in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(), str(module))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "chatmodel_service.runs"
            ):
                assert node.module == "chatmodel_service.runs", f"{module.name}: {node.module}"
                used |= {alias.name for alias in node.names}
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
                assert not any(n.startswith("chatmodel_service.runs") for n in names), module.name
    assert used, f"{folder.name} runs its calls through the run engine"
    assert used <= set(runs.__all__)
