variable "project" {
  description = "GCP project of the VM, the bucket and the secret"
  type        = string
}

variable "region" {
  type = string
}

variable "zone" {
  type = string
}

variable "account_name" {
  description = "DeployEx account_name: names the bucket folder, the secret and the resources"
  type        = string
  default     = "prod"
}

variable "hostname" {
  description = "The dashboard's host name (DeployEx's hostname key)"
  type        = string
}

variable "release_bucket" {
  description = "Bucket name; empty: PROJECT-deployex-ACCOUNT-distribution"
  type        = string
  default     = ""
}

variable "applications" {
  description = "The apps DeployEx runs: name, language (elixir|erlang|gleam), replicas, port base"
  type = list(object({
    name      = string
    language  = string
    replicas  = number
    port_base = number
  }))
}

variable "network" {
  type    = string
  default = "default"
}

variable "machine_type" {
  type    = string
  default = "e2-small"
}

variable "disk_gb" {
  type    = number
  default = 20
}

variable "dashboard_port" {
  description = "DeployEx's dashboard port (the YAML `port`); the only port opened"
  type        = number
  default     = 5001
}

variable "dashboard_source_ranges" {
  description = "Who may reach the dashboard"
  type        = list(string)
}

variable "ssh_source_ranges" {
  description = "Who may reach SSH; empty (the default): no SSH rule"
  type        = list(string)
  default     = []
}

variable "installer_url" {
  description = "Where the startup script downloads ops/installer/deployex.sh from"
  type        = string
}
