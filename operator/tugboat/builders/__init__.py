"""Pure builders: a typed spec plus explicit settings in, Kubernetes manifests out.

No client, no clock, no environment variables.
"""
