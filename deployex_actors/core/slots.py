"""Port slots: an app with N replicas owns N+1 slots (ports `base + slot`), one spare so a new
replica can start beside the one it replaces."""

from __future__ import annotations

from collections.abc import Iterable


def free_slots(occupied: Iterable[int], replicas: int, wanted: int) -> list[int]:
    """The `wanted` lowest free slots among 0..replicas (there are replicas + 1 slots)."""
    taken = set(occupied)
    return [slot for slot in range(replicas + 1) if slot not in taken][:wanted]
