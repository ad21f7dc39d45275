"""The lineage view of `kubectl tugboat lineage`: TrainingRun -> ModelRelease -> AgentDeployment.

Pure: takes the listed objects as plain dicts and returns text. Links are what the specs and
statuses say: a release's `spec.source.trainingRun`, an agent's `status.release` (the release it
serves, which may live in another namespace).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Node:
    kind: str
    namespace: str
    name: str
    phase: str
    detail: str
    problem: str  # the message of a False Ready/Valid condition, for a person to act on


def _conditions(obj: dict) -> dict[str, dict]:
    return {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}


def _problem(obj: dict) -> str:
    conds = _conditions(obj)
    for type_ in ("Valid", "Degraded", "Ready"):
        c = conds.get(type_)
        bad = "True" if type_ == "Degraded" else "False"
        if c and c.get("status") == bad and c.get("message"):
            return f"{c.get('reason')}: {c['message']}"
    return ""


def _detail(kind: str, obj: dict) -> str:
    st = obj.get("status") or {}
    if kind == "TrainingRun":
        m = st.get("metrics") or {}
        parts = [f"step {st['step']}" if st.get("step") is not None else "",
                 f"loss {m['loss']:.3f}" if m.get("loss") is not None else "",
                 f"imbalance {m['expertLoadImbalance']:.2f}" if m.get("expertLoadImbalance") else "",
                 f"attempt {st['attempt']}" if (st.get("attempt") or 1) > 1 else ""]
    elif kind == "ModelRelease":
        digest = st.get("manifestDigest") or ""
        graphs = "+".join(g["name"] for g in st.get("graphs") or [] if g.get("published"))
        parts = [f"line {(obj.get('spec') or {}).get('modelLine', '?')}",
                 f"sha256 {digest[:12]}" if digest else "",
                 f"graphs {graphs}" if graphs else "",
                 f"registry v{st['registryVersion']}" if st.get("registryVersion") else ""]
    else:
        spec = obj.get("spec") or {}
        graph = st.get("graph") or {}
        parts = [f"{st.get('readyReplicas') or 0}/{spec.get('replicas', 1)} ready",
                 f"graph {graph['served']}" if graph.get("served") else "",
                 st.get("endpoint") or ""]
    return ", ".join(p for p in parts if p)


def node(kind: str, obj: dict) -> Node:
    meta, st = obj["metadata"], obj.get("status") or {}
    return Node(kind, meta.get("namespace") or "", meta["name"], st.get("phase") or "-",
                _detail(kind, obj), _problem(obj))


def _line(n: Node, prefix: str) -> str:
    text = f"{prefix}{n.kind}/{n.name} ({n.namespace})  {n.phase}"
    if n.detail:
        text += f"  [{n.detail}]"
    if n.problem:
        text += f"\n{' ' * len(prefix)}  ! {n.problem}"
    return text


def render_lineage(training_runs: list[dict], releases: list[dict], agents: list[dict]) -> str:
    """A tree per TrainingRun; releases and agents with no parent in view stand at the top."""
    out: list[str] = []
    by_run: dict[tuple[str, str], list[dict]] = {}
    for rel in releases:
        src = ((rel.get("spec") or {}).get("source") or {}).get("trainingRun")
        by_run.setdefault((rel["metadata"].get("namespace"), src), []).append(rel)
    by_release: dict[str, list[dict]] = {}
    for agd in agents:
        by_release.setdefault((agd.get("status") or {}).get("release") or "", []).append(agd)
    shown_releases: set[str] = set()

    def release_tree(rel: dict, indent: str) -> None:
        shown_releases.add(rel["metadata"]["uid"])
        out.append(_line(node("ModelRelease", rel), indent + "└─ " if indent else ""))
        for agd in by_release.pop(rel["metadata"]["name"], []):
            out.append(_line(node("AgentDeployment", agd), indent + "   └─ "))

    for run in sorted(training_runs, key=lambda o: (o["metadata"].get("namespace"), o["metadata"]["name"])):
        out.append(_line(node("TrainingRun", run), ""))
        for rel in by_run.get((run["metadata"].get("namespace"), run["metadata"]["name"]), []):
            release_tree(rel, "   ")
    for rel in releases:
        if rel["metadata"]["uid"] not in shown_releases:
            release_tree(rel, "")
    for agd in (a for group in by_release.values() for a in group):
        out.append(_line(node("AgentDeployment", agd), ""))
    return "\n".join(out) if out else "no Tugboat objects found"


def render_conditions(kind: str, obj: dict) -> str:
    """`kubectl tugboat status`: phase, message and every condition, one per line."""
    meta, st = obj["metadata"], obj.get("status") or {}
    head = f"{kind}/{meta['name']}  phase {st.get('phase') or '-'}"
    gen, seen = meta.get("generation"), st.get("observedGeneration")
    if gen is not None and seen != gen:
        head += f"  (generation {gen} not yet observed: status is of {seen})"
    rows = [head] + ([f"  {st['message']}"] if st.get("message") else [])
    rows.append(f"  {'TYPE':<12} {'STATUS':<8} {'REASON':<24} MESSAGE")
    for c in st.get("conditions") or []:
        rows.append(f"  {c.get('type', ''):<12} {c.get('status', ''):<8} {c.get('reason', ''):<24} "
                    f"{c.get('message', '')}")
    return "\n".join(rows)
