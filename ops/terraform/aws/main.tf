# One Debian 12 host running DeployEx, its release bucket and its secret, with an instance role
# that can read only that bucket and that secret. See docs/operations.md ("Terraform").

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region = var.region
}

locals {
  name        = "deployex-${var.account_name}"
  bucket_name = var.release_bucket != "" ? var.release_bucket : "${local.name}-distribution"
  secret_name = "deployex-${var.account_name}-secrets"
}

# -- the release bucket: private, versioned ------------------------------------------------------

resource "aws_s3_bucket" "releases" {
  bucket = local.bucket_name
}

resource "aws_s3_bucket_public_access_block" "releases" {
  bucket                  = aws_s3_bucket.releases.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "releases" {
  bucket = aws_s3_bucket.releases.id
  versioning_configuration {
    status = "Enabled"
  }
}

# -- the secret: one JSON object with DEPLOYEX_SECRET_KEY_BASE, DEPLOYEX_ERLANG_COOKIE and
# DEPLOYEX_ADMIN_HASHED_PASSWORD (docs/secrets.md). Terraform creates the container only: the
# values are put by the operator, so they never enter the Terraform state.

resource "aws_secretsmanager_secret" "deployex" {
  name                    = local.secret_name
  recovery_window_in_days = 7
}

# -- the instance role: read that bucket and that secret, nothing else ---------------------------

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "deployex" {
  name               = local.name
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
}

data "aws_iam_policy_document" "deployex" {
  statement {
    sid       = "ListReleases"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.releases.arn]
  }
  statement {
    sid       = "ReadReleases"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.releases.arn}/*"]
  }
  statement {
    sid       = "ReadSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.deployex.arn]
  }
}

resource "aws_iam_role_policy" "deployex" {
  name   = "${local.name}-read"
  role   = aws_iam_role.deployex.id
  policy = data.aws_iam_policy_document.deployex.json
}

resource "aws_iam_instance_profile" "deployex" {
  name = local.name
  role = aws_iam_role.deployex.name
}

# -- the firewall: the dashboard port, and SSH only when a source range is given ----------------

resource "aws_security_group" "deployex" {
  name        = local.name
  description = "DeployEx dashboard (and SSH when ssh_cidr_blocks is set)"
  vpc_id      = var.vpc_id

  ingress {
    description = "DeployEx dashboard"
    from_port   = var.dashboard_port
    to_port     = var.dashboard_port
    protocol    = "tcp"
    cidr_blocks = var.dashboard_cidr_blocks
  }

  dynamic "ingress" {
    for_each = length(var.ssh_cidr_blocks) > 0 ? [1] : []
    content {
      description = "SSH"
      from_port   = 22
      to_port     = 22
      protocol    = "tcp"
      cidr_blocks = var.ssh_cidr_blocks
    }
  }

  egress {
    description = "packages, the bucket and Secrets Manager"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# -- the host: Debian 12, cloud-init runs the installer ------------------------------------------

data "aws_ami" "debian" {
  most_recent = true
  owners      = ["136693071363"] # Debian's official images
  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }
}

resource "aws_instance" "deployex" {
  ami                         = data.aws_ami.debian.id
  instance_type               = var.instance_type
  subnet_id                   = var.subnet_id
  vpc_security_group_ids      = [aws_security_group.deployex.id]
  iam_instance_profile        = aws_iam_instance_profile.deployex.name
  key_name                    = var.key_name
  associate_public_ip_address = true

  metadata_options {
    http_tokens = "required" # IMDSv2 only
  }

  root_block_device {
    volume_size = var.disk_gb
    encrypted   = true
  }

  user_data = templatefile("${path.module}/cloud-init.yaml.tftpl", {
    installer_url = var.installer_url
    deployex_yaml = templatefile("${path.module}/deployex.yaml.tftpl", {
      account_name   = var.account_name
      hostname       = var.hostname
      dashboard_port = var.dashboard_port
      region         = var.region
      bucket         = aws_s3_bucket.releases.bucket
      secret         = aws_secretsmanager_secret.deployex.name
      applications   = var.applications
    })
  })

  tags = {
    Name = local.name
  }
}
