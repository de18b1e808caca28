"""The arithmetic of the set metrics (MMD, Gaussian Fréchet distance, pooled KL / Wasserstein / KS) on one or
many resamples at once, in float64 torch on the CPU or a GPU.

A bootstrap of a set metric scores ``R`` subsets of the same two sets. Done one subset at a time, every repeat
recomputes what the subsets share; here it is computed once:

* MMD: the squared distances between all ``n + m`` profiles form one matrix; each repeat's kernel sums are
  products of its kernel with 0/1 membership vectors (fixed bandwidth) or sums over gathered blocks (the
  EnergyDiff variant, whose bandwidth follows each real subset).
* Pooled marginals: all values of both sets are sorted once; a repeat weighs each entry by its row's role, and
  the running sum of those weights is its exact CDF balance (Wasserstein, KS); the KL counts come from each
  row's own sorted values (no sort per repeat).
* Fréchet: per repeat, one Cholesky factor and the eigenvalues (no eigenvectors) of a symmetric matrix, batched
  over repeats.

The functions of :mod:`metrics.distribution` and :mod:`metrics.marginal` call these kernels with a single
"resample" that holds every row, so one implementation serves a single score and a bootstrap, and the same
code runs on a GPU (``device="cuda"``). Inputs arrive checked (:func:`metrics.distribution.profile_pair`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np
import torch

from metrics.errors import MetricInputError, check_result

FRECHET_EPS = 1e-6
"""Ridge added to both covariance matrices of the Fréchet distance (as in the EnergyDiff code)."""

KL_N_EDGES = 200
"""Default number of histogram *edges* of the KL: ``linspace(min, max, 200)`` over the joint range, i.e. 199
equal-width bins (the EnergyDiff code's rule)."""

_MAX_BATCH_ELEMENTS = 2**24
"""Number of entries a batched step aims to hold at once (128 MiB of float64); larger batches run in chunks."""


_DEVICE: ContextVar[str] = ContextVar("metric_device", default="cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a torch device: ``None`` = the device of the enclosing :func:`metric_device` block (the CPU
    outside one), ``"auto"`` = CUDA when available, else CPU."""
    if device is None:
        device = _DEVICE.get()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextmanager
def metric_device(device: str | torch.device | None) -> Iterator[torch.device]:
    """Compute the set metrics inside the block on ``device`` (``"cpu"``, ``"cuda"``, ``"auto"``). The values
    agree with the CPU's to float64 round-off, so the device is not part of any result's identity."""
    resolved = resolve_device(device)
    token = _DEVICE.set(str(resolved))
    try:
        yield resolved
    finally:
        _DEVICE.reset(token)


def check_finite(values: torch.Tensor, what: str) -> torch.Tensor:
    """``values`` if every entry is finite, else the :class:`MetricInputError` of
    :func:`metrics.errors.check_result` naming ``what``."""
    if not bool(torch.isfinite(values).all()):
        check_result(float("inf"), what)
    return values


def _chunks(n_items: int, per_item: int) -> list[slice]:
    size = max(1, _MAX_BATCH_ELEMENTS // max(per_item, 1))
    return [slice(s, min(s + size, n_items)) for s in range(0, n_items, size)]


# ---------------------------------------------------------------------------------------------------------------
# squared distances and RBF kernels


def _gram(a: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``a @ b.T`` (``a @ a.T`` when ``b`` is None). On the CPU numpy's BLAS call is used: for ``a @ a.T`` it
    computes one triangle (a symmetric rank-k update), half the work of a general product."""
    if a.device.type == "cpu":
        x = a.numpy()
        return torch.from_numpy(x @ (x if b is None else b.numpy()).T)
    return a @ (a if b is None else b).T


def squared_distances(a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """Pairwise squared Euclidean distances via the Gram matrix, clipped at 0 against round-off; with ``b`` omitted
    the distances of ``a`` to itself, with an exactly zero diagonal.

    The Gram form can return a tiny negative number for two (nearly) equal rows; unclipped, ``exp(-d / bw)``
    would then exceed 1, the value of a kernel at distance 0. Callers centre the data first, so that large norms
    do not cancel.
    """
    same = b is None
    norms_a = (a * a).sum(1)
    norms_b = norms_a if same else (b * b).sum(1)
    d = _gram(a, b).mul_(-2.0).add_(norms_a[:, None]).add_(norms_b[None, :])
    d.clamp_(min=0.0)
    if same:
        d.fill_diagonal_(0.0)
    return d


def rbf_bandwidth_of(rows: torch.Tensor) -> torch.Tensor:
    """Mean off-diagonal squared distance among ``rows`` [..., k, T]: ``2 * sum_t var(rows[..., t], ddof=1)``."""
    return 2.0 * rows.var(dim=-2, correction=1).sum(-1)


def _indicators(index: torch.Tensor, n_rows: int) -> torch.Tensor:
    """0/1 float64 matrix [n_rows, R]: column r marks the rows of ``index[r]``."""
    out = torch.zeros(n_rows, index.shape[0], dtype=torch.float64, device=index.device)
    out.scatter_(0, index.T, 1.0)
    return out


def mmd_from_sums(sxx: torch.Tensor, syy: torch.Tensor, sxy: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Unbiased squared MMD from off-diagonal kernel sums: ``sxx / (n (n-1)) + syy / (m (m-1)) - 2 sxy / (n m)``."""
    return sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2.0 * sxy / (n * m)


# ---------------------------------------------------------------------------------------------------------------
# pooled marginals on sorted joint samples


def _numpy_linspace(lo: torch.Tensor, hi: torch.Tensor, num: int) -> torch.Tensor:
    """Edges ``[B, num]`` computed as ``numpy.linspace`` does (``i * step + lo``, last edge exactly ``hi``), so that
    a value on an edge falls into the same histogram bin as in the EnergyDiff code."""
    steps = torch.arange(num, dtype=torch.float64, device=lo.device)
    edges = steps[None, :] * ((hi - lo) / (num - 1))[:, None] + lo[:, None]
    edges[:, -1] = hi
    return edges


def _kl_from_counts(p: torch.Tensor, q: torch.Tensor, constant: torch.Tensor) -> torch.Tensor:
    """KL(p || q) of histogram counts [B, bins] (p = generated): bins empty on either side dropped and both
    renormalised, ``sum p log(p / q)``; ``inf`` where no bin holds both sides, 0 where ``constant`` (all values
    of both sides are one and the same number)."""
    keep = (p > 0) & (q > 0)
    zero = torch.zeros((), dtype=torch.float64, device=p.device)
    p = torch.where(keep, p, zero)
    q = torch.where(keep, q, zero)
    p = p / p.sum(1, keepdim=True)
    q = q / q.sum(1, keepdim=True)
    terms = torch.where(keep, p * torch.log(torch.where(keep, p / q, torch.ones_like(p))), zero)
    kl = terms.sum(1)
    kl = torch.where(keep.any(1), kl, torch.full_like(kl, math.inf))
    return torch.where(constant, zero, kl)


def _gap_stats(balance: torch.Tensor, gaps: torch.Tensor, run_end: torch.Tensor | None, scale: float
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(Wasserstein, KS) from the running balance of sorted joint samples [B, L]: ``balance_i = n_real *
    #pred_{<=i} - n_pred * #real_{<=i}`` (exact integers), so ``F_pred - F_real = balance / scale`` with
    ``scale = n_pred n_real``; ``gaps`` [B, L - 1] are the steps between consecutive values and ``run_end`` [B, L]
    marks the last entry of each run of equal values (where an empirical CDF is evaluated; None: every entry).

    Wasserstein ``= sum_i |F_pred(v_i) - F_real(v_i)| (v_{i+1} - v_i)`` with right-continuous CDFs
    (``scipy.stats.wasserstein_distance``); KS ``= max |F_pred - F_real|`` over the distinct values
    (``scipy.stats.ks_2samp``).
    """
    size = balance.abs()
    if len(size) == 1:  # one comparison: a dot product, no temporary of the full length
        wasserstein = torch.dot(size[0, :-1].to(torch.float64), gaps[0])[None] / scale
    else:
        wasserstein = (size[:, :-1].to(torch.float64) * gaps).sum(1) / scale
    if run_end is not None:
        size = torch.where(run_end, size, torch.zeros((), dtype=size.dtype, device=size.device))
    return wasserstein, size.amax(1).to(torch.float64) / scale


def _gaps_and_run_ends(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    gaps = values[:, 1:] - values[:, :-1]
    run_end = torch.ones_like(values, dtype=torch.bool)
    run_end[:, :-1] = gaps != 0
    return gaps, run_end


def marginal_stats(values: torch.Tensor, from_pred: torch.Tensor, n_edges: int = KL_N_EDGES
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """KL(pred || real), 1-Wasserstein and KS statistic of 1-D samples given as sorted joint samples.

    ``values`` [B, L] float64, each row sorted ascending, holds both samples of one comparison; ``from_pred`` [B, L]
    marks the generated entries (the same number in every row). Returns three float64 tensors [B]:

    * KL: histogram estimate with ``n_edges`` edges ``linspace(min, max)`` over the joint range (the last bin
      closed, as ``numpy.histogram``), bins empty on either side dropped and both renormalised,
      ``sum p log(p / q)`` with p = generated; 0 when all values are one constant, ``inf`` when no bin holds
      values of both sides.
    * Wasserstein and KS: :func:`_gap_stats`.
    """
    n_total = values.shape[1]
    n_pred = int(from_pred[0].sum())
    n_real = n_total - n_pred
    step = torch.where(from_pred, n_real, -n_pred)
    gaps, run_end = _gaps_and_run_ends(values)
    wasserstein, ks = _gap_stats(torch.cumsum(step, dim=1), gaps, run_end, float(n_pred * n_real))

    count_pred = torch.cumsum(from_pred, dim=1, dtype=torch.int64)
    lo, hi = values[:, 0].contiguous(), values[:, -1].contiguous()
    edges = _numpy_linspace(lo, hi, n_edges)
    # entries below each edge; the last edge counts everything, as the closed last bin of numpy.histogram
    below = torch.searchsorted(values.contiguous(), edges[:, :-1].contiguous(), right=False)
    below = torch.cat([below, torch.full_like(below[:, :1], n_total)], dim=1)
    pred_below = torch.gather(torch.nn.functional.pad(count_pred, (1, 0)), 1, below)
    p = torch.diff(pred_below, dim=1).to(torch.float64)
    q = torch.diff(below - pred_below, dim=1).to(torch.float64)
    return _kl_from_counts(p, q, lo == hi), wasserstein, ks


def sort_joint(columns_pred: torch.Tensor, columns_real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted joint samples of each column: ``columns_pred`` [n, B] and ``columns_real`` [m, B] give
    ``(values [B, n + m], from_pred [B, n + m])`` for :func:`marginal_stats`."""
    joint = torch.cat([columns_pred, columns_real]).T
    values, order = torch.sort(joint, dim=1)
    return values, order < columns_pred.shape[0]


def _sort_with_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every entry of the float32 matrix ``values`` [rows, steps] in ascending order, with the row it came from.

    One sort of 64-bit keys instead of an argsort: the high half of a key is the float's bit pattern mapped to an
    unsigned integer of the same order (sign bit flipped for non-negative numbers, all bits for negative
    ones), the low half the row, so numpy's vectorised integer sort orders values and carries rows along.
    """
    bits = values.reshape(-1).view(np.uint32)
    ordered = np.where(bits >> np.uint32(31), ~bits, bits | np.uint32(0x80000000))
    rows = np.repeat(np.arange(values.shape[0], dtype=np.uint64), values.shape[1])
    keys = (ordered.astype(np.uint64) << np.uint64(32)) | rows
    keys.sort()
    high = (keys >> np.uint64(32)).astype(np.uint32)
    restored = np.where(high >> np.uint32(31), high & np.uint32(0x7FFFFFFF), ~high).view(np.float32)
    return restored, (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)


# ---------------------------------------------------------------------------------------------------------------
# Fréchet distance


def _psd_sqrt(c: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(c)
    # Eigenvalues of a PSD matrix can come out slightly negative by round-off; their square root would be NaN.
    return (v * w.clamp(min=0.0).sqrt()[..., None, :]) @ v.transpose(-1, -2)


def _trace_sqrt_product(c_x: torch.Tensor, c_y: torch.Tensor) -> torch.Tensor:
    """``tr((C_x C_y)^{1/2})`` for batches of symmetric positive definite ``c_x`` and PSD ``c_y`` [R, d, d].

    The eigenvalues of ``C_x C_y`` are those of the symmetric ``L^T C_y L`` with ``C_x = L L^T`` (Cholesky), so
    one factorisation and one eigenvalue-only decomposition suffice. Where the Cholesky factorisation fails
    (``C_x`` not numerically positive definite) the symmetric square root of ``C_x`` takes the place of ``L``.
    """
    factor, info = torch.linalg.cholesky_ex(c_x)
    failed = info != 0
    if bool(failed.any()):
        factor = factor.clone()
        factor[failed] = _psd_sqrt(c_x[failed])
    middle = check_finite(factor.transpose(-1, -2) @ c_y @ factor, "the covariance product of the Fréchet distance")
    middle = 0.5 * (middle + middle.transpose(-1, -2))
    # As in _psd_sqrt: round-off can leave tiny negative eigenvalues of this PSD matrix.
    return torch.linalg.eigvalsh(middle).clamp(min=0.0).sqrt().sum(-1)


def _moments(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Means [R, d] and ``ddof=1`` covariances + ``FRECHET_EPS * I`` [R, d, d] of row batches [R, k, d]."""
    mean = rows.mean(1)
    centred = rows - mean[:, None, :]
    cov = centred.transpose(1, 2) @ centred / (rows.shape[1] - 1)
    cov.diagonal(dim1=1, dim2=2).add_(FRECHET_EPS)
    return mean, cov


def frechet_batch(pred_rows: torch.Tensor, real_rows: torch.Tensor) -> torch.Tensor:
    """Fréchet distance between Gaussians fitted to each pair of row batches ``pred_rows`` [R, n, d] and
    ``real_rows`` [R, m, d]: ``||mu_x - mu_y||^2 + tr C_x + tr C_y - 2 tr((C_x C_y)^{1/2})``, clipped at 0
    (two (nearly) identical sets give 0 up to round-off, which may fall slightly below 0)."""
    mu_x, c_x = _moments(pred_rows)
    mu_y, c_y = _moments(real_rows)
    check_finite(c_x, "the covariance of the Fréchet distance")
    check_finite(c_y, "the covariance of the Fréchet distance")
    trace_sqrt = check_finite(_trace_sqrt_product(c_x, c_y), "the covariance product of the Fréchet distance")
    diff = mu_x - mu_y
    fd = (diff * diff).sum(1) + c_x.diagonal(dim1=1, dim2=2).sum(1) + c_y.diagonal(dim1=1, dim2=2).sum(1) \
        - 2.0 * trace_sqrt
    return check_finite(fd, "the Fréchet distance").clamp(min=0.0)


# ---------------------------------------------------------------------------------------------------------------
# two sets, many resamples


@dataclass
class SetPair:
    """A real and a generated set of profiles, prepared once for scoring on many resamples of their rows.

    ``pred`` [n, T] and ``real`` [m, T] are checked float64 arrays. A resample is a pair of index arrays
    ``pred_index`` [R, k_pred] and ``real_index`` [R, k_real] (rows of ``pred`` and of ``real``, without
    repetition within a row of indices); every method returns one value per resample as a float64 numpy array.
    ``round_float32`` applies to the pooled marginals only (see :mod:`metrics.marginal`). ``device``: see
    :func:`resolve_device`.
    """

    real: np.ndarray
    pred: np.ndarray
    device: str | torch.device | None = None
    round_float32: bool = True
    _joint: torch.Tensor | None = field(default=None, init=False, repr=False)
    _distances: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = field(default=None, init=False,
                                                                                  repr=False)
    _sorted: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, init=False, repr=False)
    _pooled: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.device = resolve_device(self.device)
        self.n, self.m = len(self.pred), len(self.real)

    def all_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The resample that holds every row once: ``(arange(n)[None], arange(m)[None])``."""
        return np.arange(self.n)[None, :], np.arange(self.m)[None, :]

    @property
    def joint(self) -> torch.Tensor:
        """Generated rows first, then real rows, float64 on the device, centred on the joint mean (distances are
        translation invariant; centring keeps the Gram form from cancelling large norms)."""
        if self._joint is None:
            joint = torch.from_numpy(np.concatenate([self.pred, self.real])).to(self.device, torch.float64)
            self._joint = joint - joint.mean(0)
        return self._joint

    def _rows(self, pred_index: np.ndarray, real_index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.as_tensor(pred_index, device=self.device, dtype=torch.int64),
                torch.as_tensor(real_index, device=self.device, dtype=torch.int64) + self.n)

    def distance_blocks(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Squared distances among generated rows, among real rows and between the two (``[n, n]``, ``[m, m]``,
        ``[n, m]``), computed once: every MMD of every resample sums kernels over sub-blocks of these."""
        if self._distances is None:
            x, y = self.joint[:self.n], self.joint[self.n:]
            # finite without a check: inputs are bounded by MAX_ABS_VALUE (1e150), so a squared distance is at
            # most 4e300 per step, far below the float64 maximum for any profile length in use
            self._distances = (squared_distances(x), squared_distances(y), squared_distances(x, y))
        return self._distances

    def joint_kernel(self, bandwidth: float) -> torch.Tensor:
        """The RBF kernel among all ``n + m`` rows (generated first), for the permutation test."""
        dxx, dyy, dxy = self.distance_blocks()
        top = torch.cat([dxx, dxy], dim=1)
        return torch.cat([top, torch.cat([dxy.T, dyy], dim=1)]).div_(-bandwidth).exp_()

    def _is_everything(self, a_rows: torch.Tensor, b_rows: torch.Tensor) -> bool:
        """Whether the only resample holds every row once, in order (a single score: no gathering needed)."""
        return (len(a_rows) == 1 and a_rows.shape[1] == self.n and b_rows.shape[1] == self.m
                and bool((a_rows[0] == torch.arange(self.n, device=a_rows.device)).all())
                and bool((b_rows[0] == torch.arange(self.n, self.n + self.m, device=b_rows.device)).all()))

    def mmd(self, pred_index: np.ndarray, real_index: np.ndarray, bandwidth: float) -> np.ndarray:
        """Unbiased squared MMD with the fixed RBF ``bandwidth`` on each resample."""
        a_rows, b_rows = self._rows(pred_index, real_index)
        dxx, dyy, dxy = self.distance_blocks()
        a, b = _indicators(a_rows, self.n), _indicators(b_rows - self.n, self.m)
        kxx, kyy, kxy = ((d / -bandwidth).exp_() for d in (dxx, dyy, dxy))
        # k(x, x) = 1 exactly (zero diagonal distance), so removing the diagonal is subtracting the set size
        sxx = (a * (kxx @ a)).sum(0) - a_rows.shape[1]
        syy = (b * (kyy @ b)).sum(0) - b_rows.shape[1]
        sxy = (a * (kxy @ b)).sum(0)
        out = mmd_from_sums(sxx, syy, sxy, a_rows.shape[1], b_rows.shape[1])
        return check_finite(out, "MMD").cpu().numpy()

    def mmd_paper(self, pred_index: np.ndarray, real_index: np.ndarray) -> np.ndarray:
        """The EnergyDiff code's MMD on each resample: bandwidth from the resample's real rows, diagonal kernel
        terms kept, normalisers ``n max(n - 1, 1)``, ``m (m - 1)`` and ``n m`` (see
        :func:`metrics.distribution.mmd_rbf_paper`)."""
        a_rows, b_rows = self._rows(pred_index, real_index)
        n, m = a_rows.shape[1], b_rows.shape[1]
        dxx, dyy, dxy = self.distance_blocks()
        whole = self._is_everything(a_rows, b_rows)
        out = []
        for a, b in zip(a_rows, b_rows):
            bandwidth = rbf_bandwidth_of(self.joint[b])
            if not bool(bandwidth > 0):
                raise MetricInputError("all real profiles are identical: the RBF bandwidth would be zero")
            b = b - self.n
            blocks = (dxx, dyy, dxy) if whole else (dxx[a][:, a], dyy[b][:, b], dxy[a][:, b])
            sxx, syy, sxy = ((d / -bandwidth).exp_().sum() for d in blocks)
            out.append(sxx / (n * max(n - 1, 1)) + syy / (m * (m - 1)) - 2.0 * sxy / (n * m))
        return check_finite(torch.stack(out), "MMD").cpu().numpy()

    def frechet(self, pred_index: np.ndarray, real_index: np.ndarray) -> np.ndarray:
        """Gaussian Fréchet distance on each resample (:func:`frechet_batch`)."""
        a_rows, b_rows = self._rows(pred_index, real_index)
        per_item = (a_rows.shape[1] + b_rows.shape[1] + 4 * self.joint.shape[1]) * self.joint.shape[1]
        return np.concatenate([frechet_batch(self.joint[a_rows[s]], self.joint[b_rows[s]]).cpu().numpy()
                               for s in _chunks(len(a_rows), per_item)])

    def _pooled_sorted(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every value of both sets, sorted once: ``(values, row)`` with the row of each value in the joint
        numbering (generated rows first), ``values`` rounded to float32 first where ``round_float32``."""
        if self._sorted is None:
            joint = self._pooled_values()
            if self.device.type == "cpu" and joint.dtype == np.float32:
                values, row = _sort_with_rows(joint)
            elif self.device.type == "cpu":
                order = np.argsort(joint.reshape(-1))
                values, row = joint.reshape(-1)[order], order // joint.shape[1]
            else:
                values, order = torch.sort(torch.from_numpy(joint).to(self.device).reshape(-1))
                row = torch.div(order, joint.shape[1], rounding_mode="floor")
            self._sorted = (torch.as_tensor(values, device=self.device).to(torch.float64),
                            torch.as_tensor(row, device=self.device).to(torch.int32))
        return self._sorted

    def _pooled_values(self) -> np.ndarray:
        """Both sets' profiles (generated first) as the pooled marginals see them, computed once: rounded to
        float32 where ``round_float32``, as the EnergyDiff code does."""
        if self._pooled is None:
            joint = np.concatenate([self.pred, self.real])
            if self.round_float32:
                biggest = float(np.abs(joint).max())
                if biggest > float(np.finfo(np.float32).max):
                    raise MetricInputError(f"values up to {biggest:.3g} exceed the float32 range: they cannot be "
                                           "rounded to float32 as the EnergyDiff code does (pass round_float32=False)")
                # as the EnergyDiff code: cast to float32 (ties included), then compute in float64
                joint = joint.astype(np.float32)
            self._pooled = joint
        return self._pooled

    def pooled_marginals(self, pred_index: np.ndarray, real_index: np.ndarray, n_edges: int = KL_N_EDGES,
                         which: tuple[str, ...] = ("KL", "WD", "KS")) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pooled KL(pred || real), Wasserstein and KS on each resample, as :func:`marginal_stats` computes them
        on the resample's values.

        No sort per resample: every value of both sets is sorted once, and a resample weighs each entry by its
        row's role (``n_real`` for a kept generated row, ``-n_pred`` for a kept real row, 0 for a row left out).
        The running sum of those weights is the exact CDF balance of :func:`_gap_stats` at every value, and
        entries of rows left out only add points where both CDFs are flat, which changes neither the maximum
        nor the integral. The KL histogram counts come from each row's own sorted values (one binary search per
        row and edge). Statistics not named in ``which`` come back as NaN (a single score computes only its own).
        """
        a_rows, b_rows = self._rows(pred_index, real_index)
        length = self.pred.shape[1]
        need_cdf = "WD" in which or "KS" in which
        if need_cdf:
            values, row = self._pooled_sorted()
            gaps, run_end = _gaps_and_run_ends(values[None, :])
            # with no ties every entry ends a run: the maximum needs no mask
            run_end = None if bool(run_end.all()) else run_end
        if "KL" in which:
            if self.device.type == "cpu":
                by_row = torch.from_numpy(np.sort(self._pooled_values(), axis=1).astype(np.float64))
            else:
                by_row = torch.sort(torch.from_numpy(self._pooled_values()).to(self.device, torch.float64), dim=1)[0]
            row_low, row_high = by_row[:, 0], by_row[:, -1]
        nan = np.full(1, np.nan)
        out = ([], [], [])
        for a, b in zip(a_rows, b_rows):
            n_pred, n_real = a.numel() * length, b.numel() * length
            wasserstein = ks = kl = nan
            if need_cdf:
                # float64 holds these integer sums exactly while |balance| <= n_pred n_real < 2^53 (sets of
                # billions of values need int64)
                exact = torch.float64 if n_pred * n_real < 2**53 else torch.int64
                weight = torch.zeros(self.n + self.m, dtype=exact, device=self.device)
                weight[a] = n_real
                weight[b] = -n_pred
                balance = torch.cumsum(weight.index_select(0, row), dim=0)
                wasserstein, ks = (t.cpu().numpy() for t in _gap_stats(balance[None, :], gaps, run_end,
                                                                       float(n_pred * n_real)))
            if "KL" in which:
                kept = torch.cat([a, b])
                lo, hi = row_low[kept].amin(), row_high[kept].amax()
                edges = _numpy_linspace(lo[None], hi[None], n_edges)
                below = torch.searchsorted(by_row[kept], edges[:, :-1].expand(len(kept), -1).contiguous())
                below = torch.cat([below, torch.full_like(below[:, :1], length)], dim=1)
                p = torch.diff(below[:a.numel()].sum(0), dim=0).to(torch.float64)[None]
                q = torch.diff(below[a.numel():].sum(0), dim=0).to(torch.float64)[None]
                kl = _kl_from_counts(p, q, (lo == hi)[None]).cpu().numpy()
            for acc, stat in zip(out, (kl, wasserstein, ks)):
                acc.append(stat)
        return tuple(np.concatenate(acc) for acc in out)
