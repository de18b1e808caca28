"""Distribution-level distances between a real and a generated set of profiles.

Every function takes two 2-D arrays of profiles, rows = profiles and columns = time steps, in the order of the
one metric signature ``fn(real, pred, *, mask=None, ...)``: ``real`` (``[m, T]``) and the generated set ``pred``
(``[n, T]``). The two sets are unpaired and may differ in size. Arithmetic is float64 throughout, whatever the
input dtype, and the result is a Python ``float``. ``mask`` exists for the shared signature only: set metrics
compare whole profiles, and a mask other than ``None`` is refused.

* :func:`mmd_rbf` - squared maximum mean discrepancy with one RBF kernel, unbiased estimator. Lower is better.
* :func:`mmd_rbf_paper` - the MMD of the EnergyDiff code (its own bandwidth rule and estimator), to compare numbers
  with the paper's tables.
* :func:`mmd_permutation_test` / :func:`mmd_p_value` / :func:`mmd_pass` - permutation test of "same
  distribution" on :func:`mmd_rbf`. A higher p-value means the two sets are harder to tell apart.
* :func:`frechet_distance` - Fréchet distance between Gaussians fitted to the two sets. Lower is better.

The kernel is ``k(a, b) = exp(-||a - b||^2 / bandwidth)``. meterbench fixes ``bandwidth`` once per dataset from
the real profiles by :func:`rbf_bandwidth`, so that scores of different models on the same data share a kernel;
:func:`mmd_rbf_paper` instead recomputes it from the real profiles it is given, as the EnergyDiff code does.

Bad input (shapes, NaN / inf, values beyond :data:`metrics.errors.MAX_ABS_VALUE`, overflow) raises
:class:`metrics.errors.MetricInputError`.
"""

from __future__ import annotations

import numpy as np
import torch

from metrics.errors import MetricInputError, check_count, check_no_mask, check_result, check_values
from metrics.sets import FRECHET_EPS, SetPair, mmd_from_sums

__all__ = ["FRECHET_EPS", "frechet_distance", "mmd_p_value", "mmd_pass", "mmd_permutation_test", "mmd_rbf",
           "mmd_rbf_paper", "profile_pair", "rbf_bandwidth"]

_PERMUTATION_CHUNK = 128


def profile_pair(real: np.ndarray, pred: np.ndarray, min_rows: int = 1,
                 names: tuple[str, str] = ("real", "pred")) -> tuple[np.ndarray, np.ndarray]:
    """Check two sets of profiles and return them (in the order given) as float64 arrays.

    Both must be 2-D, have the same number of columns, at least ``min_rows`` rows each and only finite values
    of magnitude at most :data:`metrics.errors.MAX_ABS_VALUE`; otherwise a :class:`MetricInputError` names the
    offending argument.
    """
    out = []
    for arr, name in zip((real, pred), names):
        arr = check_values(np.asarray(arr), name)
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise MetricInputError(f"{name} must hold real numbers, got dtype {arr.dtype}") from None
        if arr.ndim != 2:
            raise MetricInputError(f"{name} must be a 2-D array [profiles, time steps], got shape {arr.shape}")
        if arr.shape[0] < min_rows:
            raise MetricInputError(f"{name} needs at least {min_rows} profile(s), got {arr.shape[0]}")
        if arr.shape[1] < 1:
            raise MetricInputError(f"{name} has no time steps (shape {arr.shape})")
        out.append(arr)
    if out[0].shape[1] != out[1].shape[1]:
        raise MetricInputError(f"{names[0]} and {names[1]} differ in length: {out[0].shape[1]} vs "
                               f"{out[1].shape[1]} time steps")
    return out[0], out[1]


def _check_bandwidth(bandwidth: float) -> float:
    try:
        bandwidth = float(bandwidth)
    except (TypeError, ValueError):
        raise MetricInputError(f"bandwidth must be a positive finite number, got {bandwidth!r}") from None
    if not np.isfinite(bandwidth) or bandwidth <= 0:
        raise MetricInputError(f"bandwidth must be a positive finite number, got {bandwidth}")
    return bandwidth


def rbf_bandwidth(real: np.ndarray) -> float:
    """Mean off-diagonal squared Euclidean distance among the real profiles.

    ``bandwidth = sum_{i != j} ||y_i - y_j||^2 / (m (m - 1))`` over the ``m`` rows of ``real`` (the EnergyDiff
    convention). It equals ``2 * sum_t var(y[:, t])`` with the ``ddof=1`` variance, which is how it is computed
    (O(m T) instead of O(m^2 T)). Fix it once per dataset from the real data and pass it to every MMD call.

    Raises :class:`MetricInputError` for fewer than two profiles, bad values, or when all real profiles are
    identical (zero bandwidth).
    """
    real, _ = profile_pair(real, real, min_rows=2, names=("real", "real"))
    bandwidth = check_result(2.0 * float(np.var(real, axis=0, ddof=1).sum()), "the RBF bandwidth")
    if not bandwidth > 0:
        raise MetricInputError("all real profiles are identical: the RBF bandwidth would be zero")
    return bandwidth


def mmd_rbf(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None, bandwidth: float) -> float:
    """Unbiased estimate of the squared MMD between the distributions of ``real`` [m, T] and ``pred`` [n, T].

    ``MMD_u^2 = sum_{i != j} k(x_i, x_j) / (n (n - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
    - 2 sum_{i, j} k(x_i, y_j) / (n m)`` with ``x = pred``, ``y = real`` and
    ``k(a, b) = exp(-||a - b||^2 / bandwidth)``; symmetric in its two sets.

    Its expectation is exactly the population squared MMD, so for two samples of one distribution it
    scatters around 0 and can be slightly negative (it is not clipped); it lies in [-2, 2]. Lower is better.
    Needs n, m >= 2. ``bandwidth`` (required): :func:`rbf_bandwidth` of the real data, fixed once per dataset.
    """
    check_no_mask(mask, "MMD")
    real, pred = profile_pair(real, pred, min_rows=2)
    bandwidth = _check_bandwidth(bandwidth)
    pair = SetPair(real, pred)
    return float(pair.mmd(*pair.all_rows(), bandwidth)[0])


def mmd_rbf_paper(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """The MMD of the EnergyDiff code (``MkMMD(kernel_type="rbf", num_kernel=1, coefficient="auto")``), to compare
    numbers with the paper's tables. ``real`` [m, T] is the real set, ``pred`` [n, T] the generated one.

    * Bandwidth: recomputed on every call from the real set alone, as the code's default ("auto") rule does:
      ``bw = sum_{i != j} ||y_i - y_j||^2 / (m (m - 1))`` (:func:`rbf_bandwidth`). Under the bootstrap it is
      therefore the bandwidth of each real subset, not a per-dataset constant; hence no ``bandwidth`` argument.
    * Kernel: the one RBF kernel ``exp(-||a - b||^2 / bw)`` (a single kernel gets the weight 1).
    * Estimator, with ``x = pred`` and ``y = real``: ``sum_{i, j} k(x_i, x_j) / (n max(n - 1, 1))
      + sum_{i, j} k(y_i, y_j) / (m (m - 1)) - 2 sum_{i, j} k(x_i, y_j) / (n m)``. The diagonal terms
      ``k(a, a) = 1`` stay in the XX and YY sums although the normalisers exclude them, so it equals
      :func:`mmd_rbf` ``+ 1/(n - 1) + 1/(m - 1)`` (``n, m >= 2``): neither the biased nor the unbiased estimator,
      never negative (at most 4), and dependent on the sample sizes. Unequal ``n`` and ``m`` enter only through
      these normalisers, as in the code; ``n = 1`` uses ``max(n - 1, 1) = 1`` as it does.

    Matches the EnergyDiff code to round-off on the fixtures of ``tests/test_paper_fixtures.py``. Lower is better.
    Needs ``n >= 1`` and ``m >= 2`` (the bandwidth needs two real profiles, not all identical).
    """
    check_no_mask(mask, "MMD_paper")
    real, pred = profile_pair(real, pred, min_rows=1)
    if len(real) < 2:
        raise MetricInputError(f"real needs at least 2 profiles for the bandwidth, got {len(real)}")
    rbf_bandwidth(real)  # refuses identical real profiles with the bandwidth's own message
    pair = SetPair(real, pred)
    return float(pair.mmd_paper(*pair.all_rows())[0])


def _mmd_from_membership(k0: torch.Tensor, row_sums: torch.Tensor, total: torch.Tensor, member: torch.Tensor,
                         n: int, m: int) -> torch.Tensor:
    """Unbiased MMD for each column of ``member`` (0/1 indicators of the first group) on the joint kernel.

    ``k0`` is the joint kernel matrix with a zero diagonal. With a = indicators and b = 1 - a:
    a'K a is the XX sum, b'K b = 1'K 1 - 2 a'K 1 + a'K a the YY sum, a'K b = a'K 1 - a'K a the XY sum.
    """
    sxx = (member * (k0 @ member)).sum(0)
    a_rows = row_sums @ member
    return mmd_from_sums(sxx, total - 2.0 * a_rows + sxx, a_rows - sxx, n, m)


def mmd_permutation_test(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None, bandwidth: float,
                         n_permutations: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Permutation test of "``real`` and ``pred`` come from one distribution" with the unbiased MMD as statistic.

    Returns ``(statistic, p_value)``: ``statistic`` is :func:`mmd_rbf` of ``(real, pred)``; the null distribution
    is the same statistic after randomly reassigning the pooled ``n + m`` profiles (``pred`` rows first, then
    ``real`` rows) to groups of sizes n and m. Permutation ``p`` uses the ``p``-th call of
    ``np.random.default_rng(seed).permutation(n + m)``: the first ``n`` indices form the generated group. The
    joint kernel matrix is computed once and every permutation is a pair of matrix products on it, so 1000
    permutations of 2000 + 2000 profiles take seconds.

    ``p_value = (1 + #{null >= statistic}) / (1 + n_permutations)``. The SmartMeterFM code reports
    ``mean(null >= statistic)`` instead; the two differ by at most ``1 / (1 + n_permutations)``. The form used
    here counts the observed split as one of the permutations, so the p-value is never 0 and the test keeps its
    level exactly (a p-value of 0 would claim more than a finite number of permutations can show).
    Higher p = the sets are harder to distinguish.
    """
    check_no_mask(mask, "the MMD permutation test")
    real, pred = profile_pair(real, pred, min_rows=2)
    bandwidth = _check_bandwidth(bandwidth)
    n_permutations = check_count(n_permutations, "n_permutations", 1)
    n, m = len(pred), len(real)
    pair = SetPair(real, pred)
    k0 = pair.joint_kernel(bandwidth)
    k0.fill_diagonal_(0.0)
    row_sums = k0.sum(1)
    total = row_sums.sum()

    identity = torch.zeros(n + m, 1, dtype=torch.float64, device=k0.device)
    identity[:n, 0] = 1.0
    # The observed statistic goes through the same arithmetic as the null, so that ties compare like with like.
    statistic = float(check_result(_mmd_from_membership(k0, row_sums, total, identity, n, m)[0].item(), "MMD"))

    rng = np.random.default_rng(seed)
    null = np.empty(n_permutations)
    for start in range(0, n_permutations, _PERMUTATION_CHUNK):
        size = min(_PERMUTATION_CHUNK, n_permutations - start)
        chosen = np.stack([rng.permutation(n + m)[:n] for _ in range(size)])
        member = torch.zeros(n + m, size, dtype=torch.float64, device=k0.device)
        member.scatter_(0, torch.from_numpy(chosen.T).to(k0.device), 1.0)
        null[start:start + size] = _mmd_from_membership(k0, row_sums, total, member, n, m).cpu().numpy()
    p_value = (1.0 + float(np.count_nonzero(null >= statistic))) / (1.0 + n_permutations)
    return statistic, p_value


def mmd_p_value(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None, bandwidth: float,
                n_permutations: int = 1000, seed: int = 0) -> float:
    """The p-value of :func:`mmd_permutation_test` alone, in (0, 1] (higher = harder to tell apart)."""
    return mmd_permutation_test(real, pred, mask=mask, bandwidth=bandwidth, n_permutations=n_permutations,
                                seed=seed)[1]


def mmd_pass(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None, bandwidth: float,
             alpha: float = 0.05, n_permutations: int = 1000, seed: int = 0) -> float:
    """1.0 when the permutation test cannot tell the two sets apart at level ``alpha`` (its p-value, from
    :func:`mmd_p_value`, exceeds ``alpha``), else 0.0. Averaged over condition groups it is the share of groups
    that pass (the conditional task's ``MMD_pass``, as the SmartMeterFM paper reports). Higher is better."""
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise MetricInputError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}") from None
    if not 0.0 < alpha < 1.0:
        raise MetricInputError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    p_value = mmd_p_value(real, pred, mask=mask, bandwidth=bandwidth, n_permutations=n_permutations, seed=seed)
    return float(p_value > alpha)


def frechet_distance(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Fréchet distance between Gaussians fitted to ``real`` [m, T] and ``pred`` [n, T] (float64); symmetric.

    ``FD = ||mu_x - mu_y||^2 + tr(C_x) + tr(C_y) - 2 tr((C_x C_y)^{1/2})`` (``x = pred``, ``y = real``) with
    sample means, ``ddof=1`` covariances of the time-step vectors and ``1e-6 I`` added to each covariance (the
    EnergyDiff convention). The trace term is ``sum_i sqrt(lambda_i)`` over the eigenvalues of the symmetric
    positive semi-definite matrix ``L^T C_y L`` with ``C_x = L L^T`` (Cholesky; same spectrum as ``C_x C_y``), with
    tiny negative eigenvalues from round-off clipped to 0; this avoids the complex round-off of a general ``sqrtm``. The result
    is clipped at 0, so it is never negative or complex. Agrees with the EnergyDiff code's ``calculate_frechet``
    (``scipy.linalg.sqrtm``, imaginary part dropped) to round-off. Lower is better. Needs n, m >= 2.

    The products of covariance matrices grow like the fourth power of the values: inputs that are finite but
    large enough to overflow them raise :class:`MetricInputError` (never a ``LinAlgError`` or NaN).
    """
    check_no_mask(mask, "GFD")
    real, pred = profile_pair(real, pred, min_rows=2)
    pair = SetPair(real, pred)
    return float(pair.frechet(*pair.all_rows())[0])
