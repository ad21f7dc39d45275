"""Which graph an AgentDeployment's pods are told to serve, and what its status says (pure)."""

from tugboat.api.agent_deployment import AgentDeploymentSpec
from tugboat.reconcile.model_release import graphs_from_report
from tugboat.reconcile.serving_graph import PublishedGraph, plan_graph

PUBLISHED = (PublishedGraph("fp32", True), PublishedGraph("int8", True))
UNPUBLISHED = (PublishedGraph("fp32", True),
               PublishedGraph("int8", False, "probe top-1 agreement 0.8184 below the gate 0.97"))


def spec(**graph) -> AgentDeploymentSpec:
    return AgentDeploymentSpec.model_validate({"modelLine": "moe-arith", "graph": graph})


def test_fp32_is_the_default_and_needs_nothing_published():
    plan = plan_graph(spec(), "v1", (), None)
    assert (plan.graph, plan.fallback, plan.blocked) == ("fp32", True, None)
    assert plan.status.requested == "fp32" and plan.status.served is None


def test_a_published_variant_is_requested_and_the_pods_say_what_they_serve():
    plan = plan_graph(spec(preferred="int8"), "v1", PUBLISHED, {"int8": 2})
    assert (plan.graph, plan.fallback) == ("int8", True)
    assert plan.status.served == "int8" and plan.status.message == "pods: 2 on int8"


def test_pods_that_fell_back_on_their_cpu_show_in_the_status():
    plan = plan_graph(spec(preferred="int8"), "v1", PUBLISHED, {"int8": 1, "fp32": 2})
    assert plan.status.served == "fp32"
    assert "1 on int8" in plan.status.message and "failed the numerics probe" in plan.status.message


def test_an_unpublished_variant_serves_fp32_when_allowed_and_names_the_release_reason():
    plan = plan_graph(spec(preferred="int8"), "v1", UNPUBLISHED, None)
    assert (plan.graph, plan.blocked, plan.status.served) == ("fp32", None, "fp32")
    assert "v1 did not publish the int8 graph (probe top-1 agreement 0.8184" in plan.status.message


def test_an_unpublished_variant_without_fallback_blocks_deployment():
    plan = plan_graph(spec(preferred="int8", fallbackToFp32=False), "v1", UNPUBLISHED, None)
    assert plan.blocked and "fallbackToFp32 is false" in plan.blocked


def test_graphs_come_from_the_signed_report_and_count_only_signed_files():
    report = {"parity": {
        "int8": {"file": "model.int8.onnx", "published": False, "reason": "below", "top1Agreement": 0.82671},
        "fp16": {"file": "model.fp16.onnx", "published": True, "top1Agreement": 0.999},
        "fp32": {"file": "model.onnx", "top1Agreement": 1.0, "maxAbsError": 8.6e-06}}}
    graphs = graphs_from_report(report, {"model.onnx", "model.int8.onnx"})
    assert [g.name for g in graphs] == ["fp32", "fp16", "int8"]
    by = {g.name: g for g in graphs}
    assert by["fp32"].published and by["fp32"].max_abs_error == 8.6e-06
    assert not by["fp16"].published and by["fp16"].reason == "not in the signed artifact"
    assert not by["int8"].published and by["int8"].reason == "below" and by["int8"].top1_agreement == 0.8267
