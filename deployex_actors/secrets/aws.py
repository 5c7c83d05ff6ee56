"""The `aws` adapter: one GetSecretValue on AWS Secrets Manager.

SecretId is `secrets_path`, the region `aws_region`; the SecretString is a JSON object holding the
three keys. The endpoint is `secrets_endpoint_url` when set, else boto3's own resolution (which
honours AWS_ENDPOINT_URL). Timeouts and retries are short so a boot without network fails in
seconds with a message, instead of hanging.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from deployex_actors.errors import SecretsError
from deployex_actors.secrets.model import Secrets, secrets_from_json

if TYPE_CHECKING:
    from deployex_actors.config import Config

NAME = "aws"
CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 10
TOTAL_ATTEMPTS = 2


def load(config: Config, environ: Mapping[str, str]) -> Secrets:
    """`environ` is unused: boto3 reads credentials from the process environment and role."""
    secret_id = config.secrets_path
    if not secret_id:
        raise SecretsError(
            "secrets_adapter aws needs secrets_path: the Secrets Manager secret name"
        )
    where = f"AWS Secrets Manager secret {secret_id!r}"
    response = _get_secret_value(config, secret_id, where)
    text = response.get("SecretString")
    if text is None:
        raise SecretsError(
            f"{where} has no SecretString (binary secrets are not supported); store the keys "
            "as a JSON object in the secret's string value"
        )
    return secrets_from_json(text, where)


def _get_secret_value(config: Config, secret_id: str, where: str) -> dict[str, Any]:
    import boto3
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    boto_config = BotoConfig(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"total_max_attempts": TOTAL_ATTEMPTS, "mode": "standard"},
    )
    try:
        client = boto3.session.Session().client(
            "secretsmanager",
            region_name=config.aws_region,
            endpoint_url=config.secrets_endpoint_url or None,
            config=boto_config,
        )
    except NoRegionError:
        raise SecretsError(
            f"cannot read {where}: no AWS region; set aws_region in the configuration"
        ) from None
    endpoint = client.meta.endpoint_url
    try:
        return client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        raise SecretsError(_client_error_message(exc, where, client.meta.region_name)) from None
    except NoCredentialsError:
        raise SecretsError(
            f"cannot read {where}: no AWS credentials found (instance role, AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
        ) from None
    except (EndpointConnectionError, ConnectTimeoutError) as exc:
        raise SecretsError(
            f"cannot read {where}: AWS Secrets Manager at {endpoint} is unreachable "
            f"({type(exc).__name__}); check the network, aws_region and secrets_endpoint_url"
        ) from None
    except BotoCoreError as exc:
        raise SecretsError(f"cannot read {where} from {endpoint}: {exc}") from None


def _client_error_message(exc: Any, where: str, region: str) -> str:
    error = exc.response.get("Error", {})
    code = error.get("Code", "Unknown")
    if code == "ResourceNotFoundException":
        return f"{where} not found in region {region}; create it or fix secrets_path / aws_region"
    if code in ("AccessDeniedException", "AccessDenied"):
        return (
            f"access denied reading {where}: the instance role needs secretsmanager:GetSecretValue "
            "on it (and kms:Decrypt if a customer-managed KMS key encrypts it)"
        )
    if code in (
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
    ):
        return (
            f"AWS rejected the credentials used to read {where} ({code}); check the instance role"
        )
    if code == "DecryptionFailure":
        return f"AWS could not decrypt {where} with its KMS key; the role needs kms:Decrypt"
    # AWS error messages describe the request, never the secret's value.
    return f"cannot read {where}: {code}: {error.get('Message', '')}".rstrip(": ")
