"""Stage timestamps for the benchmarks: written only when DIPLOI_TRACE_FILE is set, readable back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from diploi_site import tracing

ROOT = Path(__file__).resolve().parents[2]
TWO_STAGES = (
    f"import sys; sys.path.insert(0, {str(ROOT)!r}); from diploi_site.tracing import trace; "
    "trace('watch', 7); trace('sent', 7); trace('sent', None)"
)


def test_it_appends_one_line_per_stage_from_every_process(tmp_path):
    path = tmp_path / "trace.log"
    env = {**os.environ, "DIPLOI_TRACE_FILE": str(path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", TWO_STAGES], env=env, cwd=ROOT, check=True)
    lines = tracing.read(str(path))
    assert [(stage, deployment) for _, _, stage, deployment in lines] == [("watch", 7), ("sent", 7)] * 2
    assert len({pid for _, pid, _, _ in lines}) == 2
    times = [moment for moment, _, _, _ in lines]
    assert times == sorted(times)


def test_it_writes_nothing_unless_asked(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DIPLOI_TRACE_FILE"}
    subprocess.run([sys.executable, "-c", TWO_STAGES], env=env, cwd=tmp_path, check=True)
    assert list(tmp_path.iterdir()) == []
