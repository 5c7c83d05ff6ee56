"""The Monitor's distribution link to its replica: connect, retry with backoff, notice its loss.

The link's reader thread learns that the node is down; the actor must hear it in its own
thread. So each link gets a pipe: the link's `on_down` writes a byte, and the Monitor watches
the read end like any other descriptor (see actors.base).
"""

from __future__ import annotations

import contextlib
import logging
import os

from deployex_actors.beam import TlsOptions, connect
from deployex_actors.beam.link import NodeLink
from deployex_actors.errors import BeamError

log = logging.getLogger(__name__)
RETRY_S = (0.2, 5.0)  # first retry, cap
CONNECT_TIMEOUT_S = 2.0


class LinkUpkeep:
    def __init__(self, cookie: str, tls: TlsOptions | None) -> None:
        self.cookie, self.tls = cookie, tls
        self.link: NodeLink | None = None
        self.retry_s = RETRY_S[0]
        self._pipe: tuple[int, int] | None = None

    @property
    def connected(self) -> bool:
        return self.link is not None and self.link.alive

    def reset_backoff(self, delay_s: float) -> None:
        self.retry_s = delay_s or RETRY_S[0]

    def connect(self, node: str) -> int | None:
        """Connect to `node`: the descriptor that becomes readable when the link goes down, or
        None when the node did not answer (try again after `backoff()`)."""
        read_fd, write_fd = os.pipe()
        try:
            self.link = connect(node, self.cookie, self.tls, timeout=CONNECT_TIMEOUT_S,
                                on_down=lambda _error: _poke(write_fd))  # fmt: skip
        except BeamError as exc:
            os.close(read_fd)
            os.close(write_fd)
            log.debug("no link to %s yet: %s", node, exc)
            return None
        self._pipe = (read_fd, write_fd)
        return read_fd

    def backoff(self) -> float:
        """The delay before the next attempt; it doubles up to the cap."""
        self.retry_s = min(self.retry_s * 2, RETRY_S[1])
        return self.retry_s

    def drop(self) -> int | None:
        """Close the link; returns the descriptor the actor watched (for it to unwatch)."""
        link, self.link = self.link, None
        if link is not None:
            link.close()
        pipe, self._pipe = self._pipe, None
        if pipe is None:
            return None
        with contextlib.suppress(OSError):
            os.close(pipe[1])
        return pipe[0]


def _poke(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, b"x")
