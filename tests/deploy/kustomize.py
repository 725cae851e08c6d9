"""Rendering the install's Kustomize overlays with the machine's kubectl, as an operator would."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_OVERLAY = ROOT / "deploy" / "kubernetes" / "overlays" / "example"


def rendered_overlay(overlay: Path = EXAMPLE_OVERLAY) -> list[dict]:
    """Every object `kubectl kustomize <overlay>` renders."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with kustomize) must be installed: .ci/run checks for it"
    output = subprocess.run([kubectl, "kustomize", str(overlay)], check=True, capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(output) if doc]
