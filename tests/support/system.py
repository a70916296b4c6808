"""The system packages the test suite needs, installed when missing (Debian's apt).

The README's test command runs ``python -m tests.support.system`` before pytest, so a
fresh machine needs no other step: Debian's Chromium for the admin page's browser tests
(Playwright drives the system browser: these machines cannot download Playwright's own)
and PostgreSQL 15, which every database test runs against besides SQLite (the tests start
a throwaway cluster of their own; see ``tests/support/postgres.py``). Nothing is done when
both are there. As a user other than root it uses ``sudo -n``; where apt-get is missing
or refuses, it says what to install and exits 1. Then it builds the venvs of the other
APIs' published SDKs that the compatibility tests run (``tests/support/sdks.py``), unless
they are already there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.browser import CHROMIUM
from tests.support.postgres import POSTGRES_BIN
from tests.support.sdks import SDKS, sdk_python


@dataclass(frozen=True)
class SystemPackage:
    name: str
    provides: Path
    needed_for: str

    def missing(self) -> bool:
        return not self.provides.exists()


PACKAGES = (
    SystemPackage("chromium", CHROMIUM, "the admin page's browser tests"),
    SystemPackage("postgresql-15", POSTGRES_BIN / "initdb", "the [postgresql] tests"),
)


def _as_root(command: list[str]) -> list[str]:
    return command if os.geteuid() == 0 else ["sudo", "-n", *command]


def install(packages: list[SystemPackage]) -> int:
    """apt-get update, then install ``packages``; the exit status of the first failure."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    names = [package.name for package in packages]
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", *names],
    ):
        print("+", " ".join(_as_root(command)), flush=True)
        done = subprocess.run(_as_root(command), env=env, check=False)
        if done.returncode != 0:
            return done.returncode
    return 0


def main() -> int:
    status = _system_packages()
    if status == 0:
        # The other APIs' SDKs, each in its own venv, built here (the install step) so that
        # no test run needs the package index.
        for name in SDKS:
            print(f"tests: SDK venv {name}: {sdk_python(name)}", flush=True)
    return status


def _system_packages() -> int:
    missing = [package for package in PACKAGES if package.missing()]
    if not missing:
        return 0
    for package in missing:
        print(f"tests: installing {package.name} ({package.provides}) for {package.needed_for}")
    if shutil.which("apt-get") is None or install(missing) != 0:
        names = " ".join(package.name for package in missing)
        print(f"tests: could not install {names}; install them, then run pytest", file=sys.stderr)
        return 1
    still = [package.name for package in missing if package.missing()]
    if still:
        print(f"tests: {', '.join(still)} installed but not found where expected", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
