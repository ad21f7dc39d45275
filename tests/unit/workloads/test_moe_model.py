"""MoETransformer forward contract, causality, inference batch-independence, and the
checkpoint directory round trip."""

import json

import pytest
import torch

from tugboat_workloads.moe import CheckpointError, MoEConfig, MoETransformer, load_checkpoint, save_checkpoint
from tugboat_workloads.moe.checkpoint import load_train_state

TINY = MoEConfig(d_model=32, heads=2, experts=4, d_ff=64, seq_len=16, vocab_size=20)


def _model(seed=0, cfg=TINY):
    torch.manual_seed(seed)
    return MoETransformer(cfg)


def _tokens(batch, seq, seed=0):
    return torch.randint(0, TINY.vocab_size, (batch, seq), generator=torch.Generator().manual_seed(seed))


def test_forward_contract_shapes_and_statistics():
    out = _model().train()(_tokens(4, 16))
    assert out.logits.shape == (4, 16, 20)
    assert out.expert_load.shape == (2, 4)
    assert torch.allclose(out.expert_load.sum(dim=1), torch.ones(2))
    assert out.router_entropy.shape == (2,)
    max_entropy = torch.log(torch.tensor(4.0)) + 1e-6
    assert bool(((out.router_entropy > 0) & (out.router_entropy <= max_entropy)).all())
    assert out.aux_loss.dim() == 0 and float(out.aux_loss.detach()) > 0
    assert 0.0 <= float(out.dropped_fraction) < 1.0


def test_every_parameter_gets_a_gradient():
    # DDP without find_unused_parameters needs this, even for experts that got no token.
    model = _model().train()
    out = model(_tokens(2, 8))
    (out.logits.square().mean() + out.aux_loss).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert missing == []


def test_logits_are_causal():
    model = _model().eval()
    tokens = _tokens(2, 12)
    changed = tokens.clone()
    changed[:, 8:] = (changed[:, 8:] + 1) % TINY.vocab_size
    with torch.no_grad():
        a, b = model(tokens).logits, model(changed).logits
    assert torch.allclose(a[:, :8], b[:, :8], atol=1e-6)
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_inference_is_batch_independent_and_drops_nothing():
    model = _model().eval()
    tokens = _tokens(8, 16)
    with torch.no_grad():
        together = model(tokens)
        alone = model(tokens[3:4])
    assert float(together.dropped_fraction) == 0.0
    assert torch.allclose(together.logits[3:4], alone.logits, atol=1e-5)


def test_training_with_tight_capacity_drops_and_counts():
    cfg = TINY.replace(capacity_factor=0.5)
    out = _model(cfg=cfg).train()(_tokens(4, 16))
    assert float(out.dropped_fraction) >= 0.5 - 1e-6


def test_too_long_sequence_is_rejected():
    with pytest.raises(ValueError, match="exceeds seqLen 16"):
        _model()(_tokens(1, 17))


def test_checkpoint_round_trip(tmp_path):
    model = _model(seed=3).train()
    model.set_gate_temperature(1.7)
    save_checkpoint(tmp_path / "ck", model, step=42, metrics={"loss": 1.5, "bad": float("nan")},
                    train_state={"optimizer": {"x": torch.ones(2)}})
    loaded, cfg, step = load_checkpoint(tmp_path / "ck")
    assert (cfg, step, loaded.training) == (TINY, 42, False)
    assert float(loaded.gate_temperature) == pytest.approx(1.7)
    tokens = _tokens(2, 16)
    with torch.no_grad():
        assert torch.equal(model.eval()(tokens).logits, loaded(tokens).logits)
    info = json.loads((tmp_path / "ck" / "checkpoint.json").read_text())
    assert info == {"step": 42, "metrics": {"loss": 1.5, "bad": None}}
    assert load_train_state(tmp_path / "ck")["gate_temperature"] == pytest.approx(1.7)


def test_incomplete_checkpoint_names_the_missing_file(tmp_path):
    save_checkpoint(tmp_path / "ck", _model(), step=1, metrics={})
    (tmp_path / "ck" / "checkpoint.json").unlink()
    with pytest.raises(CheckpointError, match="checkpoint.json"):
        load_checkpoint(tmp_path / "ck")
    (tmp_path / "ck" / "model.pt").write_bytes(b"garbage")
    (tmp_path / "ck" / "checkpoint.json").write_text('{"step": 1}')
    with pytest.raises(CheckpointError, match="model.pt"):
        load_checkpoint(tmp_path / "ck")
