"""The shared training loop: learning, determinism, checkpoint + resume, budgets, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bench.context import RunContext
from bench.train import Trainer, TrainConfig, autocast_dtype, resolve_device


def _data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5, 3.0], dtype=np.float32)
    return np.concatenate([x, y[:, None]], axis=1)


def _step(batch, it, trainer):
    net = trainer.networks["net"]
    with trainer.autocast():
        pred = net(batch[:, :4]).squeeze(-1)
    loss = ((pred.float() - batch[:, 4]) ** 2).mean() + 0.0 * trainer.randn(1).sum()
    trainer.update(loss)
    return {"loss": loss.detach()}


def _trainer(tmp_path, steps=120, seed=0, **cfg):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.1), nn.Linear(16, 1))
    config = TrainConfig(steps=steps, batch_size=32, lr=1e-2, ema_decay=0.9, checkpoint_every=0, **cfg)
    ctx = RunContext(seed=seed, checkpoint_dir=tmp_path)
    return Trainer({"net": net}, None, config, ctx, ema=("net",))


def test_loop_learns_and_keeps_ema(tmp_path):
    data = _data()
    trainer = _trainer(tmp_path, steps=300)

    def mse(net):
        with torch.no_grad():
            pred = net.eval()(torch.as_tensor(data[:, :4])).squeeze(-1).numpy()
        return float(np.mean((pred - data[:, 4]) ** 2))

    before = mse(trainer.networks["net"])
    result = trainer.fit(data, _step)
    assert result.steps == 300 and result.resumed_from == 0
    ema = trainer.sampling_network("net")
    assert mse(ema) < 0.05 * before
    assert not ema.training


def test_checkpoint_resume_equals_uninterrupted_run(tmp_path):
    data = _data()
    full = _trainer(tmp_path / "a")
    full.fit(data, _step)
    part = _trainer(tmp_path / "b")
    part.fit(data, _step, stop_after=47)
    assert part.step_count == 47
    resumed = _trainer(tmp_path / "b")  # a fresh process would build the model from scratch like this
    result = resumed.fit(data, _step)
    assert result.resumed_from == 47 and result.steps == 120
    for a, b in zip(full.networks["net"].parameters(), resumed.networks["net"].parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(full.ema["net"].shadow.parameters(), resumed.ema["net"].shadow.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_finished_run_is_reused_without_training_and_sampling_state_matches(tmp_path):
    data = _data()
    first = _trainer(tmp_path)
    first.fit(data, _step)
    after_first = torch.rand(3)  # the global RNG right after training (what sampling would draw next)
    second = _trainer(tmp_path)  # e.g. another task fitting the same model on the same training set
    result = second.fit(data, _step)
    assert result.resumed_from == 120 and result.steps == 120 and result.history == []
    for a, b in zip(first.ema["net"].shadow.parameters(), second.ema["net"].shadow.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # sampling after a reused fit draws the same numbers as sampling straight after training
    assert torch.equal(torch.rand(3), after_first)


def test_checkpoint_of_another_config_is_ignored(tmp_path):
    data = _data()
    _trainer(tmp_path).fit(data, _step, stop_after=10)
    other = _trainer(tmp_path, steps=50)
    assert other.fit(data, _step).resumed_from == 0


def test_same_seed_same_weights_different_seed_differs(tmp_path):
    data = _data()
    a, b, c = _trainer(tmp_path / "a"), _trainer(tmp_path / "b"), _trainer(tmp_path / "c", seed=1)
    for t in (a, b, c):
        t.fit(data, _step)
    pa, pb, pc = (next(t.networks["net"].parameters()) for t in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_time_budget_stops_early(tmp_path):
    trainer = _trainer(tmp_path, steps=10**7, budget_seconds=1e-9)
    result = trainer.fit(_data(), _step)
    assert result.stopped_by_budget and result.steps == 1


def test_devices_and_precision():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="cuda"):
            resolve_device("cuda")
    assert autocast_dtype("auto", torch.device("cpu")) is None
    assert autocast_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    assert autocast_dtype("off", torch.device("cpu")) is None
    with pytest.raises(ValueError):
        autocast_dtype("fp8", torch.device("cpu"))
