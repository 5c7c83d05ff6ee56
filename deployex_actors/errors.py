"""Typed errors an operator can act on.

Every error that crosses a boundary (YAML, bucket, tarball, secrets, state) is a `DeployexError`
whose `str()` is one line that says what failed and what to do. Front ends print that line; actors
log it once and show it in status. Secrets never appear in these messages.
"""


class DeployexError(Exception):
    """Base class: the message is complete and safe to show to an operator."""


class NoAnswer(DeployexError):
    """DeployEx did not answer a request in time (down, restarting, or too slow)."""


class ConfigError(DeployexError):
    """The YAML configuration cannot be used. `problems` holds one line per problem."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class ReleaseError(DeployexError):
    """A release bucket operation failed."""


class BucketUnreachable(ReleaseError):
    """The bucket itself could not be reached (network, credentials, missing bucket)."""


class CurrentJsonMissing(ReleaseError):
    """No current.json exists for the app in this account."""


class CurrentJsonInvalid(ReleaseError):
    """current.json exists but is not a valid release descriptor."""


class TarballMissing(ReleaseError):
    """The tarball named by a version is not in the bucket."""


class TarballCorrupt(ReleaseError):
    """The tarball cannot be read as a gzip tar archive."""


class UnpackRefused(ReleaseError):
    """A tarball entry would write outside its folder or is of a refused kind."""


class ReleaseMetadataInvalid(ReleaseError):
    """A release's hot-upgrade metadata (relup, appup, .rel, jellyfish.json) cannot be read."""


class SecretsError(DeployexError):
    """Secrets could not be loaded."""


class StateError(DeployexError):
    """The durable state (SQLite) could not be opened or migrated."""


class StateDiskFull(StateError):
    """The state database cannot grow: its disk is full."""


class TermSyntaxError(DeployexError):
    """Erlang term text (a .rel, relup or appup file) is not valid; the message says where."""


class BeamError(DeployexError):
    """Talking to a BEAM node over Erlang distribution failed."""


class NodeNotFound(BeamError):
    """EPMD on the node's host does not know the node (not started, or already gone)."""


class HandshakeFailed(BeamError):
    """The distribution handshake failed (wrong cookie, TLS refused, protocol mismatch)."""


class NodeDown(BeamError):
    """The connection to the node is lost: the node died, or stopped answering ticks."""


class RpcTimeout(BeamError):
    """An rpc got no reply within its timeout; the connection itself may be fine."""


class BadRpc(BeamError):
    """The node answered an rpc with `{badrpc, Reason}`; `reason` is the decoded term."""

    def __init__(self, message: str, reason: object = None) -> None:
        super().__init__(message)
        self.reason = reason
