"""A simulated BuildKit build: what `buildctl build --progress=rawjson` prints, over a few seconds.

A container whose command runs `buildctl-daemonless.sh` is taken for a build.
It prints BuildKit's SolveStatus lines (vertexes with `[n/m]` names, their
logs in base64), then exits 0 with the `--metadata-file` JSON (the pushed
digest) as its termination message, which is where the real Job's wrapper
writes it. Under a build fault it fails at the chosen step with BuildKit's
error. Nothing is built or pushed.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .util import hex_digest

_STEPS = (
    ("FROM docker.io/library/python:3.12-slim", ["resolve docker.io/library/python:3.12-slim done"]),
    ("WORKDIR /app", []),
    ("COPY requirements.txt .", []),
    ("RUN pip install --no-cache-dir -r requirements.txt", ["Collecting django", "Successfully installed django"]),
    ("COPY . .", []),
)


@dataclass(frozen=True)
class SimulatedBuild:
    lines: tuple[tuple[float, str], ...]  # (seconds after the start, the line)
    duration: float
    exit_code: int
    termination_message: str


def is_build(container: dict) -> bool:
    return any(
        "buildctl-daemonless.sh" in str(part)
        for part in (container.get("command") or []) + (container.get("args") or [])
    )


def _image_name(container: dict) -> str:
    for part in (container.get("command") or []) + (container.get("args") or []):
        text = str(part)
        if text.startswith("type=image,"):
            for option in text.split(","):
                if option.startswith("name="):
                    return option[len("name=") :]
    return "unnamed"


def simulate(
    container: dict, *, uid: str, step_delay: float, fail_at: int | None = None, message: str = ""
) -> SimulatedBuild:
    """The output of one build. ``fail_at``: the step (1-based) that fails, None for a success."""
    total = len(_STEPS)
    lines: list[tuple[float, str]] = []
    clock = 0.0
    start = datetime.now(UTC)

    def at() -> str:
        return (start + timedelta(seconds=clock)).isoformat().replace("+00:00", "Z")

    def vertex(name: str, **extra) -> str:
        digest = "sha256:" + hex_digest(f"{uid}/{name}")
        return json.dumps({"vertexes": [{"digest": digest, "name": name, **extra}]}, separators=(",", ":"))

    def log(name: str, text: str) -> str:
        digest = "sha256:" + hex_digest(f"{uid}/{name}")
        data = base64.b64encode((text + "\n").encode()).decode()
        return json.dumps({"logs": [{"vertex": digest, "stream": 1, "data": data}]}, separators=(",", ":"))

    for name in ("[internal] load build definition from Dockerfile", "[internal] load .dockerignore"):
        lines.append((clock, vertex(name, started=at())))
        clock += step_delay / 2
    for index, (text, output) in enumerate(_STEPS, start=1):
        name = f"[{index}/{total}] {text}"
        lines.append((clock, vertex(name, started=at())))
        for out in output:
            clock += step_delay / 2
            lines.append((clock, log(name, out)))
        clock += step_delay
        if fail_at == index:
            error = (
                message or f'process "/bin/sh -c {text.split(" ", 1)[-1]}" did not complete successfully: exit code: 1'
            )
            lines.append((clock, vertex(name, started=at(), completed=at(), error=error)))
            lines.append((clock, f"error: failed to solve: {error}"))
            return SimulatedBuild(tuple(lines), clock, 1, "")
        lines.append((clock, vertex(name, started=at(), completed=at())))
    image = _image_name(container)
    lines.append((clock, vertex("exporting to image", started=at())))
    clock += step_delay
    # The push is the last line: the container ends as it prints it.
    lines.append((clock, vertex(f"pushing layers for {image}", started=at())))
    digest = "sha256:" + hex_digest(f"{uid}/{image}/image")
    metadata = {"containerimage.digest": digest, "image.name": image}
    return SimulatedBuild(tuple(lines), clock, 0, json.dumps(metadata))
