"""What the CRD schema admits as a quantity, the operator's parser reads (a quota the schema takes
must never break the Tenant's builder after admission)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tugboat.api.base import QUANTITY
from tugboat.builders.tenant import parse_quantity


@settings(max_examples=300, derandomize=True)
@given(st.from_regex(QUANTITY, fullmatch=True))
def test_every_quantity_the_schema_admits_parses(text):
    assert parse_quantity(text) >= 0


@pytest.mark.parametrize("text", ["1.2.3", "...", ".", "1Mi5", "1e", "1Ki-3", "1mm", "-1", "1K", "Gi"])
def test_what_the_parser_refuses_the_schema_refuses(text):
    assert re.match(QUANTITY, text) is None


@pytest.mark.parametrize("text", ["500m", "16Gi", "1e3", "0.5", ".5", "+2", "1E-3", "8k", "4Ei"])
def test_usual_quantities_are_admitted(text):
    assert re.match(QUANTITY, text) is not None
