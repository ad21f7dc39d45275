"""Generate CustomResourceDefinitions from the pydantic models.

Turns pydantic's JSON Schema into a structural OpenAPI v3 schema as the API server wants it:
refs inlined, `anyOf: [X, null]` folded into `nullable`, titles dropped, CEL rules kept.
Pure: no cluster, no files (the CLI writes them).
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import to_jsonable_python

from .base import GROUP, VERSION
from .kinds import KINDS, Kind

_DROP = {"title", "$defs"}


def _inline(node: Any, defs: dict) -> Any:
    if isinstance(node, list):
        return [_inline(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _inline(merged, defs)
    node = {k: _inline(v, defs) for k, v in node.items() if k not in _DROP}
    return _fold_nullable(node)


def _fold_nullable(node: dict) -> dict:
    variants = node.get("anyOf")
    if not variants:
        return node
    non_null = [v for v in variants if v.get("type") != "null"]
    if len(non_null) != 1:
        return node
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    folded = {**non_null[0], **rest, "nullable": True}
    if folded.get("default", "absent") is None:
        del folded["default"]
    return folded


def _structural(node: Any) -> Any:
    """Lift x-kubernetes-* keys pydantic put on objects; datetimes become strings."""
    if isinstance(node, list):
        return [_structural(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _structural(v) for k, v in node.items()}
    if node.get("format") == "date-time":
        node["type"] = "string"
    # JSON Schema 2020 numeric exclusive bounds -> OpenAPI v3.0 boolean form.
    for bound, key in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), int | float) and not isinstance(node.get(bound), bool):
            node[key] = node[bound]
            node[bound] = True
    if "additionalProperties" in node and node["additionalProperties"] is False:
        del node["additionalProperties"]  # structural schemas prune unknown fields anyway
    return node


class _WithFactoryDefaults(GenerateJsonSchema):
    """Publish default_factory values as schema defaults, so the API server stores the full
    defaulted object (kubectl shows it, and CEL rules see every field)."""

    def default_schema(self, schema):
        factory = schema.get("default_factory")
        if factory is None or schema.get("default_factory_takes_data"):
            return super().default_schema(schema)
        inner = self.generate_inner(schema["schema"])
        value = to_jsonable_python(factory(), by_alias=True, exclude_none=True)
        return {**inner, "default": value}


def openapi_schema(model) -> dict:
    raw = model.model_json_schema(by_alias=True, mode="validation",
                                  schema_generator=_WithFactoryDefaults)
    defs = raw.get("$defs", {})
    return _structural(_inline(raw, defs))


def build_crd(kind: Kind) -> dict:
    spec_schema = {"description": f"Desired state of the {kind.kind}", **openapi_schema(kind.spec)}
    status_schema = {"description": f"Observed state of the {kind.kind}, written by the operator",
                     **openapi_schema(kind.status)}
    root = {
        "type": "object",
        "description": f"{kind.kind} of {GROUP}",
        "properties": {
            "apiVersion": {"type": "string", "description": "Versioned schema of this object: "
                           f"{GROUP}/{VERSION}"},
            "kind": {"type": "string", "description": f"Kind of this object: {kind.kind}"},
            # The API server refuses anything but type here (it publishes ObjectMeta's own schema).
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
        "required": ["spec"],
    }
    if kind.root_rules:
        root["x-kubernetes-validations"] = list(kind.root_rules)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name},
        "spec": {
            "group": GROUP,
            "scope": kind.scope,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": [kind.short_name],
                "categories": ["tugboat"],
            },
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": kind.printer_columns,
                "schema": {"openAPIV3Schema": root},
            }],
        },
    }


def crd_files() -> dict[str, str]:
    """File name -> YAML text for every Tugboat CRD."""
    header = "# Generated by `tugboat crds --write crds/` from operator/tugboat/api. Do not edit.\n"
    files = {f"{GROUP}_{k.plural}.yaml": build_crd(k) for k in KINDS}
    files["kopf.dev_clusterkopfpeerings.yaml"] = peering_crd()
    return {name: header + yaml.safe_dump(crd, sort_keys=False, width=100)
            for name, crd in files.items()}


def peering_crd() -> dict:
    """kopf's ClusterKopfPeering, needed by HA replicas to elect an active one."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "clusterkopfpeerings.kopf.dev"},
        "spec": {
            "group": "kopf.dev",
            "scope": "Cluster",
            "names": {"kind": "ClusterKopfPeering", "plural": "clusterkopfpeerings",
                      "singular": "clusterkopfpeering"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        # Peers write their heartbeats here under their own ids; kopf owns the shape.
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    },
                }},
            }],
        },
    }
