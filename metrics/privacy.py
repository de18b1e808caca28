"""Privacy of generated profiles: distance to the closest training record (DCR) and memorisation.

A model that copies its training households can score perfectly on every distribution metric. The distance to
the closest record tells: for each profile ``x`` of a set, ``DCR(x) = min_r ||x - r||_2 / sqrt(T)`` over the
training profiles ``r`` (the root-mean-square difference per step, so that values compare across
resolutions). Real held-out profiles were never seen by the model, so their DCRs are the yardstick:

* ``dcr_ratio = median DCR(generated) / median DCR(held-out)``: about 1 when generated profiles lie as far from
  the training set as unseen real ones; 0 for copies (``resample-train``); above 1 when they lie further away
  (often a quality problem rather than a privacy one).
* ``memorisation_rate``: the share of generated profiles closer to the training set than the ``quantile``
  (default 5 %) quantile of the held-out DCRs, ``q`` by construction for a model that generates like unseen
  data; 1 for copies.
* :func:`memorisation_p_value`: one-sided binomial test of "the rate is ``quantile``" against "it is larger"
  (scipy's ``binomtest``): a small p-value flags a model as memorising its training set.

All take ``real`` (held-out profiles ``[m, T]``), ``pred`` (generated ``[n, T]``) and ``train=`` (``[k, T]``);
the ``*_from_distances`` forms take the DCR vectors, so that a task computes the distances once and
subsamples them for its mean ± std.
"""

from __future__ import annotations

import numpy as np

from metrics.errors import MetricInputError, check_values

DEFAULT_QUANTILE = 0.05


def _profiles(x: np.ndarray, name: str) -> np.ndarray:
    x = check_values(np.asarray(x, dtype=np.float64), name)
    if x.ndim != 2 or len(x) == 0 or x.shape[1] == 0:
        raise MetricInputError(f"{name} must be a non-empty [N, T] array of profiles, got shape {x.shape}")
    return x


def distance_to_closest_record(query: np.ndarray, reference: np.ndarray, *, batch: int = 1024) -> np.ndarray:
    """``[N]``: for each row of ``query``, the RMS distance per step to its nearest row of ``reference``.

    The nearest row is found with the expanded squared distance (one matrix product per batch) and its distance
    is then recomputed directly, so that an exact copy scores exactly 0.
    """
    query, reference = _profiles(query, "query"), _profiles(reference, "reference")
    if query.shape[1] != reference.shape[1]:
        raise MetricInputError(f"query profiles have {query.shape[1]} steps, reference ones {reference.shape[1]}")
    ref_sq = (reference ** 2).sum(axis=1)
    out = np.empty(len(query))
    for start in range(0, len(query), batch):
        block = query[start:start + batch]
        d2 = (block ** 2).sum(axis=1)[:, None] + ref_sq[None, :] - 2.0 * block @ reference.T
        nearest = d2.argmin(axis=1)
        out[start:start + len(block)] = np.sqrt(((block - reference[nearest]) ** 2).mean(axis=1))
    return out


def _check_quantile(quantile: float) -> float:
    quantile = float(quantile)
    if not 0.0 < quantile < 1.0:
        raise MetricInputError(f"quantile must lie strictly between 0 and 1, got {quantile}")
    return quantile


def dcr_ratio_from_distances(real_dcr: np.ndarray, gen_dcr: np.ndarray) -> float:
    """``median(gen_dcr) / median(real_dcr)`` (inf when the held-out median is 0 and the generated one is not)."""
    real_median, gen_median = float(np.median(real_dcr)), float(np.median(gen_dcr))
    if real_median == 0.0:
        return 1.0 if gen_median == 0.0 else float("inf")
    return gen_median / real_median


def memorisation_rate_from_distances(real_dcr: np.ndarray, gen_dcr: np.ndarray,
                                     quantile: float = DEFAULT_QUANTILE) -> float:
    """Share of ``gen_dcr`` strictly below the ``quantile`` quantile of ``real_dcr`` (a copy, at distance 0,
    counts even when some held-out profile is itself a duplicate of a training one)."""
    threshold = float(np.quantile(real_dcr, _check_quantile(quantile)))
    gen_dcr = np.asarray(gen_dcr)
    return float(np.mean((gen_dcr < threshold) | (gen_dcr == 0.0)))


def _train(train: np.ndarray | None) -> np.ndarray:
    if train is None:
        raise MetricInputError("privacy metrics need the training profiles: pass train=")
    return train


def dcr_ratio(real: np.ndarray, pred: np.ndarray, *, mask=None, train: np.ndarray | None = None) -> float:
    """Median DCR of ``pred`` over median DCR of ``real`` (held-out), both to ``train`` (module docstring;
    ``mask`` is accepted for the one metric signature and must be None)."""
    train = _train(train)
    return dcr_ratio_from_distances(distance_to_closest_record(real, train), distance_to_closest_record(pred, train))


def memorisation_rate(real: np.ndarray, pred: np.ndarray, *, mask=None, train: np.ndarray | None = None,
                      quantile: float = DEFAULT_QUANTILE) -> float:
    """Share of ``pred`` closer to ``train`` than the ``quantile`` quantile of held-out DCRs (module docstring)."""
    train = _train(train)
    return memorisation_rate_from_distances(distance_to_closest_record(real, train),
                                            distance_to_closest_record(pred, train), quantile)


def memorisation_p_value(real_dcr: np.ndarray, gen_dcr: np.ndarray, quantile: float = DEFAULT_QUANTILE) -> float:
    """One-sided binomial p-value of the generated profiles' memorisation count against ``quantile``."""
    from scipy.stats import binomtest

    rate = memorisation_rate_from_distances(real_dcr, gen_dcr, quantile)
    n = len(gen_dcr)
    return float(binomtest(int(round(rate * n)), n, _check_quantile(quantile), alternative="greater").pvalue)
