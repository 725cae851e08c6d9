"""Server-rendered SVG charts: no chart library, no JavaScript.

CPU and memory of a deployment over a window, each drawn against the size's
request and limit (summed over the pods it runs), with axes a person can read:
values at the top, middle and bottom of the scale, and the window's start and end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from deployments.cpu import WINDOWS, CpuPoint

WIDTH, HEIGHT = 600, 120
SINGLE_SAMPLE_WIDTH = 12
WINDOW_WORDS = {"minute": "1 minute ago", "hour": "1 hour ago", "day": "1 day ago"}


def format_millicores(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.2f} CPU"
    return f"{value:.0f}m CPU" if value >= 1 else f"{value:.1f}m CPU"


def format_bytes(value: float) -> str:
    if value >= 1024**3:
        return f"{value / 1024**3:.2f} GiB"
    return f"{value / 1024**2:.0f} MiB"


@dataclass(frozen=True)
class Mark:
    """A level drawn across the chart: the size's request or limit."""

    label: str  # "request 512 MiB"
    y: float  # in the SVG's coordinates


@dataclass(frozen=True)
class Chart:
    window: str
    points: str  # the SVG polyline's points
    area: str  # the filled area under it
    peak: float  # at the top of the scale, in the chart's unit (millicores or bytes)
    latest: float | None
    count: int
    unit: str = "cpu"  # "cpu" or "memory"
    marks: tuple[Mark, ...] = ()

    def _format(self, value: float) -> str:
        return format_bytes(value) if self.unit == "memory" else format_millicores(value)

    @property
    def empty(self) -> bool:
        return self.count == 0

    @property
    def peak_label(self) -> str:
        return self._format(self.peak)

    @property
    def middle_label(self) -> str:
        return self._format(self.peak / 2)

    @property
    def latest_label(self) -> str:
        return self._format(self.latest) if self.latest is not None else "no data"

    @property
    def start_label(self) -> str:
        return WINDOW_WORDS[self.window]

    @property
    def title(self) -> str:
        return "Memory" if self.unit == "memory" else "CPU"


def _draw(values: list[tuple[datetime, float]], start: datetime, span: timedelta, peak: float) -> tuple[str, str]:
    coordinates = []
    for at, value in values:
        x = (at - start).total_seconds() / span.total_seconds() * WIDTH
        y = HEIGHT - value / peak * HEIGHT
        coordinates.append(f"{max(0.0, min(WIDTH, x)):.1f},{y:.1f}")
    if len(coordinates) == 1:
        # A polyline of one point draws nothing: show the lone sample as a short level stroke ending at it.
        x, y = coordinates[0].split(",")
        coordinates.insert(0, f"{max(0.0, float(x) - SINGLE_SAMPLE_WIDTH):.1f},{y}")
    points = " ".join(coordinates)
    area = ""
    if coordinates:
        first_x = coordinates[0].split(",")[0]
        last_x = coordinates[-1].split(",")[0]
        area = f"{first_x},{HEIGHT} {points} {last_x},{HEIGHT}"
    return points, area


def _chart(
    window: str,
    values: list[tuple[datetime, float]],
    now: datetime,
    *,
    unit: str,
    floor: float,
    request: float | None,
    limit: float | None,
) -> Chart:
    span: timedelta = WINDOWS[window][1]
    levels = [level for level in (request, limit) if level]
    peak = max([value for _, value in values] + levels + [floor]) * 1.2
    points, area = _draw(values, now - span, span, peak)
    chart = Chart(window, points, area, peak, values[-1][1] if values else None, len(values), unit)
    marks = tuple(
        Mark(f"{name} {chart._format(level)}", HEIGHT - level / peak * HEIGHT)
        for name, level in (("request", request), ("limit", limit))
        if level
    )
    return Chart(chart.window, points, area, peak, chart.latest, chart.count, unit, marks)


def cpu_chart(
    window: str, series: list[CpuPoint], now: datetime, *, request: float | None = None, limit: float | None = None
) -> Chart:
    """A polyline of ``series`` over the window ending at ``now`` (x: time, y: millicores)."""
    values = [(p.at, p.millicores) for p in series]
    return _chart(window, values, now, unit="cpu", floor=10.0, request=request, limit=limit)


def memory_chart(
    window: str, series: list[CpuPoint], now: datetime, *, request: float | None = None, limit: float | None = None
) -> Chart:
    """The same for memory (y: bytes), against the size's request and limit."""
    values = [(p.at, p.memory_bytes) for p in series]
    return _chart(window, values, now, unit="memory", floor=16 * 1024**2, request=request, limit=limit)
