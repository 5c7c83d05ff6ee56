"""Mutual TLS for Erlang distribution (`-proto_dist inet_tls`)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

# Upstream's file names inside `otp_tls_certificates`.
CA_FILE, CERT_FILE, KEY_FILE = "ca.crt", "deployex.crt", "deployex.key"
# validity of what `deployex certs generate` makes, in days
NODE_DAYS = 395  # upstream's tls-distribution-certs script
CA_DAYS = 3650


@dataclass(frozen=True)
class TlsOptions:
    """CA, certificate and key shared by DeployEx and its replicas."""

    cafile: Path
    certfile: Path
    keyfile: Path
    verify_hostname: bool = True

    @classmethod
    def from_folder(cls, folder: str | Path) -> TlsOptions:
        base = Path(folder)
        return cls(base / CA_FILE, base / CERT_FILE, base / KEY_FILE)

    def client_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_verify_locations(cafile=str(self.cafile))
        context.load_cert_chain(str(self.certfile), str(self.keyfile))
        context.check_hostname = self.verify_hostname
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    def ssl_dist_optfile(self) -> str:
        """The `-ssl_dist_optfile` contents (Erlang terms) for nodes using the same files."""
        common = (
            f'{{certfile, "{self.certfile}"}}, {{keyfile, "{self.keyfile}"}}, '
            f'{{cacertfile, "{self.cafile}"}}, {{verify, verify_peer}}, '
            "{secure_renegotiate, true}"
        )
        return (
            f"[{{server, [{common}, {{fail_if_no_peer_cert, true}}]}},\n"
            f" {{client, [{common}, {{server_name_indication, disable}}]}}].\n"
        )
