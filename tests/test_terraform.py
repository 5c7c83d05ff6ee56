"""The Terraform examples (ops/terraform/{aws,gcp}): parsed with python-hcl2, they hold the host,
the release bucket, the secret, a firewall that opens only the dashboard port (SSH only when a
source range is given) and an identity that can read only that bucket and that secret.

`terraform validate` needs `terraform init`, which downloads the providers from the registry:
not run here (no network). `terraform fmt -check` and rendering the DeployEx YAML template run
when terraform is installed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

from deployex_actors.config import load_config

TERRAFORM = Path(__file__).resolve().parent.parent / "ops" / "terraform"
AWS_READS = {"s3:ListBucket", "s3:GetObject", "secretsmanager:GetSecretValue"}
needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform")


def plain(value: Any) -> Any:
    """hcl2's tree without its markers and with string literals unquoted."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def blocks(module: str, kind: str) -> dict[str, dict[str, Any]]:
    """`resource` or `data` blocks of a module as {"TYPE.NAME": body}."""
    found = {}
    for path in sorted((TERRAFORM / module).glob("*.tf")):
        for entry in plain(hcl2.load(path.open())).get(kind, []):
            for rtype, named in entry.items():
                for name, body in named.items():
                    found[f"{rtype}.{name}"] = body
    return found


def variables(module: str) -> dict[str, dict[str, Any]]:
    found = {}
    for entry in plain(hcl2.load((TERRAFORM / module / "variables.tf").open()))["variable"]:
        found.update(entry)
    return found


# -- AWS -----------------------------------------------------------------------------------------


def test_aws_has_the_host_bucket_secret_role_and_firewall() -> None:
    resources = blocks("aws", "resource")
    for needed in ("aws_instance.deployex", "aws_s3_bucket.releases",
                   "aws_s3_bucket_public_access_block.releases",
                   "aws_secretsmanager_secret.deployex", "aws_iam_role_policy.deployex",
                   "aws_iam_instance_profile.deployex", "aws_security_group.deployex"):  # fmt: skip
        assert needed in resources
    instance = resources["aws_instance.deployex"]
    assert instance["iam_instance_profile"] == "${aws_iam_instance_profile.deployex.name}"
    assert instance["vpc_security_group_ids"] == ["${aws_security_group.deployex.id}"]
    assert "cloud-init.yaml.tftpl" in instance["user_data"]
    assert "--install" in (TERRAFORM / "aws" / "cloud-init.yaml.tftpl").read_text()


def test_aws_role_reads_only_its_bucket_and_its_secret() -> None:
    resources, data = blocks("aws", "resource"), blocks("aws", "data")
    # no managed policy and no second inline policy: the one document below is all it may do
    assert not [r for r in resources if r.startswith("aws_iam_role_policy_attachment")]
    assert not [r for r in resources if r.startswith("aws_iam_policy.")]
    assert [r for r in resources if r.startswith("aws_iam_role_policy.")] == [
        "aws_iam_role_policy.deployex"
    ]
    policy = resources["aws_iam_role_policy.deployex"]["policy"]
    assert policy == "${data.aws_iam_policy_document.deployex.json}"
    statements = data["aws_iam_policy_document.deployex"]["statement"]
    granted = {a for s in statements for a in s["actions"]}
    assert granted == AWS_READS
    for statement in statements:
        assert statement.get("effect", "Allow") == "Allow"
        for resource in statement["resources"]:
            assert "*" not in resource.replace("arn}/*", "arn}")  # objects of that bucket only
            assert "aws_s3_bucket.releases.arn" in resource or (
                "aws_secretsmanager_secret.deployex.arn" in resource
            )
        if statement["actions"] == ["secretsmanager:GetSecretValue"]:
            assert statement["resources"] == ["${aws_secretsmanager_secret.deployex.arn}"]


def test_aws_firewall_opens_the_dashboard_port_and_ssh_only_on_request() -> None:
    group = blocks("aws", "resource")["aws_security_group.deployex"]
    (ingress,) = group["ingress"]
    assert ingress["from_port"] == ingress["to_port"] == "${var.dashboard_port}"
    assert ingress["protocol"] == "tcp"
    assert ingress["cidr_blocks"] == "${var.dashboard_cidr_blocks}"
    (ssh,) = group["dynamic"]
    assert "length(var.ssh_cidr_blocks) > 0" in ssh["ingress"]["for_each"]
    assert ssh["ingress"]["content"][0]["from_port"] == 22
    declared = variables("aws")
    assert declared["ssh_cidr_blocks"]["default"] == []  # closed unless asked for
    assert "default" not in declared["dashboard_cidr_blocks"]  # the operator says who


# -- GCP -----------------------------------------------------------------------------------------


def test_gcp_has_the_host_bucket_secret_account_and_firewall() -> None:
    resources = blocks("gcp", "resource")
    for needed in ("google_compute_instance.deployex", "google_storage_bucket.releases",
                   "google_secret_manager_secret.deployex", "google_service_account.deployex",
                   "google_compute_firewall.dashboard"):  # fmt: skip
        assert needed in resources
    instance = resources["google_compute_instance.deployex"]
    (account,) = instance["service_account"]
    assert account["email"] == "${google_service_account.deployex.email}"
    assert "--install" in (TERRAFORM / "gcp" / "startup.sh.tftpl").read_text()
    bucket = resources["google_storage_bucket.releases"]
    assert bucket["public_access_prevention"] == "enforced"


def test_gcp_account_reads_only_its_bucket_and_its_secret() -> None:
    resources = blocks("gcp", "resource")
    iam = {name: body for name, body in resources.items() if "_iam_" in name}
    # no project-wide grant: each binding is on the one bucket or the one secret
    assert set(iam) == {
        "google_storage_bucket_iam_member.read_releases",
        "google_secret_manager_secret_iam_member.read_secrets",
    }
    bucket = iam["google_storage_bucket_iam_member.read_releases"]
    assert bucket["role"] == "roles/storage.objectViewer"
    assert bucket["bucket"] == "${google_storage_bucket.releases.name}"
    secret = iam["google_secret_manager_secret_iam_member.read_secrets"]
    assert secret["role"] == "roles/secretmanager.secretAccessor"
    assert secret["secret_id"] == "${google_secret_manager_secret.deployex.id}"
    for binding in iam.values():
        assert binding["member"] == "serviceAccount:${google_service_account.deployex.email}"


def test_gcp_firewall_opens_the_dashboard_port_and_ssh_only_on_request() -> None:
    resources = blocks("gcp", "resource")
    rules = {n: b for n, b in resources.items() if n.startswith("google_compute_firewall.")}
    assert set(rules) == {"google_compute_firewall.dashboard", "google_compute_firewall.ssh"}
    (allow,) = rules["google_compute_firewall.dashboard"]["allow"]
    assert allow == {"protocol": "tcp", "ports": ["${tostring(var.dashboard_port)}"]}
    ssh = rules["google_compute_firewall.ssh"]
    assert "length(var.ssh_source_ranges) > 0" in ssh["count"]
    assert variables("gcp")["ssh_source_ranges"]["default"] == []
    for rule in rules.values():
        assert rule["target_tags"] == ["${local.name}"]  # only the DeployEx VM


# -- with terraform installed --------------------------------------------------------------------


@needs_terraform
def test_terraform_files_are_formatted() -> None:
    done = subprocess.run(["terraform", "fmt", "-check", "-recursive", str(TERRAFORM)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, f"not formatted: {done.stdout}"


@needs_terraform
@pytest.mark.parametrize("module", ["aws", "gcp"])
def test_rendered_deployex_yaml_loads(module: str, tmp_path: Path) -> None:
    """The YAML the host gets is one DeployEx accepts (rendered by terraform's own templatefile,
    which `terraform console` evaluates without providers)."""
    template = TERRAFORM / module / "deployex.yaml.tftpl"
    values = {"account_name": "prod", "hostname": "deployex.example.com", "dashboard_port": 5001,
              "region": "eu-west-1", "bucket": "the-releases", "secret": "deployex-prod-secrets",
              "applications": [{"name": "myapp", "language": "elixir", "replicas": 2,
                                "port_base": 4000},
                               {"name": "other", "language": "gleam", "replicas": 1,
                                "port_base": 4100}]}  # fmt: skip
    expression = f"templatefile({json.dumps(str(template))}, {json.dumps(values)})"
    done = subprocess.run(["terraform", "console"], input=expression, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rendered = done.stdout.strip()
    assert rendered.startswith("<<EOT") and rendered.endswith("EOT"), rendered
    path = tmp_path / "deployex.yaml"
    path.write_text(rendered.removeprefix("<<EOT").removesuffix("EOT").strip() + "\n")
    config = load_config(path)
    assert [(a.name, a.language, a.replicas) for a in config.applications] == [
        ("myapp", "elixir", 2), ("other", "gleam", 1)]  # fmt: skip
    assert config.applications[1].replica_ports[0].base == 4100
    assert config.release_bucket == "the-releases"
    assert config.secrets_path == "deployex-prod-secrets"
    assert config.warnings == ()
