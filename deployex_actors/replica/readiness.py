"""Readiness checks: is a replica that has run `ready_after_ms` really able to serve?"""

from __future__ import annotations

import socket

from deployex_actors.beam.link import NodeLink
from deployex_actors.config import Application
from deployex_actors.errors import DeployexError

LOOPBACK = "127.0.0.1"


def check(app: Application, slot: int, link: NodeLink | None) -> str | None:
    """None when ready; otherwise why not, in words for the status."""
    readiness = app.readiness
    if readiness is None:
        return None
    timeout = readiness.timeout_ms / 1000
    if readiness.type == "otp":
        if link is None or not link.alive:
            return "readiness: no distribution link to the node yet"
        try:
            link.ping(timeout)
        except DeployexError as exc:
            return f"readiness: the node does not answer: {exc}"
        return None
    import http.client  # here: every Monitor would carry it (and email.*); few apps check http

    ports = app.ports_of_slot(slot)
    key = readiness.port or app.replica_ports[0].key
    port = ports[key]
    try:
        if readiness.type == "tcp":
            with socket.create_connection((LOOPBACK, port), timeout):
                return None
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
        try:
            connection.request("GET", readiness.path)
            status = connection.getresponse().status
        finally:
            connection.close()
    except (OSError, http.client.HTTPException) as exc:
        return f"readiness: {readiness.type} check on port {port} failed: {exc}"
    if 200 <= status < 300:
        return None
    return f"readiness: GET {readiness.path} on port {port} answered {status}"
