"""Serving runtime: an aiohttp server for a signed ONNX MoE model with guardrails and metrics.

Run it with `python -m tugboat_workloads.serve --help`. The package must stay torch-free and must
never import the operator package `tugboat`; it loads a model only after its signature verifies.
"""
