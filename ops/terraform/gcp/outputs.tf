output "dashboard_url" {
  value = "http://${google_compute_instance.deployex.network_interface[0].access_config[0].nat_ip}:${var.dashboard_port}"
}

output "release_bucket" {
  value = google_storage_bucket.releases.name
}

output "secret_name" {
  description = "Add a version with the three keys: gcloud secrets versions add (docs/secrets.md)"
  value       = google_secret_manager_secret.deployex.secret_id
}
