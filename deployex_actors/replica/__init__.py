"""The OS side of a replica: starting it, its pidfile, adopting it, stopping it."""
