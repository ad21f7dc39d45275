"""MoEConfig: camelCase wire form, defaults, and errors that name the offending field."""

import pytest

from tugboat_workloads.moe.config import ModelConfigError, MoEConfig


def test_defaults_round_trip_through_camel_case():
    cfg = MoEConfig.from_dict({})
    assert cfg.to_dict() == {
        "layers": 2, "dModel": 128, "heads": 4, "experts": 8, "topK": 2, "dFF": 256,
        "capacityFactor": 1.25, "auxLossCoef": 0.01, "routerZLossCoef": 0.001,
        "gateTemperature": 1.0, "vocabSize": 64, "seqLen": 32,
    }
    custom = MoEConfig.from_dict({"dModel": 32, "experts": 4, "topK": 1})
    assert (custom.d_model, custom.experts, custom.top_k) == (32, 4, 1)
    assert MoEConfig.from_dict(custom.to_dict()) == custom


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"dmodel": 32}, "dmodel"),
        ({"layers": 0}, "layers"),
        ({"layers": 2.5}, "layers"),
        ({"layers": True}, "layers"),
        ({"dModel": 30, "heads": 4}, "dModel"),
        ({"topK": 9}, "topK"),
        ({"capacityFactor": 0}, "capacityFactor"),
        ({"capacityFactor": "1.25"}, "capacityFactor"),
        ({"gateTemperature": float("nan")}, "gateTemperature"),
        ({"auxLossCoef": -0.1}, "auxLossCoef"),
        ({"vocabSize": 1}, "vocabSize"),
    ],
)
def test_invalid_specs_name_the_field(spec, field):
    with pytest.raises(ModelConfigError) as info:
        MoEConfig.from_dict(spec)
    assert info.value.field == field
    assert f"model.{field}" in str(info.value)


def test_from_dict_rejects_non_objects():
    with pytest.raises(ModelConfigError, match="expected an object"):
        MoEConfig.from_dict([1, 2])


def test_importing_the_config_does_not_need_torch():
    import subprocess
    import sys

    code = ("import sys; from tugboat_workloads.moe import MoEConfig; MoEConfig(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
