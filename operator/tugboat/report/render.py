"""Report values -> figures -> one HTML document. Pure: no cluster, no clock, no network.

Figures are matplotlib (Agg) PNGs inlined as data: URIs and the style sheet is inline, so the file
opens anywhere with no network. matplotlib is the `report` extra: imported here, lazily, only.
"""

from __future__ import annotations

import base64
import io
import re
from datetime import UTC, datetime
from html import escape

from .model import AnalysisSeries, Decision, Missing, ReleaseData, Series, TrainingData

_CSS = """
body { font: 14px/1.4 sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
section { border-top: 1px solid #ccc; padding: .5em 0 1em; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; }
.missing { color: #a40; font-style: italic; }
img.plot { max-width: 100%; }
code { font-size: 12px; }
"""
_EXPERT_KEY = re.compile(r"expert_load_(\d+)$")


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display: the CLI and tests run headless
    import matplotlib.pyplot as plt

    return plt


def _img(fig, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _plt().close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img class="plot" alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _section(key: str, title: str, body: str) -> str:
    return f'<section data-section="{key}"><h2>{escape(title)}</h2>{body}</section>'


def _missing(what: str, why: str) -> str:
    return f'<p class="missing">No {escape(what)}: {escape(why)}</p>'


def _table(rows: list[tuple[str, object]]) -> str:
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape('' if v is None else str(v))}</td></tr>"
                    for k, v in rows)
    return f"<table>{cells}</table>"


def _grid(header: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape('' if c is None else str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _conditions(status: dict) -> str:
    rows = [[c.get("type"), c.get("status"), c.get("reason"), c.get("message")]
            for c in status.get("conditions") or []]
    return _grid(["Condition", "Status", "Reason", "Message"], rows) if rows else ""


def _document(title: str, sections: list[str]) -> str:
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1>{''.join(sections)}</body></html>")


# TrainingRun --------------------------------------------------------------------------------

def training_sections(data: TrainingData) -> list[str]:
    status = data.status
    metrics = status.get("metrics") or {}
    summary = _table([("Phase", status.get("phase")), ("Step", status.get("step")),
                      ("Loss", metrics.get("loss")), ("Tokens/s", metrics.get("tokensPerSecond")),
                      ("Attempt", status.get("attempt")), ("MLflow run", status.get("mlflowRunId")),
                      ("Checkpoint", status.get("checkpoint"))]) + _conditions(status)
    return [_section("training-summary", f"TrainingRun {data.namespace}/{data.name}", summary),
            _section("loss", "Loss and tokens/s over steps", _loss(data.history)),
            _section("expert-load", "Expert load over steps", _expert_load(data.history)),
            _section("router-health", "Router imbalance and entropy against their SLOs",
                     _router(data.history, data.max_imbalance, data.min_entropy))]


def _need(history: dict | Missing, *keys: str) -> str | None:
    """Why the plot of `keys` cannot be drawn, or None."""
    if isinstance(history, Missing):
        return history.why
    absent = [k for k in keys if not history.get(k)]
    return f"the MLflow run logged no {', '.join(absent)} history" if absent else None


def _steps(points: dict[int, float]) -> tuple[list[int], list[float]]:
    steps = sorted(points)
    return steps, [points[s] for s in steps]


def _loss(history) -> str:
    if why := _need(history, "loss", "tokens_per_second"):
        return _missing("loss and throughput curves", why)
    fig, (ax1, ax2) = _plt().subplots(1, 2, figsize=(11, 3.2))
    ax1.plot(*_steps(history["loss"]), color="tab:blue")
    ax1.set(title="loss", xlabel="step")
    ax2.plot(*_steps(history["tokens_per_second"]), color="tab:green")
    ax2.set(title="tokens/s", xlabel="step")
    return _img(fig, "loss and tokens/s over steps")


def _expert_load(history) -> str:
    if isinstance(history, Missing):
        return _missing("expert load heatmap", history.why)
    experts = sorted((int(m[1]), k) for k in history if (m := _EXPERT_KEY.match(k)) and history[k])
    if not experts:
        return _missing("expert load heatmap", "the MLflow run logged no expert_load_<i> history")
    steps = sorted(set().union(*(history[k] for _, k in experts)))
    grid = [[history[k].get(s, float("nan")) for s in steps] for _, k in experts]
    fig, ax = _plt().subplots(figsize=(11, 0.4 * len(experts) + 1.5))
    image = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis",
                      extent=(steps[0], steps[-1], len(experts) - 0.5, -0.5))
    ax.set(xlabel="step", ylabel="expert", yticks=range(len(experts)))
    fig.colorbar(image, ax=ax, label="share of routed tokens")
    return _img(fig, "expert load heatmap over steps")


def _router(history, max_imbalance: float, min_entropy: float) -> str:
    if why := _need(history, "expert_load_imbalance", "router_entropy"):
        return _missing("router health curves", why)
    fig, (ax1, ax2) = _plt().subplots(1, 2, figsize=(11, 3.2))
    ax1.plot(*_steps(history["expert_load_imbalance"]), label="imbalance (max/mean load)")
    ax1.axhline(max_imbalance, color="tab:red", linestyle="--", label=f"SLO < {max_imbalance:g}")
    ax2.plot(*_steps(history["router_entropy"]), label="entropy (nats)")
    ax2.axhline(min_entropy, color="tab:red", linestyle="--", label=f"SLO > {min_entropy:g}")
    for ax in (ax1, ax2):
        ax.set(xlabel="step")
        ax.legend(loc="best")
    return _img(fig, "router imbalance and entropy against their SLOs")


def render_training(data: TrainingData) -> str:
    return _document(f"Tugboat report: TrainingRun {data.namespace}/{data.name}", training_sections(data))


# ModelRelease -------------------------------------------------------------------------------

def render_release(data: ReleaseData) -> str:
    status = data.status
    summary = _table([("Phase", status.get("phase")), ("Registry version", status.get("registryVersion")),
                      ("Rollout", (status.get("rollout") or {}).get("phase"))]) + _conditions(status)
    sections = [_section("release-summary", f"ModelRelease {data.namespace}/{data.name}", summary),
                _section("export-parity", "Export parity and top-1 agreement per graph", _parity(status)),
                _section("signature", "Signature and digests", _signature(status)),
                _section("rollout-weights", "Rollout: weight per tenant over time",
                         _weights(data.weights, data.decision)),
                _section("analysis", "Rollout: every analysis value against its threshold",
                         _analysis(data.analysis, data.decision, status)),
                _section("decision", "Rollout: promotion or rollback point",
                         _decision(data.decision, status))]
    if data.training is not None:
        sections += training_sections(data.training)
    return _document(f"Tugboat report: ModelRelease {data.namespace}/{data.name}", sections)


def _parity(status: dict) -> str:
    graphs = status.get("graphs") or []
    if not graphs:
        return _missing("export report", "the release has no verified export yet (status.graphs is empty)")
    table = _grid(["Graph", "File", "Published", "Top-1 agreement", "Probe top-1", "Max abs error", "Reason"],
                  [[g.get("name"), g.get("file"), g.get("published"), g.get("top1Agreement"),
                    g.get("probeTop1Agreement"), g.get("maxAbsError"), g.get("reason")] for g in graphs])
    names = [g.get("name", "?") for g in graphs]
    fig, (ax1, ax2) = _plt().subplots(1, 2, figsize=(11, 3.2))
    xs = range(len(graphs))
    for offset, key, label in ((-0.2, "top1Agreement", "top-1"), (0.2, "probeTop1Agreement", "probe top-1")):
        ax1.bar([x + offset for x in xs], [g.get(key) or 0 for g in graphs], 0.4, label=label)
    ax1.set(title="top-1 agreement with torch", ylim=(0, 1.05), xticks=list(xs), xticklabels=names)
    ax1.legend(loc="lower right")
    ax2.bar(list(xs), [g.get("maxAbsError") or 0 for g in graphs], color="tab:orange")
    ax2.set(title="max abs error of logits", xticks=list(xs), xticklabels=names)
    return _img(fig, "export parity per graph") + table


def _signature(status: dict) -> str:
    if not status.get("manifestDigest"):
        return _missing("signature", "the release has not been signed and verified yet")
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    rows: list[tuple[str, object]] = [("Manifest SHA-256", status.get("manifestDigest")),
                                      ("Artifact", status.get("artifactUri"))]
    for kind in ("Signed", "Verified"):
        c = conds.get(kind) or {}
        rows.append((kind, f"{c.get('status', 'unknown')} {c.get('reason', '')}: {c.get('message', '')}"))
    return _table(rows)


def _mark(ax, decision: Decision | None) -> None:
    if decision is not None:
        color = "tab:red" if decision.kind == "RolledBack" else "tab:green"
        ax.axvline(_when(decision.time), color=color, linestyle=":", label=decision.kind)


def _when(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def clock_axis(ax) -> None:
    """Wall-time x axis read as HH:MM:SS UTC: a rollout spans minutes, so the date would be noise."""
    from matplotlib.dates import DateFormatter

    ax.xaxis.set_major_formatter(DateFormatter("%H:%M:%S", tz=UTC))


def _weights(weights: list[Series] | Missing, decision: Decision | None) -> str:
    if isinstance(weights, Missing):
        return _missing("weights over time", weights.why)
    if not weights:
        return _missing("weights over time", "Prometheus holds no request series of this release's tenants")
    fig, ax = _plt().subplots(figsize=(11, 3.2))
    for s in weights:
        ax.step([_when(t) for t in s.x], s.y, where="post", label=s.label)
    _mark(ax, decision)
    clock_axis(ax)
    ax.set(ylabel="% of requests served by this release", ylim=(-5, 105), xlabel="time (UTC)")
    ax.legend(loc="best")
    return _img(fig, "weight per tenant over time")


def _analysis(analysis: list[AnalysisSeries] | Missing, decision: Decision | None, status: dict) -> str:
    last = [[t.get("namespace"), c.get("name"), (c.get("last") or {}).get("value"),
             (c.get("last") or {}).get("threshold"), (c.get("last") or {}).get("verdict"), c.get("failures")]
            for t in (status.get("rollout") or {}).get("targets") or [] for c in t.get("checks") or []]
    table = _grid(["Target", "Check", "Last value", "Threshold", "Verdict", "Failures"], last) if last else ""
    if isinstance(analysis, Missing):
        return _missing("analysis values over time", analysis.why) + table
    drawn = [a for a in analysis if isinstance(a.series, Series) and a.series.x]
    notes = "".join(
        _missing(f"values of {a.check} on {a.target}",
                 a.series.why if isinstance(a.series, Missing) else "Prometheus returned no samples")
        for a in analysis if a not in drawn)
    if not drawn:
        return (notes or _missing("analysis values", "the rollout has measured nothing yet")) + table
    fig, axes = _plt().subplots(len(drawn), 1, figsize=(11, 2.4 * len(drawn)), squeeze=False)
    for ax, a in zip((row[0] for row in axes), drawn, strict=True):
        ax.plot([_when(t) for t in a.series.x], a.series.y, label=a.check)
        ax.axhline(a.threshold, color="tab:red", linestyle="--",
                   label=f"threshold ({a.direction}) {a.threshold:g}")
        _mark(ax, decision)
        clock_axis(ax)
        ax.set(title=f"{a.check} on {a.target}", xlabel="time (UTC)")
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return _img(fig, "analysis values against thresholds") + notes + table


def _decision(decision: Decision | None, status: dict) -> str:
    rollout = status.get("rollout") or {}
    if decision is None:
        return _missing("decision", f"the rollout is {rollout.get('phase') or 'not started'}: "
                                    "neither promoted nor rolled back")
    breach = rollout.get("breach") or {}
    return _table([("Outcome", decision.kind), ("At", _when(decision.time).isoformat()),
                   ("Message", decision.message), ("Breached check", breach.get("check")),
                   ("Value", breach.get("value")), ("Threshold", breach.get("threshold"))])
