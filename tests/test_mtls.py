"""Mutual TLS end to end: `deployex certs generate`, then a real `deployex run` given the folder
through DEPLOYEX_OTP_TLS_CERT_PATH with one replica of each language; each serves, DeployEx's
own link reaches it (over TLS only), a plain-TCP node with the right cookie is refused while a
node with the certificates is let in, and the replica cards say "mTLS on"."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from playwright.sync_api import expect

from deployex_actors import certs
from deployex_actors.catalog import short_hostname, tls_dist_optfile
from deployex_actors.cli import main
from deployex_actors.config import parse_config
from deployex_actors.config.loader import TLS_CERT_PATH_ENV, with_environment
from deployex_actors.core.status import AppSnapshot
from tests.beam_fixtures import LANGUAGES, ReleaseDist
from tests.browser import UI_DEADLINE_MS, dashboard_secrets, log_in, running_dashboard
from tests.deployex_service import app_entry, publish, running_service, wait_banner, write_config
from tests.erl_nodes import unique_sname

FILES = {"ca.crt": 0o644, "ca.key": 0o600, "deployex.crt": 0o644, "deployex.key": 0o600}


def generate(folder: Path, *options: str) -> int:
    return main(["certs", "generate", str(folder), *options])


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_certs_generate_writes_a_p256_ca_and_a_node_certificate_it_signed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "certs"
    assert generate(folder, "--days", "30", "--name", "dx.example.org", "--name", "10.0.0.7") == 0
    progress = capsys.readouterr().out
    assert "making the CA key" in progress and "signed by the CA" in progress
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == FILES
    ca = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
    node = x509.load_pem_x509_certificate((folder / "deployex.crt").read_bytes())
    for key_file in ("ca.key", "deployex.key"):
        key = load_pem_private_key((folder / key_file).read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    node.verify_directly_issued_by(ca)  # raises unless the CA signed it
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not node.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = node.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {short_hostname(), "localhost", "dx.example.org"} <= set(
        san.get_values_for_type(x509.DNSName)
    )
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("10.0.0.7"),
    }
    valid = node.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=29) < valid <= datetime.timedelta(days=30, minutes=1)
    # What DeployEx's own link does with them: a client context with the chain and key.
    context = ssl.create_default_context(cafile=str(folder / "ca.crt"))
    context.load_cert_chain(str(folder / "deployex.crt"), str(folder / "deployex.key"))
    (warning,) = certs.check_folder(folder)  # DeployEx starts with it, and warns in its log
    assert "deployex.crt expires on" in warning


def test_certs_generate_refuses_to_overwrite_renews_under_the_same_ca_or_forces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "certs"
    assert generate(folder) == 0
    first = contents(folder)
    assert generate(folder) == 1
    assert "already holds" in capsys.readouterr().err and contents(folder) == first
    assert generate(folder, "--name", "not a name!") == 1  # refused before anything is written
    assert contents(folder) == first

    assert generate(folder, "--renew") == 0
    renewed = contents(folder)
    assert renewed["ca.crt"] == first["ca.crt"] and renewed["ca.key"] == first["ca.key"]
    assert renewed["deployex.key"] != first["deployex.key"]
    assert certs.check_folder(folder) == []  # the old CA signed the new certificate

    assert generate(folder, "--force") == 0
    assert contents(folder)["ca.crt"] != first["ca.crt"]
    (folder / "ca.crt").write_bytes(first["ca.crt"])  # a CA that did not sign deployex.crt
    with pytest.raises(certs.CertificateError, match="not signed by"):
        certs.check_folder(folder)
    (folder / "deployex.key").unlink()
    with pytest.raises(certs.CertificateError, match=r"deployex\.key missing"):
        certs.check_folder(folder)


def test_the_environment_variable_wins_over_the_yaml_key() -> None:
    base = "release_adapter: local\nsecrets_adapter: env\n"
    config = parse_config(base + "otp_tls_certificates: /etc/deployex/certs\n")
    assert with_environment(config, {}).otp_tls_certificates == "/etc/deployex/certs"
    chosen = with_environment(config, {TLS_CERT_PATH_ENV: "/srv/certs"})
    assert chosen.otp_tls_certificates == "/srv/certs"
    assert any(TLS_CERT_PATH_ENV in w for w in chosen.warnings)
    plain = with_environment(parse_config(base), {TLS_CERT_PATH_ENV: "/srv/certs"})
    assert plain.otp_tls_certificates == "/srv/certs" and not plain.warnings


# -- end to end ------------------------------------------------------------------------------


def ping_from_probe(node: str, cookie: str, *flags: str) -> str:
    """`net_adm:ping(Node)` from a throwaway hidden `erl` node: "pong" or "pang"."""
    probe = unique_sname("probe")
    expr = f"io:format(\"~p~n\", [net_adm:ping('{node}')]), halt()."
    result = subprocess.run(
        ["erl", "-hidden", "-sname", probe, "-setcookie", cookie, *flags, "-noshell", "-eval",
         expr],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr


def all_serving_over_tls(app: AppSnapshot) -> bool:
    return (
        len(app.replicas) == 1
        and app.replicas[0].status == "running"
        and app.replicas[0].otp == "connected"
    )


@pytest.mark.slow
def test_every_language_runs_over_mutual_tls_and_a_plain_node_is_refused(
    release_dist: ReleaseDist, tmp_path: Path, page
) -> None:
    folder = tmp_path / "certs"
    assert generate(folder) == 0
    secrets = dashboard_secrets()
    cookie = secrets["DEPLOYEX_ERLANG_COOKIE"]
    config = write_config(
        tmp_path, [app_entry(app, replicas=1) for app in LANGUAGES], dashboard_enabled=True
    )
    for app in LANGUAGES:
        publish(config, release_dist, app, "0.1.0")
    env = {**os.environ, **secrets, TLS_CERT_PATH_ENV: str(folder)}
    with running_service(config, tmp_path, env=env) as service:
        optfile = tls_dist_optfile(service.catalog.var_path)
        replicas = []
        for app in LANGUAGES:
            shown = service.wait_app(app, all_serving_over_tls, f"{app} linked", 120)
            (replica,) = shown.replicas
            assert replica.mtls
            wait_banner(replica.ports["PORT"], f"{app} 0.1.0\n")
            system = service.client().observe(app, replica.sname, "system", actor="test")
            assert system["process_count"] > 10  # DeployEx's link (TLS) answers rpc
            replicas.append(replica)
        assert stat.S_IMODE(optfile.stat().st_mode) == 0o400
        tls_flags = ("-proto_dist", "inet_tls", "-ssl_dist_optfile", str(optfile))
        for replica in replicas:
            assert ping_from_probe(replica.node, cookie) == "pang", replica.app
            assert ping_from_probe(replica.node, cookie, *tls_flags) == "pong", replica.app

        with running_dashboard(config, tmp_path, secrets) as dashboard:
            log_in(page, dashboard, path="/applications")
            page.wait_for_url("**/applications*")
            for replica in replicas:
                field = page.locator(f'.replica-{replica.sname} [data-field="mtls"]')
                expect(field).to_have_text("mTLS on", timeout=UI_DEADLINE_MS)
