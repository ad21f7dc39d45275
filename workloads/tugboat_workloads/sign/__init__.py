"""Signing of model artifacts: a manifest of per-file SHA-256 digests, signed with OpenSSF model-signing.

The package import stays light on purpose: `tugboat_workloads.verify` (torch-free, used by the
operator and the serving runtime) reuses `manifest_file` and `artifact_hashing` from here, so
nothing in this `__init__` may pull in torch, onnx or the signer itself.
"""
