"""What the dev stack's servers share: `start()`, `stop()`, and a `with` block for both."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Service:
    """A server run in the background: `with service:` starts it and always stops it."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
