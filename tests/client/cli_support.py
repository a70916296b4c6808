"""Running the ``chatmodel`` command line as a real process: with pipes (:func:`run_cli`),
or on a pseudo-terminal (:class:`TerminalSession`), where it sees a person typing.

Every wait is bounded: a command that hangs fails the test with what it printed so far.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

# Makes the pseudo-terminal the child's controlling terminal (so Ctrl-C there is a SIGINT
# to it), then becomes the command line. Done in the child, not with preexec_fn: the test
# process runs servers in threads.
_ON_A_TERMINAL = (
    "import fcntl, os, sys, termios\n"
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'chatmodel._cli', *sys.argv[1:]])\n"
)
WAIT_SECONDS = 30.0


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.code == 0, self.stderr
        return json.loads(self.stdout)


def cli_env(**extra: str) -> dict[str, str]:
    """The test's environment without CHATMODEL_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATMODEL_")}
    return env | extra


def run_cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Done:
    done = subprocess.run(
        [sys.executable, "-m", "chatmodel._cli", *args],
        env=env if env is not None else cli_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Done(done.returncode, done.stdout, done.stderr)


class TerminalSession:
    """``chatmodel ARGS`` with a pseudo-terminal as its stdin, stdout and stderr."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        controller, terminal = os.openpty()
        environment = (env if env is not None else cli_env()) | {"TERM": "dumb"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", _ON_A_TERMINAL, *args],
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            env=environment,
            start_new_session=True,
        )
        os.close(terminal)
        self.fd = controller
        self.output = ""  # everything read so far, "\r\n" as "\n"
        self.seen = 0  # how far read_until has consumed ``output``

    def __enter__(self) -> TerminalSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=WAIT_SECONDS)
        os.close(self.fd)

    def _read_some(self, deadline: float) -> bool:
        """Read what the command wrote, waiting until ``deadline``; False at its end."""
        ready, _, _ = select.select([self.fd], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            return True
        try:
            data = os.read(self.fd, 4096)
        except OSError:  # EIO: the command ended and closed the terminal
            return False
        if not data:
            return False
        self.output += data.decode(errors="replace").replace("\r\n", "\n")
        return True

    def read_until(self, text: str, timeout: float = WAIT_SECONDS) -> str:
        """What the command writes up to and including ``text`` (after the last match)."""
        deadline = time.monotonic() + timeout
        while text not in self.output[self.seen :]:
            if time.monotonic() >= deadline or not self._read_some(deadline):
                raise AssertionError(f"never printed {text!r}; it printed:\n{self.output}")
        end = self.output.index(text, self.seen) + len(text)
        shown, self.seen = self.output[self.seen : end], end
        return shown

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def interrupt(self) -> None:
        """Ctrl-C, as typed: the terminal sends SIGINT to the command."""
        self.type("\x03")

    def wait(self, timeout: float = WAIT_SECONDS) -> int:
        """The exit status, reading (and keeping) the rest of the output meanwhile."""
        deadline = time.monotonic() + timeout
        # The terminal reads as ended (EIO) once the command has exited and all it wrote
        # has been read.
        while time.monotonic() < deadline and self._read_some(deadline):
            pass
        try:
            return self.process.wait(timeout=max(deadline - time.monotonic(), 1.0))
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGKILL)
            raise AssertionError(f"did not end; it printed:\n{self.output}") from None
