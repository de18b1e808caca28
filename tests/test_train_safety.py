"""Training checkpoints are data: written atomically, read with the weights-only loader, and a planted
pickle is refused without running; the loop's randomness comes from the named streams."""

from __future__ import annotations

import collections
import os
import pickle
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bench.context import RunContext
from bench.persist import UnsafeFileError
from bench.seeds import Stream
from bench.train import CHECKPOINT_NAME, Trainer, TrainConfig


def _data(n=128):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    return np.concatenate([x, (x @ np.array([1.0, -1.0, 2.0], dtype=np.float32))[:, None]], axis=1)


def _step(batch, it, trainer):
    loss = ((trainer.networks["net"](batch[:, :3]).squeeze(-1) - batch[:, 3]) ** 2).mean()
    loss = loss + 0.0 * trainer.randn(1).sum()
    trainer.update(loss)
    return {"loss": loss.detach()}


def _trainer(path, seed=0, steps=30):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.2), nn.Linear(8, 1))
    # weight decay, warm-up and EMA: every kind of state the loop checkpoints
    cfg = TrainConfig(steps=steps, batch_size=16, lr=1e-2, weight_decay=0.01, warmup_steps=3, ema_decay=0.9,
                      checkpoint_every=0)
    return Trainer({"net": net}, None, cfg, RunContext(seed=seed, checkpoint_dir=path), ema=("net",))


def _assert_plain(value, where="checkpoint"):
    """Only tensors and plain Python values, all the way down (no dataclass, array or other object)."""
    if isinstance(value, torch.Tensor) or value is None or type(value) in (bool, int, float, str):
        return
    if type(value) in (dict, collections.OrderedDict):
        for k, v in value.items():
            assert type(k) in (str, int), f"{where}: key {k!r} of type {type(k).__name__}"
            _assert_plain(v, f"{where}[{k!r}]")
        return
    if type(value) in (list, tuple):
        for i, v in enumerate(value):
            _assert_plain(v, f"{where}[{i}]")
        return
    raise AssertionError(f"{where}: a {type(value).__module__}.{type(value).__name__} in the checkpoint")


def test_checkpoint_is_plain_data_that_the_weights_only_loader_reads(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.fit(_data(), _step, stop_after=5)
    path = tmp_path / CHECKPOINT_NAME
    state = torch.load(path, weights_only=True)  # raises on anything that is not tensors and plain values
    _assert_plain(state)
    # the AdamW moments and step counters, the RNG states as byte tensors
    moments = state["optimizers"]["main"]["state"][0]
    assert {"exp_avg", "exp_avg_sq", "step"} <= set(moments) and float(moments["step"]) == 5
    assert state["generator"].dtype == torch.uint8 and state["torch_rng"].dtype == torch.uint8
    # atomic writes leave no temporary file beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]


def test_the_plain_data_check_catches_objects():
    # the helper above must fail on what the safe loader refuses, or the test before proves nothing
    for bad in ({"a": np.zeros(2)}, {"cfg": TrainConfig()}, [object()]):
        with pytest.raises(AssertionError, match="in the checkpoint"):
            _assert_plain(bad)


class _ShellPayload:
    """Unpickling this runs a shell command (touching a marker file): what a planted checkpoint could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def _planted(tmp_path, extra):
    """A checkpoint that matches the trainer (so it would be resumed) with ``extra`` hidden inside."""
    path = tmp_path / "ckpt"
    honest = _trainer(path)
    honest.fit(_data(), _step, stop_after=5)
    state = honest.checkpoint_state()
    state["networks"]["net"] = {**state["networks"]["net"], "planted": extra}
    torch.save(state, path / CHECKPOINT_NAME)  # plain torch.save pickles whatever it is given
    return path


def test_planted_reduce_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "payload-ran"
    # the payload is live: unpickling it creates the marker
    pickle.loads(pickle.dumps(_ShellPayload(marker)))
    assert marker.exists()
    marker.unlink()
    path = _planted(tmp_path, _ShellPayload(marker))
    with pytest.raises(UnsafeFileError) as info:
        _trainer(path).fit(_data(), _step)
    assert not marker.exists()
    assert str(path / CHECKPOINT_NAME) in str(info.value) and "refused" in str(info.value)


def _message(trainer) -> str:
    with pytest.raises(UnsafeFileError) as info:
        trainer.try_resume()
    return str(info.value)


@pytest.mark.parametrize("extra", [TrainConfig(), np.arange(3.0)], ids=["dataclass", "ndarray"])
def test_checkpoint_holding_objects_is_refused_naming_the_file(tmp_path, extra):
    path = _planted(tmp_path, extra)
    message = _message(_trainer(path))
    assert str(path / CHECKPOINT_NAME) in message and "refused" in message


def test_unsafe_loader_is_not_used_anywhere_in_the_package():
    root = Path(__file__).resolve().parents[1]
    offenders = [f"{f.relative_to(root)}:{n}" for d in ("bench", "baselines") for f in sorted((root / d).rglob("*.py"))
                 for n, line in enumerate(f.read_text().splitlines(), 1) if "weights_only=False" in line]
    assert offenders == []


def test_truncated_or_foreign_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.fit(_data(), _step, stop_after=5)
    f = tmp_path / CHECKPOINT_NAME
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    assert str(f) in _message(_trainer(tmp_path))
    torch.save({"weights": torch.zeros(2)}, f)  # safe data, but not a checkpoint of the loop
    assert "not a training checkpoint" in _message(_trainer(tmp_path))


def test_checkpoint_of_another_seed_is_ignored_and_same_seed_resumes(tmp_path):
    _trainer(tmp_path, seed=0).fit(_data(), _step, stop_after=5)
    assert _trainer(tmp_path, seed=1).try_resume() == 0
    assert _trainer(tmp_path, seed=0).try_resume() == 5


def test_loop_draws_from_the_named_streams(tmp_path):
    ctx = RunContext(seed=7)
    trainer = _trainer(tmp_path, seed=7)
    assert torch.equal(trainer.generator.get_state(), ctx.torch_generator(Stream.TRAIN_BATCHES).get_state())
    first_global = []

    def step(batch, it, tr):
        if it == 0:
            first_global.append(torch.rand(4))  # the first global-RNG draw of the run (what dropout uses)
        return _step(batch, it, tr)

    trainer.fit(_data(), step, stop_after=1)
    torch.manual_seed(ctx.int_seed(Stream.TRAIN_DROPOUT))
    assert torch.equal(first_global[0], torch.rand(4))
