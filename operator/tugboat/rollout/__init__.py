"""The phased canary of a ModelRelease as a pure state machine.

`decide` takes the rollout spec, the targets (AgentDeployments of the model line), the plan kept
in the release's status, the analysis observations since the last pass, a manual intent and
`now`, and returns the next plan, a verdict, conditions, events and when to look again. Nothing
here talks to Kubernetes or Prometheus or reads a clock: the controllers gather and apply.
"""
