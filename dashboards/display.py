"""How numbers and times read on the dashboard: "3m", "1.2 GiB", "2 h (7200000 ms)"."""

from __future__ import annotations

from datetime import UTC, datetime


def ago(seconds: float | None) -> str:
    """A duration the way upstream shows uptimes: "now", "42s", "5m", "3h", "2d"."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return "now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def duration_ms(ms: int) -> str:
    """A configured interval in words and in milliseconds: "10m (600000 ms)"."""
    seconds = ms / 1000
    if seconds < 60:
        words = f"{seconds:g} s"
    elif seconds < 3600:
        words = f"{seconds / 60:g} min"
    else:
        words = f"{seconds / 3600:g} h"
    return f"{words} ({ms} ms)"


def size(num_bytes: float | None) -> str:
    if num_bytes is None:
        return "-"
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def clock(at: datetime | float | None) -> str:
    """A moment as UTC "2025-01-31 12:00:05"."""
    if at is None:
        return "-"
    if not isinstance(at, datetime):
        at = datetime.fromtimestamp(at, UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def percent(value: int | None) -> str:
    return "-" if value is None else f"{value}%"
