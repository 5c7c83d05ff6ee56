"""Upgrade DeployEx: upload a wheel, see its version, sha256 and whether it can run here, confirm,
then follow the upgrade (docs/self-upgrade.md).

The upgrade itself runs as `deployex upgrade WHEEL --yes` in its own session, writing its progress
to `{var_path}/upgrade.log`: the restart it ends with also restarts this dashboard, and the
command must outlive it to see DeployEx answer as the new version (or point `current` back).
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import tempfile
from pathlib import Path

import panel as pn

from dashboards.components.confirm import Confirm
from dashboards.pages.base import Page
from deployex_actors import __version__
from deployex_actors.private_paths import private_folder
from deployex_actors.upgrade.install import Layout, installation_env
from deployex_actors.upgrade.wheel import UpgradeRefused, WheelInfo, inspect_wheel, python_problem

LOG_TAIL = 40  # lines of the last upgrade's progress shown
CSS = """
.dx-upgrade-wheel td { padding: 2px 10px 2px 0; font-size: 14px; }
.dx-upgrade-wheel td.value { font-family: monospace; word-break: break-all; }
.dx-upgrade-log pre { background: #f6f8fa; padding: 8px; font-size: 13px; white-space: pre-wrap; }
"""


def wheel_html(wheel: WheelInfo, problem: str | None) -> str:
    rows = (("version", wheel.version), ("sha256", wheel.sha256),
            ("requires Python", wheel.requires_python or "any"),
            ("running version", __version__))  # fmt: skip
    cells = "".join(f"<tr><td>{k}</td><td class=value>{html.escape(v)}</td></tr>" for k, v in rows)
    verdict = (
        f'<p class="dx-upgrade-problem" style="color:#c62828">Cannot upgrade: '
        f"{html.escape(problem)}</p>"
        if problem
        else "<p>Checks before the switch: the new version loads the running configuration and "
        "migrates a copy of the state database; the replicas keep running throughout.</p>"
    )
    return f'<div class="dx-upgrade-wheel"><table>{cells}</table>{verdict}</div>'


def upload_name(filename: str | None) -> str:
    """The browser's file name as one plain file name in the uploads folder: no folder part, no
    leading dot (".", ".." or a hidden file), nothing but letters, digits and `._+-`."""
    name = re.sub(r"[^\w.+-]", "_", Path(filename or "").name).lstrip(".")
    return name or "upload.whl"


class UpgradePage(Page):
    path = "/upgrade"
    title = "Upgrade DeployEx"

    def body(self) -> pn.viewable.Viewable:
        config = self.context.settings.config
        self.layout = Layout(Path(config.install_path))
        self.catalog = self.context.catalog
        self.upload = pn.widgets.FileInput(accept=".whl", css_classes=["dx-upgrade-file"])
        self.wheel_view = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        self.start = pn.widgets.Button(
            name="Upgrade", button_type="primary", visible=False, css_classes=["dx-upgrade-go"]
        )
        self.rollback = pn.widgets.Button(name="Roll back", css_classes=["dx-upgrade-rollback"])
        self.log_view = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width",
                                     css_classes=["dx-upgrade-log"])  # fmt: skip
        self.confirm = Confirm()
        self.wheel: WheelInfo | None = None
        self.upload.param.watch(lambda _event: self._uploaded(), "value")
        self.start.on_click(lambda _event: self._ask_upgrade())
        self.rollback.on_click(lambda _event: self._ask_rollback())
        previous = self.layout.version_of(self.layout.previous)
        self.rollback.visible = previous is not None
        self.rollback.name = f"Roll back to {previous}" if previous else "Roll back"
        intro = pn.pane.Markdown(
            f"DeployEx **{__version__}**, installed under `{self.layout.root}`. Upload a "
            "`deployex_actors` wheel to install it beside this version and switch to it; "
            "every replica keeps running.",
            css_classes=["dx-upgrade-intro"],
        )
        self._show_log()
        return pn.Column(intro, self.upload, self.wheel_view, pn.Row(self.start, self.rollback),
                         self.confirm.view, self.log_view, sizing_mode="stretch_width")  # fmt: skip

    def tick(self) -> None:
        self._show_log()

    def _uploaded(self) -> None:
        self.start.visible, self.wheel = False, None
        data, name = self.upload.value, upload_name(self.upload.filename)
        if not data:
            return
        folder = self.catalog.upgrades_dir
        private_folder(folder)
        fd, temp = tempfile.mkstemp(dir=folder, suffix=".part")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        path = folder / name
        Path(temp).replace(path)
        try:
            wheel = inspect_wheel(path)
        except UpgradeRefused as exc:
            self.wheel_view.object = (
                f'<p class="dx-upgrade-problem" style="color:#c62828">{html.escape(str(exc))}</p>'
            )
            path.unlink(missing_ok=True)
            return
        problem = python_problem(wheel.requires_python)
        if wheel.version == __version__:
            problem = f"{wheel.version} is the running version"
        self.wheel_view.object = wheel_html(wheel, problem)
        if problem is None:
            self.wheel, self.start.visible = wheel, True
            self.start.name = f"Upgrade to {wheel.version}"

    def _ask_upgrade(self) -> None:
        wheel = self.wheel
        if wheel is None:
            return
        self.confirm.ask(
            f"Upgrade DeployEx from **{__version__}** to **{wheel.version}**? DeployEx restarts "
            "(this page too); the replicas keep running.",
            "upgrade",
            lambda: self._launch([str(wheel.path)], f"upgrading to {wheel.version}"),
        )

    def _ask_rollback(self) -> None:
        previous = self.layout.version_of(self.layout.previous)
        self.confirm.ask(
            f"Roll DeployEx back from **{__version__}** to **{previous}**? DeployEx restarts "
            "(this page too); the replicas keep running.",
            "roll back",
            lambda: self._launch(["--rollback"], f"rolling back to {previous}"),
        )

    async def _launch(self, what: list[str], doing: str) -> None:
        if not self.session_alive():
            self.logged_out()
            return
        command = self.layout.command()
        if not command.exists():
            self.say(f"DeployEx is not installed under {self.layout.root} ({command} missing); "
                     "use the installer", "danger")  # fmt: skip
            return
        config = self.context.settings.config
        argv = [str(command), "upgrade", *what, "--yes", "--actor", self.session.actor]
        if config.source is not None:
            argv += ["--config", str(config.source)]
        with open(self.catalog.upgrade_log, "w") as log:  # the last upgrade's progress only
            log.write(f"{doing}, asked by {self.session.actor}\n")
            log.flush()
            subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=installation_env(), start_new_session=True)  # fmt: skip
        self.start.visible = self.rollback.visible = False
        self.say(f"DeployEx is {doing}. It restarts this dashboard at the end: reload the page "
                 "a few seconds later to see how it went.", "info")  # fmt: skip

    def _show_log(self) -> None:
        try:
            lines = self.catalog.upgrade_log.read_text(errors="replace").splitlines()[-LOG_TAIL:]
        except OSError:
            return
        shown = (f"<b>Last upgrade</b><pre>{html.escape(chr(10).join(lines))}</pre>"
                 if lines else "")  # fmt: skip
        if shown != self.log_view.object:
            self.log_view.object = shown
