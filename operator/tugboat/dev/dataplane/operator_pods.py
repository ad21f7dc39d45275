"""Runs the pods of the chart's operator Deployment as host processes, with the pod's own rights.

Decides, per pod (labels app.kubernetes.io/name=tugboat, app.kubernetes.io/component=operator):
the process is the container's command and args with env and volumes as a kubelet would give them,
its endpoints bound to the pod's loopback IP instead of the chart's `--bind=0.0.0.0`, and
KUBECONFIG pointing at a file with the API server and a token requested (TokenRequest API) for the
pod's ServiceAccount and bound to the pod, so the process acts with exactly the chart's RBAC and
its token dies with the pod (DIR/tokens/<namespace>/<pod>.kubeconfig). Ready follows the
container's readiness (else liveness) probe. The mapping is published in DIR/operator-pods.json,
shaped as the serving runner's endpoints.json.
Starting, restarting after a crash, stopping on pod deletion and the status writes are the serving
runner's (serving.py).
Must not hand the process the data plane's own (admin) credentials.
"""

from __future__ import annotations

import base64
from pathlib import Path

import yaml
from kubernetes import client

from ..stages import OPERATOR_SELECTOR
from .loop import WatchTarget
from .podspec import PodSpecError, probe_target, with_bind
from .serving import Server, ServingRunner

# A pod's kubelet refreshes its token; this file is written once per process start, so the token
# must outlive any dev session (the API server shortens it if it caps token lifetimes).
TOKEN_SECONDS = 7 * 24 * 3600


def token_kubeconfig(server: str, ca_pem: bytes | None, token: str, user: str) -> dict:
    """A kubeconfig for one API server and one bearer token. Pure."""
    cluster: dict = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "dev", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "dev", "user": user}}],
        "current-context": user,
    }


class OperatorPodRunner(ServingRunner):
    name = "operator-pods"
    selector = OPERATOR_SELECTOR
    targets = (WatchTarget("pods", label_selector=OPERATOR_SELECTOR),)
    endpoints_file = "operator-pods.json"

    def _listen(self, pod: dict, container: dict, ip: str, argv: list[str],
                env: dict) -> tuple[int, list[str], dict]:
        _path, port = probe_target(container)
        kubeconfig = self._write_kubeconfig(pod)
        return port, with_bind(argv, ip), {**env, "KUBECONFIG": str(kubeconfig)}

    def _probe_url(self, server: Server) -> str:
        path, port = probe_target(server.pod["spec"]["containers"][0])
        return f"http://{server.ip}:{port}{path}"

    def _write_kubeconfig(self, pod: dict) -> Path:
        meta, spec = pod["metadata"], pod["spec"]
        account = spec.get("serviceAccountName") or "default"
        if spec.get("automountServiceAccountToken") is False:
            raise PodSpecError("automountServiceAccountToken is false: the operator would have no "
                               "credentials")
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"expirationSeconds": TOKEN_SECONDS,
                            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                               "name": meta["name"], "uid": meta["uid"]}}}
        granted = client.CoreV1Api(self.api_client).create_namespaced_service_account_token(
            account, meta["namespace"], request)
        cfg = self.api_client.configuration
        ca = Path(cfg.ssl_ca_cert).read_bytes() if cfg.ssl_ca_cert else None
        doc = token_kubeconfig(cfg.host, ca, granted.status.token,
                               f"system:serviceaccount:{meta['namespace']}:{account}")
        path = self.state_dir / "tokens" / meta["namespace"] / f"{meta['name']}.kubeconfig"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)  # owner-only before the token is in it
        path.write_text(yaml.safe_dump(doc))
        return path
