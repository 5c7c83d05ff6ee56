"""The terminal page: `/terminal?ticket=...` (left by the POST of /terminal/open) starts the
program on a pseudo-terminal and bridges it to an xterm.js terminal in the page.

Output is read when the descriptor is readable (tornado's IOLoop), written to the terminal in
the document's own tick; keystrokes go straight to the terminal's descriptor; the browser's size
reaches the program as TIOCSWINSZ. Closing the tab (once Bokeh drops the session), logging out,
the idle timeout, the program's exit and a replica that stops all close it (dashboards.terminals).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import time
from typing import Any

import panel as pn
import param
from tornado.ioloop import IOLoop

from dashboards import display
from dashboards.pages.base import Page, query_arg
from dashboards.terminal_open import OFF, open_url
from dashboards.terminals import (
    SHORTCUTS,
    OpenTerminal,
    Refused,
    Target,
    Ticket,
    base_environment,
    deployex_shell_argv,
)
from deployex_actors.errors import DeployexError

log = logging.getLogger(__name__)
OUTPUT_KEEP = 256 * 1024  # what the server keeps of a terminal's output (the browser has it all)
TERMINAL_CSS = """
.dx-keys { font-size: 13px; } .dx-keys dt { font-weight: bold; margin-top: 6px; }
.dx-keys dd { margin: 0 0 0 8px; color: #444; }
"""


class TerminalPage(Page):
    path = "/terminal"
    title = "Terminal"

    def body(self) -> pn.viewable.Viewable:
        self.doc = pn.state.curdoc
        self.terminal: OpenTerminal | None = None
        self.status = pn.pane.Markdown("", css_classes=["dx-terminal-status"])
        self.widget = pn.widgets.Terminal(
            options={"cursorBlink": True, "fontSize": 14, "scrollback": 5000},
            height=520,
            sizing_mode="stretch_width",
            css_classes=["dx-terminal"],
        )
        self._cleanups.append(self._page_closed)
        registry = self.context.terminals
        ticket = None
        if registry is not None and registry.enabled:
            ticket = registry.redeem(query_arg("ticket"), self.session.sid, time.time())
        if registry is None or not registry.enabled:
            self.status.object = OFF
            self.widget.visible = False
            return pn.Column(self.status, sizing_mode="stretch_width")
        if ticket is None:
            self.status.object = (
                "Open a terminal from a replica card (**Shell**), the DeployEx card, or "
                f"[Host terminal]({open_url(Target('host'))}). A terminal link works once."
            )
            self.widget.visible = False
            return pn.Column(self.status, sizing_mode="stretch_width")
        self.status.object = f"Opening a shell on **{html.escape(ticket.target.label)}**..."
        asyncio.get_event_loop().create_task(self._open(ticket))
        keys = "".join(
            f"<dt>{html.escape(name)}</dt><dd>{html.escape(text)}</dd>"
            for name, text in SHORTCUTS[ticket.target.kind]
        )
        sheet = pn.pane.HTML(
            f'<dl class="dx-keys">{keys}</dl>', stylesheets=[TERMINAL_CSS], width=260
        )
        return pn.Column(
            self.status,
            pn.Row(self.widget, sheet, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    async def _open(self, ticket: Ticket) -> None:
        registry = self.context.terminals
        try:
            argv, env, cwd = await self._command(ticket.target)
            size = (self.widget.nrows or 30, self.widget.ncols or 100)
            terminal = registry.start(ticket, argv, env, cwd, size)
        except (Refused, DeployexError, OSError) as exc:
            self.status.object = f"**Not opened:** {html.escape(str(exc))}"
            self.widget.visible = False
            return
        self.terminal = terminal
        terminal.on_close.append(self._closed_by_registry)
        IOLoop.current().add_handler(terminal.process.fd, self._readable, IOLoop.READ)
        self.widget.param.watch(self._typed, "value")
        self.widget.param.watch(self._resized, ["nrows", "ncols"])
        self._resized()  # the browser may have told its size before the program started
        self.status.object = f"Shell on **{html.escape(ticket.target.label)}**"
        log.info("terminal %s on %s opened by %s", terminal.id, ticket.target.label, ticket.actor)
        await self.context.journal(
            "terminal_open",
            f"terminal on {ticket.target.label} opened (pid {terminal.process.pid})",
            ticket.actor,
        )

    async def _command(self, target: Target) -> tuple[list[str], dict[str, str], str]:
        env = base_environment()
        if target.kind == "replica":
            argv, replica_env, cwd = await self.context.gateway.call(
                lambda dx: dx.shell_command(target.app, target.sname)
            )
            return argv, {**replica_env, "TERM": env["TERM"]}, cwd
        if target.kind == "deployex":
            config = self.context.settings.config
            return deployex_shell_argv(config.source), env, str(self.context.catalog.var_path)
        return [], env, env.get("HOME", "/")  # host: the registry runs tmux

    # -- the bridge ------------------------------------------------------------------------------

    def _readable(self, fd: int, _events: int) -> None:
        terminal = self.terminal
        if terminal is None:
            return
        text = terminal.process.read()
        if text is None:  # the program left the terminal
            IOLoop.current().remove_handler(fd)
            self.context.close_terminal(terminal.id, "the program exited")
            return
        if text:
            terminal.last_active = time.time()
            self.doc.add_next_tick_callback(lambda: self._show(text))

    def _show(self, text: str) -> None:
        self.widget.write(text)
        if len(self.widget.output) > 2 * OUTPUT_KEEP:
            with param.discard_events(self.widget):
                self.widget.output = self.widget.output[-OUTPUT_KEEP:]

    def _typed(self, event: Any) -> None:
        terminal = self.terminal
        if terminal is not None and event.new:
            terminal.last_active = time.time()
            terminal.process.write(event.new)

    def _resized(self, *_events: Any) -> None:
        if self.terminal is not None and self.widget.nrows and self.widget.ncols:
            self.terminal.process.resize(self.widget.nrows, self.widget.ncols)

    def _page_closed(self) -> None:
        # the page's own tick may notice a logout before the registry's sweep does
        ended = not self.session_alive()
        self._close("the login session ended" if ended else "the page was closed")

    def _close(self, reason: str) -> None:
        if self.terminal is not None:
            self.context.close_terminal(self.terminal.id, reason)

    def _closed_by_registry(self, reason: str) -> None:
        terminal, self.terminal = self.terminal, None
        if terminal is None:
            return
        with_fd = terminal.process.fd
        with contextlib.suppress(KeyError, ValueError):
            IOLoop.current().remove_handler(with_fd)
        took = display.ago(time.time() - terminal.opened_at)

        def say() -> None:
            self.widget.write(f"\r\n\x1b[1m[terminal closed: {reason}]\x1b[0m\r\n")
            self.status.object = f"Terminal on **{terminal.target.label}** closed: {reason}"

        if not self._closed:
            self.doc.add_next_tick_callback(say)
        log.info("terminal %s closed after %s: %s", terminal.id, took, reason)
