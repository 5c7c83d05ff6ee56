"""`deployex observer APP SNAME`: a look into a replica's node, printed once.

System (releases, schedulers, memory by type, counts against limits), the applications with
their supervision trees, the top processes, ports and ETS tables; `--pid` shows one process
in detail, with its state (sys:get_state: a call into that process, journaled).
"""

from __future__ import annotations

import argparse
from typing import Any

from deployex_actors.beam.observer import PROCESS_FIELDS, SORTS
from deployex_actors.cli.attach import add_config_option, facade

HELP = "look into a replica's node: system, applications, top processes, ports, ETS"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("observer", help=HELP, description=__doc__)
    parser.add_argument("app")
    parser.add_argument("sname")
    parser.add_argument("--sort", choices=SORTS, default="memory", help="processes by (memory)")
    parser.add_argument("--top", type=int, default=15, help="rows of each table (15)")
    parser.add_argument("--depth", type=int, default=3, help="supervision tree depth (3)")
    parser.add_argument("--pid", help="one process in detail, e.g. '<0.123.0>'")
    add_config_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    dx = facade(args)

    def call(name: str, *more: Any) -> Any:
        return dx.observe(args.app, args.sname, name, *more, actor="cli")

    if args.pid:
        show_process(call("process", args.pid))
        return 0
    show_system(call("system"))
    print("\napplications")
    for app in call("apps", args.depth, args.top):
        print(f"  {app['name']} {text(app['vsn'])}")
        if isinstance(app.get("tree"), dict):  # `undefined` for a library application
            show_tree(app["tree"], "    ")
    top = call("top", args.sort, args.top)
    print(f"\nprocesses by {args.sort} (top {args.top} of {top['scanned']} looked at)")
    print(f"  {'pid':<14} {'name':<28} {'memory':>10} {'reductions':>12} {'queue':>6}  current")
    for p in top["processes"]:
        name = text(p.get("name") or p.get("initial_call", ""))
        print(f"  {text(p['pid']):<14} {name[:28]:<28} {p.get('memory', 0):>10} "
              f"{p.get('reductions', 0):>12} {p.get('message_queue_len', 0):>6}  "
              f"{text(p.get('current_function', ''))}")  # fmt: skip
    print(f"\nports (top {args.top} by memory)")
    for port in call("ports", args.top):
        print(f"  {text(port['port']):<16} {text(port['name'])[:30]:<30} owner "
              f"{text(port['owner'])} os_pid {port.get('os_pid')}")  # fmt: skip
    print(f"\nETS tables (top {args.top} by memory)")
    for table in call("ets", args.top):
        owner = text(table["owner"])
        print(f"  {text(table['name'])[:30]:<30} {table['size']:>8} rows {table['memory']:>10} "
              f"bytes  owner {owner} {table['type']} {table['protection']}")  # fmt: skip
    return 0


def show_system(s: dict) -> None:
    print(f"OTP {text(s['otp_release'])}, ERTS {text(s['erts_version'])}, "
          f"{s['schedulers_online']}/{s['schedulers']} schedulers, up {s['uptime_ms'] // 1000} s, "
          f"run queue {s['run_queue']}")  # fmt: skip
    for kind in ("process", "port", "atom", "ets"):
        count, limit = s[f"{kind}_count"], s[f"{kind}_limit"]
        print(f"  {kind}s {count} of {limit} ({100 * count / limit:.1f}%)")
    memory = ", ".join(f"{k} {v / 1048576:.1f} MiB" for k, v in sorted(s["memory"].items()))
    print(f"  memory: {memory}")


def show_tree(node: dict, indent: str) -> None:
    name = text(node.get("name") or node.get("id") or "")
    print(f"{indent}{name} {text(node.get('pid', ''))} ({node.get('type')})")
    for child in node.get("children", []):
        show_tree(child, indent + "  ")
    if node.get("more"):
        print(f"{indent}  ... {node['more']} more")
    if node.get("error"):
        print(f"{indent}  (children not read: {text(node['error'])})")


def show_process(p: dict) -> None:
    if p.get("gone"):
        print(f"{text(p['pid'])}: no such process")
        return
    for key in PROCESS_FIELDS:
        print(f"{key:<18} {text(p.get(key))}")
    for key in ("links", "monitors", "monitored_by", "dictionary_keys"):
        print(f"{key:<18} {', '.join(text(v) for v in p.get(key, [])) or '-'}")
    state = p.get("state", {})
    if "value" in state:
        print(f"state (sys:get_state) {text(state['value'])}")
    else:
        print(f"state (sys:get_state) not read: {text(state.get('error'))}")


def text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return "-" if value is None else str(value)
