"""DeployEx upgrading itself with its replicas kept: a wheel installed beside the running version
under `install_path`, checked by the new version, `current` switched, then DeployEx re-executes
into it and adopts every replica (see docs/self-upgrade.md)."""
