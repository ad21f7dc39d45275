"""The chart's policy template is generated from policies/ and must not drift from it."""

import pytest

from tugboat.chart import TEMPLATE, policies_template
from tugboat.dev.tools import repo_root


def test_chart_template_matches_policies():
    text = policies_template(repo_root() / "policies")
    assert (repo_root() / "charts" / "tugboat" / TEMPLATE).read_text() == text, "run `make crds`"
    assert text.count("kind: ValidatingAdmissionPolicy\n") == 3
    assert text.count("kind: ValidatingAdmissionPolicyBinding\n") == 3


def test_an_empty_policies_dir_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no policy files"):
        policies_template(tmp_path)
