"""Speed of the metric layer, with the values it returns: the generation metric set under the bootstrap, each
metric alone, and the papers' own evaluation code on the same inputs.

    python -m bench.metric_speed                                  # 2000 x 1440 profiles, CPU, this machine's threads
    python -m bench.metric_speed --threads 1 \\
        --energydiff-src PATH --smartmeterfm-src PATH             # side by side with the papers' code, one thread
    python -m bench.metric_speed --baseline-ref REV               # the same bootstrap scored by an earlier revision
    python -m bench.metric_speed --device cuda --n 4000           # on a GPU, with the CPU's values beside it

Rows go to ``results/perf/metrics.csv`` and a table with the command to ``results/perf/metrics.md`` (both appended
per configuration: device, threads and size form the key, a rerun replaces its rows). Every time is the median of
``--repeats`` runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.seeds import Stream

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = REPO_ROOT / "results" / "perf"
SET_METRICS = ("MMD", "GFD", "KL", "WD", "KS")
"""The generation task's default metric set (the EnergyDiff paper's table)."""


def profiles(n: int, length: int, seed: int) -> np.ndarray:
    """The timed sets: :func:`bench.perf.toy_profiles` (smooth daily curves plus noise in [-1, 1], float32, the
    shape and scale of scaled load profiles) from this script's own stream."""
    from bench.perf import toy_profiles

    return toy_profiles(n, length, seed, stream=Stream.METRIC_SPEED_INPUTS)


def median_seconds(fn: Callable[[], object], repeats: int, device: str = "cpu") -> tuple[float, object]:
    """Median wall time of ``fn()`` over ``repeats`` runs after one warm-up run, and its last result."""
    import torch

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    result = fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def _set_calls(real: np.ndarray) -> dict:
    from metrics import METRICS, rbf_bandwidth

    bandwidth = rbf_bandwidth(real)
    return {name: (METRICS[name].fn, {"bandwidth": bandwidth} if name == "MMD" else {}) for name in SET_METRICS}


def measure_set(real: np.ndarray, pred: np.ndarray, *, device: str, repeats: int) -> list[dict]:
    """The five generation metrics with the task's bootstrap (10 repeats of half of each set), batched."""
    from metrics.bootstrap import bootstrap_set_metrics, summarise

    calls = _set_calls(real)
    seconds, values = median_seconds(
        lambda: bootstrap_set_metrics(calls, real, pred, n_repeats=10, frac=0.5, seed=0, device=device),
        repeats, device)
    row = {"measure": "set+bootstrap", "metric": "+".join(SET_METRICS), "implementation": "meterbench",
           "seconds": seconds}
    return [row] + [{"measure": "set+bootstrap value", "metric": name, "implementation": "meterbench",
                     "value": summarise(v)[0], "std": summarise(v)[1]} for name, v in values.items()]


BASELINE_SNIPPET = """
import json, sys, time
import numpy as np
from metrics import METRICS, bootstrap, rbf_bandwidth
real, pred = np.load(sys.argv[1]), np.load(sys.argv[2])
bw = rbf_bandwidth(real)
out = {}
for name in sys.argv[3].split(","):
    fn = METRICS[name].fn
    call = (lambda r, p, fn=fn: fn(r, p, bandwidth=bw)) if name == "MMD" else fn
    start = time.perf_counter()
    mean, std = bootstrap(call, real, pred, n_repeats=10, frac=0.5, seed=0)
    out[name] = [time.perf_counter() - start, mean, std]
print(json.dumps(out))
"""


def measure_baseline(ref: str, real: np.ndarray, pred: np.ndarray, threads: int | None) -> list[dict]:
    """The same bootstrap scored by the code of git revision ``ref`` (one metric at a time, as it did), in a
    subprocess on a checkout of that revision's ``metrics``, ``bench`` and ``baselines``."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", ref, "metrics", "bench", "baselines"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        np.save(Path(tmp) / "real.npy", real)
        np.save(Path(tmp) / "pred.npy", pred)
        env = {**os.environ, "PYTHONPATH": tmp, **_thread_env(threads)}
        done = subprocess.run([sys.executable, "-c", BASELINE_SNIPPET, str(Path(tmp) / "real.npy"),
                               str(Path(tmp) / "pred.npy"), ",".join(SET_METRICS)],
                              cwd=tmp, env=env, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    label = f"meterbench {ref}"
    rows = [{"measure": "set+bootstrap", "metric": "+".join(SET_METRICS), "implementation": label,
             "seconds": sum(v[0] for v in result.values())}]
    rows += [{"measure": "set+bootstrap value", "metric": name, "implementation": label, "value": v[1],
              "std": v[2], "seconds": v[0]} for name, v in result.items()]
    return rows


def _thread_env(threads: int | None) -> dict[str, str]:
    if threads is None:
        return {}
    return {k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


def single_metric_calls(real: np.ndarray, pred: np.ndarray) -> dict[str, Callable[[], float]]:
    """meterbench's single scores of the whole sets, named as the papers' functions they are compared with."""
    import metrics

    bandwidth = metrics.rbf_bandwidth(real)
    return {"MMD (EnergyDiff variant)": lambda: metrics.mmd_rbf_paper(real, pred),
            "MMD (unbiased)": lambda: metrics.mmd_rbf(real, pred, bandwidth=bandwidth),
            "MMD permutation p (1000)": lambda: metrics.mmd_p_value(real, pred, bandwidth=bandwidth),
            "GFD": lambda: metrics.frechet_distance(real, pred),
            "KL": lambda: metrics.kl_pooled(real, pred),
            "WD": lambda: metrics.wasserstein_pooled(real, pred),
            "KS": lambda: metrics.ks_pooled(real, pred),
            "set CRPS": lambda: metrics.crps_sets(real, pred)}


def papers_calls(real: np.ndarray, pred: np.ndarray, energydiff_src: str | None, smartmeterfm_src: str | None
                 ) -> dict[str, Callable[[], float]]:
    """The papers' evaluation functions on the same sets (float64 tensors, called as ``f(gen, real)``)."""
    import torch

    from bench.public_code import find_file, load_public_module

    gen_t, real_t = torch.from_numpy(pred.astype(np.float64)), torch.from_numpy(real.astype(np.float64))
    calls: dict[str, Callable[[], float]] = {}
    if energydiff_src:
        path = find_file(energydiff_src, "src/energydiff/utils/eval.py", "utils/eval.py", "eval.py")
        ed = load_public_module(path, "_energydiff_public_utils",
                                {"torchmetrics": {"Metric": object}, "easy_ml_config": {"BaseConfig": object}})
        mmd = ed.MkMMD(kernel_type="rbf", num_kernel=1, kernel_mul=2.0, coefficient="auto")
        calls.update({"MMD (EnergyDiff variant)": lambda: float(mmd(gen_t, real_t)),
                      "GFD": lambda: float(ed.calculate_frechet(gen_t, real_t)),
                      "KL": lambda: float(ed.kl_divergence(gen_t, real_t)),
                      "WD": lambda: float(ed.ws_distance(gen_t, real_t)),
                      "KS": lambda: float(ed.ks_test_d(gen_t, real_t))})
    if smartmeterfm_src:
        path = find_file(smartmeterfm_src, "src/smartmeterfm/utils/eval.py", "utils/eval.py", "eval.py")
        fm = load_public_module(path, "_smartmeterfm_public_utils")
        calls["set CRPS"] = lambda: float(fm.crps_empirical_vs_empirical(real_t, gen_t).mean())
    return calls


PAPERS_MEMORY_LIMIT = 20 * 2**30
"""Address-space limit of the process that times the papers' Fréchet distance: its ``scipy.linalg.sqrtm`` call
has been seen to grow past 24 GB on these inputs in some runs; the limit turns that into a failed measurement, not
a dead benchmark. (Only there: a limit on address space, not resident memory, also stops their set CRPS, whose
allocator reserves far more than it touches.)"""


def measure_single(real: np.ndarray, pred: np.ndarray, *, repeats: int, energydiff_src: str | None,
                   smartmeterfm_src: str | None, threads: int | None = None) -> list[dict]:
    """Each metric once on the whole sets: meterbench here and, where a checkout is given, the papers' code in a
    child process (same inputs and threads, memory-limited), metric by metric."""
    rows = []
    for name, fn in single_metric_calls(real, pred).items():
        print(f"  meterbench: {name}", file=sys.stderr, flush=True)
        seconds, value = median_seconds(fn, repeats)
        rows.append({"measure": "single", "metric": name, "implementation": "meterbench", "seconds": seconds,
                     "value": float(value)})
    if not (energydiff_src or smartmeterfm_src):
        return rows
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "real.npy", real)
        np.save(Path(tmp) / "pred.npy", pred)
        names = list(papers_calls(real[:2], pred[:2], energydiff_src, smartmeterfm_src))
        for name in names:
            print(f"  papers' code: {name}", file=sys.stderr, flush=True)
            args = [sys.executable, "-m", "bench.metric_speed", "--papers-one", name, "--inputs", tmp,
                    "--repeats", str(repeats)]
            args += ["--energydiff-src", energydiff_src] if energydiff_src else []
            args += ["--smartmeterfm-src", smartmeterfm_src] if smartmeterfm_src else []
            done = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True,
                                  env={**os.environ, **_thread_env(threads)},
                                  preexec_fn=_limit_memory if name == "GFD" else None)
            row = {"measure": "single", "metric": name, "implementation": "papers' code"}
            if done.returncode == 0:
                row.update(json.loads(done.stdout.strip().splitlines()[-1]))
            else:
                row.update(seconds=np.nan, value=np.nan, note=f"failed (exit {done.returncode}): "
                           + (done.stderr.strip().splitlines() or ["no message"])[-1][:200])
            rows.append(row)
    return rows


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (PAPERS_MEMORY_LIMIT, PAPERS_MEMORY_LIMIT))


def _papers_one(name: str, inputs: str, repeats: int, energydiff_src: str | None, smartmeterfm_src: str | None,
                threads: int | None) -> None:
    """Child-process side of :func:`measure_single`: time one of the papers' functions, print JSON."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    real, pred = np.load(Path(inputs) / "real.npy"), np.load(Path(inputs) / "pred.npy")
    fn = papers_calls(real, pred, energydiff_src, smartmeterfm_src)[name]
    seconds, value = median_seconds(fn, repeats)
    print(json.dumps({"seconds": seconds, "value": float(value)}))


def _markdown(rows: list[dict], header: dict) -> str:
    import pandas as pd

    lines = [f"## {header['device']}, {header['threads']} thread(s), {header['n']} x {header['length']} profiles",
             "", f"Command: `{header['command']}`  ", f"Machine: {header['machine']}", ""]
    frame = pd.DataFrame(rows)
    boot = frame[frame["measure"] == "set+bootstrap"]
    if len(boot):
        lines += ["Five generation metrics (MMD, GFD, KL, WD, KS), 10 bootstrap repeats of half of each set:", "",
                  "| implementation | seconds |", "|---|---|"]
        lines += [f"| {r.implementation} | {r.seconds:.3g} |" for r in boot.itertuples()]
        values = frame[frame["measure"] == "set+bootstrap value"]
        if values["implementation"].nunique() > 1:
            wide = values.pivot(index="metric", columns="implementation", values="value")
            lines += ["", "Bootstrap means of each implementation (same draws):", "",
                      wide.to_markdown(floatfmt=".10g")]
        lines.append("")
    single = frame[frame["measure"] == "single"]
    if len(single):
        wide = single.pivot(index="metric", columns="implementation", values=["seconds", "value"])
        lines += ["Each metric once on the whole sets (seconds; value):", "",
                  "| metric | meterbench s | papers' code s | papers' / meterbench | meterbench value | "
                  "papers' value |", "|---|---|---|---|---|---|"]
        for metric in dict.fromkeys(single["metric"]):
            ours = wide.loc[metric, ("seconds", "meterbench")]
            theirs = wide.loc[metric].get(("seconds", "papers' code"), np.nan)
            v_ours = wide.loc[metric, ("value", "meterbench")]
            v_theirs = wide.loc[metric].get(("value", "papers' code"), np.nan)
            ratio = f"{theirs / ours:.2f}x" if np.isfinite(theirs) else ""
            lines.append(f"| {metric} | {ours:.3g} | {'' if not np.isfinite(theirs) else f'{theirs:.3g}'} | "
                         f"{ratio} | {v_ours:.10g} | {'' if not np.isfinite(v_theirs) else f'{v_theirs:.10g}'} |")
        if "note" in single:
            failed = single[single["note"].fillna("").astype(str).str.len() > 0]
            lines += [f"- {r.implementation}, {r.metric}: {r.note}" for r in failed.itertuples()]
        lines.append("")
    agreement = frame[frame["measure"] == "cpu-gpu agreement"]
    if len(agreement):
        lines += ["CPU and GPU bootstrap values (same draws):", "", "| metric | CPU | GPU | relative difference |",
                  "|---|---|---|---|"]
        lines += [f"| {r.metric} | {r.cpu:.12g} | {r.gpu:.12g} | {r.rel_diff:.2g} |" for r in agreement.itertuples()]
        lines.append("")
    return "\n".join(lines)


def _write(rows: list[dict], header: dict, out_dir: Path) -> None:
    import pandas as pd

    out_dir.mkdir(parents=True, exist_ok=True)
    key = {k: header[k] for k in ("device", "threads", "n", "length")}
    frame = pd.DataFrame([{**key, **r} for r in rows])
    csv = out_dir / "metrics.csv"
    if csv.exists():
        old = pd.read_csv(csv)
        same = np.ones(len(old), dtype=bool)
        for k, v in key.items():
            same &= old[k].astype(str).to_numpy() == str(v)
        frame = pd.concat([old[~same], frame], ignore_index=True)
    frame.to_csv(csv, index=False)
    sections = {}
    md = out_dir / "metrics.md"
    if md.exists():
        for block in md.read_text().split("\n## ")[1:]:
            sections[block.split("\n", 1)[0]] = "## " + block.rstrip() + "\n"
    section = _markdown(rows, header)
    sections[section.split("\n", 1)[0][3:]] = section
    md.write_text("# Metric speed\n\nWritten by `bench/metric_speed.py`; one section per device, threads and size.\n\n"
                  + "\n".join(sections.values()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="profiles per set")
    parser.add_argument("--length", type=int, default=1440, help="time steps per profile (1440 = 1-minute days)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's default)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--energydiff-src", help="checkout of sentient-codebot/EnergyDiff-pub")
    parser.add_argument("--smartmeterfm-src", help="checkout of sentient-codebot/SmartMeterFM")
    parser.add_argument("--baseline-ref", help="git revision whose bootstrap to time on the same inputs")
    parser.add_argument("--no-single", action="store_true", help="skip the one-metric-at-a-time measurements")
    parser.add_argument("--out", default=str(OUT_DIR))
    parser.add_argument("--papers-one", help=argparse.SUPPRESS)  # child process of measure_single
    parser.add_argument("--inputs", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.papers_one:
        _papers_one(args.papers_one, args.inputs, args.repeats, args.energydiff_src, args.smartmeterfm_src,
                    args.threads)
        return

    import torch

    from bench.provenance import environment

    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    real = profiles(args.n, args.length, seed=1)
    pred = profiles(args.n, args.length, seed=2)
    env = environment()
    header = {"device": args.device, "threads": torch.get_num_threads(), "n": args.n, "length": args.length,
              "command": "python -m bench.metric_speed " + shlex.join(argv if argv is not None else sys.argv[1:]),
              "machine": f"{env.get('cpu_count')} CPUs, {env.get('cuda') or 'no GPU'}, "
                         f"torch {torch.__version__}"}
    rows = measure_set(real, pred, device=args.device, repeats=args.repeats)
    if args.device != "cpu":
        cpu = measure_set(real, pred, device="cpu", repeats=1)
        for on_cpu, on_gpu in zip(cpu[1:], rows[1:]):
            rows.append({"measure": "cpu-gpu agreement", "metric": on_cpu["metric"], "cpu": on_cpu["value"],
                         "gpu": on_gpu["value"],
                         "rel_diff": abs(on_gpu["value"] - on_cpu["value"]) / max(abs(on_cpu["value"]), 1e-300)})
    if args.baseline_ref:
        rows += measure_baseline(args.baseline_ref, real, pred, args.threads)
    if not args.no_single and args.device == "cpu":
        rows += measure_single(real, pred, repeats=args.repeats, energydiff_src=args.energydiff_src,
                               smartmeterfm_src=args.smartmeterfm_src, threads=args.threads)
    _write(rows, header, Path(args.out))
    print(_markdown(rows, header))


if __name__ == "__main__":
    main()
