"""The router-health figure of a training attempt: per-expert load heatmap over steps, with loss,
expert load imbalance and router entropy against their SLOs underneath.

Pure apart from writing the PNG it is asked for: takes metric series (step -> value) as MLflow
returns them and draws with matplotlib's non-interactive Agg backend (no display here).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

Series = Mapping[int, float]


def load_matrix(expert_loads: list[Series]) -> tuple[list[int], list[list[float]]]:
    """Steps seen by every expert series, and the load of each expert at each of them."""
    steps = sorted(set.intersection(*(set(s) for s in expert_loads))) if expert_loads else []
    return steps, [[series[step] for step in steps] for series in expert_loads]


def render_router_health(path: Path, expert_loads: list[Series], loss: Series, imbalance: Series,
                         entropy: Series, max_imbalance: float, min_entropy: float, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    steps, matrix = load_matrix(expert_loads)
    # Constrained layout with one colorbar for the column keeps the three x axes aligned.
    fig, (heat, curves, router) = plt.subplots(3, 1, figsize=(9, 8), sharex=True, layout="constrained",
                                               gridspec_kw={"height_ratios": [2, 1, 1]})
    if steps:
        image = heat.imshow(matrix, aspect="auto", interpolation="nearest", cmap="viridis",
                            extent=(steps[0], steps[-1], len(matrix) - 0.5, -0.5))
        fig.colorbar(image, ax=[heat, curves, router], fraction=0.03, pad=0.02,
                     label="expert's share of routed tokens")
        heat.set_yticks(range(len(matrix)))
    heat.set_ylabel("expert")
    heat.set_title(title)
    curves.plot(sorted(loss), [loss[s] for s in sorted(loss)], color="black")
    curves.set_ylabel("loss")
    router.plot(sorted(imbalance), [imbalance[s] for s in sorted(imbalance)], label="imbalance (max/mean)")
    router.axhline(max_imbalance, color="tab:blue", linestyle="--", linewidth=0.8,
                   label=f"max imbalance SLO {max_imbalance}")
    router.plot(sorted(entropy), [entropy[s] for s in sorted(entropy)], label="router entropy (nats)")
    router.axhline(min_entropy, color="tab:orange", linestyle="--", linewidth=0.8,
                   label=f"min entropy SLO {min_entropy}")
    router.set_xlabel("step")
    router.legend(loc="upper right", fontsize="small")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
