"""A plain watch of the pods, in its own process: what `kubectl get pods -w` sees, for comparison.

    python -m benchmarks._raw_watch <api url> [label selector]

Lists the pods, then watches them from the list's resourceVersion with the
official client's `watch.Watch().stream` (typed objects, as kubectl decodes
them), all namespaces. Prints ``WATCHING`` once the watch answers (its first
bookmark), then for every event that changes a pod's ``Ready`` condition
``READY-CHANGE {"namespace", "pod", "ready", "t"}`` with ``t`` =
``time.monotonic()`` when the event was decoded. Ends when stdin closes.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from kubernetes import client, watch


def _ready(pod) -> bool:
    for condition in (pod.status.conditions if pod.status else None) or ():
        if condition.type == "Ready":
            return condition.status == "True"
    return False


def main() -> None:
    url = sys.argv[1]
    selector = sys.argv[2] if len(sys.argv) > 2 else None
    configuration = client.Configuration()
    configuration.host = url
    core = client.CoreV1Api(client.ApiClient(configuration))
    listed = core.list_pod_for_all_namespaces(label_selector=selector)
    ready = {(p.metadata.namespace, p.metadata.name): _ready(p) for p in listed.items}
    watcher = watch.Watch()
    # The driver closes stdin when it is done: stop then.
    threading.Thread(target=lambda: (sys.stdin.read(), watcher.stop()), daemon=True).start()
    announced = False
    for event in watcher.stream(
        core.list_pod_for_all_namespaces,
        label_selector=selector,
        resource_version=listed.metadata.resource_version,
        allow_watch_bookmarks=True,
        timeout_seconds=3600,
    ):
        moment = time.monotonic()
        if event["type"] == "BOOKMARK":
            if not announced:
                print("WATCHING", flush=True)
                announced = True
            continue
        pod = event["object"]
        key = (pod.metadata.namespace, pod.metadata.name)
        now_ready = _ready(pod) if event["type"] != "DELETED" else False
        if ready.get(key) != now_ready:
            ready[key] = now_ready
            change = {"namespace": key[0], "pod": key[1], "ready": now_ready, "t": moment}
            print("READY-CHANGE " + json.dumps(change), flush=True)


if __name__ == "__main__":
    main()
