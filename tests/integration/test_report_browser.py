"""The report as a person sees it: rendered by headless Chromium from a hand-built data set, every
plot present and drawn, missing data said, nothing fetched from anywhere."""

from __future__ import annotations

from tests import report_data
from tests.report_browser import inspect
from tugboat.report.render import render_release

PLOTTED = ("export-parity", "rollout-weights", "analysis", "loss", "expert-load", "router-health")


def test_release_report_draws_in_chromium(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render_release(report_data.release()))
    shot = tmp_path / "report.png"
    found = inspect(page, shot)
    print(f"screenshot: {shot}")
    assert found["resources"] == []
    sections = found["sections"]
    assert {"release-summary", "signature", "decision", *PLOTTED} <= set(sections)
    for key in PLOTTED:
        plots = sections[key]["plots"]
        assert len(plots) == 1 and plots[0]["drawn"] and plots[0]["width"] > 300, (key, plots)
    assert sections["analysis"]["missing"] == [
        "No values of latency-p95 on team-a/arith-agent: not measured yet"]
    assert shot.stat().st_size > 10_000


def test_release_without_prometheus_says_why_in_chromium(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render_release(report_data.release(prometheus=False, with_training=False)))
    sections = inspect(page, tmp_path / "report.png")["sections"]
    for key in ("rollout-weights", "analysis"):
        assert sections[key]["plots"] == []
        assert any("no Prometheus URL given" in m for m in sections[key]["missing"])
    assert sections["export-parity"]["plots"][0]["drawn"]
