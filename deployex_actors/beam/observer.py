"""Looking into a replica's node: the observer's questions and the tracer, as rpc calls over a
NodeLink into `dx_observer`, a small module of ours (erlang/dx_observer.erl) compiled once with
the host's `erlc` and loaded into each node that needs it (code:load_binary). Every answer is
bounded whatever the node's size (see the module); nothing here holds a list of all processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from deployex_actors.beam.link import NodeLink
from deployex_actors.beam.terms import Atom
from deployex_actors.core.tracing import TraceSpec
from deployex_actors.errors import BeamError, DeployexError

MODULE = "dx_observer"
SOURCE = Path(__file__).parent / "erlang" / f"{MODULE}.erl"
CALL_TIMEOUT_S = 8.0  # under the front ends' 10 s, so that they hear why
TOP_SCAN_LIMIT = 1_000_000  # processes looked at per refresh, at most
STATE_TIMEOUT_MS = 1000
SORTS = ("memory", "reductions_delta", "reductions", "message_queue_len")


def compiled(cache_dir: Path) -> bytes:
    """The module's .beam, compiled from its source into `cache_dir` once per source."""
    source = SOURCE.read_bytes()
    beam = cache_dir / f"{MODULE}-{hashlib.sha256(source).hexdigest()[:16]}.beam"
    if beam.exists():
        return beam.read_bytes()
    erlc = shutil.which("erlc")
    if erlc is None:
        raise DeployexError(
            "the observer needs Erlang's `erlc` on this host (apt-get install erlang-base)"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
        result = subprocess.run(
            [erlc, "+deterministic", "-o", scratch, str(SOURCE)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise DeployexError(f"erlc could not compile {SOURCE.name}: {result.stderr.strip()}")
        (Path(scratch) / f"{MODULE}.beam").replace(beam)
    return beam.read_bytes()


class Observer:
    """The observer's calls on one node; loads the module on first use."""

    def __init__(self, link: NodeLink, cache_dir: Path) -> None:
        self.link = link
        self.cache_dir = cache_dir
        self._loaded = False

    def _call(self, function: str, *args: Any, timeout: float = CALL_TIMEOUT_S) -> Any:
        if not self._loaded:
            self._load()
        return self.link.rpc(MODULE, function, list(args), timeout)

    def _load(self) -> None:
        beam = compiled(self.cache_dir)
        md5 = hashlib.md5(beam).digest()  # noqa: S324 - what the code server reports
        current = self.link.rpc("code", "is_loaded", [Atom(MODULE)], CALL_TIMEOUT_S)
        if current != "false":
            with contextlib.suppress(BeamError):
                if self.link.rpc(MODULE, "module_info", [Atom("md5")], CALL_TIMEOUT_S) == md5:
                    self._loaded = True
                    return
        filename = list(f"{MODULE}.erl".encode())  # a string, for the code server
        try:
            answer = self.link.rpc(
                "code", "load_binary", [Atom(MODULE), filename, beam], CALL_TIMEOUT_S
            )
        except BeamError as exc:  # its message would carry the whole binary
            raise BeamError(
                f"could not load {MODULE} into {self.link.node}: {str(exc)[:200]}"
            ) from None

        if not (isinstance(answer, tuple) and answer and answer[0] == "module"):
            raise BeamError(f"could not load {MODULE} into {self.link.node}: {answer!r}")
        self._loaded = True

    def system(self) -> dict:
        return self._call("system")

    def apps(self, depth: int = 3, width: int = 20) -> list:
        return self._call("apps", depth, width)

    def top(self, key: str = "memory", n: int = 20, limit: int = TOP_SCAN_LIMIT) -> dict:
        """The N largest processes by `key`; "reductions_delta" counts since the last refresh
        of this DeployEx (the node keeps the last counts, see dx_observer). Each process's
        sort value is its `value`."""
        if key == "reductions_delta":
            return self._call("top", Atom(key), n, limit, Atom(self.link.local_node))
        if key not in SORTS:
            raise DeployexError(f"processes are sorted by {', '.join(SORTS)}, not {key!r}")
        return self._call("top", Atom(key), n, limit)

    def process(self, pid: str, state_timeout_ms: int = STATE_TIMEOUT_MS) -> dict:
        return self._call("process", pid.encode(), state_timeout_ms)

    def ports(self, n: int = 20) -> list:
        return self._call("ports", n)

    def ets(self, n: int = 20) -> list:
        return self._call("ets", n)

    def trace_start(self, spec: TraceSpec) -> str:
        """Start the node's tracer; its pid, as text. Raises if the node refused."""
        arity = Atom("_") if spec.arity == "_" else spec.arity
        args = {
            Atom("module"): Atom(spec.module),
            Atom("function"): Atom(spec.function),
            Atom("arity"): arity,
            Atom("max"): spec.max,
            Atom("seconds"): spec.seconds,
            Atom("rate"): spec.rate,
            Atom("returns"): spec.returns,
            Atom("match"): Atom("undefined") if spec.match is None else spec.match.encode(),
        }
        answer = self._call("trace_start", Atom(self.link.local_node), args)
        if isinstance(answer, tuple) and len(answer) == 3 and answer[0] == "ok":
            return text(answer[1])
        reason = answer[1] if isinstance(answer, tuple) and len(answer) == 2 else answer
        raise DeployexError(f"the trace of {spec.target} did not start: {text(reason)}")

    def trace_fetch(self, tracer: str) -> dict:
        return self._call("trace_fetch", tracer.encode())

    def trace_stop(self, tracer: str) -> dict:
        return self._call("trace_stop", tracer.encode())


# A process's details as `process` answers them, in the order they are shown.
PROCESS_FIELDS = (
    "pid",
    "name",
    "initial_call",
    "current_function",
    "status",
    "message_queue_len",
    "heap_size",
    "stack_size",
    "total_heap_size",
    "reductions",
    "memory",
    "trap_exit",
)

CALLS = frozenset(
    {"system", "apps", "top", "process", "ports", "ets", "trace_start", "trace_fetch", "trace_stop"}
)


def describe_call(call: str, args: tuple) -> str | None:
    """The journal line of a call that acts on the node (None for a plain read): a process's
    state is a call into that process; a trace changes what the node does."""
    if call == "process":
        return f"process {args[0]} inspected (sys:get_state, a call into it)"
    if call == "trace_start":
        spec = args[0]
        extra = ", returns" if spec.returns else ""
        match = f", match {spec.match}" if spec.match else ""
        return (f"trace of {spec.target} started (max {spec.max} messages, {spec.seconds} s, "
                f"{spec.rate}/s{extra}{match})")  # fmt: skip
    if call == "trace_stop":
        return f"trace {args[0]} stopped by the operator"
    return None


def text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)
