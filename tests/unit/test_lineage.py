"""The kubectl plugin's lineage tree and condition table (pure rendering)."""

from tugboat.lineage import render_conditions, render_lineage


def obj(kind, name, ns, spec=None, status=None, uid=None):
    return {"kind": kind, "metadata": {"name": name, "namespace": ns, "uid": uid or name, "generation": 1},
            "spec": spec or {}, "status": status or {}}


RUN = obj("TrainingRun", "moe", "ml", status={"phase": "Succeeded", "step": 200,
                                             "metrics": {"loss": 0.12345, "expertLoadImbalance": 1.21}})
REL = obj("ModelRelease", "moe-v1", "ml", spec={"modelLine": "moe", "source": {"trainingRun": "moe"}},
          status={"phase": "Ready", "manifestDigest": "ab" * 32, "registryVersion": "3"})
AGD = obj("AgentDeployment", "agent", "team-a", spec={"replicas": 2},
          status={"phase": "Serving", "release": "moe-v1", "readyReplicas": 2})


def test_runs_releases_and_agents_form_one_tree():
    text = render_lineage([RUN], [REL], [AGD]).splitlines()
    assert text[0] == "TrainingRun/moe (ml)  Succeeded  [step 200, loss 0.123, imbalance 1.21]"
    assert text[1] == "   └─ ModelRelease/moe-v1 (ml)  Ready  [line moe, sha256 abababababab, registry v3]"
    assert text[2] == "      └─ AgentDeployment/agent (team-a)  Serving  [2/2 ready]"


def test_the_tree_shows_published_graphs_and_the_graph_each_deployment_serves():
    rel = {**REL, "status": {**REL["status"], "graphs": [
        {"name": "fp32", "published": True}, {"name": "int8", "published": True},
        {"name": "fp16", "published": False}]}}
    agd = {**AGD, "status": {**AGD["status"], "graph": {"requested": "int8", "served": "int8"}}}
    text = render_lineage([RUN], [rel], [agd]).splitlines()
    assert "graphs fp32+int8, registry v3]" in text[1]
    assert text[2] == "      └─ AgentDeployment/agent (team-a)  Serving  [2/2 ready, graph int8]"


def test_orphans_stand_at_the_top_and_problems_are_shown():
    waiting = obj("AgentDeployment", "lonely", "team-b", status={"phase": "Waiting", "conditions": [
        {"type": "Ready", "status": "False", "reason": "NoVerifiedRelease", "message": "no release"}]})
    text = render_lineage([], [REL], [waiting])
    assert text.splitlines()[0].startswith("ModelRelease/moe-v1 (ml)  Ready")
    assert "AgentDeployment/lonely (team-b)  Waiting" in text
    assert "! NoVerifiedRelease: no release" in text
    assert render_lineage([], [], []) == "no Tugboat objects found"


def test_conditions_table_flags_an_unobserved_generation():
    rel = obj("ModelRelease", "r", "ml", status={"phase": "Signing", "observedGeneration": 0, "conditions": [
        {"type": "Exported", "status": "True", "reason": "Exported", "message": "onnx written"}]})
    text = render_conditions("ModelRelease", rel)
    assert "generation 1 not yet observed" in text
    assert "Exported     True     Exported                 onnx written" in text
