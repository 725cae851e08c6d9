"""A Kubernetes cluster emulator: the subset of the Kubernetes API Diploi uses, served
over real HTTP with simulated controllers, for tests and the standalone mode.

No Django in here: it runs and is tested on its own. See README.md.
"""

from .emulator import ClusterEmulator
from .timing import Timing

__all__ = ["ClusterEmulator", "Timing"]
