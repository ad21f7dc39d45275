"""The Ray Train MoE training workload: config, deterministic batches, the per-worker loop with
its router-health guard, checkpoint resume, MLflow tracking and RESULT.json.

Importing the package imports nothing heavy; Ray and MLflow load only where they are used.
"""
