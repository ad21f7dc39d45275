"""Dev infrastructure: a local control plane and (later) a data plane. Never imported by the operator."""
