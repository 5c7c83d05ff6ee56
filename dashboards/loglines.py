"""How log lines look: their level from keywords, the search filter, and the HTML they become.

Levels are guessed the way an operator reads a log: Elixir's `[error]`, Erlang's
`=ERROR REPORT====`, Python's `ERROR`, a stack trace... The most severe keyword in a line wins.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from dashboards.tail import LogLine

LEVELS = ("error", "warning", "info", "debug")
_KEYWORDS = {
    "error": r"error|err|crit|critical|fatal|emergency|emerg|alert|panic|exception|traceback|crash",
    "warning": r"warning|warn",
    "info": r"info|notice",
    "debug": r"debug|trace",
}
_PATTERNS = [
    (level, re.compile(rf"\b(?:{words})\b", re.IGNORECASE)) for level, words in _KEYWORDS.items()
]
COLOURS = {"error": "#d9534f", "warning": "#e6a100", "info": "#2a7ab0", "debug": "#888888"}


def level_of(text: str) -> str | None:
    """The most severe level a line names, or None."""
    for level, pattern in _PATTERNS:
        if pattern.search(text):
            return level
    return None


def matches(text: str, query: str) -> bool:
    """Case-insensitive substring search; an empty query matches everything."""
    query = query.strip()
    return not query or query.lower() in text.lower()


def filter_lines(lines: Iterable[LogLine], query: str, levels: Iterable[str] = ()) -> list[LogLine]:
    """Lines containing `query`, of one of `levels` when any are given."""
    wanted = set(levels)
    return [
        line
        for line in lines
        if matches(line.text, query) and (not wanted or level_of(line.text) in wanted)
    ]


def line_html(line: LogLine, show_source: bool) -> str:
    level = level_of(line.text)
    css = f"log-line level-{level}" if level else "log-line"
    source = (
        f'<span class="log-src">{html.escape(line.service)} {html.escape(line.stream)}</span> '
        if show_source
        else ""
    )
    return f'<div class="{css}" data-level="{level or ""}">{source}{html.escape(line.text)}</div>'


def lines_html(lines: Iterable[LogLine], show_source: bool) -> str:
    body = "".join(line_html(line, show_source) for line in lines)
    return f'<div class="log-view">{body or EMPTY}</div>'


EMPTY = '<div class="log-empty">no lines yet</div>'

STYLESHEET = (
    ".log-view { font-family: monospace; font-size: 12px; white-space: pre-wrap;"
    " word-break: break-all; }"
    ".log-line { padding: 1px 4px; border-bottom: 1px solid #f0f0f0; }"
    ".log-src { color: #666; font-weight: bold; margin-right: 6px; }"
    ".log-empty { color: #888; font-style: italic; }"
    + "".join(f".level-{lvl} {{ color: {colour}; }}" for lvl, colour in COLOURS.items())
)
