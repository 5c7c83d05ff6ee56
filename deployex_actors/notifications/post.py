"""One HTTP POST of a JSON body, with a timeout; the answer as a short, secret-free text.

The standard library's http.client is enough for one POST: no dependency, and no proxy or
redirect magic that could send a channel's URL somewhere else.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from deployex_actors import __version__

TIMEOUT_S = 10.0  # per try: connect, and each wait for the server


@dataclass(frozen=True)
class Answer:
    ok: bool
    detail: str  # "HTTP 202", "HTTP 500", "timed out after 10 s", "connection refused"...


def post_json(url: str, body: dict, timeout_s: float = TIMEOUT_S) -> Answer:
    """POST `body` as JSON to `url`; ok for a 2xx answer. Never raises for a network error."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Answer(False, "the URL is not an http(s) URL")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    data = json.dumps(body, default=str).encode()
    headers = {"Content-Type": "application/json", "User-Agent": f"DeployEx/{__version__}"}
    try:
        connection = kind(parts.hostname, parts.port, timeout=timeout_s)
        try:
            connection.request("POST", path, data, headers)
            response = connection.getresponse()
            response.read(64 * 1024)  # the answer's body is not used; read a bounded part
        finally:
            connection.close()
    except TimeoutError:
        return Answer(False, f"timed out after {timeout_s:g} s")
    except ConnectionRefusedError:
        return Answer(False, "connection refused")
    except ssl.SSLError as exc:
        return Answer(False, f"TLS error: {exc.reason or type(exc).__name__}")
    except (OSError, http.client.HTTPException) as exc:
        return Answer(False, f"{type(exc).__name__}: {exc}")
    return Answer(200 <= response.status < 300, f"HTTP {response.status}")
