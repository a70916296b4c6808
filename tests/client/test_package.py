"""The package's public surface: what `import chatmodel` offers and what it pulls in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import chatmodel


def test_all_is_sorted_and_every_name_exists() -> None:
    assert chatmodel.__all__ == sorted(chatmodel.__all__)
    missing = [name for name in chatmodel.__all__ if not hasattr(chatmodel, name)]
    assert missing == []


def test_import_does_not_load_the_server_or_its_dependencies() -> None:
    script = (
        "import sys, chatmodel\n"
        "banned = {'litellm', 'fastapi', 'sqlalchemy', 'starlette', 'chatmodel_service'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & banned))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_ships_py_typed() -> None:
    assert (Path(chatmodel.__file__).parent / "py.typed").is_file()


def test_error_classes_mirror_the_server_codes() -> None:
    assert issubclass(chatmodel.ChatModelNotFound, chatmodel.NotFoundError)
    assert issubclass(chatmodel.SessionNotFound, chatmodel.NotFoundError)
    assert issubclass(chatmodel.VersionNotFound, chatmodel.NotFoundError)
    assert issubclass(chatmodel.AlreadyExists, chatmodel.ConflictError)
    assert issubclass(chatmodel.ValidationError, chatmodel.InvalidInputError)
    assert issubclass(chatmodel.NothingPublished, chatmodel.InvalidInputError)
    assert issubclass(chatmodel.NotFoundError, chatmodel.APIError)
    assert issubclass(chatmodel.PayloadTooLarge, chatmodel.APIError)
    assert issubclass(chatmodel.APITimeoutError, chatmodel.APIConnectionError)
    assert not issubclass(chatmodel.APIConnectionError, chatmodel.APIError)
    assert issubclass(chatmodel.APIConnectionError, chatmodel.ChatModelError)
