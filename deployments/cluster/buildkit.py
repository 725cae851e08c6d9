"""Reading BuildKit's output: `--progress=rawjson` (or `plain`) lines into steps and log text. Pure.

rawjson prints one SolveStatus per line: ``vertexes`` (a build step, named
like ``[2/5] RUN pip install``, with ``started``/``completed``/``error``) and
``logs`` (a step's output, base64). plain prints ``#5 [2/5] RUN pip install``
and ``#5 0.312 output``. Either way, `BuildProgress.feed` keeps the step the
build is on (n of m) and turns each line into text a person reads.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field

_STEP = re.compile(r"^\[(?:[^\]\s]+ )?(\d+)/(\d+)\]\s*(.*)$")
_PLAIN_VERTEX = re.compile(r"^#(\d+) (\[.*)$")
_PLAIN_ERROR = re.compile(r"^#\d+ ERROR: (.*)$")
_METADATA_DIGEST = "containerimage.digest"


@dataclass
class BuildProgress:
    """What has been read of one build's output so far."""

    step: int = 0
    steps: int = 0
    text: str = ""
    error: str = ""
    _names: dict[str, str] = field(default_factory=dict)

    def feed(self, line: str) -> tuple[str, bool]:
        """Read one line; returns (its text for the log, whether the step changed)."""
        line = line.rstrip("\n")
        if line.startswith("{"):
            try:
                status = json.loads(line)
            except ValueError:
                return line + "\n", False
            if isinstance(status, dict):
                return self._raw(status)
        return self._plain(line)

    def _raw(self, status: dict) -> tuple[str, bool]:
        out: list[str] = []
        changed = False
        for vertex in status.get("vertexes") or ():
            if not isinstance(vertex, dict):
                continue
            name = str(vertex.get("name") or "")
            digest = str(vertex.get("digest") or "")
            new = digest not in self._names
            self._names[digest] = name
            if vertex.get("error"):
                self.error = f"{name}: {vertex['error']}"
                out.append(f"ERROR {self.error}")
            elif new:
                out.append(f"=> {'CACHED ' if vertex.get('cached') else ''}{name}")
                changed |= self._step_of(name)
        for entry in status.get("logs") or ():
            if not isinstance(entry, dict):
                continue
            try:
                data = base64.b64decode(entry.get("data") or "").decode(errors="replace")
            except (binascii.Error, ValueError):
                continue
            out.extend(f"   {part}" for part in data.splitlines() if part.strip())
        return "".join(f"{part}\n" for part in out), changed

    def _plain(self, line: str) -> tuple[str, bool]:
        if match := _PLAIN_ERROR.match(line):
            self.error = match.group(1)
        changed = False
        if match := _PLAIN_VERTEX.match(line):
            changed = self._step_of(match.group(2))
        return line + "\n", changed

    def _step_of(self, name: str) -> bool:
        match = _STEP.match(name)
        if match:
            step, steps = int(match.group(1)), int(match.group(2))
            if (step, steps) != (self.step, self.steps) and step <= steps:
                self.step, self.steps, self.text = step, steps, name
                return True
            return False
        if self.steps and name.startswith(("exporting", "pushing")) and self.text != name:
            self.step, self.text = self.steps, name
            return True
        return False


def digest_from_metadata(text: str) -> str | None:
    """The pushed image's digest from buildctl's `--metadata-file` (JSON), or None."""
    try:
        metadata = json.loads(text or "")
    except ValueError:
        return None
    digest = metadata.get(_METADATA_DIGEST) if isinstance(metadata, dict) else None
    return digest if isinstance(digest, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", digest) else None


def split_timestamp(line: str) -> tuple[str, str]:
    """A pod log line fetched with ``timestamps=true``: (its RFC 3339 timestamp, the rest)."""
    stamp, sep, rest = line.partition(" ")
    if sep and len(stamp) >= 20 and stamp[4] == "-" and stamp[10] == "T":
        return stamp, rest
    return "", line
