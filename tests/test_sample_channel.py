"""The sample channel: a Monitor's packed readings and other processes' JSON notices arrive as
they were sent; what is not a whole datagram of either is dropped."""

from __future__ import annotations

import os
from pathlib import Path

from deployex_actors.core.metrics import REPLICA_KEYS
from deployex_actors.replica import samples


def test_a_packed_reading_arrives_as_it_was_taken_gaps_included(tmp_path: Path) -> None:
    channel = tmp_path / "samples.sock"
    receiver = samples.Receiver(channel)
    sender = samples.Sender(channel)
    packer = samples.ReadingPacker("myapp", "myapp-abc123", 30.0)
    values = (12, 262144, None, 65536, 9000, 1048576, 2**40, 123_456_789, 12.5)
    assert sender.send_bytes(packer.pack(1700000000.25, values))
    assert sender.send_bytes(packer.pack(1700000001.25, (None,) * len(REPLICA_KEYS)))
    sender.send(samples.RejectedFrames(os.getpid(), 3, 1700000002.0))  # JSON, as before
    first, gaps, rejected = receiver.drain()
    assert first == samples.Reading(
        "myapp", "myapp-abc123", 1700000000.25, dict(zip(REPLICA_KEYS, values, strict=True)), 30.0
    )
    assert [type(v) for v in first.values.values()] == [int] * 2 + [type(None)] + [int] * 5 + [
        float
    ]
    assert gaps.values == dict.fromkeys(REPLICA_KEYS)
    assert rejected == samples.RejectedFrames(os.getpid(), 3, 1700000002.0)


def test_a_truncated_packed_reading_is_dropped(tmp_path: Path) -> None:
    channel = tmp_path / "samples.sock"
    receiver = samples.Receiver(channel)
    sender = samples.Sender(channel)
    data = samples.ReadingPacker("myapp", "myapp-abc123", 30.0).pack(1.0, (1,) * 9)
    sender.send_bytes(data[:-3])
    sender.send_bytes(data[:20])
    assert receiver.drain() == []
