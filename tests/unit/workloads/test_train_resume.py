"""Choosing the resume point under a storagePath: newest complete checkpoint of any attempt,
unusable ones skipped, another model's checkpoint refused."""

import logging

import pytest
import torch

from tugboat_workloads.moe import MoEConfig, MoETransformer, save_checkpoint
from tugboat_workloads.train.config import InvalidConfigError
from tugboat_workloads.train.resume import find_resume_point

CFG = MoEConfig(d_model=16, heads=2, experts=2, top_k=1, d_ff=16, vocab_size=8, seq_len=4)


def _save(path, step, cfg=CFG):
    torch.manual_seed(step)
    save_checkpoint(path, MoETransformer(cfg), step=step, metrics={"loss": 1.0 / step},
                    train_state={"optimizer": {}})


def test_empty_or_missing_storage_has_no_resume_point(tmp_path):
    assert find_resume_point(tmp_path / "nothing-yet", CFG) is None
    assert find_resume_point(tmp_path, CFG) is None


def test_highest_step_wins_across_attempt_directories(tmp_path):
    _save(tmp_path / "attempt-1-a" / "checkpoint_step_0000010", 10)
    _save(tmp_path / "attempt-1-a" / "checkpoint_step_0000020", 20)
    _save(tmp_path / "attempt-2-b" / "checkpoint_step_0000030", 30)
    _save(tmp_path / "checkpoint_step_0000025", 25)  # a single-process run writes at the top level
    point = find_resume_point(tmp_path, CFG)
    assert (point.step, point.metrics["loss"]) == (30, pytest.approx(1 / 30))
    assert point.directory == str(tmp_path / "attempt-2-b" / "checkpoint_step_0000030")


def test_incomplete_and_corrupt_checkpoints_are_skipped(tmp_path, caplog):
    _save(tmp_path / "a" / "checkpoint_step_0000010", 10)
    _save(tmp_path / "b" / "checkpoint_step_0000030", 30)
    (tmp_path / "b" / "checkpoint_step_0000030" / "model.pt").write_bytes(b"truncated")
    _save(tmp_path / "c" / "checkpoint_step_0000040", 40)
    (tmp_path / "c" / "checkpoint_step_0000040" / "checkpoint.json").unlink()
    with caplog.at_level(logging.WARNING):
        point = find_resume_point(tmp_path, CFG)
    assert point.step == 10
    assert "checkpoint_step_0000030" in caplog.text and "model.pt" in caplog.text


def test_a_different_model_is_refused_with_the_differing_fields(tmp_path):
    _save(tmp_path / "a" / "checkpoint_step_0000010", 10, cfg=CFG.replace(d_model=32))
    with pytest.raises(InvalidConfigError, match="dModel 32 != 16") as info:
        find_resume_point(tmp_path, CFG)
    assert info.value.path == "model"
