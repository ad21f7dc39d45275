"""Dev-only fault rules for serving pods: which pods start with the runtime's fault flags. Pure,
plus reading and writing the rules file.

Decides which of the serving runtime's dev fault flags (`--dev-inject-error-rate`,
`--dev-inject-latency-ms`, given as their TUGBOAT_* environment variables) a serving pod starts
with: those of every rule matching its release (label `tugboat.dev/release`) and, when a rule
names one, its namespace (so a rule can break one tenant's canary and leave another's healthy).
The rules live in DIR/faults.json beside the data plane's other state, written by tests and by
`tugboat dev faults`; nothing in the cluster's API reaches them, so no object or request can turn
a fault on. A rule applies to pods started after it is written: set it before the release rolls out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tugboat_workloads.serve.settings import env_var

from ...builders.naming import label_value

FILE = "faults.json"
RELEASE_LABEL = "tugboat.dev/release"
ERROR_RATE_ENV = env_var("dev-inject-error-rate")
LATENCY_ENV = env_var("dev-inject-latency-ms")


@dataclass(frozen=True)
class FaultRule:
    release: str
    namespace: str | None = None   # None: every namespace the release serves in
    error_rate: float = 0.0        # fraction of model requests answered with HTTP 500
    latency_ms: int = 0            # added to every model request

    def __post_init__(self):
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error_rate must be within 0..1, got {self.error_rate}")
        if not 0 <= self.latency_ms <= 60_000:
            raise ValueError(f"latency_ms must be within 0..60000, got {self.latency_ms}")

    def matches(self, pod: Mapping) -> bool:
        meta = pod.get("metadata") or {}
        # The label holds label_value(release): long names are shortened with a hash.
        return ((meta.get("labels") or {}).get(RELEASE_LABEL) == label_value(self.release)
                and self.namespace in (None, meta.get("namespace")))


def fault_env(rules: Sequence[FaultRule], pod: Mapping) -> dict[str, str]:
    """Environment for a pod: the worst matching fault of each kind; nothing when none matches."""
    matching = [r for r in rules if r.matches(pod)]
    rate = max((r.error_rate for r in matching), default=0.0)
    latency = max((r.latency_ms for r in matching), default=0)
    return ({ERROR_RATE_ENV: str(rate)} if rate else {}) | ({LATENCY_ENV: str(latency)} if latency else {})


def read_rules(state_dir: Path) -> list[FaultRule]:
    path = Path(state_dir) / FILE
    if not path.is_file():
        return []
    return [FaultRule(**r) for r in json.loads(path.read_text())]


def write_rules(state_dir: Path, rules: Sequence[FaultRule]) -> Path:
    path = Path(state_dir) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps([asdict(r) for r in rules], indent=2) + "\n")
    tmp.replace(path)  # atomic: the serving loop never reads half a file
    return path


def add_rule(state_dir: Path, rule: FaultRule) -> list[FaultRule]:
    """Replace any rule for the same release and namespace, keep the others."""
    rules = [r for r in read_rules(state_dir) if (r.release, r.namespace) != (rule.release, rule.namespace)]
    rules.append(rule)
    write_rules(state_dir, rules)
    return rules
