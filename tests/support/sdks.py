"""Other APIs' published SDKs, each in a venv of its own, for the compatibility tests.

Their pins clash with ours (promptmodel wants an old LiteLLM, scale-egp pydantic v1-style
models), so none is installed into the project's venv: ``sdk_python("egp-1.1.15")`` gives
the interpreter of ``.sdk-venvs/egp-1.1.15/``, made from the package index the first time
(and again when ``SDKS`` changes its requirements), under a file lock so parallel workers
build it once. The README's test command builds them all before pytest starts
(``python -m tests.support.system``, or this module alone: ``python -m tests.support.sdks``),
so a test run needs no package index. A test then runs the SDK's own example code in that
interpreter, as a subprocess against a live server (``run_sdk``).

No SDK may reach the internet: ``run_sdk`` passes only the environment a test gives it
(plus PATH and HOME) and switches off the version checks SDKs make on import.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / ".sdk-venvs"

# name -> pip requirements of that venv (pinned: a test states which release it serves).
SDKS: dict[str, tuple[str, ...]] = {
    "promptmodel-0.2.1": ("promptmodel==0.2.1", "litellm==1.53.9"),
    "llm-engine-0.0.0b45": ("scale-llm-engine==0.0.0b45",),
    # Scale EGP: the newest release, and the last whose completions().create() takes no
    # account_id (1.1.8 made it a required argument), on pydantic 1.
    "egp-1.1.15": ("scale-egp==1.1.15",),
    "egp-1.1.7": ("scale-egp==1.1.7",),
    # The newest openai 3.x (the project's own is 2.x: LiteLLM pins openai<3), and
    # LangChain's OpenAI chat model, for the Responses API adapter.
    "openai-3.60.0": ("openai==3.60.0",),
    "langchain-openai-1.7.4": ("langchain-openai==1.7.4", "openai==3.60.0"),
}

# What every SDK process gets besides what the test passes: no phoning home.
QUIET_ENV = {
    "LLM_ENGINE_DISABLE_VERSION_CHECK": "true",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "NO_PROXY": "127.0.0.1,localhost",
    # LangChain: no LangSmith tracing.
    "LANGCHAIN_TRACING_V2": "false",
    "LANGSMITH_TRACING": "false",
}


def _stamp(requirements: tuple[str, ...]) -> str:
    return hashlib.sha256("\n".join(requirements).encode()).hexdigest()


def sdk_python(name: str) -> Path:
    """The interpreter of SDK venv ``name``, built if missing or out of date."""
    requirements = SDKS[name]
    venv = VENVS / name
    python = venv / "bin" / "python"
    stamp_file = venv / ".requirements-sha256"
    VENVS.mkdir(exist_ok=True)
    with open(VENVS / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp_file.exists() and stamp_file.read_text() == _stamp(requirements):
            return python
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        installed = subprocess.run(
            [str(python), "-m", "pip", "install", "-qq", *requirements],
            capture_output=True,
            text=True,
            env={**os.environ, **QUIET_ENV},
        )
        if installed.returncode != 0:
            raise RuntimeError(
                f"could not install {' '.join(requirements)} into {venv}:\n{installed.stderr}"
            )
        stamp_file.write_text(_stamp(requirements))
    return python


def run_sdk(
    name: str, code: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in SDK venv ``name`` with ``env`` (and nothing else of ours); the
    process's output and exit status are the test's to check."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    return subprocess.run(
        [str(sdk_python(name)), "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **QUIET_ENV, **env},
        cwd=str(VENVS),
    )


if __name__ == "__main__":
    for sdk in SDKS:
        print(f"{sdk}: {sdk_python(sdk)}")
