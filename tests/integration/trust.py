"""The cluster's trusted public key for tests: ConfigMap <system namespace>/tugboat-trust.

In a real cluster the platform team creates it; tests create it with a fresh key pair unless one
is given, and return the PEM they stored.
"""

from __future__ import annotations

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

TRUST_CONFIGMAP = "tugboat-trust"


def fresh_public_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def create_trust_config_map(cluster, public_pem: str | None = None,
                            namespace: str = "tugboat-system") -> str:
    """Create (or replace) the trust ConfigMap; returns the public key it holds."""
    pem = public_pem or fresh_public_pem()
    cluster.kubectl("create", "namespace", namespace, check=False)
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": TRUST_CONFIGMAP, "namespace": namespace}, "data": {"public.pem": pem}}
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=tugboat-tests",
                    "-f", "-", input=yaml.safe_dump(cm))
    return pem
