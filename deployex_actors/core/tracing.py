"""What a trace may be asked for: `mod:fun/arity` and its limits. Pure.

    parse_target("myapp_server:handle_call/3") -> ("myapp_server", "handle_call", 3)
    parse_target("'Elixir.MyApp.Server':init/_") -> (..., "_")     (any arity)

The limits are enforced on the node by the tracer itself (beam/erlang/dx_observer.erl): it
stops after `max` messages, after `seconds`, above `rate` messages in one second, when the
operator stops it, and when DeployEx's connection to the node goes away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deployex_actors.errors import DeployexError

MAX_DEFAULT = 100
MAX_CAP = 10_000
SECONDS_DEFAULT = 30
SECONDS_CAP = 600
RATE_DEFAULT = 1_000  # messages in one second; above it the trace stops itself
RATE_CAP = 10_000

_ATOM = r"(?:'(?:[^'\\]|\\.)+'|[a-z][A-Za-z0-9_@]*|[A-Z][A-Za-z0-9_.]*)"
_TARGET = re.compile(rf"^\s*({_ATOM})\s*:\s*({_ATOM})\s*/\s*(\d+|_)\s*$")


@dataclass(frozen=True)
class TraceSpec:
    module: str
    function: str
    arity: int | str  # "_": any arity
    max: int = MAX_DEFAULT
    seconds: int = SECONDS_DEFAULT
    rate: int = RATE_DEFAULT
    returns: bool = False
    match: str | None = None  # an argument list pattern, "[_, 42]"

    @property
    def target(self) -> str:
        return f"{self.module}:{self.function}/{self.arity}"


def parse_target(text: str) -> tuple[str, str, int | str]:
    found = _TARGET.match(text)
    if not found:
        raise DeployexError(
            f"not a function to trace: {text!r} (give module:function/arity, arity a number "
            "or _; an Elixir module as 'Elixir.MyApp.Server' or MyApp.Server)"
        )
    module, function, arity = (_atom(found.group(1)), _atom(found.group(2)), found.group(3))
    return module, function, "_" if arity == "_" else int(arity)


def _atom(text: str) -> str:
    if text.startswith("'"):
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    if text[0].isupper():  # an Elixir alias: MyApp.Server is the atom 'Elixir.MyApp.Server'
        return text if text.startswith("Elixir.") else f"Elixir.{text}"
    return text


def trace_spec(
    target: str,
    max_messages: int = MAX_DEFAULT,
    seconds: int = SECONDS_DEFAULT,
    rate: int = RATE_DEFAULT,
    returns: bool = False,
    match: str | None = None,
) -> TraceSpec:
    """A spec within the limits, or a DeployexError that says which limit."""
    module, function, arity = parse_target(target)
    for name, value, cap in (
        ("max", max_messages, MAX_CAP),
        ("seconds", seconds, SECONDS_CAP),
        ("rate", rate, RATE_CAP),
    ):
        if not 1 <= value <= cap:
            raise DeployexError(f"trace {name} must be 1..{cap}, not {value}")
    if match is not None and not match.strip().startswith("["):
        raise DeployexError(f"the match is an argument list pattern, like [_, 42]: {match!r}")
    return TraceSpec(module, function, arity, max_messages, seconds, rate, returns, match)
