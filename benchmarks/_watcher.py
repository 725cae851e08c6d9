"""The cluster watcher with other loop settings than ``manage.py watch_cluster`` uses: for experiments.

    python -m benchmarks._watcher [--coalesce SECONDS] [--recompute-every SECONDS]

Runs Diploi's own ``ClusterWatcher`` unchanged, only constructed with other
values for its ``coalesce`` and ``recompute_every`` parameters, to measure
what a change of the watcher's loop would gain (``propagation.py
--watcher-coalesce/--watcher-recompute-every``). Figures taken this way are
experiments, not Diploi's.
"""

from __future__ import annotations

import argparse
import signal

import django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--coalesce", type=float, help="default: the watcher's own")
    parser.add_argument("--recompute-every", type=float, help="default: the watcher's own")
    args = parser.parse_args()
    django.setup()
    from deployments.cluster.connection import get_cluster
    from deployments.watcher import ClusterWatcher

    given = {"coalesce": args.coalesce, "recompute_every": args.recompute_every}
    watcher = ClusterWatcher(get_cluster, **{name: value for name, value in given.items() if value is not None})
    print(
        f"Watching {get_cluster().source} (coalesce {watcher.coalesce}s, recompute every {watcher.recompute_every}s).",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: watcher.stop_event.set())
    try:
        watcher.run_forever()
    except KeyboardInterrupt:
        watcher.stop()


if __name__ == "__main__":
    main()
