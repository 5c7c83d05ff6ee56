output "dashboard_url" {
  value = "http://${aws_instance.deployex.public_ip}:${var.dashboard_port}"
}

output "release_bucket" {
  value = aws_s3_bucket.releases.bucket
}

output "secret_name" {
  description = "Put the three keys into it: aws secretsmanager put-secret-value (docs/secrets.md)"
  value       = aws_secretsmanager_secret.deployex.name
}
