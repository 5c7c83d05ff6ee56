"""Progress of a long operation on the terminal (an upload, an install, an upgrade).

On a terminal the line is redrawn in place; in a log (not a TTY) one line per quarter, so a CI
job's output shows that it moves without a line per chunk.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

MB = 1024 * 1024
REDRAW_S = 0.2  # at most five redraws a second on a terminal


class Progress:
    """`progress(done, total)` prints "LABEL: 45% (12.3 of 27.1 MB)"; `finish()` ends the line."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._shown = -1  # the last percentage (tty) or quarter (log) printed
        self._at = 0.0

    def __call__(self, done: int, total: int) -> None:
        percent = 100 if total <= 0 else min(100, done * 100 // total)
        line = f"{self.label}: {percent}% ({done / MB:.1f} of {total / MB:.1f} MB)"
        if self.tty:
            now = time.monotonic()
            if percent != self._shown and (now - self._at >= REDRAW_S or percent == 100):
                self._shown, self._at = percent, now
                self.stream.write(f"\r{line}\x1b[K")
                self.stream.flush()
        elif percent // 25 > self._shown:
            self._shown = percent // 25
            self.stream.write(line + "\n")
            self.stream.flush()

    def say(self, step: str) -> None:
        """A step of a long operation, on its own line, prefixed by the label."""
        self.finish()
        self._shown = -1
        self.stream.write(f"{self.label}: {step}\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty and self._shown >= 0:
            self.stream.write("\n")
            self.stream.flush()
