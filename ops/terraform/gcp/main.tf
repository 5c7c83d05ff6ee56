# One Debian 12 VM running DeployEx, its release bucket and its secret, with a service account
# that can read only that bucket and that secret. See docs/operations.md ("Terraform").

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 5.0"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
  zone    = var.zone
}

locals {
  name        = "deployex-${var.account_name}"
  bucket_name = var.release_bucket != "" ? var.release_bucket : "${var.project}-${local.name}-distribution"
  secret_name = "deployex-${var.account_name}-secrets"
}

# -- the release bucket: private, versioned ------------------------------------------------------

resource "google_storage_bucket" "releases" {
  name                        = local.bucket_name
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  versioning {
    enabled = true
  }
}

# -- the secret: one JSON object with the three keys (docs/secrets.md). Terraform creates the
# container only: the operator adds the version, so the values never enter the Terraform state.

resource "google_secret_manager_secret" "deployex" {
  secret_id = local.secret_name
  replication {
    auto {}
  }
}

# -- the VM's identity: read that bucket and that secret, nothing else ---------------------------

resource "google_service_account" "deployex" {
  account_id   = local.name
  display_name = "DeployEx ${var.account_name}"
}

resource "google_storage_bucket_iam_member" "read_releases" {
  bucket = google_storage_bucket.releases.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.deployex.email}"
}

resource "google_secret_manager_secret_iam_member" "read_secrets" {
  secret_id = google_secret_manager_secret.deployex.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.deployex.email}"
}

# -- the firewall: the dashboard port, and SSH only when a source range is given ----------------

resource "google_compute_firewall" "dashboard" {
  name          = "${local.name}-dashboard"
  network       = var.network
  direction     = "INGRESS"
  source_ranges = var.dashboard_source_ranges
  target_tags   = [local.name]
  allow {
    protocol = "tcp"
    ports    = [tostring(var.dashboard_port)]
  }
}

resource "google_compute_firewall" "ssh" {
  count         = length(var.ssh_source_ranges) > 0 ? 1 : 0
  name          = "${local.name}-ssh"
  network       = var.network
  direction     = "INGRESS"
  source_ranges = var.ssh_source_ranges
  target_tags   = [local.name]
  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
}

# -- the host: Debian 12; its startup script (GCE's Debian images run startup scripts rather than
# cloud-init) writes the configuration and runs the installer ----------------------------------

resource "google_compute_instance" "deployex" {
  name         = local.name
  machine_type = var.machine_type
  tags         = [local.name]

  boot_disk {
    initialize_params {
      image = "debian-cloud/debian-12"
      size  = var.disk_gb
    }
  }

  network_interface {
    network = var.network
    access_config {}
  }

  service_account {
    email  = google_service_account.deployex.email
    scopes = ["cloud-platform"] # what it may do is set by the IAM bindings above
  }

  shielded_instance_config {
    enable_secure_boot = true
  }

  metadata_startup_script = templatefile("${path.module}/startup.sh.tftpl", {
    installer_url = var.installer_url
    deployex_yaml = templatefile("${path.module}/deployex.yaml.tftpl", {
      account_name   = var.account_name
      hostname       = var.hostname
      dashboard_port = var.dashboard_port
      bucket         = google_storage_bucket.releases.name
      secret         = google_secret_manager_secret.deployex.secret_id
      applications   = var.applications
    })
  })

  depends_on = [
    google_storage_bucket_iam_member.read_releases,
    google_secret_manager_secret_iam_member.read_secrets,
  ]
}
