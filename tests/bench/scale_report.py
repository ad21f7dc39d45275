"""Writes the scale benchmark's results: JSON keyed by label (so a "before" and an "after" run sit
side by side), a Markdown table and a PNG of cost against N."""

from __future__ import annotations

import json
from pathlib import Path

# "apply s": the bench's own apply of the N objects (the live obj/s cannot beat it); "backlog": every
# spec changed while the operator was down, timed from its start (its own throughput).
COLUMNS = [("n", "N"), ("apply_seconds", "apply s"), ("settle_seconds", "settle s"),
           ("p50_seconds", "p50 s"), ("p99_seconds", "p99 s"), ("reconciles_per_second", "obj/s"),
           ("raw_per_second", "raw obj/s"), ("ratio_to_raw", "ratio"), ("backlog_seconds", "backlog s"),
           ("backlog_per_second", "backlog obj/s"),
           ("backlog_ratio_to_raw", "backlog ratio"),
           ("peak_rss_mb", "RSS MB"), ("cpu_seconds", "CPU s"), ("api_requests", "API req"),
           ("idle_requests_per_minute", "idle req/min"), ("change_p99_seconds", "change p99 s")]


def merge(path: Path, label: str, run: dict) -> dict:
    """The results file with this run stored under `label` (other labels kept, and the sizes of an
    earlier run of the label that this one did not measure: sizes may be run one at a time)."""
    data = json.loads(path.read_text()) if path.exists() else {}
    measured = {size["n"] for size in run["sizes"]}
    kept = [size for size in data.get(label, {}).get("sizes", []) if size["n"] not in measured]
    data[label] = {**run, "sizes": sorted(kept + run["sizes"], key=lambda size: size["n"])}
    return data


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def markdown(data: dict) -> str:
    lines = ["| label | " + " | ".join(title for _, title in COLUMNS) + " | note |",
             "|" + " --- |" * (len(COLUMNS) + 2)]
    for label, run in data.items():
        for size in run["sizes"]:
            cells = [_cell(size.get(key)) for key, _ in COLUMNS]
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {size.get('note', '')} |")
    return "\n".join(lines) + "\n"


def plot(data: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = [("settle_seconds", "settle (s)"), ("backlog_seconds", "backlog catch-up (s)"),
            ("p99_seconds", "p99 apply->status (s)"), ("peak_rss_mb", "peak RSS (MB)"),
            ("idle_requests_per_minute", "idle API req/min")]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2))
    for ax, (key, title) in zip(axes, keys, strict=True):
        for label, run in data.items():
            pts = [(s["n"], s[key]) for s in run["sizes"] if s.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=label)
        ax.set_xscale("log")
        ax.set_xlabel("objects (N)")
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write(results_dir: Path, label: str, run: dict) -> dict:
    results_dir.mkdir(parents=True, exist_ok=True)
    data = merge(results_dir / "scale.json", label, run)
    (results_dir / "scale.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    (results_dir / "scale.md").write_text(markdown(data))
    plot(data, results_dir / "scale.png")
    return data
