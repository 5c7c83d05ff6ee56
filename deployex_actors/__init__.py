"""deployex_actors: a deployment supervisor for BEAM applications built on thespian actors."""

__version__ = "0.1.0"
