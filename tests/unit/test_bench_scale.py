"""The scale benchmark's pure parts: the mix arithmetic, percentiles, metrics parsing, the report."""

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import scale_mix  # noqa: E402
import scale_probe  # noqa: E402
import scale_report  # noqa: E402


@pytest.mark.parametrize("n", [1, 7, 100, 1000, 5000, 33])
def test_counts_add_up_and_keep_the_shares(n):
    c = scale_mix.counts(n)
    assert sum(c.values()) == n
    assert c["Tenant"] >= 1
    if n >= 100:
        assert c == {k: round(n * s) for k, s in scale_mix.SHARES.items()}


def test_build_gives_n_tugboat_objects_and_a_namespace_per_tenant():
    docs = scale_mix.build(100)
    counted = [d for d in docs if scale_mix.is_counted(d)]
    assert len(counted) == 100
    tenants = {d["metadata"]["name"] for d in counted if d["kind"] == "Tenant"}
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"} == tenants
    agents = [d for d in counted if d["kind"] == "AgentDeployment"]
    assert {a["metadata"]["namespace"] for a in agents} <= tenants
    assert len({(d["kind"], d["metadata"]["name"]) for d in counted}) == 100


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert scale_probe.percentile(values, 50) == 50
    assert scale_probe.percentile(values, 99) == 99
    assert scale_probe.percentile([3.0], 99) == 3.0
    assert scale_probe.percentile([], 50) is None


def test_settled_needs_generation_and_conditions():
    obj = {"metadata": {"generation": 2},
           "status": {"observedGeneration": 2, "conditions": [{"type": "Ready"}]}}
    assert scale_probe.settled(obj)
    assert not scale_probe.settled({"metadata": {"generation": 3}, "status": obj["status"]})
    assert not scale_probe.settled({"metadata": {"generation": 2}, "status": {"observedGeneration": 2}})


def test_request_counts_sum_by_verb_and_resource():
    text = "\n".join([
        "# TYPE apiserver_request_total counter",
        'apiserver_request_total{code="200",resource="tenants",verb="PATCH",version="v1alpha1"} 3',
        'apiserver_request_total{code="409",resource="tenants",verb="PATCH",version="v1alpha1"} 2',
        'apiserver_request_total{code="200",resource="pods",verb="LIST"} 1e+01',
        'apiserver_request_duration_seconds_count{resource="pods",verb="LIST"} 99'])
    counts = scale_probe.request_counts(text)
    assert counts == {"PATCH tenants": 5, "LIST pods": 10}
    assert scale_probe.delta(counts, {"PATCH tenants": 5, "LIST pods": 4}) == {"LIST pods": 6}


def test_operator_counts_name_reconciles_by_kind_and_requests_by_verb_and_kind():
    text = "\n".join([
        'tugboat_reconcile_total{kind="Tenant",result="ok"} 4.0',
        'tugboat_reconcile_total{kind="Tenant",result="error"} 1.0',
        'tugboat_reconcile_created{kind="Tenant",result="ok"} 1.7e+09',
        'tugboat_api_requests_total{kind="RayJob",verb="get"} 7.0',
        'tugboat_api_requests_created{kind="RayJob",verb="get"} 1.7e+09'])
    assert scale_probe.operator_counts(text) == {"reconcile Tenant": 5, "get RayJob": 7}


def test_proc_stats_of_this_process():
    stats = scale_probe.proc_stats(os.getpid())
    assert stats["rss_mb"] > 1 and stats["cpu_seconds"] > 0


def test_report_merges_labels_and_writes_all_three(tmp_path):
    size = {"n": 100, "settle_seconds": 12.5, "p99_seconds": 1.25, "peak_rss_mb": 150.0,
            "idle_requests_per_minute": 30.0, "ratio_to_raw": 0.6, "note": ""}
    scale_report.write(tmp_path, "before", {"label": "before", "sizes": [size]})
    after = {"label": "after", "sizes": [dict(size, settle_seconds=6.0)]}
    data = scale_report.write(tmp_path, "after", after)
    assert set(json.loads((tmp_path / "scale.json").read_text())) == {"before", "after"} == set(data)
    md = (tmp_path / "scale.md").read_text()
    assert "| before | 100 | - | 12.5 |" in md and "| after | 100 | - | 6 |" in md  # no apply time given
    assert (tmp_path / "scale.png").read_bytes()[:4] == b"\x89PNG"


def test_a_size_run_on_its_own_joins_the_labels_other_sizes(tmp_path):
    def run(*sizes):
        return {"label": "after", "sizes": [{"n": n, "settle_seconds": t} for n, t in sizes]}
    scale_report.write(tmp_path, "after", run((100, 2.0), (1000, 9.0)))
    data = scale_report.write(tmp_path, "after", run((1000, 8.0), (5000, 40.0)))
    got = [(s["n"], s["settle_seconds"]) for s in data["after"]["sizes"]]
    assert got == [(100, 2.0), (1000, 8.0), (5000, 40.0)]
