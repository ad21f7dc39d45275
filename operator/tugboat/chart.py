"""The Helm chart's admission-policy template, generated from `policies/` (the one source).

Pure text: the policy files joined as documents, behind the chart's `admissionPolicies` switch.
`tugboat chart-policies --write` writes it, `--check` fails when it drifted (as CRDs do).
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE = Path("templates") / "policies.yaml"


def policies_template(policies_dir: Path) -> str:
    docs = [f.read_text().strip() for f in sorted(policies_dir.glob("*.yaml"))]
    if not docs:
        raise FileNotFoundError(f"no policy files in {policies_dir}")
    return ("# Generated from policies/ by `make crds`: edit those files, not this one.\n"
            "{{- if .Values.admissionPolicies }}\n" + "\n---\n".join(docs) + "\n{{- end }}\n")
