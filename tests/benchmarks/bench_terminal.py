"""Benchmark: browser terminals — keystroke to echo in the browser, and memory per terminal.

    .venv/bin/python -m tests.benchmarks.bench_terminal [--keys 200] [--terminals 4]

Under a real `deployex run` (its Web actor runs the dashboard), in headless Debian Chromium:

- round trip: in a host terminal (tmux, bash at its prompt), a character is handed to xterm.js
  as typed input (its data event, the path a key press takes after the keyboard event), and the
  time until xterm.js has parsed the echoed character is taken in the page (`performance.now()`,
  xterm's write callback); each is erased again with a backspace. Median and p90 over --keys.
  Target < 50 ms on loopback.
- memory: PSS (/proc/PID/smaps_rollup) of the dashboard process and of the terminals' own
  processes (tmux client and server, the shell) with 0 and --terminals open host terminals.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

import psutil

from tests.beam_fixtures import build_releases, wait_until
from tests.browser import chromium, log_in
from tests.test_terminals import demo_of

# Finds the xterm.js instance of the page's Terminal widget through Bokeh's views, then types
# `n` characters one at a time, each when the previous echo was parsed.
ROUND_TRIPS = """async (n) => {
  const idx = window.Bokeh.index;
  const stack = idx.roots ? [...idx.roots] : (idx.values ? [...idx.values()] : Object.values(idx));
  const seen = new Set();
  let term = null;
  while (stack.length && !term) {
    const v = stack.pop();
    if (!v || seen.has(v)) continue;
    seen.add(v);
    if (v.term && v.term.buffer) { term = v.term; break; }
    const kids = v.child_views;
    if (kids) for (const c of (kids.values ? kids.values() : kids)) stack.push(c);
    if (typeof v.children === 'function') {
      try { for (const c of v.children()) stack.push(c); } catch (e) {}
    }
  }
  if (!term) throw new Error('no xterm.js instance found');
  // what xterm.js does with a key press once it has its data (term.input in newer versions)
  const type = term.input ? (d) => term.input(d, true)
                          : (d) => term._core.coreService.triggerDataEvent(d, true);
  // every write Panel hands to xterm.js, once parsed (xterm's write callback)
  if (!term.__dxParsed) {
    const write = term.write.bind(term);
    const parsed = term.__dxParsed = new Set();
    term.write = (data, cb) => write(data, () => {
      if (cb) cb();
      for (const f of [...parsed]) f();
    });
  }
  const parsed = term.__dxParsed;
  const when = (test) => new Promise((resolve) => {
    const check = () => { if (test()) { parsed.delete(check); resolve(); } };
    parsed.add(check);
  });
  const line = () => {
    const b = term.buffer.active;
    return b.getLine(b.cursorY + b.viewportY).translateToString(true);
  };
  const times = [];
  for (let i = 0; i < n; i++) {
    const ch = 'abcdefghij'[i % 10];
    const before = line();
    const seen = when(() => line() !== before);
    const t0 = performance.now();
    type(ch);
    await seen;
    times.push(performance.now() - t0);
    const erased = when(() => line() === before);
    type('\\x7f');
    await erased;
  }
  return times;
}"""


def pss_kib(pid: int) -> int:
    try:
        for row in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if row.startswith("Pss:"):
                return int(row.split()[1])
    except OSError:
        pass
    return 0


def terminal_processes(sockets_dir: Path) -> list[psutil.Process]:
    """tmux clients and servers of our sockets, and what runs under the servers."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if any(str(sockets_dir) in arg for arg in proc.info["cmdline"] or ()):
            found.append(proc)
            found += proc.children(recursive=True)
    return list({p.pid: p for p in found}.values())


def open_host(page: Any, demo: Any) -> None:
    log_in(page, demo.dashboard, path="/terminal/open?target=host")
    page.wait_for_url("**/terminal/open*")
    page.get_by_role("button", name="Open a shell on host").click()
    page.wait_for_url("**/terminal?ticket=*")
    page.locator(".xterm").first.wait_for()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--terminals", type=int, default=4)
    args = parser.parse_args()
    dist = build_releases()
    limit = args.terminals + 1
    with tempfile.TemporaryDirectory() as tmp, chromium() as browser:  # noqa: SIM117
        with demo_of(dist, Path(tmp), ("mygleamapp",), terminals_max=limit) as demo:
            sockets = Path(tmp) / "var" / "terminals"
            dashboard_pid = demo.dashboard.pid
            pages = []
            base = pss_kib(dashboard_pid)
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            pages.append(page)
            open_host(page, demo)
            page.wait_for_timeout(1000)  # bash at its prompt in tmux
            page.evaluate(ROUND_TRIPS, 10)  # warm-up
            times = sorted(page.evaluate(ROUND_TRIPS, args.keys))
            p90 = times[int(len(times) * 0.9) - 1]
            print(f"keystroke -> echo in the browser: median {statistics.median(times):.1f} ms, "
                  f"p90 {p90:.1f} ms, max {times[-1]:.1f} ms over {len(times)} keys "
                  "(target < 50 ms)")  # fmt: skip
            for _ in range(args.terminals - 1):
                other = browser.new_context().new_page()
                pages.append(other)
                open_host(other, demo)
            wait_until(lambda: len(list(sockets.glob("*.sock"))) == args.terminals, 20, "open")
            with_open = pss_kib(dashboard_pid)
            own = sum(pss_kib(p.pid) for p in terminal_processes(sockets))
            per_dashboard = (with_open - base) / args.terminals / 1024
            per_own = own / args.terminals / 1024
            print(f"memory per open host terminal: dashboard process +{per_dashboard:.1f} MiB PSS "
                  f"(with its browser session), its own processes (tmux client, server, shell) "
                  f"{per_own:.1f} MiB PSS; {args.terminals} open")  # fmt: skip
            for other in pages:
                other.context.close()


if __name__ == "__main__":
    main()
