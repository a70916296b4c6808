"""The package's public surface: what `import chatmodel` offers and what it pulls in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import chatmodel

# Dunder names that are part of the public surface all the same.
PUBLIC_DUNDERS = frozenset({"__version__"})


def test_all_is_sorted_and_is_exactly_the_public_names() -> None:
    """As httpx checks its own: every public name of the package is in ``__all__`` and
    ``__all__`` names nothing else (submodules, private and dunder names aside)."""
    public = {
        name
        for name, value in vars(chatmodel).items()
        if (not name.startswith("_") or name in PUBLIC_DUNDERS)
        and not isinstance(value, ModuleType)
    }
    assert chatmodel.__all__ == sorted(chatmodel.__all__)
    assert len(chatmodel.__all__) == len(set(chatmodel.__all__))
    assert set(chatmodel.__all__) == public


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
    assert issubclass(chatmodel.MessageNotFound, chatmodel.NotFoundError)
    assert issubclass(chatmodel.AlreadyExists, chatmodel.ConflictError)
    assert issubclass(chatmodel.SessionBusyError, chatmodel.ConflictError)
    assert issubclass(chatmodel.AuthenticationError, chatmodel.APIError)
    assert issubclass(chatmodel.PermissionDeniedError, chatmodel.APIError)
    assert issubclass(chatmodel.RateLimitError, chatmodel.APIError)
    assert issubclass(chatmodel.ServiceUnavailableError, chatmodel.APIError)
    assert issubclass(chatmodel.ValidationError, chatmodel.InvalidInputError)
    assert issubclass(chatmodel.NothingPublished, chatmodel.InvalidInputError)
    assert issubclass(chatmodel.NotFoundError, chatmodel.APIError)
    assert issubclass(chatmodel.PayloadTooLarge, chatmodel.APIError)
    assert issubclass(chatmodel.APITimeoutError, chatmodel.APIConnectionError)
    assert not issubclass(chatmodel.APIConnectionError, chatmodel.APIError)
    assert issubclass(chatmodel.APIConnectionError, chatmodel.ChatModelError)
