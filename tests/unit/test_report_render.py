"""The report's pure assembly on a hand-built data set: every section there, missing data said."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tests import report_data
from tugboat.report.gather import decision_of
from tugboat.report.model import Missing
from tugboat.report.render import clock_axis, render_release, render_training


def _sections(html: str) -> dict[str, str]:
    return dict(re.findall(r'<section data-section="([^"]+)">(.*?)</section>', html, re.S))


def _plots(body: str) -> int:
    return len(re.findall(r'<img class="plot"[^>]*src="data:image/png;base64,', body))


def test_training_report_draws_each_plot():
    sections = _sections(render_training(report_data.training()))
    assert set(sections) == {"training-summary", "loss", "expert-load", "router-health"}
    for key in ("loss", "expert-load", "router-health"):
        assert _plots(sections[key]) == 1, key
        assert 'class="missing"' not in sections[key]
    assert "abc123" in sections["training-summary"]


def test_training_without_mlflow_says_why_in_each_section():
    sections = _sections(render_training(report_data.training(Missing("no MLflow tracking URI given"))))
    for key in ("loss", "expert-load", "router-health"):
        assert _plots(sections[key]) == 0
        assert "no MLflow tracking URI given" in sections[key]


def test_history_without_expert_loads_says_which_metric_is_missing():
    hist = {k: v for k, v in report_data.history().items() if not k.startswith("expert_load_")}
    sections = _sections(render_training(report_data.training(hist)))
    assert "expert_load_&lt;i&gt;" in sections["expert-load"]
    assert _plots(sections["loss"]) == 1


def test_release_report_has_every_section_drawn():
    html = render_release(report_data.release())
    sections = _sections(html)
    assert {"release-summary", "export-parity", "signature", "rollout-weights", "analysis", "decision",
            "training-summary", "loss", "expert-load", "router-health"} <= set(sections)
    for key in ("export-parity", "rollout-weights", "analysis"):
        assert _plots(sections[key]) == 1, key
    assert "sha256:feedbeef" in sections["signature"]
    assert "TooFarFromTorch" in sections["export-parity"]
    assert "RolledBack" in sections["decision"] and "error-rate" in sections["decision"]
    # The check never measured is said, beside the one drawn.
    assert "latency-p95 on team-a/arith-agent: not measured yet" in sections["analysis"]


def test_release_without_prometheus_says_so_and_keeps_the_status_table():
    sections = _sections(render_release(report_data.release(prometheus=False)))
    for key in ("rollout-weights", "analysis"):
        assert _plots(sections[key]) == 0
        assert "no Prometheus URL given" in sections[key]
    assert "0.05" in sections["analysis"]  # the last measurement and threshold from the status


def test_unexported_release_says_what_is_missing():
    data = report_data.release()
    status = {"phase": "Exporting", "conditions": []}
    html = render_release(type(data)(data.name, data.namespace, status, Missing("no targets"),
                                     Missing("no targets"), None, None))
    sections = _sections(html)
    assert "no verified export yet" in sections["export-parity"]
    assert "not been signed" in sections["signature"]
    assert "not started" in sections["decision"]


def test_html_references_nothing_on_the_network():
    html = render_release(report_data.release())
    refs = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', html)
    assert refs and all(r.startswith("data:") for r in refs)
    assert not re.search(r"@import|url\(|<script|<link", html)


def test_decision_from_status():
    status = report_data.release_status()
    assert decision_of(status).kind == "RolledBack"
    # Ready has been True since the release was verified; the promotion is when Progressing ended.
    promoted = {"rollout": {"phase": "Promoted"},
                "conditions": [{"type": "Ready", "status": "True",
                                "lastTransitionTime": "2026-09-21T00:00:00Z"},
                               {"type": "Progressing", "status": "False", "reason": "RolloutPromoted",
                                "message": "every step passed on 2 targets",
                                "lastTransitionTime": "2026-09-21T00:10:00Z"}]}
    decision = decision_of(promoted)
    assert decision.kind == "Promoted" and decision.message == "every step passed on 2 targets"
    assert decision.time == datetime(2026, 9, 21, 0, 10, tzinfo=UTC).timestamp()
    assert decision_of({"rollout": {"phase": "Progressing"}}) is None


def test_wall_time_axis_reads_as_utc_clock():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.dates import date2num

    fig, ax = plt.subplots()
    clock_axis(ax)
    when = datetime(2026, 9, 21, 13, 4, 5, tzinfo=UTC)
    assert ax.xaxis.get_major_formatter()(date2num(when)) == "13:04:05"
    plt.close(fig)
