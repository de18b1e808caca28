"""Speed and memory of the deep models: training steps/s, samples/s and peak memory per resolution.

    python -m bench.perf                                  # quick configs, CPU, 60/30/15/1-minute profiles
    python -m bench.perf --device cuda --profile paper    # on a GPU
    python -m bench.perf --folding                        # also EnergyDiff with and without folding (Table IX)

Every measurement runs in its own process so that its peak memory is its own. Results go to
``results/perf/`` (``perf.csv``, ``perf.md``, ``perf.png``, ``environment.json``) and are printed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench import seeds
from bench.seeds import Stream

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = ("energydiff", "vae", "wgan-gp")
DEFAULT_RESOLUTIONS = (60, 30, 15, 1)
FOLDING_FACTORS = (1, 8)  # no folding vs the paper's factor, as in the EnergyDiff paper's Table IX


def toy_profiles(n: int, length: int, seed: int = 0) -> np.ndarray:
    """Smooth daily curves with random amplitude and phase, in [-1, 1]: a stand-in of the right shape."""
    rng = seeds.rng(seed, Stream.PERF_INPUTS)
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


def _child(args: list[str]) -> dict:
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

    import pandas as pd
    from tabulate import tabulate

    from bench.provenance import environment

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
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
