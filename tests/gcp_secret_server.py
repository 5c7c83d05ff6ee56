"""A small GCP Secret Manager stand-in over real HTTP, for the gcp secrets adapter's tests.

No Secret Manager emulator exists, so this speaks the two REST shapes the adapter meets:

    POST /token                                               OAuth 2.0 JWT-bearer grant
    GET  /v1/projects/{p}/secrets/{s}/versions/latest:access  payload.data = base64 of the bytes

The token endpoint verifies the RS256 signature of the assertion against the service account's
public key, so a test passes only if google-auth really signed with the key in the JSON file.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.servers import LOOPBACK

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
ACCESS_PATH = re.compile(r"/v1/projects/([^/]+)/secrets/([^/]+)/versions/latest:access")


@dataclass
class SecretStore:
    """What the server holds; tests add to it while the server runs."""

    public_key: rsa.RSAPublicKey
    access_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    payloads: dict[tuple[str, str], bytes] = field(default_factory=dict)
    denied: set[tuple[str, str]] = field(default_factory=set)
    tokens_issued: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, project: str, name: str, payload: bytes | str | dict[str, Any]) -> None:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        if isinstance(payload, str):
            payload = payload.encode()
        with self.lock:
            self.payloads[(project, name)] = payload

    def deny(self, project: str, name: str) -> None:
        with self.lock:
            self.denied.add((project, name))


@dataclass(frozen=True)
class GcpSecretServer:
    url: str
    store: SecretStore

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"


@contextlib.contextmanager
def serving(public_key: rsa.RSAPublicKey) -> Iterator[GcpSecretServer]:
    """Run the server on 127.0.0.1 and a free port in a thread; stopped on exit."""
    store = SecretStore(public_key=public_key)
    httpd = ThreadingHTTPServer((LOOPBACK, 0), _Handler)
    httpd.daemon_threads = True
    httpd.store = store  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=httpd.serve_forever, args=(0.05,), name="gcp-secret-server", daemon=True
    )
    thread.start()
    try:
        yield GcpSecretServer(url=f"http://{LOOPBACK}:{httpd.server_address[1]}", store=store)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


class _Handler(BaseHTTPRequestHandler):
    @property
    def store(self) -> SecretStore:
        return self.server.store  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_POST(self) -> None:
        if self.path != "/token":
            return self._reply(404, _error(404, "NOT_FOUND", f"no route {self.path}"))
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        problem = self._grant_problem(form)
        if problem:
            return self._reply(400, {"error": "invalid_grant", "error_description": problem})
        with self.store.lock:
            self.store.tokens_issued += 1
        self._reply(
            200,
            {"access_token": self.store.access_token, "expires_in": 3600, "token_type": "Bearer"},
        )

    def do_GET(self) -> None:
        match = ACCESS_PATH.fullmatch(self.path)
        if not match:
            return self._reply(404, _error(404, "NOT_FOUND", f"no route {self.path}"))
        if self.headers.get("Authorization") != f"Bearer {self.store.access_token}":
            message = "Request had invalid authentication credentials."
            return self._reply(401, _error(401, "UNAUTHENTICATED", message))
        project, name = match.groups()
        with self.store.lock:
            payload = self.store.payloads.get((project, name))
            denied = (project, name) in self.store.denied
        resource = f"projects/{project}/secrets/{name}"
        if denied:
            message = f"Permission 'secretmanager.versions.access' denied for resource '{resource}'"
            return self._reply(403, _error(403, "PERMISSION_DENIED", message))
        if payload is None:
            message = f"Secret [{resource}] not found or has no versions."
            return self._reply(404, _error(404, "NOT_FOUND", message))
        data = base64.b64encode(payload).decode()
        self._reply(200, {"name": f"{resource}/versions/1", "payload": {"data": data}})

    def _grant_problem(self, form: dict[str, list[str]]) -> str | None:
        if form.get("grant_type") != [JWT_BEARER]:
            return "unsupported grant_type"
        try:
            header, claims, signature = form["assertion"][0].split(".")
            self.store.public_key.verify(
                _unb64(signature),
                f"{header}.{claims}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            scopes = json.loads(_unb64(claims)).get("scope", "").split()
        except (KeyError, ValueError, InvalidSignature):
            return "Invalid JWT Signature."
        return None if CLOUD_PLATFORM in scopes else "scope cloud-platform not requested"

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


def _error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
