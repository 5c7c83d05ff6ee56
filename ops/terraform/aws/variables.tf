variable "region" {
  description = "AWS region of the host, the bucket and the secret"
  type        = string
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
  description = "Bucket name; empty: deployex-ACCOUNT-distribution"
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

variable "vpc_id" {
  description = "VPC of the host"
  type        = string
}

variable "subnet_id" {
  description = "Public subnet of the host"
  type        = string
}

variable "instance_type" {
  type    = string
  default = "t3.small"
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

variable "dashboard_cidr_blocks" {
  description = "Who may reach the dashboard"
  type        = list(string)
}

variable "ssh_cidr_blocks" {
  description = "Who may reach SSH; empty (the default): port 22 stays closed"
  type        = list(string)
  default     = []
}

variable "key_name" {
  description = "EC2 key pair for SSH; null: none"
  type        = string
  default     = null
}

variable "installer_url" {
  description = "Where cloud-init downloads ops/installer/deployex.sh from"
  type        = string
}
