"""Progress reporting: plain callbacks and tqdm bars (``tqdm.auto``, so notebooks get widgets)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["ByteProgress", "ProgressCallback"]

ProgressCallback = Callable[[int, "int | None"], None]
"""Called with ``(bytes_done, total_bytes_or_None)``."""


class ByteProgress:
    """Bytes done for one transfer, aggregated across parts and rewound on retry.

    Feeds an optional callback and an optional tqdm bar; silent when neither is on.
    """

    def __init__(
        self,
        *,
        callback: ProgressCallback | None = None,
        bar: bool = False,
        description: str = "",
        total: int | None = None,
    ) -> None:
        self.done = 0
        self.total = total
        self._callback = callback
        self._lock = threading.Lock()
        self._bar: Any = None
        if bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=description[-40:],
                leave=False,
            )

    def set_total(self, total: int) -> None:
        with self._lock:
            self.total = total
            if self._bar is not None:
                self._bar.total = total
                self._bar.refresh()
        self._emit()

    def advance(self, n: int) -> None:
        with self._lock:
            self.done += n
            if self._bar is not None:
                self._bar.update(n)
        self._emit()

    def rewind(self, n: int) -> None:
        """Take back ``n`` bytes that were discarded and will be fetched again."""
        if n:
            self.advance(-n)

    def _emit(self) -> None:
        if self._callback is not None:
            self._callback(self.done, self.total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
