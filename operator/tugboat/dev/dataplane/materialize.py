"""What a kubelet prepares before a container starts, done on this machine: volumes and env values.

Decides where each volume of a pod lives on the host:
- configMap / secret (and their projected forms): files written fresh under
  DIR/mounts/<namespace>/<owner>/<mountPath>, keys (or `items`) as file names;
- emptyDir: an empty directory at the same place, except at the host's own scratch directories
  (/tmp, /var/tmp, /dev/shm), which stay themselves: paths under them in the args (a host
  artifact directory in /tmp, say) must keep meaning what they mean on this machine;
- persistentVolumeClaim: the host path of the PersistentVolume it is bound to (hostPath or local),
  else DIR/volumes/<namespace>/<claim>, shared by every pod of that claim, so a Job's output is
  there for the next pod, as on a real volume;
- hostPath: the path itself (this machine is the node).
Env values come from `value`, configMapKeyRef, secretKeyRef and fieldRef (name, namespace, uid).
Must not write outside the data plane's directory, and must fail with the volume or variable
named when something is missing rather than start a container without it.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Mapping
from pathlib import Path

from ...kube.client import Kube
from ...kube.errors import NotFound
from .podspec import PodSpecError

HOST_SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")


class MaterializeError(RuntimeError):
    """A volume or env value cannot be prepared yet (something missing may still appear); the
    message names it. What can never work raises podspec.PodSpecError instead."""


def _files_of(kube: Kube, kind: str, namespace: str, name: str, optional: bool,
              what: str) -> dict[str, bytes] | None:
    try:
        obj = kube.get("v1", kind, name, namespace)
    except NotFound:
        if optional:
            return None
        raise MaterializeError(f"{what}: {kind} {namespace}/{name} not found") from None
    out: dict[str, bytes] = {}
    if kind == "Secret":
        for key, value in (obj.get("data") or {}).items():
            out[key] = base64.b64decode(value or "")
    else:
        for key, value in (obj.get("data") or {}).items():
            out[key] = (value or "").encode()
        for key, value in (obj.get("binaryData") or {}).items():
            out[key] = base64.b64decode(value or "")
    return out


def _write_files(target: Path, files: Mapping[str, bytes], items: list | None, mode: int | None,
                 what: str) -> None:
    selected: list[tuple[str, str, int | None]] = []
    if items:
        for item in items:
            if item["key"] not in files:
                raise MaterializeError(f"{what}: key {item['key']!r} not found")
            selected.append((item["key"], item["path"], item.get("mode")))
    else:
        selected = [(key, key, None) for key in files]
    for key, rel, item_mode in selected:
        path = target / rel
        if target not in path.resolve().parents and path.resolve() != target:
            raise PodSpecError(f"{what}: item path {rel!r} escapes the volume")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[key])
        if item_mode is not None or mode is not None:
            path.chmod(item_mode if item_mode is not None else mode)


def _keyed_source(kube: Kube, namespace: str, kind: str, source: Mapping, target: Path, what: str) -> None:
    name = source.get("name") if kind == "ConfigMap" else source.get("secretName", source.get("name"))
    files = _files_of(kube, kind, namespace, name, bool(source.get("optional")), what)
    # Secret files are owner-only on this shared host; in a pod (kubelet default 0644) the
    # container is the only reader.
    default_mode = source.get("defaultMode", 0o600 if kind == "Secret" else None)
    if files is not None:
        _write_files(target, files, source.get("items"), default_mode, what)


def _fresh(path: Path) -> Path:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    path.mkdir(parents=True)
    return path.resolve()


class VolumeMaterializer:
    """Turns the volumes one container mounts into host directories under `state_dir`."""

    def __init__(self, kube: Kube, state_dir: Path):
        self.kube = kube
        self.state_dir = Path(state_dir)

    def _volume_dir(self, namespace: str, owner: str, volume: Mapping, mount_path: str) -> Path:
        what = f"volume {volume['name']!r}"
        local = self.state_dir / "mounts" / namespace / owner / mount_path.strip("/")
        if "configMap" in volume:
            _keyed_source(self.kube, namespace, "ConfigMap", volume["configMap"], _fresh(local), what)
        elif "secret" in volume:
            _keyed_source(self.kube, namespace, "Secret", volume["secret"], _fresh(local), what)
        elif "projected" in volume:
            target = _fresh(local)
            for src in volume["projected"].get("sources") or []:
                # Service-account tokens and downward API have no meaning off-cluster: skipped.
                if "configMap" in src:
                    _keyed_source(self.kube, namespace, "ConfigMap", src["configMap"], target, what)
                elif "secret" in src:
                    _keyed_source(self.kube, namespace, "Secret", src["secret"], target, what)
        elif "emptyDir" in volume:
            if mount_path.rstrip("/") in HOST_SCRATCH:
                return Path(mount_path.rstrip("/"))
            _fresh(local)
        elif "persistentVolumeClaim" in volume:
            local = self._claim_dir(namespace, volume["persistentVolumeClaim"]["claimName"])
        elif "hostPath" in volume:
            local = Path(volume["hostPath"]["path"])
        else:
            kinds = sorted(k for k in volume if k != "name")
            raise PodSpecError(f"{what}: type {kinds} is not supported by the dev data plane")
        return local.resolve()

    def _claim_dir(self, namespace: str, claim: str) -> Path:
        pvc = self.kube.get_or_none("v1", "PersistentVolumeClaim", claim, namespace)
        if pvc is None:
            raise MaterializeError(f"PersistentVolumeClaim {namespace}/{claim} not found")
        volume_name = (pvc.get("spec") or {}).get("volumeName")
        pv = self.kube.get_or_none("v1", "PersistentVolume", volume_name) if volume_name else None
        source = (pv or {}).get("spec") or {}
        host = (source.get("hostPath") or source.get("local") or {}).get("path")
        if host:
            return Path(host)  # a PV on this "node" is a directory of this machine
        local = self.state_dir / "volumes" / namespace / claim
        local.mkdir(parents=True, exist_ok=True)
        return local

    def mounts(self, namespace: str, owner: str, pod_spec: Mapping, container: Mapping) -> dict[str, str]:
        """mountPath -> host path for every volumeMount of `container`."""
        volumes = {v["name"]: v for v in pod_spec.get("volumes") or []}
        out: dict[str, str] = {}
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(mount["name"])
            if volume is None:
                raise PodSpecError(f"volumeMount {mount['name']!r} names no volume of the pod")
            local = self._volume_dir(namespace, owner, volume, mount["mountPath"])
            if mount.get("subPath"):
                local = local / mount["subPath"]
            out[mount["mountPath"]] = str(local)
        return out


def _field_ref(pod_meta: Mapping, path: str) -> str:
    known = {"metadata.name": "name", "metadata.namespace": "namespace", "metadata.uid": "uid"}
    if path not in known:
        raise PodSpecError(f"env fieldRef {path!r} is not supported by the dev data plane")
    return str(pod_meta.get(known[path], ""))


def resolve_env(kube: Kube, namespace: str, pod_meta: Mapping, container: Mapping) -> dict[str, str]:
    """The container's env as plain strings, in declaration order."""
    out: dict[str, str] = {}
    for var in container.get("env") or []:
        name, source = var["name"], var.get("valueFrom")
        if source is None:
            out[name] = var.get("value") or ""
        elif "fieldRef" in source:
            out[name] = _field_ref(pod_meta, source["fieldRef"]["fieldPath"])
        elif "configMapKeyRef" in source or "secretKeyRef" in source:
            kind = "ConfigMap" if "configMapKeyRef" in source else "Secret"
            ref = source.get("configMapKeyRef") or source.get("secretKeyRef")
            files = _files_of(kube, kind, namespace, ref["name"], bool(ref.get("optional")), f"env {name}")
            if files is None:
                continue
            if ref["key"] not in files:
                if ref.get("optional"):
                    continue
                raise MaterializeError(
                    f"env {name}: key {ref['key']!r} not in {kind} {namespace}/{ref['name']}")
            out[name] = files[ref["key"]].decode(errors="replace")
        else:
            raise PodSpecError(f"env {name}: valueFrom {sorted(source)} is not supported")
    return out


def work_dir(state_dir: Path, namespace: str, owner: str) -> Path:
    path = Path(state_dir) / "work" / namespace / owner
    path.mkdir(parents=True, exist_ok=True)
    return path

