"""The PyPOTS imputers (``saits``, ``brits``, ``csdi``): the same output as PyPOTS called directly with the same
seed and data, learning on a tiny problem, save / load as plain tensors, seeding that leaves the global
generators alone, a missing library named, and bad input refused."""

from __future__ import annotations

import ast
import contextlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.pypots_imputers import BRITSImputer, CSDIImputer, PyPOTSImputer, SAITSImputer
from bench.api import ParamError
from bench.context import RunContext
from bench.extras import MissingExtraError
from bench.registry import get_model
from bench.seeds import Stream
from bench.tasks.queries import ImputationQuery
from tests.conftest import daily_set, sine_days

pytestmark = [pytest.mark.usefixtures("torch_one_thread"),
              # torch's speed hint about CSDI's attention layers, raised by the direct (reference) library calls
              pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")]

LENGTH = 24
N_SAMPLES = 3
MODELS = ("saits", "brits", "csdi")
# small changes to the test profiles so that each model learns the 24-step sine days within a second or two
OVERRIDES = {"saits": {"epochs": 20}, "brits": {"epochs": 8, "batch_size": 16},
             "csdi": {"epochs": 40, "batch_size": 16}}


def _pypots():
    """PyPOTS for the reference calls (its import prints a banner to stdout, kept out of the test output)."""
    pytest.importorskip("pypots.imputation")  # the CI installs the extra; elsewhere these tests skip
    with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
        from pypots.imputation import BRITS, CSDI, SAITS
        from pypots.optim import Adam
        from pypots.utils.random import set_random_seed
    return {"SAITS": SAITS, "BRITS": BRITS, "CSDI": CSDI, "Adam": Adam, "set_random_seed": set_random_seed}


def _problem():
    """96 training and 32 query sine days (random amplitude and phase) with 30 % of the query steps hidden."""
    rng = np.random.default_rng(11)
    train = sine_days(96, rng, LENGTH)
    truth = sine_days(32, rng, LENGTH)
    observed = rng.random(truth.shape) >= 0.3
    observed[:, 0] = True  # every query keeps at least one observed step
    query = ImputationQuery(values=np.where(observed, truth, np.nan).astype(np.float32), observed=observed,
                            valid=np.ones_like(observed), meta=daily_set(truth).meta, resolution=60)
    return daily_set(train), truth, query


def _config(name: str) -> dict:
    return get_model(name).config("test", OVERRIDES[name])


def _reference(name: str, train_values: np.ndarray, query: ImputationQuery, ctx: RunContext) -> np.ndarray:
    """``[S, N, T]``: the PyPOTS class built, trained and asked directly, seeded from the same streams."""
    lib, c = _pypots(), _config(name)
    common = dict(n_steps=LENGTH, n_features=1, batch_size=c["batch_size"], epochs=c["epochs"],
                  optimizer=lib["Adam"](lr=c["learning_rate"]), device="cpu", saving_path=None, verbose=False)
    lib["set_random_seed"](ctx.int_seed(Stream.MODEL_FIT, bits=31))
    if name == "saits":
        head = c["d_model"] // c["n_heads"]
        net = lib["SAITS"](n_layers=c["n_layers"], d_model=c["d_model"], n_heads=c["n_heads"], d_k=head, d_v=head,
                           d_ffn=c["d_ffn"], dropout=c["dropout"], attn_dropout=c["attn_dropout"], **common)
    elif name == "brits":
        net = lib["BRITS"](rnn_hidden_size=c["rnn_hidden_size"], **common)
    else:
        net = lib["CSDI"](n_layers=c["n_layers"], n_heads=c["n_heads"], n_channels=c["n_channels"],
                          d_time_embedding=c["d_time_embedding"], d_feature_embedding=c["d_feature_embedding"],
                          d_diffusion_embedding=c["d_diffusion_embedding"], n_diffusion_steps=c["n_diffusion_steps"],
                          target_strategy=c["target_strategy"], schedule=c["schedule"], beta_start=c["beta_start"],
                          beta_end=c["beta_end"], **common)
    x_train = train_values[:, :, None].astype(np.float32)
    if name == "brits":  # a random share of the training steps hidden, each independently, from the fit stream
        x_train = np.where(ctx.rng(Stream.MODEL_FIT, 1).random(x_train.shape) < c["train_missing"], np.nan, x_train)
    net.fit({"X": x_train.astype(np.float32)})
    x = query.values[:, :, None]
    if name == "csdi":
        lib["set_random_seed"](ctx.int_seed(Stream.MODEL_IMPUTE, bits=31))
        return np.asarray(net.predict({"X": x}, n_sampling_times=N_SAMPLES)["imputation"])[..., 0].transpose(1, 0, 2)
    point = np.asarray(net.predict({"X": x})["imputation"])[..., 0]
    return np.repeat(point[None], N_SAMPLES, axis=0)


@pytest.fixture(scope="module", params=MODELS)
def fitted(request):
    """``(name, model, imputations, global RNG states before / after the fit and impute)`` per model."""
    _pypots()
    name = request.param
    train, truth, query = _problem()
    model = get_model(name).build("test", OVERRIDES[name])
    ctx = RunContext(seed=0, profile="test")
    before = (torch.random.get_rng_state(), np.random.get_state()[1].copy())
    model.fit(train, ctx)
    imputed = model.impute(query, N_SAMPLES, ctx)
    after = (torch.random.get_rng_state(), np.random.get_state()[1].copy())
    return name, model, imputed, train, truth, query, before, after


def test_wrapper_matches_pypots_called_directly(fitted):
    name, model, imputed, train, truth, query, _, _ = fitted
    assert imputed.shape == (N_SAMPLES, *truth.shape) and imputed.dtype == np.float32
    expected = _reference(name, train.values, query, RunContext(seed=0))
    np.testing.assert_array_equal(imputed, expected.astype(np.float32))
    np.testing.assert_array_equal(imputed[:, query.observed], np.broadcast_to(query.values[query.observed],
                                                                               (N_SAMPLES, query.observed.sum())))


def test_only_csdi_samples_and_it_follows_the_impute_stream(fitted):
    name, model, imputed, _, _, query, _, _ = fitted
    again = model.impute(query, N_SAMPLES, RunContext(seed=0))
    other_seed = model.impute(query, N_SAMPLES, RunContext(seed=1))
    np.testing.assert_array_equal(again, imputed)
    if name == "csdi":
        assert imputed[:, ~query.observed].std(axis=0).mean() > 1e-3  # independent reverse-diffusion draws
        assert not np.array_equal(other_seed, imputed)
    else:
        assert (imputed == imputed[:1]).all()  # the point imputation repeated
        np.testing.assert_array_equal(other_seed, imputed)


def test_learns_the_tiny_problem(fitted):
    """The ensemble's CRPS on the hidden steps beats the per-step training mean (which knows each step's level but
    not the day's phase and amplitude; a point forecast's CRPS is its MAE). SAITS and BRITS read the observed
    neighbours of a gap; CSDI, at this budget, mainly learns each step's distribution (its conditioning on the
    observed steps takes the longer training of the quick profile)."""
    from metrics import METRICS

    name, _, imputed, train, truth, query, _, _ = fitted
    hidden = ~query.observed
    step_mean = np.broadcast_to(train.values.mean(axis=0), truth.shape)
    baseline = np.abs(step_mean - truth)[hidden].mean()
    ours = METRICS["CRPS"].fn(truth, imputed, mask=hidden)
    bar = 0.75 if name == "csdi" else 0.5
    assert ours < bar * baseline, f"{name}: CRPS {ours:.4f} vs per-step mean {baseline:.4f}"


def test_global_generators_are_left_alone(fitted):
    _, _, _, _, _, _, (torch_before, np_before), (torch_after, np_after) = fitted
    assert torch.equal(torch_before, torch_after)
    np.testing.assert_array_equal(np_before, np_after)


def test_save_load_round_trip(fitted, tmp_path):
    name, model, _, _, _, query, _, _ = fitted
    ctx = RunContext(seed=5, profile="test")
    first = model.impute(query, N_SAMPLES, ctx)
    loaded = type(model).load(model.save(tmp_path / f"{name}.pt"))
    np.testing.assert_array_equal(loaded.impute(query, N_SAMPLES, ctx), first)
    assert loaded.diagnostics() == model.diagnostics() and model.diagnostics()["best_epoch"] >= 1
    state = model.get_state()
    assert set(state) == {"n_steps", "network", "diagnostics"} and state["n_steps"] == LENGTH
    assert all(isinstance(v, torch.Tensor) for v in state["network"].values())


def test_bad_input_is_refused(fitted):
    name, model, _, _, _, query, _, _ = fitted
    short = ImputationQuery(values=query.values[:, :12], observed=query.observed[:, :12],
                            valid=query.valid[:, :12], meta=query.meta, resolution=120)
    with pytest.raises(ValueError, match="query profiles have 12 steps, the model was fitted on 24"):
        model.impute(short, 2, RunContext())
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        model.impute(query, 0, RunContext())
    with pytest.raises(RuntimeError, match="impute called before fit"):
        get_model(name).build("test").impute(query, 2, RunContext())


def test_parameters_are_checked():
    with pytest.raises(ParamError, match="d_model=30 must be divisible by n_heads=4"):
        SAITSImputer(d_model=30)
    with pytest.raises(ParamError, match="n_channels=30 must be divisible by n_heads=4"):
        CSDIImputer(n_channels=30)
    with pytest.raises(ParamError, match="patience must lie in"):
        BRITSImputer(epochs=5, patience=6)
    with pytest.raises(ParamError, match="schedule expects"):
        CSDIImputer(schedule="cosine")


def test_a_training_set_without_observations_is_a_fit_error():
    from bench.errors import ModelFitError

    train = daily_set(np.zeros((4, LENGTH), dtype=np.float32), mask=np.zeros((4, LENGTH), dtype=bool))
    with pytest.raises(ModelFitError, match="no training profile has an observed step"):
        SAITSImputer().fit(train, RunContext())


def test_a_missing_pypots_is_named(monkeypatch):
    for module in [m for m in sys.modules if m == "pypots" or m.startswith("pypots.")] + ["pypots"]:
        monkeypatch.setitem(sys.modules, module, None)  # None in sys.modules makes the import fail
    train, _, _ = _problem()
    for cls in (SAITSImputer, BRITSImputer, CSDIImputer):
        with pytest.raises(MissingExtraError, match=r"meterbench\[baselines\]"):
            cls(**get_model(cls.registered_name).config("test")).fit(train, RunContext())


def test_pypots_is_imported_only_inside_methods():
    """The registry imports every baseline module: one importing PyPOTS at the top would need the extra."""
    tree = ast.parse(Path(sys.modules[PyPOTSImputer.__module__].__file__).read_text())
    top = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = [alias.name for node in top for alias in node.names] + \
            [node.module or "" for node in top if isinstance(node, ast.ImportFrom)]
    assert not [n for n in names if n.split(".")[0] == "pypots"], names


def test_brits_trains_on_profiles_with_hidden_steps():
    """BRITS's objective has no masking of its own: it learns on a fixed random share of hidden steps."""
    from bench.context import RunContext
    from bench.registry import get_model

    model = get_model("brits").build("test")
    x = np.arange(2000, dtype=np.float32).reshape(40, 50, 1)
    hidden = np.isnan(model.training_input(x, RunContext(seed=0)))
    assert abs(hidden.mean() - 0.2) < 0.03
    again = np.isnan(model.training_input(x, RunContext(seed=0)))
    assert np.array_equal(hidden, again)
    assert not np.isnan(get_model("brits").build("test", {"train_missing": 0.0}).training_input(x, RunContext())).any()
    with pytest.raises(ParamError, match="train_missing"):
        get_model("brits").build("test", {"train_missing": 1.0})
