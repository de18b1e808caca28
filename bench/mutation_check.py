"""Planted-bug check: does the test suite catch the mistakes that matter in a benchmark?

Each :class:`Mutant` replaces one exact piece of source text (a flipped goal of "better", a p-value tie
rule, a removed clip, a metric mapped to another function, a changed quantile method, a moved MAPE boundary,
...) in a scratch copy of the repository and runs the test files that should notice. A mutant is *killed*
when those tests fail, *survives* when they pass. The check writes the table to ``results/mutation/``:

    python -m bench.mutation_check              # every mutant (a few minutes on 2 cores)
    python -m bench.mutation_check --only kl    # the mutants whose name contains "kl"

A mutant whose text is no longer in its file is reported as ``stale`` (the code moved: update the list), and
counts as a failure of the check, so the list cannot silently rot.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    """One planted bug: replace ``old`` (which must occur exactly once in ``path``) by ``new``."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    why: str


def _m(name: str, path: str, old: str, new: str, tests: str, why: str) -> Mutant:
    return Mutant(name, path, old, new, tuple(tests.split()), why)


METRIC_TESTS = ("tests/test_metrics_distribution.py tests/test_metrics_marginal.py tests/test_metrics_sets.py tests/test_metrics_probabilistic.py tests/test_metrics_point_classification.py tests/test_metrics_bootstrap_registry.py tests/test_metrics_auroc.py tests/test_metrics_robustness.py tests/test_paper_fixtures.py")
REPORT_TESTS = "tests/test_tie_rule.py tests/test_report.py"
PROTOCOL_TESTS = "tests/test_protocol.py tests/test_data_pipeline.py"

MUTANTS: tuple[Mutant, ...] = (
    # metrics: goals, registry mapping, estimator conventions of the papers' code, clips, robustness
    _m('goal MMD flipped', 'metrics/registry.py',
       'Metric("MMD", distribution.mmd_rbf, "lower",',
       'Metric("MMD", distribution.mmd_rbf, "higher",',
       METRIC_TESTS, "metric layer"),
    _m('goal F1 flipped', 'metrics/registry.py',
       'Metric("F1", classification.f1, "higher",',
       'Metric("F1", classification.f1, "lower",',
       METRIC_TESTS, "metric layer"),
    _m('goal MMD_p flipped', 'metrics/registry.py',
       'Metric("MMD_p", distribution.mmd_p_value, "higher",',
       'Metric("MMD_p", distribution.mmd_p_value, "lower",',
       METRIC_TESTS, "metric layer"),
    _m('MAE mapped to rmse', 'metrics/registry.py',
       'Metric("MAE", point.mae,',
       'Metric("MAE", point.rmse,',
       METRIC_TESTS, "metric layer"),
    _m('KS mapped to ks_per_step', 'metrics/registry.py',
       'Metric("KS", marginal.ks_pooled,',
       'Metric("KS", marginal.ks_per_step,',
       METRIC_TESTS, "metric layer"),
    _m('Precision mapped to recall', 'metrics/registry.py',
       'Metric("Precision", classification.precision,',
       'Metric("Precision", classification.recall,',
       METRIC_TESTS, "metric layer"),
    _m('p-value >= to >', 'metrics/distribution.py',
       'np.count_nonzero(null >= statistic)',
       'np.count_nonzero(null > statistic)',
       METRIC_TESTS, "metric layer"),
    _m('clip removed: squared_distances', 'metrics/sets.py',
       '    d.clamp_(min=0.0)\n',
       '',
       METRIC_TESTS, "metric layer"),
    _m('clip removed: _psd_sqrt', 'metrics/sets.py',
       'w.clamp(min=0.0).sqrt()',
       'w.sqrt()',
       METRIC_TESTS, "metric layer"),
    _m('clip removed: eigvalsh', 'metrics/sets.py',
       'torch.linalg.eigvalsh(middle).clamp(min=0.0).sqrt().sum(-1)',
       'torch.linalg.eigvalsh(middle).sqrt().sum(-1)',
       METRIC_TESTS, "metric layer"),
    _m('clip removed: frechet result', 'metrics/sets.py',
       'return check_finite(fd, "the Fréchet distance").clamp(min=0.0)',
       'return check_finite(fd, "the Fréchet distance")',
       METRIC_TESTS, "metric layer"),
    _m('clip removed: crps_between_ensembles', 'metrics/probabilistic.py',
       '    return np.maximum(out, 0.0)\n',
       '    return out\n',
       METRIC_TESTS, "metric layer"),
    _m('quantile method nearest', 'metrics/probabilistic.py',
       'method="linear")',
       'method="nearest")',
       METRIC_TESTS, "metric layer"),
    _m('quantile method hazen', 'metrics/probabilistic.py',
       'method="linear")',
       'method="hazen")',
       METRIC_TESTS, "metric layer"),
    _m('quantile method midpoint', 'metrics/probabilistic.py',
       'method="linear")',
       'method="midpoint")',
       METRIC_TESTS, "metric layer"),
    _m('MAPE boundary moved', 'metrics/point.py',
       'keep = (np.abs(real) >= eps)',
       'keep = (np.abs(real) > eps)',
       METRIC_TESTS, "metric layer"),
    _m('bootstrap ddof 0', 'metrics/bootstrap.py',
       'BOOTSTRAP_DDOF = 1',
       'BOOTSTRAP_DDOF = 0',
       METRIC_TESTS, "metric layer"),
    _m('bandwidth ddof 0', 'metrics/distribution.py',
       'np.var(real, axis=0, ddof=1)',
       'np.var(real, axis=0, ddof=0)',
       METRIC_TESTS, "metric layer"),
    _m('frechet cov ddof 0', 'metrics/sets.py',
       'cov = centred.transpose(1, 2) @ centred / (rows.shape[1] - 1)',
       'cov = centred.transpose(1, 2) @ centred / rows.shape[1]',
       METRIC_TESTS, "metric layer"),
    _m('KL 200 bins (201 edges)', 'metrics/sets.py',
       'KL_N_EDGES = 200',
       'KL_N_EDGES = 201',
       METRIC_TESTS, "metric layer"),
    _m('KL n_edges+1 edges', 'metrics/sets.py',
       'edges = _numpy_linspace(lo, hi, n_edges)',
       'edges = _numpy_linspace(lo, hi, n_edges + 1)',
       METRIC_TESTS, "metric layer"),
    _m('KL goal swapped', 'metrics/sets.py',
       'terms = torch.where(keep, p * torch.log(torch.where(keep, p / q, torch.ones_like(p))), zero)',
       'terms = torch.where(keep, q * torch.log(torch.where(keep, q / p, torch.ones_like(p))), zero)',
       METRIC_TESTS, "metric layer"),
    _m('MMD_paper bandwidth pooled', 'metrics/sets.py',
       '            bandwidth = rbf_bandwidth_of(self.joint[b])\n',
       '            bandwidth = rbf_bandwidth_of(self.joint[torch.cat([a, b])])\n',
       METRIC_TESTS, "metric layer"),
    _m('MMD_paper bandwidth from gen', 'metrics/sets.py',
       '            bandwidth = rbf_bandwidth_of(self.joint[b])\n',
       '            bandwidth = rbf_bandwidth_of(self.joint[a])\n',
       METRIC_TESTS, "metric layer"),
    _m('MMD_paper V-statistic', 'metrics/sets.py',
       'out.append(sxx / (n * max(n - 1, 1)) + syy / (m * (m - 1))',
       'out.append(sxx / (n * n) + syy / (m * m)',
       METRIC_TESTS, "metric layer"),
    _m('bandwidth normaliser m^2', 'metrics/distribution.py',
       'bandwidth = check_result(2.0 * float(np.var(real, axis=0, ddof=1).sum())',
       'bandwidth = check_result(2.0 * float(np.var(real, axis=0, ddof=1).sum()) * (len(real) - 1) / len(real)',
       METRIC_TESTS, "metric layer"),
    _m('KS no float32 rounding', 'metrics/marginal.py',
       'def ks_pooled(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None,\n'
       '              round_float32: bool = True)',
       'def ks_pooled(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None,\n'
       '              round_float32: bool = False)',
       METRIC_TESTS, "metric layer"),
    _m('unbiased MMD clipped at 0', 'metrics/sets.py',
       '    return sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2.0 * sxy / (n * m)\n',
       '    return (sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2.0 * sxy / (n * m)).clamp(min=0.0)\n',
       METRIC_TESTS, "metric layer"),
    _m('overflow bound removed', 'metrics/errors.py',
       '    n_huge = int(np.count_nonzero(np.abs(values) > MAX_ABS_VALUE))',
       '    n_huge = 0',
       METRIC_TESTS, "metric layer"),
    _m('coverage single member allowed', 'metrics/probabilistic.py',
       '    if flat_pred.shape[0] < 2:\n        raise MetricInputError(f"interval coverage',
       '    if flat_pred.shape[0] < 1:\n        raise MetricInputError(f"interval coverage',
       METRIC_TESTS, "metric layer"),
    _m('Cov90 ranked', 'metrics/registry.py',
       'Metric("Cov90", probabilistic.interval_coverage, "ignore",',
       'Metric("Cov90", probabilistic.interval_coverage, "lower",',
       METRIC_TESTS, "a coverage has no better goal: never ranked"),
    _m('KL goal swapped in the generation task', 'bench/tasks/generation.py',
       '                                       data.real.values, outcome.samples, n_repeats=cfg["n_bootstrap"],',
       '                                       outcome.samples, data.real.values, n_repeats=cfg["n_bootstrap"],',
       "tests/test_tasks_generation.py", "real first: KL(generated || real) as the EnergyDiff code"),
    _m('bootstrap accepts NaN input', 'metrics/bootstrap.py',
       '    real = check_values(np.asarray(real), "real")\n    pred = check_values(np.asarray(pred), "pred")',
       '    real = np.asarray(real)\n    pred = np.asarray(pred)',
       METRIC_TESTS, "metric layer"),
    # tables: the tie rule, its goal, ranks and the papers' same-best check
    _m("tie rule strict <", "bench/report/tables.py",
       "return tie_key(abs(a - b)) <= tie_key(math.hypot(sa, sb))",
       "return tie_key(abs(a - b)) < tie_key(math.hypot(sa, sb))", REPORT_TESTS, "the boundary of the tie rule"),
    _m("tie rule noise = larger std", "bench/report/tables.py",
       "return tie_key(abs(a - b)) <= tie_key(math.hypot(sa, sb))",
       "return tie_key(abs(a - b)) <= tie_key(max(sa, sb))", REPORT_TESTS, "the noise of a difference"),
    _m("best goal flipped", "bench/report/tables.py",
       'sign = 1.0 if goal == "lower" else -1.0', 'sign = -1.0 if goal == "lower" else 1.0',
       REPORT_TESTS, "lower/higher is better in the tables"),
    _m("paired noise without the seed term", "bench/report/tables.py",
       "        noise2 += float(np.var(means, ddof=1))\n",
       "        noise2 += 0.0\n",
       REPORT_TESTS + " tests/test_paired_ties.py", "seed variance belongs in the tie rule"),
    _m("paired noise unpaired", "bench/report/tables.py",
       "        d = x - y\n",
       "        d = x - y + (y - y.mean()) * 2 ** 0.5\n",
       REPORT_TESTS + " tests/test_paired_ties.py", "the noise of a difference on shared resamples"),
    _m("tied leaders bold", "bench/report/tables.py",
       "(best if len(first) == 1 else tied)[first, j] = True", "best[first, j] = True",
       REPORT_TESTS, "a tie within noise shown as a win"),
    _m("same-best ignores ties", "bench/report/agreement.py",
       "same = float(bool(ob & pb))", "same = float(ob == pb)",
       "tests/test_tie_rule.py tests/test_report.py tests/test_published.py", "the papers' best model within noise"),
    _m("seed std ddof 0", "bench/report/tables.py",
       "return float(values.mean()), float(values.std(ddof=1)), \"ok\", \"\", n",
       "return float(values.mean()), float(values.std(ddof=0)), \"ok\", \"\", n",
       REPORT_TESTS, "the ± over seeds"),
    # protocol: split rules, caps, scaling on train, generated count
    _m("pooled split rounds instead of floor", "bench/data/split.py",
       "assignment[rows] = _random_parts(len(rows), fractions, rng, floor=True)",
       "assignment[rows] = _random_parts(len(rows), fractions, rng)", PROTOCOL_TESTS, "the papers' month split"),
    _m("pooled split ignores months", "bench/data/split.py",
       "        assignment = _monthly_parts(profiles, fractions, rng)\n",
       "        assignment = _random_parts(len(profiles), fractions, rng, floor=True)\n", PROTOCOL_TESTS,
       "the split within each calendar month"),
    _m("pretrain fraction of the rest", "bench/data/split.py",
       "n_pre = int(round(pretrain_fraction * n))", "n_pre = int(round((1 - pretrain_fraction) * n))",
       PROTOCOL_TESTS, "the unified paper's 80 % pre-training"),
    _m("scaler fitted on evaluation too", "bench/tasks/common.py",
       "learned = train if split.pretrain is None else concat([split.pretrain, train])",
       "learned = concat([train, real]) if split.pretrain is None else concat([split.pretrain, train])",
       PROTOCOL_TESTS + " tests/test_data_pipeline.py", "scaling fitted on train only"),
    _m("protocol not in the task config", "bench/runner.py",
       "return {**task.defaults, **{k: v for k, v in protocol.items() if k in task.defaults}, **config}",
       "return {**task.defaults, **config}", PROTOCOL_TESTS, "the suite's protocol reaches the cells"),
    _m("n_generate ignored", "bench/tasks/generation.py",
       'n_generate = cfg.get("n_generate") or len(split.real)', "n_generate = len(split.real)",
       PROTOCOL_TESTS, "the papers' 4000 generated profiles"),
    # data: units and the tariff filter
    _m("LCL kWh not converted to kW", "bench/data/loaders/lcl.py",
       '"kw": kwh / 0.5,', '"kw": kwh,', "tests/test_loaders.py", "kWh per half hour -> kW"),
    _m("LCL keeps every tariff by default", "bench/data/loaders/lcl.py",
       'DEFAULT_TARIFF = "Std"', 'DEFAULT_TARIFF = "all"', "tests/test_loaders.py", "the EnergyDiff Std filter"),
    _m("scaler headroom 1.0", "bench/data/scaling.py",
       "def fit(cls, train: ProfileSet, headroom: float = 1.1)",
       "def fit(cls, train: ProfileSet, headroom: float = 1.0)", PROTOCOL_TESTS, "the EnergyDiff scaling"),
    # baselines fitted as the papers fit them; the unified paper's protocol
    _m("GMM degeneracy fails the cell again", "baselines/gmm.py",
       "        self.singular_mass_ = float(counts[singular].sum() / n)\n",
       "        self.singular_mass_ = float(counts[singular].sum() / n)\n"
       "        if self.singular_mass_ > 0.5:\n            raise ModelFitError(\"degenerate fit\")\n",
       "tests/test_baselines_classical.py", "a degenerate fit is a diagnostic, not a failure"),
    _m("gan gets a gradient penalty", "baselines/gan.py",
       "    gp_weight: ClassVar[float] = 0.0", "    gp_weight: ClassVar[float] = 10.0", "tests/test_gan.py",
       "the paper's GAN has no gradient penalty"),
    _m("copula repair skips the eigenvalue floor", "baselines/tcopula.py",
       "out = (eigvec * np.maximum(eigval, floor)) @ eigvec.T", "out = (eigvec * eigval) @ eigvec.T",
       "tests/test_baselines_classical.py", "the nearest positive-definite correlation"),
    _m("VIB weight back to the KL form", "baselines/nn/vib.py",
       "    return 2.0 * kl_standard_normal(mu, sigma)", "    return kl_standard_normal(mu, sigma)",
       "tests/test_moe_vib.py tests/test_unified.py", "eq. 26's bottleneck weight"),
    _m("attacked share 0.3", "bench/tasks/anomaly.py",
       '"attack_fraction": 0.5,', '"attack_fraction": 0.3,', "tests/test_tasks_anomaly.py",
       "half of the profiles attacked"),
    _m("forecast MAPE threshold 1 W", "bench/tasks/forecasting.py",
       '"mape_eps": 0.01,', '"mape_eps": 0.001,', "tests/test_tasks_forecasting.py",
       "MAPE leaves out loads under 10 W"),
)
"""The planted bugs, by area; each names the test files that should catch it."""


def copy_repository(target: Path) -> None:
    """The tracked and untracked-but-not-ignored files of the repository, copied to ``target``."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO_ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO_ROOT / rel
        if src.is_file():
            dst = target / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def run_mutant(mutant: Mutant, scratch: Path, timeout: float = 900.0) -> tuple[str, float, str]:
    """Plant ``mutant`` in ``scratch``, run its tests, restore the file. Returns (outcome, seconds, detail)."""
    path = scratch / mutant.path
    original = path.read_text()
    count = original.count(mutant.old)
    if count != 1:
        return "stale", 0.0, f"text found {count} times in {mutant.path}"
    path.write_text(original.replace(mutant.old, mutant.new))
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutant.tests],
                              cwd=scratch, capture_output=True, text=True, timeout=timeout)
        outcome = "survived" if proc.returncode == 0 else "killed"
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAILED") or ln.startswith("ERROR")]
        detail = lines[0][:160] if lines else proc.stdout.strip().splitlines()[-1][:160] if proc.stdout else ""
    except subprocess.TimeoutExpired:
        outcome, detail = "killed", f"tests timed out after {timeout:.0f} s"
    finally:
        path.write_text(original)
    return outcome, time.perf_counter() - start, detail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run the mutants whose name contains this text")
    parser.add_argument("--out", default=str(REPO_ROOT / "results" / "mutation"), help="output folder")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or args.only in m.name]
    rows = []
    with tempfile.TemporaryDirectory(prefix="meterbench-mutants-") as tmp:
        scratch = Path(tmp)
        copy_repository(scratch)
        for i, mutant in enumerate(mutants, 1):
            outcome, seconds, detail = run_mutant(mutant, scratch)
            rows.append((mutant.name, mutant.path, outcome, f"{seconds:.1f}", mutant.why, detail))
            print(f"[{i}/{len(mutants)}] {outcome:8s} {mutant.name} ({seconds:.1f} s)", flush=True)
    killed = sum(r[2] == "killed" for r in rows)
    stale = sum(r[2] == "stale" for r in rows)
    summary = f"{killed} of {len(rows)} planted bugs caught by the tests ({stale} stale)"
    print(summary)
    if not args.only:
        from tabulate import tabulate

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        headers = ["mutant", "file", "outcome", "seconds", "what it plants", "first failing test"]
        (out / "README.md").write_text(
            "# Planted-bug check\n\n`python -m bench.mutation_check`: each planted bug is put into a scratch copy "
            "of the repository and the test files named for it are run; *killed* = the tests failed.\n\n"
            f"**{summary}.**\n\n" + tabulate(rows, headers=headers, tablefmt="github") + "\n")
        import csv

        with open(out / "mutants.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(headers)
            writer.writerows(rows)
    return 0 if killed == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
