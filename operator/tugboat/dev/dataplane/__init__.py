"""The dev data plane: what the pods of a kwok cluster would run, run on this machine instead.

kwok only fakes pods. This package is their stand-in for the demo and the e2e tests: a fake
KubeRay (RayJob -> RayCluster -> pods placed by the real scheduler; entrypoints on a local Ray
cluster), a host runner for Tugboat workload Jobs, loopback serving processes and the chart's operator
pods (with their ServiceAccount's token), next to a
local MLflow server and Ray head. Dev infrastructure only: the operator never imports it.
"""

from .plane import DataPlane

__all__ = ["DataPlane"]
