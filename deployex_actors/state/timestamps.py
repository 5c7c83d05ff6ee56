"""How times are stored: integer microseconds since the Unix epoch, UTC.

Integers sort and compare exactly in SQL (no string formats to agree on, no time zones in the
file), keep the microsecond precision upstream uses for its history file names, and convert back
to tz-aware UTC datetimes without loss.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def now() -> datetime:
    return datetime.now(UTC)


def to_micros(at: datetime) -> int:
    """A tz-aware datetime as microseconds since the epoch; naive datetimes are refused."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"time {at.isoformat()} has no time zone; pass a tz-aware datetime")
    # Integer timedelta division is exact, unlike `timestamp() * 1e6`.
    return (at - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """Microseconds since the epoch as a tz-aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=micros)
