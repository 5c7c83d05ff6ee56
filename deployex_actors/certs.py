"""Certificates for mutual-TLS distribution: a CA and the node certificate that DeployEx and every
replica present to each other (upstream's layout: `ca.crt`, `deployex.crt`, `deployex.key`).

Every key is EC P-256 and every signature SHA-256. The node certificate carries this host's names
and loopback in its SAN because OTP checks the peer's host name and cannot be told not to
(`server_name_indication` in inet_tls.conf is applied before the file's options). Files are
written whole or not at all (temporary file, then rename), keys 0600 from the first byte.
The CA key stays next to the CA so that node certificates can be renewed under the same CA
(`--renew`); an operator who wants it off the host moves it away after generating.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from deployex_actors.beam.tls import CA_DAYS, CA_FILE, CERT_FILE, KEY_FILE, NODE_DAYS
from deployex_actors.catalog import short_hostname
from deployex_actors.errors import DeployexError
from deployex_actors.private_paths import write_whole

CA_KEY_FILE = "ca.key"
KEY_MODE, CERT_MODE = 0o600, 0o644
# A certificate made a moment ago must already be valid on a host whose clock is a little behind.
CLOCK_SKEW = datetime.timedelta(minutes=5)
EXPIRY_WARNING = datetime.timedelta(days=30)
# Every node is a TLS server (it accepts connections) and a client (it makes them).
BOTH_ENDS = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)


class CertificateError(DeployexError):
    """Certificates cannot be made, or the ones found cannot be used."""


@dataclass(frozen=True)
class Plan:
    """What `generate` makes: into `folder`, a node certificate for `names`, valid `days` days;
    a new CA valid `ca_days` days unless `renew` (then the CA found in the folder signs)."""

    folder: Path
    names: tuple[str, ...]
    days: int = NODE_DAYS
    ca_days: int = CA_DAYS
    renew: bool = False
    force: bool = False


def host_names() -> tuple[str, ...]:
    """This host as node names and TLS peers see it: short name, FQDN, localhost, loopback."""
    found = [short_hostname(), socket.getfqdn(), "localhost", "127.0.0.1"]
    return tuple(dict.fromkeys(n for n in found if n))


def generate(plan: Plan, progress: Callable[[str], None] = lambda _line: None) -> list[Path]:
    """Write the CA (unless renewing) and the node key and certificate; the paths written."""
    _check(plan)
    folder = plan.folder
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    written = []
    if plan.renew:
        ca_key, ca_cert = _load_ca(folder)
        progress(f"using the CA in {folder / CA_FILE} ({_subject(ca_cert)})")
    else:
        progress("making the CA key (EC P-256)")
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _ca_certificate(ca_key, now, plan.ca_days)
        written += [write_whole(folder / CA_KEY_FILE, _key_pem(ca_key), KEY_MODE),
                    write_whole(folder / CA_FILE, _cert_pem(ca_cert), CERT_MODE)]  # fmt: skip
        progress(f"wrote {folder / CA_FILE}, valid {plan.ca_days} days")
    progress(f"making the node key (EC P-256) and certificate for {', '.join(plan.names)}")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _node_certificate(key, ca_key, ca_cert, plan.names, now, plan.days)
    written += [write_whole(folder / KEY_FILE, _key_pem(key), KEY_MODE),
                write_whole(folder / CERT_FILE, _cert_pem(cert), CERT_MODE)]  # fmt: skip
    progress(f"wrote {folder / CERT_FILE}, valid {plan.days} days, signed by the CA")
    return written


def _check(plan: Plan) -> None:
    if plan.days < 1 or plan.ca_days < 1:
        raise CertificateError("validity must be at least 1 day")
    if not plan.names:
        raise CertificateError("the node certificate needs at least one name")
    for name in plan.names:
        _general_name(name)  # refuses what is neither a DNS name nor an IP address
    folder = plan.folder
    if plan.renew:
        missing = [n for n in (CA_FILE, CA_KEY_FILE) if not (folder / n).is_file()]
        if missing:
            raise CertificateError(
                f"--renew needs the CA in {folder}: {', '.join(missing)} missing"
            )
        return
    present = [n for n in (CA_KEY_FILE, CA_FILE, KEY_FILE, CERT_FILE) if (folder / n).exists()]
    if present and not plan.force:
        raise CertificateError(
            f"{folder} already holds {', '.join(present)}: nothing written. Pass --renew to "
            "keep the CA and replace the node certificate, or --force to replace them all"
        )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        pass
    labels = name.split(".")
    if not all(label and len(label) <= 63 and label.replace("-", "").isalnum()
               for label in labels) or len(name) > 253:  # fmt: skip
        raise CertificateError(f"{name!r} is neither a host name nor an IP address")
    return x509.DNSName(name)


def _ca_certificate(
    key: ec.EllipticCurvePrivateKey, now: datetime.datetime, days: int
) -> x509.Certificate:
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DeployEx"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"DeployEx distribution CA ({short_hostname()})"),
    ])  # fmt: skip
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _node_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    names: Iterable[str],
    now: datetime.datetime,
    days: int,
) -> x509.Certificate:
    public = key.public_key()
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "deployex")]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(min(now + datetime.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(BOTH_ENDS), critical=False)
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _load_ca(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    try:
        key = serialization.load_pem_private_key((folder / CA_KEY_FILE).read_bytes(), None)
        cert = x509.load_pem_x509_certificate((folder / CA_FILE).read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise CertificateError(f"cannot read the CA in {folder}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise CertificateError(f"{folder / CA_KEY_FILE} is not the key of {folder / CA_FILE}")
    if cert.not_valid_after_utc <= datetime.datetime.now(datetime.UTC):
        raise CertificateError(f"the CA {folder / CA_FILE} has expired: generate a new one")
    return key, cert


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # "EC PRIVATE KEY" (SEC 1): the form every OTP release and Python's ssl read.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


# -- what DeployEx checks before it starts replicas with these files ------------------------------


def check_folder(folder: Path, now: datetime.datetime | None = None) -> list[str]:
    """Refuse a folder whose files are missing, unreadable, mismatched, not signed by its CA or
    expired; the warnings (a key others can read, expiry within 30 days) for the log."""
    missing = [n for n in (CA_FILE, CERT_FILE, KEY_FILE) if not (folder / n).is_file()]
    if missing:
        raise CertificateError(
            f"otp_tls_certificates {folder}: {', '.join(missing)} missing "
            "(make them with `deployex certs generate DIR`)"
        )
    try:
        ca = x509.load_pem_x509_certificates((folder / CA_FILE).read_bytes())
        cert = x509.load_pem_x509_certificate((folder / CERT_FILE).read_bytes())
        key = serialization.load_pem_private_key((folder / KEY_FILE).read_bytes(), None)
    except (OSError, ValueError, TypeError) as exc:
        raise CertificateError(f"otp_tls_certificates {folder}: cannot read: {exc}") from None
    if key.public_key() != cert.public_key():
        raise CertificateError(f"{folder / KEY_FILE} is not the key of {folder / CERT_FILE}")
    if not any(_signed_by(cert, authority) for authority in ca):
        raise CertificateError(f"{folder / CERT_FILE} is not signed by {folder / CA_FILE}")
    now = now or datetime.datetime.now(datetime.UTC)
    expires = cert.not_valid_after_utc
    if expires <= now:
        raise CertificateError(f"{folder / CERT_FILE} expired on {expires:%Y-%m-%d}")
    warnings = []
    if expires - now < EXPIRY_WARNING:
        warnings.append(f"{folder / CERT_FILE} expires on {expires:%Y-%m-%d}: renew it")
    if (folder / KEY_FILE).stat().st_mode & 0o077:
        warnings.append(f"{folder / KEY_FILE} can be read by other users: chmod 600 it")
    return warnings


def _signed_by(cert: x509.Certificate, authority: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(authority)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
