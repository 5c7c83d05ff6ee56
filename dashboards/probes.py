"""/health and /metrics: the two routes a load balancer or Prometheus reads without logging in.

/health answers as upstream does, {"status": "ok", "timestamp": ISO-8601}, whether or not the
actor system answers (the dashboard process is alive; `deployex_up` in /metrics says the rest).
/metrics is open unless DEPLOYEX_METRICS_TOKEN is set; then it wants `Authorization: Bearer`.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from tornado.web import RequestHandler

from dashboards.gateway import Gateway, Unreachable
from deployex_actors.errors import DeployexError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class HealthHandler(RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.write(json.dumps({"status": "ok", "timestamp": datetime.now(UTC).isoformat()}))


class MetricsHandler(RequestHandler):
    def initialize(self, exposition: Callable[[], Awaitable[str]], token: str | None) -> None:
        self.exposition = exposition
        self.token = token

    async def get(self) -> None:
        if not bearer_ok(self.request.headers.get("Authorization"), self.token):
            self.set_status(401)
            self.set_header("WWW-Authenticate", 'Bearer realm="deployex-metrics"')
            self.write("a bearer token is required\n")
            return
        self.set_header("Content-Type", CONTENT_TYPE)
        self.set_header("Cache-Control", "no-store")
        self.write(await self.exposition())


def bearer_ok(header: str | None, token: str | None) -> bool:
    """No token configured: open. Otherwise `Bearer <token>`, compared in constant time."""
    if not token:
        return True
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def exposition_from(gateway: Gateway) -> Callable[[], Awaitable[str]]:
    """The core's exposition (`dx.prometheus()`), after a `deployex_up` gauge that is 0, with
    nothing else, while DeployEx does not answer."""

    async def render() -> str:
        try:
            text = await gateway.call(lambda dx: dx.prometheus())
        except Unreachable:
            return up_family(False)
        except DeployexError as exc:  # it answered, but could not render (a restarting child)
            return up_family(True) + f"# deployex metrics unavailable: {exc}\n"
        return up_family(True) + text

    return render


def up_family(up: bool) -> str:
    return (
        "# HELP deployex_up 1 when the DeployEx actor system answers the dashboard\n"
        "# TYPE deployex_up gauge\n"
        f"deployex_up {1 if up else 0}\n"
    )
