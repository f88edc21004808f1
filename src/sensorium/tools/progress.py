"""A small progress bar on stderr for the command-line tools (no dependency).

On a terminal it redraws one line (``\\r``) at most ``REDRAW_S`` apart; elsewhere (a log, CI)
it prints a plain line every ``LOG_EVERY_S`` so that logs stay short. ``quiet`` prints
nothing. Not thread-safe: one owner updates it.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

REDRAW_S = 0.1
LOG_EVERY_S = 5.0
WIDTH = 28


def human(n: float) -> str:
    """``43_200_000`` → ``43.2M``."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


class Progress:
    """``with Progress(total, "loading", "samples") as bar: bar.update(n)``."""

    def __init__(self, total: int | None, label: str, unit: str = "samples", *,
                 stream: TextIO | None = None, quiet: bool = False) -> None:
        self.total = total
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.done = 0
        self.started = time.perf_counter()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = self.started

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int, note: str = "") -> None:
        self.done += n
        now = time.perf_counter()
        if now - self._last >= (REDRAW_S if self._tty else LOG_EVERY_S):
            self._last = now
            self._draw(note)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started

    @property
    def rate(self) -> float:
        return self.done / max(self.elapsed_s, 1e-9)

    def line(self, note: str = "") -> str:
        """The bar's text: label, bar and percentage (when the total is known), count, rate,
        time left."""
        parts = [self.label]
        if self.total:
            share = min(self.done / self.total, 1.0)
            filled = int(share * WIDTH)
            parts.append(f"[{'#' * filled}{'.' * (WIDTH - filled)}] {share:4.0%}")
            parts.append(f"{human(self.done)}/{human(self.total)} {self.unit}")
        else:
            parts.append(f"{human(self.done)} {self.unit}")
        parts.append(f"{human(self.rate)}/s")
        if self.total and self.done:
            left = (self.total - self.done) / max(self.rate, 1e-9)
            parts.append(f"ETA {left:.0f}s")
        if note:
            parts.append(note)
        return " ".join(parts)

    def _draw(self, note: str = "") -> None:
        if self.quiet:
            return
        if self._tty:
            self.stream.write("\r" + self.line(note) + "\033[K")
        else:
            self.stream.write(self.line(note) + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Draws the final state (once)."""
        if self.quiet or self._last < 0:
            return
        self._last = -1.0
        if self._tty:
            self.stream.write("\r" + self.line() + "\033[K\n")
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
