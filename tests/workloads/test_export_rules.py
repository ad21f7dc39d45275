"""The export's pure rules: flag validation, parity shapes and errors, report entries, interface check,
the artifact directory policy and the TensorRT profile."""

import math
from pathlib import Path

import numpy as np
import pytest

from tugboat_workloads.export.onnx_graph import expected_interface, interface_problems
from tugboat_workloads.export.options import build_parser, options_from_args, parse_variants
from tugboat_workloads.export.outcome import ExportError, failed_result
from tugboat_workloads.export.parity import held_out_inputs, max_abs_error, parity_shapes, worst_error
from tugboat_workloads.export.pipeline import prepare_out_dir
from tugboat_workloads.export.report import parity_failure_message, variant_parity
from tugboat_workloads.export.tensorrt_engine import tensorrt_profile
from tugboat_workloads.moe.config import MoEConfig


def _options(*flags: str):
    return options_from_args(build_parser().parse_args(["--checkpoint", "c", "--out", "o", *flags]), 23)


def test_defaults_follow_the_contract():
    options = _options()
    assert (options.opset, options.tolerance, options.variants, options.target, options.trt_precision) == (
        18, 1e-4, (), "onnx", "fp16")


@pytest.mark.parametrize("flags, fragment", [
    (["--variants", "fp16,fp8"], "--variants: unknown variant 'fp8'"),
    (["--opset", "17"], "--opset: 17 is outside"),
    (["--opset", "24"], "--opset: 24 is outside"),
    (["--opset", "x"], "--opset: 'x' is not an integer"),
    (["--tolerance", "0"], "--tolerance"),
    (["--tolerance", "nan"], "--tolerance"),
    (["--tolerance", "abc"], "--tolerance: 'abc'"),
    (["--target", "tflite"], "--target: 'tflite'"),
    (["--trt-precision", "int4"], "--trt-precision: 'int4'"),
    (["--checkpoint-root", ""], "--checkpoint-root: must be an absolute path, got ''"),
    (["--checkpoint-root", "art/ckpt"], "--checkpoint-root: must be an absolute path"),
])
def test_bad_flags_are_invalid_arguments_naming_the_flag(flags, fragment):
    with pytest.raises(ExportError) as caught:
        _options(*flags)
    assert caught.value.reason == "InvalidArguments"
    assert fragment in caught.value.message
    assert failed_result(caught.value)["reason"] == "InvalidArguments"


def test_the_checkpoint_root_is_kept_when_given():
    assert _options().checkpoint_root is None
    assert _options("--checkpoint-root", "/art/checkpoints/ml/moe-01234567").checkpoint_root == Path(
        "/art/checkpoints/ml/moe-01234567")


def test_variants_keep_order_and_drop_blanks_and_duplicates():
    assert parse_variants(" int8, ,fp16,int8") == ("int8", "fp16")
    assert parse_variants("") == ()


@pytest.mark.parametrize("seq_len, seqs",
                         [(32, {32, 17}), (16, {16, 9}), (10, {10, 5}), (1, {1}), (2, {2, 1})])
def test_parity_shapes_cover_batches_1_4_16_at_full_and_odd_shorter_lengths(seq_len, seqs):
    shapes = parity_shapes(seq_len)
    assert {b for b, _ in shapes} == {1, 4, 16}
    assert {s for _, s in shapes} == seqs
    assert len(shapes) == 3 * len(seqs)


def test_held_out_inputs_are_deterministic_in_range_and_not_the_export_example():
    shapes = parity_shapes(16)
    first, again = held_out_inputs(shapes, 64), held_out_inputs(shapes, 64)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert all(a.dtype == np.int64 and a.min() >= 0 and a.max() < 64 for a in first.values())
    assert not np.array_equal(held_out_inputs(shapes, 64, seed=0)["batch4_seq16"], first["batch4_seq16"])


def test_max_abs_error_treats_nan_and_shape_changes_as_infinite():
    a = np.array([[1.0, 2.0]], dtype=np.float32)
    assert max_abs_error(a, a + np.float32(0.5)) == pytest.approx(0.5)
    assert max_abs_error(a, np.array([[1.0, np.nan]], dtype=np.float32)) == math.inf
    assert max_abs_error(a, a.reshape(2, 1)) == math.inf


def test_a_gated_entry_fails_above_tolerance_and_names_the_worst_place():
    errors = {"batch1_seq16": {"logits": 1e-6, "expert_load": 0.0},
              "batch16_seq9": {"logits": 3e-4, "expert_load": 0.0}}
    entry = variant_parity("model.onnx", errors, 1e-4)
    assert entry["passed"] is False and entry["maxAbsError"] == 3e-4
    assert worst_error(errors) == (3e-4, "batch16_seq9", "logits")
    message = parity_failure_message(entry)
    assert "batch16_seq9" in message and "'logits'" in message and "0.0001" in message
    assert variant_parity("model.onnx", errors, 1e-3)["passed"] is True


def test_an_ungated_variant_records_its_error_and_never_fails():
    entry = variant_parity("model.int8.onnx", {"batch1_seq16": {"logits": math.inf}}, None)
    assert entry["gated"] is False and entry["passed"] is None
    # JSON has no inf: a non-finite error is written as null.
    assert entry["maxAbsError"] is None and entry["shapes"]["batch1_seq16"]["logits"] is None


def test_interface_problems_lists_every_deviation():
    config = MoEConfig.from_dict({"layers": 3, "experts": 4, "vocabSize": 50})
    assert interface_problems(expected_interface(config), config) == []
    wrong = expected_interface(config)
    wrong["inputs"] = {"tokens": ("INT32", ["batch", "seq"])}
    wrong["outputs"] = dict(wrong["outputs"], expert_load=("FLOAT", [3, 8]))
    problems = interface_problems(wrong, config)
    assert any("input 'tokens' is INT32" in p for p in problems)
    assert any("output 'expert_load'" in p and "[3, 4]" in p for p in problems)
    renamed = {"inputs": {"input_ids": ("INT64", ["batch", "seq"])}, "outputs": wrong["outputs"]}
    assert any("inputs are ['input_ids']" in p for p in interface_problems(renamed, config))


def test_out_dir_replaces_an_earlier_export_and_its_stale_signature(tmp_path: Path):
    out = tmp_path / "artifact"
    out.mkdir()
    for name in ("model.onnx", "export_report.json", "manifest.json", "model.sig"):
        (out / name).write_text("old")
    assert list(prepare_out_dir(out).iterdir()) == []
    assert prepare_out_dir(tmp_path / "new" / "dir").is_dir()


def test_out_dir_with_foreign_files_is_refused_untouched(tmp_path: Path):
    (tmp_path / "model.onnx").write_text("old")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "sub").mkdir()
    with pytest.raises(ExportError) as caught:
        prepare_out_dir(tmp_path)
    assert caught.value.reason == "OutputNotEmpty"
    assert "notes.txt" in caught.value.message and "sub" in caught.value.message
    assert (tmp_path / "model.onnx").exists()


def test_tensorrt_profile_spans_one_token_to_a_full_batch_of_full_sequences():
    profile = tensorrt_profile(32)
    assert profile.min == (1, 1) and profile.opt[1] == 32 and profile.max == (64, 32)
    assert profile.min <= profile.opt <= profile.max
