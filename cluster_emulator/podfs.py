"""Each emulated pod's "filesystem": a directory on this machine, and the environment of its containers.

Layout under the emulator's files root (a temporary directory unless one is given):

    <root>/<namespace>/claims/<claim>/          a PersistentVolumeClaim's data (outlives pods)
    <root>/<namespace>/pod-volumes/<pod>/<vol>/ the pod's other volumes (emptyDir, configMap, secret, ...)
    <root>/<namespace>/pods/<pod>/              the pod's root; each volume mount is a symlink
                                                (<root>/.../pods/web-0/app -> ../../claims/code-web-0/code)

Commands run in exec see the container's environment (env, envFrom, fieldRef, secret and
configMap keys, `$(VAR)` expansion) with absolute paths inside a volume mount rewritten
into the pod's directory, `DIPLOI_EMULATED_ROOT` set to the pod's root, and the machine's
own PATH after the container's. It is a shell on this machine: absolute paths elsewhere
are this machine's. First on PATH come the stand-ins (`stand_ins.py`, under
`<root>/.stand-ins/`) for the few image programs that would act on this machine instead of
the pod (`redis-cli`, `psql`, `nginx`, `pip`, `npm`, `python manage.py`): they answer as the
image's program would for the templates' actions, and say so.
"""

from __future__ import annotations

import base64
import logging
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from . import stand_ins
from .resources import CONFIGMAPS, PODS, PVCS, SECRETS
from .store import DELETED, Change, Store

log = logging.getLogger(__name__)

ROOT_ENV = "DIPLOI_EMULATED_ROOT"
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ContainerView:
    """Where and how a command runs "in" one container of an emulated pod."""

    root: Path  # the pod's root directory
    cwd: Path
    env: dict[str, str]
    mounts: dict[str, Path]  # mountPath -> the directory standing for it

    def translate(self, value: str) -> str:
        """An absolute path inside a volume mount, as the path standing for it on this machine."""
        for mount, target in sorted(self.mounts.items(), key=lambda item: -len(item[0])):
            if value == mount:
                return str(target)
            if value.startswith(mount.rstrip("/") + "/"):
                return str(target) + value[len(mount.rstrip("/")) :]
        return value

    def translate_within(self, script: str) -> str:
        """``script`` with every path under a volume mount (``/mount/…``) rewritten, wherever it appears."""
        for mount, target in sorted(self.mounts.items(), key=lambda item: -len(item[0])):
            prefix = mount.rstrip("/") + "/"
            if prefix != "/":
                replacement = f"{target}/"
                script = re.sub(rf"(?<![\w./-]){re.escape(prefix)}", lambda _, r=replacement: r, script)
        return script


class PodFiles:
    """Creates and removes the directories of emulated pods. Thread-safe."""

    def __init__(self, store: Store, root: str | os.PathLike | None = None, *, clone_timeout: float = 60.0):
        self.store = store
        self.clone_timeout = clone_timeout
        self._given_root = Path(root) if root else None
        self._root: Path | None = None
        self._lock = threading.RLock()
        self._pod_locks: dict[tuple[str, str], threading.Lock] = {}
        self._garbage: queue.SimpleQueue = queue.SimpleQueue()
        self._collector: threading.Thread | None = None
        self._stand_ins: Path | None = None
        store.add_listener(self.changed)

    @property
    def root(self) -> Path:
        with self._lock:
            if self._root is None:
                if self._given_root is not None:
                    self._given_root.mkdir(parents=True, exist_ok=True)
                    self._root = self._given_root
                else:
                    self._root = Path(tempfile.mkdtemp(prefix="diploi-emulator-files-"))
            return self._root

    def cleanup(self) -> None:
        """Stop collecting; remove the files root if the emulator made it (a temporary directory)."""
        collector = self._collector
        if collector is not None:
            self._garbage.put((None, "", ""))
            collector.join(timeout=5)
            self._collector = None
        with self._lock:
            if self._root is not None and self._given_root is None:
                shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
            self._stand_ins = None

    def stand_ins_dir(self) -> Path:
        """The directory of the stand-in programs (written once per files root)."""
        with self._lock:
            if self._stand_ins is None:
                self._stand_ins = stand_ins.install(self.root)
            return self._stand_ins

    def claim_dir(self, namespace: str, claim: str) -> Path:
        return self.root / _safe(namespace) / "claims" / _safe(claim)

    def pod_dir(self, namespace: str, pod: str) -> Path:
        return self.root / _safe(namespace) / "pods" / _safe(pod)

    def changed(self, change: Change) -> None:
        """Store listener (under the store lock, so it only queues): a deleted pod's directory and a
        deleted claim's data go, as a real cluster drops them."""
        if change.type != DELETED or change.resource not in (PODS, PVCS) or self._root is None:
            return
        meta = change.obj["metadata"]
        self._garbage.put((change.resource, meta.get("namespace", ""), meta["name"]))
        with self._lock:
            if self._collector is None:
                self._collector = threading.Thread(target=self._collect, name="emulator-files-gc", daemon=True)
                self._collector.start()

    def _collect(self) -> None:
        while True:
            resource, namespace, name = self._garbage.get()
            if resource is None:
                return
            if self.store.get(resource, namespace, name) is not None:
                continue  # recreated meanwhile (a StatefulSet's pod): the uid check handles it
            base = self.root / _safe(namespace)
            if resource is PVCS:
                shutil.rmtree(base / "claims" / _safe(name), ignore_errors=True)
                continue
            with self._lock:
                pod_lock = self._pod_locks.pop((namespace, name), None) or threading.Lock()
            with pod_lock:
                shutil.rmtree(base / "pods" / _safe(name), ignore_errors=True)
                shutil.rmtree(base / "pod-volumes" / _safe(name), ignore_errors=True)

    def view(self, pod: dict, container: str) -> ContainerView:
        """Prepare the pod's directory (once per pod uid: its init steps run then) and describe `container`."""
        meta = pod["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        with self._lock:
            pod_lock = self._pod_locks.setdefault(key, threading.Lock())
        # One pod at a time: a clone may take seconds, other pods need not wait for it.
        with pod_lock:
            self._ensure_pod(pod)
            return self._container_view(pod, _container(pod.get("spec") or {}, container))

    def _ensure_pod(self, pod: dict) -> None:
        meta = pod["metadata"]
        namespace, name, uid = meta.get("namespace", ""), meta["name"], meta.get("uid", "")
        root = self.pod_dir(namespace, name)
        marker = root / ".emulated-pod-uid"
        if marker.is_file() and marker.read_text() == uid:
            return
        # A new pod of that name (a StatefulSet recreates web-0): its own filesystem, the claims stay.
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(self.root / _safe(namespace) / "pod-volumes" / _safe(name), ignore_errors=True)
        root.mkdir(parents=True)
        for init in (pod.get("spec") or {}).get("initContainers") or ():
            words = " ".join(str(part) for part in (init.get("command") or []) + (init.get("args") or []))
            if "git clone" in words:
                self._clone(pod, init)
            elif "sftp-server" in words:
                self._provide_sftp_server(pod, init)
        marker.write_text(uid)

    def _run_init(self, pod: dict, init: dict, **env: str) -> tuple[bool, str]:
        """Run an init container's command here (paths in its volumes translated): (failed, its output)."""
        view = self._container_view(pod, init)
        argv = [view.translate(str(part)) for part in (init.get("command") or []) + (init.get("args") or [])]
        if argv[:2] == ["sh", "-c"] and len(argv) > 2:
            argv[2] = view.translate_within(argv[2])  # a script naming its mounts (the clone's credentials)
        try:
            # The pod's own command, as its init container would run it (as the emulator's user).
            result = subprocess.run(
                argv,
                cwd=view.cwd,
                env={**view.env, **env},
                capture_output=True,
                timeout=self.clone_timeout,
                check=False,
            )
            return result.returncode != 0, (result.stderr or result.stdout).decode(errors="replace")
        except (OSError, subprocess.TimeoutExpired) as exc:
            return True, str(exc)

    def _provide_sftp_server(self, pod: dict, init: dict) -> None:
        """Do what an init container providing sftp-server does: run its command here. The image it copies
        from is this machine, so the pod gets this machine's sftp-server when it has one (Debian:
        openssh-sftp-server); a pod without such a step has none in its filesystem, as a real image."""
        failed, output = self._run_init(pod, init)
        log.log(
            logging.WARNING if failed else logging.INFO,
            "cluster emulator: the sftp-server step of pod %s: %s",
            pod["metadata"]["name"],
            output.strip()[-300:],
        )

    def _clone(self, pod: dict, init: dict) -> None:
        """Do what a clone init container does: run its command here (paths in its volumes translated).
        When that fails (the repository cannot be reached), the code directories it would have filled
        get a small generated project saying so."""
        failed, output = self._run_init(pod, init, GIT_TERMINAL_PROMPT="0")
        if not failed:
            return
        why = (output.strip().splitlines() or ["the clone step failed"])[-1]
        log.info("cluster emulator: clone for pod %s failed (%s): generating a project", pod["metadata"]["name"], why)
        volumes = {m.get("name") for m in init.get("volumeMounts") or ()}
        for container in (pod.get("spec") or {}).get("containers") or ():
            for mount in container.get("volumeMounts") or ():
                if mount.get("name") in volumes:
                    target = self._mount_source(pod, mount)
                    if target is not None:
                        _generate_project(target, pod, init, why)

    def _mount_source(self, pod: dict, mount: dict) -> Path | None:
        meta = pod["metadata"]
        volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or ()}
        volume = volumes.get(mount.get("name"))
        if volume is None or not str(mount.get("mountPath", "")).startswith("/"):
            return None
        source = self._volume_dir(meta.get("namespace", ""), meta["name"], volume)
        if mount.get("subPath"):
            source = source / _relative(mount["subPath"])
        source.mkdir(parents=True, exist_ok=True)
        return source

    def _container_view(self, pod: dict, c: dict) -> ContainerView:
        meta = pod["metadata"]
        root = self.pod_dir(meta.get("namespace", ""), meta["name"])
        mounts: dict[str, Path] = {}
        for mount in c.get("volumeMounts") or ():
            source = self._mount_source(pod, mount)
            if source is None:
                continue
            link = root / _relative(mount["mountPath"])
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                if not (link.is_symlink() and Path(os.readlink(link)) == source):
                    _remove(link)
            if not link.is_symlink():
                link.symlink_to(source, target_is_directory=True)
            mounts[mount["mountPath"]] = link
        env = self._environment(pod, c, root)
        view = ContainerView(root=root, cwd=root, env={}, mounts=mounts)
        env = {key: view.translate(value) for key, value in env.items()}
        env["PATH"] = ":".join(view.translate(p) for p in env.get("PATH", _DEFAULT_PATH).split(":"))
        env["PATH"] = f"{self.stand_ins_dir()}:{env['PATH']}:{os.environ.get('PATH', _DEFAULT_PATH)}"
        env[ROOT_ENV] = str(root)
        cwd = root
        if c.get("workingDir"):
            cwd = Path(view.translate(c["workingDir"]))
            if not str(cwd).startswith(str(root)):
                cwd = root / _relative(c["workingDir"])
            cwd.mkdir(parents=True, exist_ok=True)
        env["PWD"] = str(cwd)  # shells show the path through the pod's root, not the symlink's target
        return ContainerView(root=root, cwd=cwd, env=env, mounts=mounts)

    def _volume_dir(self, namespace: str, pod: str, volume: dict) -> Path:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            return self.claim_dir(namespace, claim)
        path = self.root / _safe(namespace) / "pod-volumes" / _safe(pod) / _safe(volume["name"])
        if not path.exists():
            path.mkdir(parents=True)
            for kind, resource in (("configMap", CONFIGMAPS), ("secret", SECRETS)):
                source = volume.get(kind)
                if source is not None:
                    self._write_keys(path, namespace, resource, source, secret=kind == "secret")
        return path

    def _write_keys(self, path: Path, namespace: str, resource, source: dict, *, secret: bool) -> None:
        obj = self.store.get(resource, namespace, source.get("secretName") or source.get("name") or "") or {}
        data = dict(obj.get("data") or {})
        items = source.get("items")
        chosen = [(i["key"], i["path"]) for i in items if i.get("key") in data] if items else [(k, k) for k in data]
        for key, rel in chosen:
            value = data[key]
            target = path / _relative(rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(base64.b64decode(value) if secret else str(value).encode())

    def _environment(self, pod: dict, container: dict, root: Path) -> dict[str, str]:
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        namespace = meta.get("namespace", "")
        env: dict[str, str] = {
            "PATH": _DEFAULT_PATH,
            "HOSTNAME": meta["name"],
            "HOME": str(root),
            "KUBERNETES_SERVICE_HOST": "10.96.0.1",
            "KUBERNETES_SERVICE_PORT": "443",
        }
        for source in container.get("envFrom") or ():
            prefix = source.get("prefix", "")
            if "secretRef" in source:
                data = self._data(SECRETS, namespace, source["secretRef"].get("name", ""), secret=True)
            elif "configMapRef" in source:
                data = self._data(CONFIGMAPS, namespace, source["configMapRef"].get("name", ""), secret=False)
            else:
                continue
            env.update({prefix + key: value for key, value in data.items()})
        fields = {
            "metadata.name": meta["name"],
            "metadata.namespace": namespace,
            "metadata.uid": meta.get("uid", ""),
            "spec.nodeName": spec.get("nodeName", ""),
            "spec.serviceAccountName": spec.get("serviceAccountName", ""),
            "status.podIP": status.get("podIP", ""),
            "status.hostIP": status.get("hostIP", ""),
        }
        for item in container.get("env") or ():
            name = item.get("name")
            if not name:
                continue
            if "value" in item:
                env[name] = _expand(str(item["value"]), env)
                continue
            ref = item.get("valueFrom") or {}
            value: str | None = None
            if "fieldRef" in ref:
                value = fields.get(ref["fieldRef"].get("fieldPath", ""), "")
            elif "secretKeyRef" in ref:
                value = self._data(SECRETS, namespace, ref["secretKeyRef"].get("name", ""), secret=True).get(
                    ref["secretKeyRef"].get("key", "")
                )
            elif "configMapKeyRef" in ref:
                value = self._data(CONFIGMAPS, namespace, ref["configMapKeyRef"].get("name", ""), secret=False).get(
                    ref["configMapKeyRef"].get("key", "")
                )
            if value is not None:
                env[name] = value
        return env

    def _data(self, resource, namespace: str, name: str, *, secret: bool) -> dict[str, str]:
        obj = self.store.get(resource, namespace, name) or {}
        data = obj.get("data") or {}
        if not secret:
            return {k: str(v) for k, v in data.items()}
        out = {}
        for key, value in data.items():
            try:
                out[key] = base64.b64decode(value).decode()
            except (ValueError, UnicodeDecodeError):
                continue
        return out


def _generate_project(target: Path, pod: dict, init: dict, why: str) -> None:
    """A small project standing for the repository that could not be cloned (only into an empty directory)."""
    if any(target.iterdir()):
        return
    arguments = " ".join(str(part) for part in (init.get("command") or [])[-2:])
    meta = pod["metadata"]
    (target / "README.md").write_text(
        "# Generated by Diploi's cluster emulator\n\n"
        f"The development pod {meta.get('namespace')}/{meta['name']} would have cloned its repository here\n"
        f"(its init container {init.get('name')}, ending with `{arguments}`), but the clone failed:\n\n"
        f"    {why}\n\n"
        "So this small project stands in for it. In standalone mode this directory is on your own\n"
        f"machine ({target}); edit it, or give the project a repository Diploi can reach.\n"
    )
    (target / "hello.py").write_text('print("Hello from a generated project (Diploi cluster emulator)")\n')


def _container(spec: dict, name: str) -> dict:
    for c in list(spec.get("containers") or ()) + list(spec.get("initContainers") or ()):
        if c.get("name") == name:
            return c
    return {"name": name}


def _expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined variables are replaced, `$$` escapes, others stay."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR_REF.sub(replace, value)


def _safe(part: str) -> str:
    if not _SAFE.match(part or ""):
        raise ValueError(f"not a safe path component: {part!r}")
    return part


def _relative(path: str) -> Path:
    """`/var/lib/data` -> `var/lib/data`, refusing `..` (a mount path never climbs out of the pod)."""
    parts = [p for p in str(path).split("/") if p and p != "."]
    if any(p == ".." for p in parts):
        raise ValueError(f"path climbs out of its root: {path!r}")
    return Path(*parts) if parts else Path(".")


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
