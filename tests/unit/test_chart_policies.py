"""The chart's generated templates (policies, the tenants' ClusterRole) must not drift from their sources."""

import pytest
import yaml

from tugboat.builders.tenant import build_tenant_cluster_role
from tugboat.chart import TEMPLATE, TENANT_ROLE_TEMPLATE, chart_templates, policies_template
from tugboat.dev.tools import repo_root


def test_chart_template_matches_policies():
    text = policies_template(repo_root() / "policies")
    assert (repo_root() / "charts" / "tugboat" / TEMPLATE).read_text() == text, "run `make crds`"
    assert text.count("kind: ValidatingAdmissionPolicy\n") == 3
    assert text.count("kind: ValidatingAdmissionPolicyBinding\n") == 3


def test_an_empty_policies_dir_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no policy files"):
        policies_template(tmp_path)


def test_chart_tenant_cluster_role_is_the_one_the_operator_binds():
    chart = repo_root() / "charts" / "tugboat"
    for rel, text in chart_templates(repo_root()).items():
        assert (chart / rel).read_text() == text, f"{rel} drifted: run `make crds`"
    rendered = yaml.safe_load((chart / TENANT_ROLE_TEMPLATE).read_text())
    assert rendered == build_tenant_cluster_role()
