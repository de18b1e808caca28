"""The speed and memory benchmark measures what it says on small cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import perf
from bench.perf import measure_folding, measure_one, toy_profiles


def test_toy_profiles_are_seeded_and_scaled():
    a, b = toy_profiles(8, 24, seed=1), toy_profiles(8, 24, seed=1)
    assert a.shape == (8, 24) and (a == b).all() and a.min() >= -1 and a.max() <= 1


@pytest.mark.parametrize("model", ["vae", "wgan-gp", "energydiff"])
def test_measure_one_reports_rates_and_memory(model):
    row = measure_one(model, 60, profile="quick", device="cpu", steps=3, n_train=32, n_samples=8, overrides={})
    assert row["T"] == 24 and row["train_steps"] == 3
    assert row["train_steps_per_s"] > 0 and row["samples_per_s"] > 0 and row["peak_memory_mb"] > 0


def test_measure_folding_uses_the_requested_factors():
    rows = measure_folding(device="cpu", batch=2, length=96, folds=(1, 8), repeats=1)
    assert [r["fold"] for r in rows] == [1, 8]
    assert all(r["forward_ms"] > 0 and r["backward_ms"] > 0 for r in rows)


# a stand-in for the public code's module layout: models_1d.py importing a sibling, as the real one does
STAND_IN_MODELS = '''
import torch
from torch import nn

from .utils import default


class Transformer1D(nn.Module):
    def __init__(self, dim_base, num_in_channel=3, dim_out=None, num_attn_head=4, num_decoder_layer=6,
                 dim_feedforward=2048, dropout=0.1):
        super().__init__()
        self.inp = nn.Conv1d(num_in_channel, dim_base, 1)
        self.time = nn.Linear(1, dim_base)
        self.outp = nn.Conv1d(dim_base, default(dim_out, num_in_channel), 1)

    def forward(self, x, time):
        return self.outp(torch.relu(self.inp(x) + self.time(time[:, None] / 1000)[:, :, None]))
'''
STAND_IN_UTILS = "def default(value, fallback):\n    return fallback if value is None else value\n"
TINY_SIZE = {"T": 24, "fold": 4, "d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "batch": 32}


def _stand_in_checkout(root):
    folder = root / "src" / "energydiff" / "diffusion"
    folder.mkdir(parents=True)
    (folder / "models_1d.py").write_text(STAND_IN_MODELS)
    (folder / "utils.py").write_text(STAND_IN_UTILS)
    (folder / "__init__.py").write_text("raise ImportError('the package init must not be imported')\n")
    return root


def test_train_step_comparison_against_a_public_checkout(tmp_path, monkeypatch):
    monkeypatch.setitem(perf.TRAIN_STEP_SIZES, "tiny", TINY_SIZE)
    src = _stand_in_checkout(tmp_path / "checkout")
    rows = perf.measure_train_step("tiny", threads=1, repeats=3, warmup=1, energydiff_src=str(src))
    ours, public = rows
    assert (ours["implementation"], public["implementation"]) == ("meterbench", "public")
    assert all(r["median_ms"] > 0 and r["min_ms"] <= r["median_ms"] <= r["max_ms"] for r in rows)
    assert public["parameters"] == (4 * 16 + 16) + (1 * 16 + 16) + (16 * 4 + 4)  # the stand-in's layers
    assert ours["parameters"] > public["parameters"] and ours["tokens"] == 6
    assert ours["ratio_of_medians"] == pytest.approx(ours["median_ms"] / public["median_ms"])
    assert ours["median_paired_ratio"] > 0 and "ratio_of_medians" not in public
    text = perf.train_step_report(rows, tmp_path, "python -m bench.perf --train-step", threads=1, repeats=3,
                                  warmup=1)
    assert "`python -m bench.perf --train-step`" in text and (tmp_path / "train_step.md").read_text() == text
    assert pd.read_csv(tmp_path / "train_step.csv")["implementation"].tolist() == ["meterbench", "public"]


def test_public_code_is_found_from_the_root_the_folder_or_the_file(tmp_path):
    src = _stand_in_checkout(tmp_path)
    folder = src / "src" / "energydiff" / "diffusion"
    for where in (src, folder, folder / "models_1d.py"):
        assert perf.load_public_transformer(where).__name__ == "Transformer1D"
    with pytest.raises(FileNotFoundError, match="models_1d.py"):
        perf.load_public_transformer(tmp_path / "elsewhere")


def test_timed_training_steps_learn():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        step, _ = perf.meterbench_train_step(TINY_SIZE)
        losses = [step() for _ in range(300)]
    finally:
        torch.set_num_threads(before)
    assert all(np.isfinite(losses))
    # the v-prediction loss starts near the target's variance (about 1) and falls as the denoiser learns
    assert np.mean(losses[-50:]) < 0.6 * np.mean(losses[:20])
