"""Speed and memory of the deep models: training steps/s, samples/s and peak memory per resolution.

    python -m bench.perf                                  # quick configs, CPU, 60/30/15/1-minute profiles
    python -m bench.perf --device cuda --profile paper    # on a GPU
    python -m bench.perf --folding                        # also EnergyDiff with and without folding (Table IX)
    python -m bench.perf --train-step --energydiff-src DIR    # EnergyDiff training step vs the public code

Every measurement runs in its own process so that its peak memory is its own. Results go to
``results/perf/`` (``perf.csv``, ``perf.md``, ``perf.png``, ``environment.json``) and are printed.

``--train-step`` times one EnergyDiff training step (minibatch draw, noising, forward, v-prediction loss,
backward, gradient clipping, AdamW step, EMA update: the body of :meth:`bench.train.Trainer.fit`) at the sizes
of :data:`TRAIN_STEP_SIZES`, as the median of ``--train-step-repeats`` steps after ``--train-step-warmup``
unmeasured ones on ``--threads`` torch threads, and writes ``train_step.csv`` and ``train_step.md``. With
``--energydiff-src`` (a checkout of the public EnergyDiff code, or its ``src/energydiff/diffusion`` folder) it
also builds the public ``Transformer1D`` at the same size and times its training step (see
:func:`public_train_step`); the two alternate step by step, so that both see the same machine load, and the
table gives the ratio of the medians and the median of the step-by-step ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from bench import seeds
from bench.seeds import Stream

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = ("energydiff", "vae", "wgan-gp")
DEFAULT_RESOLUTIONS = (60, 30, 15, 1)
FOLDING_FACTORS = (1, 8)  # no folding vs the paper's factor, as in the EnergyDiff paper's Table IX
# Training-step comparison sizes: the quick profile at T=48 (fold 4 -> 12 tokens) and a 1-minute day folded
# by 8 (180 tokens) with a wider, deeper network (d_ff = 4 d_model, heads of 32 channels as in the public
# code's 256-wide configuration).
TRAIN_STEP_SIZES = {
    "quick": {"T": 48, "fold": 4, "d_model": 64, "n_layers": 3, "n_heads": 4, "d_ff": 256, "batch": 256},
    "T1440": {"T": 1440, "fold": 8, "d_model": 256, "n_layers": 6, "n_heads": 8, "d_ff": 1024, "batch": 64},
}
TRAIN_STEP_DATA = 1024  # toy profiles the minibatches are drawn from
PUBLIC_EMA_EVERY = 10  # the public trainer's default EMA period (ema_update_every)


def toy_profiles(n: int, length: int, seed: int = 0, stream: Stream = Stream.PERF_INPUTS) -> np.ndarray:
    """Smooth daily curves with random amplitude and phase, in [-1, 1]: a stand-in of the right shape, drawn
    from ``stream`` of ``seed`` (each measurement script has its own)."""
    rng = seeds.rng(seed, stream)
    t = np.linspace(0, 2 * np.pi, length, endpoint=False)
    amp = rng.uniform(0.2, 0.8, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    x = amp * np.sin(t + phase) + 0.05 * rng.standard_normal((n, length))
    return np.clip(x, -1, 1).astype(np.float32)


def _peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _steady_steps_per_s(result) -> float | None:
    """Training speed between the first and the last logged step (the loop logs its elapsed time every 50
    steps), which leaves out start-up, first-step allocation and compilation; None for shorter runs."""
    history = [h for h in getattr(result, "history", []) if "elapsed" in h]
    if len(history) < 2 or history[-1]["elapsed"] <= history[0]["elapsed"]:
        return None
    return (history[-1]["step"] - history[0]["step"]) / (history[-1]["elapsed"] - history[0]["elapsed"])


def measure_one(model: str, resolution: int, *, profile: str, device: str, steps: int, n_train: int,
                n_samples: int, overrides: dict) -> dict:
    """Fit ``model`` for ``steps`` steps on toy profiles at ``resolution`` and draw ``n_samples``."""
    import pandas as pd

    from bench.context import RunContext
    from bench.data.profileset import ProfileSet
    from bench.registry import get_model

    length = 1440 // resolution
    values = toy_profiles(n_train, length)
    meta = pd.DataFrame({"series_id": "toy", "start": pd.Timestamp("2020-01-01"), "month": 1, "weekday": 2,
                         "days": 1, "category": "all"}, index=range(n_train))
    train = ProfileSet(values, np.ones_like(values, bool), meta, resolution, "day", name="toy")
    spec = get_model(model)
    # Every deep model counts its budget in ``train_steps``; epoch-based paper configs are pinned to steps here.
    pinned = {"train_steps": steps, **({"epochs": None} if "epochs" in spec.config(profile) else {})}
    built = spec.build(profile, {**pinned, **overrides})
    ctx = RunContext(seed=0, device=device, profile=profile)
    rss_before = _peak_memory_mb("cpu")
    t0 = time.perf_counter()
    built.fit(train, ctx)
    fit_s = time.perf_counter() - t0
    steady = _steady_steps_per_s(getattr(built, "train_result_", None))
    t0 = time.perf_counter()
    samples = built.sample(n_samples, None, ctx)
    sample_s = time.perf_counter() - t0
    if samples.shape != (n_samples, length):
        raise RuntimeError(f"{model} returned {samples.shape}")
    return {"model": model, "resolution": resolution, "T": length, "device": device, "profile": profile,
            "train_steps": steps, "train_steps_per_s": steady or steps / fit_s, "fit_seconds": fit_s,
            "steady_state": steady is not None,
            "samples_per_s": n_samples / sample_s, "sample_seconds": sample_s,
            "peak_memory_mb": _peak_memory_mb(device),
            "cpu_rss_before_fit_mb": rss_before, **{f"cfg_{k}": v for k, v in overrides.items()}}


def measure_folding(*, device: str, batch: int, length: int, folds: tuple[int, ...], repeats: int) -> list[dict]:
    """Forward and backward time and peak memory of the paper-size EnergyDiff network at ``length`` steps,
    per folding factor (the EnergyDiff paper's Table IX)."""
    import torch

    from bench.registry import get_model

    spec = get_model("energydiff")
    rows = []
    for fold in folds:
        torch.manual_seed(seeds.int_seed(0, Stream.PERF_INPUTS, 1))
        model = spec.build("paper", {"fold": fold})
        net = model.build_network(length, 1440 // length).to(device)
        x = torch.randn(batch, length, device=device)
        s = torch.randint(0, 1000, (batch,), device=device).float()
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        fwd, bwd = [], []
        for _ in range(repeats + 1):  # the first round warms up and is not counted
            t0 = time.perf_counter()
            out = net(x, s)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t1 = time.perf_counter()
            out.float().pow(2).mean().backward()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t2 = time.perf_counter()
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
            net.zero_grad(set_to_none=True)
        fwd, bwd = np.array(fwd[1:]) * 1e3, np.array(bwd[1:]) * 1e3
        rows.append({"fold": fold, "T": length, "batch": batch, "device": device,
                     "forward_ms": fwd.mean(), "forward_ms_std": fwd.std(), "backward_ms": bwd.mean(),
                     "backward_ms_std": bwd.std(), "total_ms": (fwd + bwd).mean(),
                     "peak_memory_mb": _peak_memory_mb(device)})
    return rows


def meterbench_train_step(size: dict, *, seed: int = 0) -> tuple[Callable[[], float], int]:
    """A closure running one training step of our EnergyDiff at ``size`` and returning its loss, and the
    network's parameter count.

    The step is the body of :meth:`bench.train.Trainer.fit` for this model: draw a minibatch with the loop's
    generator, :meth:`EnergyDiff.training_step` (noising, forward, loss, backward, clipping, AdamW), then the
    EMA update.
    """
    from bench.context import RunContext
    from bench.registry import get_model
    from bench.train import Trainer

    overrides = {"fold": size["fold"], "d_model": size["d_model"], "n_layers": size["n_layers"],
                 "n_heads": size["n_heads"], "d_ff": size["d_ff"], "batch_size": size["batch"], "dropout": 0.0}
    model = get_model("energydiff").build("quick", overrides)
    ctx = RunContext(seed=seed, device="cpu")
    net = model.build_network(size["T"], 1440 // size["T"])
    trainer = Trainer({"net": net}, None, model.train_config, ctx, ema=("net",))
    data = _tensor(toy_profiles(TRAIN_STEP_DATA, size["T"], seed))
    net.train()

    def step() -> float:
        idx = _draw(len(data), size["batch"], trainer.generator)
        logs = model.training_step(data[idx], trainer.step_count, trainer)
        trainer.ema["net"].update(net, trainer.step_count)
        trainer.step_count += 1
        return float(logs["loss"])

    return step, sum(p.numel() for p in net.parameters())


def load_public_transformer(src: str | Path) -> type:
    """The public EnergyDiff code's ``Transformer1D`` class, imported from a checkout at ``src``.

    ``src`` is the checkout's root, its ``src/energydiff/diffusion`` folder or ``models_1d.py`` itself. Only
    that module and the small siblings it imports are loaded (under a private package name), not the
    package's ``__init__``, which pulls in training and logging dependencies a timing does not need.

    Raises:
        FileNotFoundError: no ``models_1d.py`` at or under ``src``.
    """
    from bench.public_code import find_file, load_public_module

    path = find_file(src, "models_1d.py", "src/energydiff/diffusion/models_1d.py")
    if path.name != "models_1d.py":
        raise FileNotFoundError(f"no models_1d.py of the public EnergyDiff code at or under {src}")
    # relative imports (.typing, .utils, .version) resolve beside it
    return load_public_module(path, "_energydiff_public").Transformer1D


def public_train_step(transformer_cls: type, size: dict, *, seed: int = 0) -> tuple[Callable[[], float], int]:
    """A closure running one training step of the public ``Transformer1D`` at ``size``, and its parameter count.

    The network is built unconditional with a v-prediction output of ``fold`` channels (``learn_variance``
    off), dropout 0, on patchified input ``[B, fold, T / fold]`` as the public data pipeline feeds it. The
    step is a lean version of the public trainer's: uniform diffusion steps, forward noising with our cosine
    schedule, forward, v-prediction MSE, backward, gradient clipping at 1, ``torch.optim.AdamW`` with its
    defaults, and an EMA update (one per-tensor lerp per parameter) every :data:`PUBLIC_EMA_EVERY` steps.
    It leaves out the public loss's extra terms (the FFT loss, the variational bound), so it is a lower bound
    of the public step's time.
    """
    import torch

    from baselines.diffusion import cosine_schedule

    torch.manual_seed(seeds.int_seed(seed, Stream.PERF_INPUTS, 2))
    net = transformer_cls(dim_base=size["d_model"], num_in_channel=size["fold"], num_attn_head=size["n_heads"],
                          num_decoder_layer=size["n_layers"], dim_feedforward=size["d_ff"], dropout=0.0)
    net.train()
    params = list(net.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4)
    shadow = [p.detach().clone() for p in params]
    generator = torch.Generator().manual_seed(seeds.int_seed(seed, Stream.PERF_INPUTS, 3))
    b, length, r = size["batch"], size["T"], size["fold"]
    data = _tensor(toy_profiles(TRAIN_STEP_DATA, length, seed)).view(-1, length // r, r).transpose(1, 2)
    data = data.contiguous()
    schedule = cosine_schedule(1000)
    steps = np.arange(schedule.steps)
    alpha = torch.as_tensor(schedule.alpha(steps), dtype=torch.float32)
    sigma = torch.as_tensor(schedule.sigma(steps), dtype=torch.float32)
    count = [0]

    def step() -> float:
        x0 = data[_draw(len(data), b, generator)]
        t = torch.randint(0, schedule.steps, (b,), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        a, s = alpha[t].view(b, 1, 1), sigma[t].view(b, 1, 1)
        pred = net(a * x0 + s * noise, t.float())
        loss = torch.nn.functional.mse_loss(pred, a * noise - s * x0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad()
        count[0] += 1
        if count[0] % PUBLIC_EMA_EVERY == 0:
            with torch.no_grad():
                for e, p in zip(shadow, params):
                    e.lerp_(p, 1 - 0.995)
        return float(loss.detach())

    return step, sum(p.numel() for p in params)


def _tensor(values: np.ndarray):
    # ``values`` as a CPU float32 torch tensor
    import torch

    return torch.as_tensor(np.asarray(values, dtype=np.float32))


def _draw(high: int, n: int, generator):
    # ``n`` minibatch indices in ``[0, high)`` from ``generator``, as the training loop draws them
    import torch

    return torch.randint(0, high, (n,), generator=generator)


def interleaved_medians(steps: dict[str, Callable[[], float]], *, repeats: int, warmup: int) -> dict:
    """Time the ``steps`` closures in turn, round after round (A B A B ...), after ``warmup`` unmeasured rounds.

    Returns ``{name: list of seconds}`` with ``repeats`` entries each; alternating gives every closure the
    same share of whatever else is running on the machine.
    """
    for _ in range(warmup):
        for fn in steps.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def measure_train_step(size_name: str, *, threads: int, repeats: int, warmup: int,
                       energydiff_src: str | None = None) -> list[dict]:
    """One row per implementation with the training step's median, min and max milliseconds at
    ``TRAIN_STEP_SIZES[size_name]``; with ``energydiff_src`` the meterbench row also holds its ratios to the
    public code (ratio of medians, and the median of the ratios of steps timed back to back)."""
    import torch

    size = TRAIN_STEP_SIZES[size_name]
    load = os.getloadavg()[0]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        closures, params = {}, {}
        closures["meterbench"], params["meterbench"] = meterbench_train_step(size)
        if energydiff_src:
            public = load_public_transformer(energydiff_src)
            closures["public"], params["public"] = public_train_step(public, size)
        times = interleaved_medians(closures, repeats=repeats, warmup=warmup)
    finally:
        torch.set_num_threads(before)
    rows = []
    for name, ts in times.items():
        ms = np.array(ts) * 1e3
        rows.append({"size": size_name, "implementation": name, **size, "tokens": size["T"] // size["fold"],
                     "parameters": params[name], "threads": threads, "steps_timed": repeats,
                     "median_ms": float(np.median(ms)), "min_ms": float(ms.min()), "max_ms": float(ms.max()),
                     "load_1min": load})
    if "public" in times:
        ours, theirs = np.array(times["meterbench"]), np.array(times["public"])
        rows[0]["ratio_of_medians"] = float(np.median(ours) / np.median(theirs))
        rows[0]["median_paired_ratio"] = float(statistics.median(ours / theirs))
    return rows


def train_step_report(rows: list[dict], out: Path, command: str, *, threads: int, repeats: int,
                      warmup: int) -> str:
    """Write the :func:`measure_train_step` rows to ``train_step.csv`` and ``train_step.md`` under ``out``,
    the markdown naming the ``command`` that produced them; returns the markdown."""
    import pandas as pd
    from tabulate import tabulate

    frame = pd.DataFrame(rows)
    frame.to_csv(out / "train_step.csv", index=False)
    cols = [c for c in ("size", "implementation", "T", "fold", "tokens", "d_model", "n_layers", "n_heads", "d_ff",
                        "batch", "parameters", "median_ms", "min_ms", "max_ms", "ratio_of_medians",
                        "median_paired_ratio", "load_1min", "error") if c in frame.columns]
    import torch

    text = ["# EnergyDiff training step: meterbench vs the public code", "",
            f"Command: `{command}`", "",
            f"One training step (minibatch, noising, forward, v-prediction MSE, backward, gradient clipping, "
            f"AdamW, EMA) on {threads} CPU threads: median of {repeats} steps after {warmup} warm-up steps, the "
            f"implementations alternating step by step (torch {torch.__version__}, {os.cpu_count()} CPUs; "
            f"`load_1min` is the machine's load average when the size started: other processes share the "
            f"cores, so compare ratios, not absolute times). Ratios are meterbench / public (below 1: "
            f"meterbench is faster). The public step is the public `Transformer1D` (unconditional, dropout 0) "
            f"with a lean loop (MSE only, torch AdamW defaults, EMA every {PUBLIC_EMA_EVERY} steps), a lower "
            f"bound of the public trainer's step. The public code: "
            f"https://github.com/sentient-codebot/EnergyDiff-pub (`--energydiff-src` names a checkout).", "",
            tabulate(frame[cols], headers="keys", tablefmt="github", showindex=False, floatfmt=".4g"), ""]
    (out / "train_step.md").write_text("\n".join(text))
    return "\n".join(text)


def _child(args: list[str]) -> dict | list:
    out = subprocess.run([sys.executable, "-m", "bench.perf", *args], capture_output=True, text=True,
                         cwd=REPO_ROOT)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--resolutions", default=",".join(map(str, DEFAULT_RESOLUTIONS)))
    parser.add_argument("--profile", default="quick", choices=("quick", "paper"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20, help="training steps timed per measurement")
    parser.add_argument("--n-train", type=int, default=256)
    parser.add_argument("--n-samples", type=int, default=128)
    parser.add_argument("--folding", action="store_true", help="also measure EnergyDiff with/without folding")
    parser.add_argument("--folding-batch", type=int, default=16)
    parser.add_argument("--folding-repeats", type=int, default=5)
    parser.add_argument("--out", default=str(REPO_ROOT / "results" / "perf"))
    parser.add_argument("--set", action="append", default=[], metavar="MODEL.PARAM=VALUE",
                        help="override a model's config (repeatable), as in run_bench.py")
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "RES"), help=argparse.SUPPRESS)
    parser.add_argument("--folding-only", type=int, metavar="FOLD", help=argparse.SUPPRESS)
    parser.add_argument("--train-step", action="store_true",
                        help="time EnergyDiff's training step (and the public code's, with --energydiff-src) only")
    parser.add_argument("--energydiff-src", metavar="DIR",
                        help="a checkout of the public EnergyDiff code to compare the training step with")
    parser.add_argument("--train-step-sizes", default=",".join(TRAIN_STEP_SIZES),
                        help=f"sizes to time, of {', '.join(TRAIN_STEP_SIZES)}")
    parser.add_argument("--train-step-repeats", type=int, default=20, help="timed steps per implementation")
    parser.add_argument("--train-step-warmup", type=int, default=3, help="unmeasured steps first")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for --train-step")
    parser.add_argument("--train-step-only", metavar="SIZE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from bench.suite import parse_model_setting

    settings = [parse_model_setting(text) for text in args.set]

    if args.one:
        overrides = {param: value for model, param, value in settings if model == args.one[0]}
        row = measure_one(args.one[0], int(args.one[1]), profile=args.profile, device=args.device,
                          steps=args.steps, n_train=args.n_train, n_samples=args.n_samples, overrides=overrides)
        print(json.dumps(row))
        return 0
    if args.folding_only is not None:
        rows = measure_folding(device=args.device, batch=args.folding_batch, length=1440,
                               folds=(args.folding_only,), repeats=args.folding_repeats)
        print(json.dumps(rows[0]))
        return 0

    if args.train_step_only:
        rows = measure_train_step(args.train_step_only, threads=args.threads, repeats=args.train_step_repeats,
                                  warmup=args.train_step_warmup, energydiff_src=args.energydiff_src)
        print(json.dumps(rows))
        return 0

    import pandas as pd
    from tabulate import tabulate

    from bench.provenance import environment

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.train_step:
        rows = []
        for name in args.train_step_sizes.split(","):
            if name not in TRAIN_STEP_SIZES:
                parser.error(f"unknown size {name!r}; choose from {', '.join(TRAIN_STEP_SIZES)}")
            print(f"timing the training step at size {name} ...", file=sys.stderr, flush=True)
            # one process per size, so that a size's allocations do not slow the next
            extra = ["--energydiff-src", args.energydiff_src] if args.energydiff_src else []
            result = _child(["--train-step-only", name, "--threads", str(args.threads), "--train-step-repeats",
                             str(args.train_step_repeats), "--train-step-warmup", str(args.train_step_warmup),
                             *extra])
            rows += result if isinstance(result, list) else [{"size": name, **result}]
        command = f"python -m bench.perf {' '.join(argv if argv is not None else sys.argv[1:])}"
        print(train_step_report(rows, out, command, threads=args.threads, repeats=args.train_step_repeats,
                                warmup=args.train_step_warmup))
        return 0
    common = ["--profile", args.profile, "--device", args.device, "--steps", str(args.steps), "--n-train",
              str(args.n_train), "--n-samples", str(args.n_samples), *(f"--set={t}" for t in args.set)]
    rows = []
    for model in args.models.split(","):
        for res in (int(r) for r in args.resolutions.split(",")):
            print(f"measuring {model} @ {res} min ...", file=sys.stderr, flush=True)
            row = _child(["--one", model, str(res), *common])
            rows.append({"model": model, "resolution": res, **row})
    frame = pd.DataFrame(rows)
    frame.to_csv(out / "perf.csv", index=False)
    cols = [c for c in ("model", "resolution", "T", "train_steps_per_s", "samples_per_s", "peak_memory_mb",
                        "error") if c in frame.columns]
    text = [f"# Speed and memory ({args.profile} configs, {args.device})", "",
            f"Command: `python -m bench.perf {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
            tabulate(frame[cols], headers="keys", tablefmt="github", showindex=False, floatfmt=".4g"), ""]
    if args.folding:
        # one process per factor, so that each peak memory is its own
        folding = [{"fold": fold, **_child(["--folding-only", str(fold), "--device", args.device,
                                            "--folding-batch", str(args.folding_batch),
                                            "--folding-repeats", str(args.folding_repeats)])}
                   for fold in FOLDING_FACTORS]
        fold_frame = pd.DataFrame(folding)
        fold_frame.to_csv(out / "folding.csv", index=False)
        text += [f"## Folding (EnergyDiff paper network, T=1440, batch {args.folding_batch}; "
                 f"as the EnergyDiff paper's Table IX)", "",
                 tabulate(fold_frame, headers="keys", tablefmt="github", showindex=False, floatfmt=".4g"), ""]
    (out / "perf.md").write_text("\n".join(text))
    with open(out / "environment.json", "w") as fh:
        json.dump(environment(), fh, indent=1, sort_keys=True, default=str)
    _plot(frame, out / "perf.png")
    print("\n".join(text))
    return 0


def _plot(frame, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if "train_steps_per_s" not in frame.columns:
        return
    fig = Figure(figsize=(10, 3.5), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, col, label in zip(fig.subplots(1, 3), ("train_steps_per_s", "samples_per_s", "peak_memory_mb"),
                              ("training steps / s", "samples / s", "peak memory (MiB)")):
        for model, group in frame.dropna(subset=[col]).groupby("model"):
            ax.plot(group["T"], group[col], marker="o", label=model)
        ax.set_xscale("log")
        ax.set_xlabel("time steps per profile")
        ax.set_ylabel(label)
    fig.axes[0].legend()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
