"""systemd's notify protocol (sd_notify(3)): how `deployex run` tells its unit how it is doing.

One datagram per notification on the unix socket named by `$NOTIFY_SOCKET` (an address that
starts with '@' is in Linux's abstract namespace). A few lines of the standard library instead
of a package. Without the variable (a terminal, a plain test run) every call does nothing.

What `deployex run` sends (see ops/systemd/deployex.service): READY=1 once the root answered
the boot, WATCHDOG=1 each time the health loop's ping was answered, STOPPING=1 when it stops.
"""

from __future__ import annotations

import logging
import os
import socket

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"
READY = "READY=1"
WATCHDOG = "WATCHDOG=1"
STOPPING = "STOPPING=1"

log = logging.getLogger("deployex")


def notify(*states: str) -> bool:
    """Send `states` (e.g. READY, WATCHDOG) in one datagram; False when nobody listens."""
    address = os.environ.get(NOTIFY_SOCKET_ENV)
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(states).encode())
    except OSError as exc:
        # systemd gone or the socket replaced: the service itself is not affected.
        log.warning("cannot notify systemd on %s: %s", address.lstrip("\0"), exc)
        return False
    return True
