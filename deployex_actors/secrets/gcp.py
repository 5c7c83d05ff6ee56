"""The `gcp` adapter: the latest version of a GCP Secret Manager secret, over its REST API.

GET {endpoint}/v1/projects/{project}/secrets/{secrets_path}/versions/latest:access, where the
endpoint is `secrets_endpoint_url` or Google's. Credentials are the service account in the
`google_credentials` JSON file (its `project_id` names the project), or Application Default
Credentials when that is not set. The payload is base64 of a JSON object holding the three keys.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from deployex_actors.errors import SecretsError
from deployex_actors.secrets.model import Secrets, secrets_from_json

if TYPE_CHECKING:
    from deployex_actors.config import Config

NAME = "gcp"
DEFAULT_ENDPOINT = "https://secretmanager.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
# (connect, read) for the token request and the access request; the total is capped too.
TIMEOUT_S = (5.0, 10.0)
MAX_TOTAL_S = 30.0
ACCESSOR_ROLE = "roles/secretmanager.secretAccessor"


def load(config: Config, environ: Mapping[str, str]) -> Secrets:
    """`environ` is unused: google.auth reads the process environment itself."""
    name = config.secrets_path
    if not name:
        raise SecretsError("secrets_adapter gcp needs secrets_path: the Secret Manager secret name")
    credentials, project = _credentials(config)
    where = f"GCP Secret Manager secret {name!r} in project {project!r}"
    endpoint = (config.secrets_endpoint_url or DEFAULT_ENDPOINT).rstrip("/")
    url = (
        f"{endpoint}/v1/projects/{quote(project, safe='')}/secrets/{quote(name, safe='')}"
        "/versions/latest:access"
    )
    status, body = _get(credentials, url, where, endpoint)
    if status != 200:
        raise SecretsError(_http_error_message(status, body, where))
    return secrets_from_json(_payload_text(body, where), where)


def _credentials(config: Config) -> tuple[Any, str]:
    if config.google_credentials:
        return _service_account(config.google_credentials)
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, project = google.auth.default(scopes=list(SCOPES))
    except DefaultCredentialsError as exc:
        raise SecretsError(
            f"no Google credentials: set google_credentials to a service-account JSON file ({exc})"
        ) from None
    if not project:
        raise SecretsError(
            "Application Default Credentials name no project; set google_credentials to a "
            "service-account JSON file (its project_id is used) or GOOGLE_CLOUD_PROJECT"
        )
    return credentials, project


def _service_account(path: str) -> tuple[Any, str]:
    from google.oauth2 import service_account

    where = f"google_credentials file {path}"
    try:
        with open(Path(path).expanduser(), encoding="utf-8") as f:
            info = json.load(f)
    except OSError as exc:
        raise SecretsError(f"cannot read {where}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SecretsError(f"{where} is not a JSON file") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise SecretsError(
            f"{where} is not a service-account key (its type is not service_account)"
        )
    project = info.get("project_id")
    if not isinstance(project, str) or not project:
        raise SecretsError(f"{where} has no project_id")
    try:
        credentials = service_account.Credentials.from_service_account_info(
            info, scopes=list(SCOPES)
        )
    except ValueError as exc:
        raise SecretsError(f"{where} is not a usable service-account key: {exc}") from None
    return credentials, project


def _get(credentials: Any, url: str, where: str, endpoint: str) -> tuple[int, Any]:
    import requests
    from google.auth.exceptions import GoogleAuthError, RefreshError
    from google.auth.transport.requests import AuthorizedSession

    with AuthorizedSession(credentials) as session:
        try:
            response = session.get(url, timeout=TIMEOUT_S, max_allowed_time=MAX_TOTAL_S)
        except RefreshError as exc:
            raise SecretsError(
                f"cannot read {where}: Google refused the service account's token request "
                f"({_short(exc.args[0] if exc.args else exc)})"
            ) from None
        except GoogleAuthError as exc:
            raise SecretsError(
                f"cannot read {where}: the Google token endpoint is unreachable ({_short(exc)})"
            ) from None
        except requests.RequestException as exc:
            raise SecretsError(
                f"cannot read {where}: Secret Manager at {endpoint} is unreachable "
                f"({type(exc).__name__})"
            ) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    return response.status_code, body


def _http_error_message(status: int, body: Any, where: str) -> str:
    # Google's error messages describe the request, never the secret's value.
    detail = ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        detail = str(body["error"].get("message") or "")
    suffix = f" ({_short(detail)})" if detail else ""
    if status == 404:
        return (
            f"{where} not found (or it has no enabled version); create it or fix "
            f"secrets_path{suffix}"
        )
    if status == 403:
        return (
            f"permission denied reading {where}: the service account needs {ACCESSOR_ROLE}{suffix}"
        )
    if status == 401:
        return f"Secret Manager rejected the credentials used to read {where}{suffix}"
    return f"cannot read {where}: Secret Manager answered HTTP {status}{suffix}"


def _payload_text(body: Any, where: str) -> str:
    payload = body.get("payload") if isinstance(body, dict) else None
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, str):
        raise SecretsError(f"the answer for {where} has no payload.data")
    try:
        return base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise SecretsError(f"the payload of {where} is not base64 of UTF-8 text") from None


def _short(detail: object, limit: int = 300) -> str:
    text = " ".join(str(detail).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
