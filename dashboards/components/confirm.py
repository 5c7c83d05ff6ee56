"""A confirmation step: no operator action runs on one click."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import panel as pn

Action = Callable[[], Awaitable[object]]


class Confirm:
    """Shows a question with "Yes, <verb>" and "Cancel"; runs the action only on yes."""

    def __init__(self, css_class: str = "dx-confirm") -> None:
        self.question = pn.pane.Markdown("", margin=(8, 10))
        self.yes = pn.widgets.Button(name="Yes", button_type="danger", css_classes=["dx-yes"])
        self.cancel = pn.widgets.Button(name="Cancel", css_classes=["dx-cancel"])
        self.view = pn.Row(
            self.question,
            self.yes,
            self.cancel,
            visible=False,
            css_classes=[css_class],
            styles={"background": "#fff4e5", "border-radius": "6px"},
        )
        self._action: Action | None = None
        self.yes.on_click(self._confirmed)
        self.cancel.on_click(lambda _event: self.hide())

    def ask(self, question: str, verb: str, action: Action) -> None:
        self._action = action
        self.question.object = question
        self.yes.name = f"Yes, {verb}"
        self.view.visible = True

    def hide(self) -> None:
        self._action = None
        self.view.visible = False

    async def _confirmed(self, _event: object) -> None:
        action = self._action
        self.hide()
        if action is not None:
            await action()
