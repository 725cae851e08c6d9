"""Server-rendered SVG charts: no chart library, no JavaScript."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from deployments.cpu import WINDOWS, CpuPoint

WIDTH, HEIGHT = 600, 120
SINGLE_SAMPLE_WIDTH = 12


@dataclass(frozen=True)
class Chart:
    window: str
    points: str  # the SVG polyline's points
    area: str  # the filled area under it
    peak: float  # millicores at the top of the scale
    latest: float | None
    count: int

    @property
    def empty(self) -> bool:
        return self.count == 0

    @property
    def peak_label(self) -> str:
        return format_millicores(self.peak)

    @property
    def latest_label(self) -> str:
        return format_millicores(self.latest) if self.latest is not None else "no data"


def format_millicores(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.2f} CPU"
    return f"{value:.0f}m CPU" if value >= 1 else f"{value:.1f}m CPU"


def cpu_chart(window: str, series: list[CpuPoint], now: datetime) -> Chart:
    """A polyline of ``series`` over the window ending at ``now`` (x: time, y: millicores)."""
    span: timedelta = WINDOWS[window][1]
    start = now - span
    peak = max([p.millicores for p in series] + [10.0]) * 1.2
    coordinates = []
    for point in series:
        x = (point.at - start).total_seconds() / span.total_seconds() * WIDTH
        y = HEIGHT - point.millicores / peak * HEIGHT
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
    return Chart(window, points, area, peak, series[-1].millicores if series else None, len(series))
