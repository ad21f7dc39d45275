"""Issue a tenant's API key into its namespace's keys Secret, for the demo and the e2e tests.

Decides the Secret the serving runtime reads (data key keys.json: name, sha256 and
permissionLevel per key, never a key) and merges a new key into the entries already there,
replacing one of the same name. Returns the key itself, once: only the caller holds it. A
platform team does the same with kubectl; this exists so dev traffic has callers. Serving pods
read the file when they start: issue keys before an AgentDeployment's pods start.
"""

from __future__ import annotations

import base64
import json

from tugboat_workloads.serve.caller_keys import key_digest, new_api_key

from ..builders.agent_deployment import API_KEYS_FILE
from ..controllers.settings import Settings
from ..kube.client import Kube


def issue_api_key(kube: Kube, namespace: str, tenant: str, name: str,
                  permission_level: str = "Standard",
                  secret: str = Settings.api_keys_secret) -> str:
    key = new_api_key(tenant)
    current = kube.get_or_none("v1", "Secret", secret, namespace)
    raw = ((current or {}).get("data") or {}).get(API_KEYS_FILE)
    entries = json.loads(base64.b64decode(raw))["keys"] if raw else []
    entries = [e for e in entries if e.get("name") != name]
    entries.append({"name": name, "sha256": key_digest(key), "permissionLevel": permission_level})
    text = json.dumps({"keys": entries}, sort_keys=True)
    kube.apply({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": secret, "namespace": namespace},
                "data": {API_KEYS_FILE: base64.b64encode(text.encode()).decode()}})
    return key
