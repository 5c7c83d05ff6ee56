"""Talking to BEAM nodes: a pure-Python hidden-node client for Erlang distribution.

link = connect("myapp-abc123@host", cookie)      # EPMD lookup + handshake (+ TLS)
link.rpc("erlang", "system_info", [Atom("process_count")])
link.stats(); link.ping(); link.close()
"""

from deployex_actors.beam.link import NodeLink, NodeStats, connect
from deployex_actors.beam.terms import Atom
from deployex_actors.beam.tls import TlsOptions

__all__ = ["Atom", "NodeLink", "NodeStats", "TlsOptions", "connect"]
