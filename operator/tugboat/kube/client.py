"""The one place that talks to the API server.

get / list / apply (server-side, field manager `tugboat`) / patch_status / delete / event.
Everything above this module works on plain dicts and typed errors; nothing here decides.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from ..metrics import API_REQUESTS
from .errors import KubeError, NotFound, from_status

FIELD_MANAGER = "tugboat"
# Connections kept open to the API server. The client's default (5 per CPU: 10 here) is fewer than
# the informers' watches alone, each holding one: every other request then paid a TLS handshake
# (a fifth of the operator's CPU at 1,000 objects). Watches, workers and event posters fit in 64.
POOL_SIZE = 64
log = logging.getLogger(__name__)


def _error(exc: Exception) -> KubeError:
    if isinstance(exc, ApiException):
        try:
            message = json.loads(exc.body or "{}").get("message") or exc.reason
        except (ValueError, AttributeError):
            message = str(exc.reason)
        return from_status(exc.status, message)
    if isinstance(exc, ResourceNotFoundError):
        return NotFound(str(exc))
    return from_status(None, f"{type(exc).__name__}: {exc}")


_CALL_ERRORS = (ApiException, ResourceNotFoundError, urllib3.exceptions.HTTPError, OSError)


class Kube:
    """A small typed facade over the dynamic client."""

    def __init__(self, api_client: client.ApiClient):
        self.api = api_client
        self._dynamic: DynamicClient | None = None

    @property
    def _dyn(self) -> DynamicClient:
        # Created on first use: its constructor already calls the API server (discovery).
        if self._dynamic is None:
            try:
                self._dynamic = DynamicClient(self.api)
            except _CALL_ERRORS as exc:
                raise _error(exc) from exc
        return self._dynamic

    @classmethod
    def connect(cls, kubeconfig: str | None = None) -> Kube:
        if kubeconfig:
            config.load_kube_config(config_file=kubeconfig)
        else:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
        cfg = client.Configuration.get_default_copy()
        cfg.connection_pool_maxsize = POOL_SIZE
        return cls(client.ApiClient(cfg))

    def bearer_token(self) -> str | None:
        """The token our client authenticates with, for kopf's own connection (None: certificates).

        The client keeps it under `BearerToken` with its scheme ("Bearer x"; in-cluster "bearer x").
        A rotating in-cluster token is re-read first, as the client itself does before a request.
        """
        cfg = self.api.configuration
        if cfg.refresh_api_key_hook is not None:
            cfg.refresh_api_key_hook(cfg)
        value = (cfg.api_key or {}).get("BearerToken", "").strip()
        scheme, _, token = value.partition(" ")
        return (token.strip() if scheme.lower() == "bearer" else value) or None

    def _resource(self, api_version: str, kind: str):
        # The dynamic client caches discovery itself; lookups after the first are in memory.
        try:
            return self._dyn.resources.get(api_version=api_version, kind=kind)
        except _CALL_ERRORS as exc:
            raise _error(exc) from exc

    def serves(self, api_version: str, kind: str) -> bool:
        """Whether the API server serves this kind (its CRD is installed), by discovery."""
        try:
            self._resource(api_version, kind)
        except NotFound:
            return False
        return True

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict:
        API_REQUESTS.labels("get", kind).inc()
        try:
            return self._resource(api_version, kind).get(name=name, namespace=namespace).to_dict()
        except _CALL_ERRORS as exc:
            raise _error(exc) from exc

    def get_or_none(self, api_version: str, kind: str, name: str,
                    namespace: str | None = None) -> dict | None:
        try:
            return self.get(api_version, kind, name, namespace)
        except NotFound:
            return None

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict]:
        API_REQUESTS.labels("list", kind).inc()
        try:
            res = self._resource(api_version, kind)
            out = res.get(namespace=namespace, label_selector=label_selector)
            return [item.to_dict() for item in out.items]
        except _CALL_ERRORS as exc:
            raise _error(exc) from exc

    def apply(self, manifest: dict, force: bool = True) -> dict:
        """Server-side apply; `force` takes ownership of fields we declare (we are their owner)."""
        meta = manifest["metadata"]
        API_REQUESTS.labels("apply", manifest["kind"]).inc()
        try:
            res = self._resource(manifest["apiVersion"], manifest["kind"])
            return res.server_side_apply(
                body=manifest, name=meta["name"], namespace=meta.get("namespace"),
                field_manager=FIELD_MANAGER, force_conflicts=force).to_dict()
        except _CALL_ERRORS as exc:
            raise _error(exc) from exc

    def create(self, manifest: dict) -> dict:
        """Create, never update: Conflict when the object exists (the answer tells who made it)."""
        meta = manifest["metadata"]
        API_REQUESTS.labels("create", manifest["kind"]).inc()
        try:
            return self._resource(manifest["apiVersion"], manifest["kind"]).create(
                body=manifest, namespace=meta.get("namespace"), field_manager=FIELD_MANAGER).to_dict()
        except _CALL_ERRORS as exc:
            raise _error(exc) from exc

    def patch_status(self, api_version: str, kind: str, name: str, namespace: str | None,
                     status: dict, resource_version: str | None = None) -> dict:
        """Merge-patch the status subresource; never touches spec or metadata. With
        `resource_version`, only if the object is still that version (else Conflict): a status
        decided from an older read never overwrites what another writer put there since."""
        body: dict = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        API_REQUESTS.labels("patch_status", kind).inc()
        try:
            res = self._resource(api_version, kind).subresources["status"]
            return res.patch(body=body, name=name, namespace=namespace,
                             content_type="application/merge-patch+json",
                             field_manager=FIELD_MANAGER).to_dict()
        except _CALL_ERRORS as exc:
            raise _error(exc) from exc

    def patch(self, api_version: str, kind: str, name: str, namespace: str | None,
              body: dict) -> dict:
        API_REQUESTS.labels("patch", kind).inc()
        try:
            return self._resource(api_version, kind).patch(
                body=body, name=name, namespace=namespace,
                content_type="application/merge-patch+json", field_manager=FIELD_MANAGER).to_dict()
        except _CALL_ERRORS as exc:
            raise _error(exc) from exc

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None,
               propagation: str = "Background", uid: str | None = None) -> None:
        """Gone already is fine. `uid`: delete only that object (Conflict if the name is another's)."""
        body: dict = {"propagationPolicy": propagation}
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        API_REQUESTS.labels("delete", kind).inc()
        try:
            self._resource(api_version, kind).delete(name=name, namespace=namespace, body=body)
        except _CALL_ERRORS as exc:
            err = _error(exc)
            if not isinstance(err, NotFound):
                raise err from exc

    def event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        """Record a core/v1 Event on `obj` (what `kubectl describe` shows)."""
        self.post_event(event_body(obj, type_, reason, message))

    def post_event(self, body: dict) -> None:
        API_REQUESTS.labels("create", "Event").inc()
        try:  # the answer is drained, not parsed: its model would cost CPU for nothing
            answer = client.CoreV1Api(self.api).create_namespaced_event(
                body["metadata"]["namespace"], body, _preload_content=False)
            answer.drain_conn()
            answer.release_conn()  # back to the pool: an answer left unread holds its connection
        except _CALL_ERRORS as exc:  # an event is best effort: never fail a reconcile for it
            log.warning("could not record event %s on %s: %s", body["reason"],
                        body["involvedObject"]["name"], _error(exc))


def event_body(obj: dict, type_: str, reason: str, message: str) -> dict:
    meta = obj["metadata"]
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta.get("namespace") or "default"},
        "involvedObject": {
            "apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"],
            "namespace": meta.get("namespace"), "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type_, "reason": reason, "message": message[:1024],
        "source": {"component": "tugboat-operator"},
        "reportingComponent": "tugboat.dev/operator", "reportingInstance": "tugboat",
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    }
