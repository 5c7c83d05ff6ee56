"""The actor shell: thespian actors that hold state, receive messages and perform I/O.

Decisions are made by the pure functions in `deployex_actors.core`; every message type is in
`messages.py`. Import nothing from `dashboards` here: actors are forked from a lean process.
"""
