"""Live plots (Bokeh): host CPU and memory; per replica BEAM process/port/atom use against the
thresholds, BEAM memory and RSS. New samples are streamed into each plot's ColumnDataSource
(with rollover at the retention window), never by reloading the page."""

from __future__ import annotations

import math

import panel as pn
from bokeh.models import ColumnDataSource, HoverTool, Span
from bokeh.plotting import figure

from dashboards.pages.base import Page
from deployex_actors.config import Application
from deployex_actors.core.metrics import HOST, Sample
from deployex_actors.core.status import DeployexSnapshot

MIB = 1024 * 1024
USAGE = (
    ("process", "process_count", "process_limit", "#1f77b4"),
    ("port", "port_count", "port_limit", "#ff7f0e"),
    ("atom", "atom_count", "atom_limit", "#2ca02c"),
)
HOST_COLUMNS = {"cpu": "cpu_percent", "memory": "memory_percent"}


def host_columns(samples: list[Sample]) -> dict[str, list]:
    return {
        "at": [s.at * 1000 for s in samples],
        **{name: [_num(s.values.get(key)) for s in samples] for name, key in HOST_COLUMNS.items()},
    }


def usage_columns(samples: list[Sample]) -> dict[str, list]:
    """Percent of each limit (NaN for a gap), and the raw counts for the hover."""
    columns: dict[str, list] = {"at": [s.at * 1000 for s in samples]}
    for kind, count_key, limit_key, _colour in USAGE:
        counts = [s.values.get(count_key) for s in samples]
        limits = [s.values.get(limit_key) for s in samples]
        columns[kind] = [
            c * 100 / lim if c is not None and lim else math.nan
            for c, lim in zip(counts, limits, strict=True)
        ]
        columns[f"{kind}_count"] = [_num(c) for c in counts]
    return columns


def memory_columns(samples: list[Sample]) -> dict[str, list]:
    return {
        "at": [s.at * 1000 for s in samples],
        "beam": [_num(s.values.get("beam_memory"), MIB) for s in samples],
        "rss": [_num(s.values.get("rss"), MIB) for s in samples],
    }


def _num(value: float | None, divisor: float = 1) -> float:
    return math.nan if value is None else value / divisor


def _figure(title: str, y_label: str, name: str, height: int = 240) -> figure:
    plot = figure(
        title=title,
        x_axis_type="datetime",
        height=height,
        sizing_mode="stretch_width",
        tools="pan,wheel_zoom,box_zoom,reset,save",
        toolbar_location="above",
        y_axis_label=y_label,
        name=name,
    )
    return plot


def _legend(plot: figure) -> figure:
    plot.legend.location = "top_left"
    plot.legend.orientation = "horizontal"
    plot.legend.background_fill_alpha = 0.7
    return plot


class Stream:
    """One ColumnDataSource fed from one metric target, from the last sample it has seen."""

    def __init__(self, target: str, columns, name: str, rollover: int) -> None:
        self.target = target
        self.columns = columns
        self.rollover = rollover
        self.source = ColumnDataSource(columns([]), name=name)
        self.seen = 0.0

    def push(self, samples: list[Sample]) -> int:
        if samples:
            self.source.stream(self.columns(samples), rollover=self.rollover)
            self.seen = samples[-1].at
        return len(samples)


def host_plot(stream: Stream) -> figure:
    plot = _figure("Host CPU and memory", "percent", "plot-host")
    plot.y_range.start, plot.y_range.end = 0, 100
    plot.line("at", "cpu", source=stream.source, legend_label="CPU %", color="#d62728", width=2)
    plot.line(
        "at", "memory", source=stream.source, legend_label="memory %", color="#1f77b4", width=2
    )
    return _legend(plot)


def usage_plot(stream: Stream, sname: str, app: Application | None) -> figure:
    plot = _figure(f"{sname}: BEAM usage (% of limit)", "percent", f"plot-usage-{sname}")
    plot.y_range.start, plot.y_range.end = 0, 100  # the thresholds stay in view
    for kind, _count, _limit, colour in USAGE:
        plot.line("at", kind, source=stream.source, legend_label=kind, color=colour, width=2)
        watched = app.monitoring_of(kind) if app else None
        if watched is not None:
            plot.add_layout(
                Span(
                    location=watched.warning_threshold_percent,
                    dimension="width",
                    line_color=colour,
                    line_dash="dashed",
                    line_alpha=0.6,
                )
            )
            plot.add_layout(
                Span(
                    location=watched.restart_threshold_percent,
                    dimension="width",
                    line_color="#d62728",
                    line_dash="dotted",
                    line_alpha=0.6,
                )
            )
    plot.add_tools(
        HoverTool(
            tooltips=[
                ("processes", "@process_count"),
                ("ports", "@port_count"),
                ("atoms", "@atom_count"),
            ],
            mode="vline",
        )
    )
    return _legend(plot)


def memory_plot(stream: Stream, sname: str) -> figure:
    plot = _figure(f"{sname}: memory (MiB)", "MiB", f"plot-memory-{sname}")
    plot.line(
        "at", "beam", source=stream.source, legend_label="BEAM memory", color="#9467bd", width=2
    )
    plot.line("at", "rss", source=stream.source, legend_label="RSS", color="#8c564b", width=2)
    return _legend(plot)


class PlotsPage(Page):
    path = "/plots"
    title = "Plots"

    def body(self) -> pn.viewable.Viewable:
        config = self.context.settings.config
        period_s = config.watchdog_interval_ms / 1000
        self.rollover = max(int(config.metrics_retention_time_ms / 1000 / period_s), 10)
        self.host = Stream(HOST, host_columns, "cds-host", self.rollover)
        self.replicas: dict[str, tuple[Stream, Stream]] = {}
        self.replica_box = pn.Column(sizing_mode="stretch_width")
        self.note = pn.pane.Markdown("", visible=False)
        return pn.Column(
            self.note,
            pn.pane.Bokeh(host_plot(self.host), sizing_mode="stretch_width"),
            self.replica_box,
            sizing_mode="stretch_width",
        )

    def refresh(self, snapshot: DeployexSnapshot) -> None:
        replicas = sorted((a.app, r.sname) for a in snapshot.apps for r in a.replicas)
        if [sname for _app, sname in replicas] == list(self.replicas):
            return
        self.replicas = {
            sname: self.replicas.get(sname) or self._streams(sname) for _app, sname in replicas
        }
        rows: list = []
        for app_name in dict.fromkeys(app for app, _sname in replicas):
            rows.append(pn.pane.Markdown(f"### {app_name}"))
            rows += [self._replica_row(app_name, s) for app, s in replicas if app == app_name]
        self.replica_box.objects = rows or [pn.pane.Markdown("No replica is running.")]

    def _replica_row(self, app_name: str, sname: str) -> pn.Row:
        usage, memory = self.replicas[sname]
        app = self.context.application(app_name)
        return pn.Row(
            pn.pane.Bokeh(usage_plot(usage, sname, app)),
            pn.pane.Bokeh(memory_plot(memory, sname)),
            sizing_mode="stretch_width",
        )

    def _streams(self, sname: str) -> tuple[Stream, Stream]:
        return (
            Stream(sname, usage_columns, f"cds-usage-{sname}", self.rollover),
            Stream(sname, memory_columns, f"cds-memory-{sname}", self.rollover),
        )

    def tick(self) -> None:
        feed = self.context.feed
        streams = [self.host, *(s for pair in self.replicas.values() for s in pair)]
        for stream in streams:
            stream.push(feed.samples_since(stream.target, stream.seen))
        problem = feed.metrics_problem
        self.note.object = f"No metrics from DeployEx: {problem}" if problem else ""
        self.note.visible = bool(problem)
