"""False-data-injection attacks on load profiles (in kW), seeded, for the anomaly-detection task.

The unified-model paper simulates "scaling and ramping attacks ... according to [34]" (Cui, Wang and Yue,
"Machine learning-based anomaly detection for load forecasting under cyberattacks", IEEE Trans. Smart Grid
10(5), 2019) and gives no parameter. [34] uses the attack templates of the false-data-injection literature
(Sridhar & Govindarasu's model-based attack templates, as works citing [34] describe them; the text of [34]
itself could not be consulted here): an attack alters an interval ``[t_s, t_e]`` of the load,

* **scaling**: ``x'(t) = (1 + lambda_S) x(t)`` on the interval;
* **ramping**: a deviation that grows linearly with ``t - t_s`` from the start of the interval,
  ``x'(t) = x(t) (1 + lambda_R (t - t_s))`` (the ramp-up template; a ramp-up-and-down variant rises to the middle
  of the interval and falls back by its end).

What meterbench takes from that and what it assumes (:data:`PROVENANCE`): the two template forms and their
multiplicative action on the load follow that family; [34]'s parameter ranges and attacked durations are not
known here, so the magnitudes, signs, durations and the ramp's shape below are assumed.
Here one contiguous segment ``[a, b)`` of a profile's valid steps, ``L = b - a`` steps long, is attacked:

* **scaling**: ``x'(t) = (1 + lam) x(t)`` for ``a <= t < b``; ``|lam|`` uniform in ``[scale_min, scale_max]``
  (default 0.3 .. 0.8, i.e. the segment reads 30-80 % high or low) with a random sign, so the segment is scaled
  up or down.
* **ramping**: ``x'(t) = x(t) (1 + lam r(t))`` with the ramp ``r`` rising linearly to 1: ``ramp_shape = "up"``
  (default) ``r(t) = (t - a + 1) / L``, i.e. ``lambda_R = lam / L`` per step from ``lam / L`` at the first step to
  ``lam`` at the last one; ``ramp_shape = "up-down"`` ``r(t) = min(t - a + 1, b - t) / ceil(L / 2)``, rising to
  ``lam`` in the middle and falling back. ``|lam|`` uniform in ``[ramp_min, ramp_max]`` (default 0.5 .. 1.0)
  with a random sign.

Loads stay physical: a factor ``1 + ...`` below 0 (only possible when ``scale_max`` or ``ramp_max`` exceeds 1,
never with the defaults) is clipped at 0, so a downward attack never drives a non-negative load negative; it
zeroes the step instead. Steps outside the segment, and profiles not attacked, are returned bit for bit.

Durations: ``L`` steps with ``L`` uniform over the integers in ``[ceil(60 duration_min_hours / resolution),
floor(60 duration_max_hours / resolution)]`` (default 3 .. 12 hours: 6 .. 24 steps at 30 minutes), limited
to what fits the profile: the segment must lie inside the valid steps (never on month padding or a gap) and
hold positive load somewhere, so that every attacked profile really changes. ``L`` is drawn uniformly among
the lengths for which such a placement exists (all of them for a day with some load and no gap), then the
start ``a`` uniformly among the admissible placements. A profile is *eligible* when a segment of the minimum
length fits; a profile without positive load (all zero, e.g. a vacant home) is never attacked.

:func:`inject` attacks exactly ``round(fraction * n_eligible)`` randomly chosen eligible profiles (halves
rounded up) and labels them ``True``. Draws, all from the given generator: the attacked profiles, then per
attacked profile in row order its length, start, sign and magnitude.

The attacked share: the paper does not state it; the anomaly task attacks half of the profiles, which its
Table II supports (:func:`implied_attack_share`: accuracy, precision and recall of one classifier fix the share
of positives; the proposed model's scaling and ramping rows give 0.53 and 0.50).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ATTACK_KINDS = ("scaling", "ramping")
RAMP_SHAPES = ("up", "up-down")
DEFAULT_PARAMS = {
    "scale_min": 0.3,
    "scale_max": 0.8,
    "ramp_min": 0.5,
    "ramp_max": 1.0,
    "duration_min_hours": 3.0,
    "duration_max_hours": 12.0,
    "ramp_shape": "up",
}
"""Attack magnitudes (fractions of the load), durations (hours) and the ramp's shape; see the module docstring."""

PROVENANCE = (
    "paper: scaling and ramping attacks are simulated according to its ref. [34] (Cui, Wang & Yue, IEEE Trans. "
    "Smart Grid 2019); it gives no attack parameter (Sec. IV-A-2)",
    "assumed: [34]'s templates as the literature citing it describes them (its text could not be consulted "
    "here): scaling multiplies the loads of an attacked interval [t_s, t_e] by (1 + lambda_S); ramping "
    "multiplies them by (1 + lambda_R (t - t_s)), a deviation growing linearly from the start",
    "assumed: one attacked segment per attacked daily profile, 3-12 h long, placed uniformly; |lambda_S| "
    "uniform in 0.3-0.8 and the ramp's final deviation |lambda_R L| in 0.5-1.0, each with a random sign; ramp "
    "shape 'up' (ramp_shape = 'up-down' rises and falls back)",
)
"""Where each part of the attack model comes from (printed with the anomaly task's protocol notes)."""

# the magnitude range of each kind; the duration parameters apply to both
_MAGNITUDE_KEYS = {"scaling": ("scale_min", "scale_max"), "ramping": ("ramp_min", "ramp_max")}


@dataclass(frozen=True)
class AttackSegment:
    """One injected attack: profile ``row``, steps ``[start, stop)`` and the signed magnitude ``lam``."""

    row: int
    start: int
    stop: int
    lam: float

    @property
    def length(self) -> int:
        return self.stop - self.start


def ramp(length: int, shape: str = "up") -> np.ndarray:
    """``[length]`` float64 ramp ``r`` of a ramping attack (see the module docstring): ``"up"`` rises linearly
    from ``1 / length`` to 1, ``"up-down"`` rises to 1 in the middle and falls back, ``min(k + 1, length - k) /
    ceil(length / 2)`` at step ``k``.

    Raises:
        ValueError: an unknown shape or a length below 1.
    """
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    k = np.arange(length, dtype=np.float64)
    if shape == "up":
        return (k + 1.0) / length
    if shape == "up-down":
        return np.minimum(k + 1.0, length - k) / math.ceil(length / 2)
    raise ValueError(f"unknown ramp_shape {shape!r}; known: {', '.join(RAMP_SHAPES)}")


def attack_factors(kind: str, length: int, lam: float, ramp_shape: str = "up") -> np.ndarray:
    """``[length]`` float64 multipliers of an attack segment (clipped at 0, see the module docstring)."""
    if kind == "scaling":
        factors = np.full(length, 1.0 + lam)
    elif kind == "ramping":
        factors = 1.0 + lam * ramp(length, ramp_shape)
    else:
        raise ValueError(f"unknown attack kind {kind!r}; known: {', '.join(ATTACK_KINDS)}")
    return np.maximum(factors, 0.0)


def implied_attack_share(accuracy: float, precision: float, recall: float) -> float:
    """The share ``p`` of attacked profiles implied by one classifier's accuracy, precision and recall.

    With ``TP = p R`` and ``FP = TP (1 / P - 1)``, accuracy is ``TP + (1 - p) - FP``, so
    ``p = (1 - accuracy) / (1 - R + R (1 / P - 1))``. Used to check the attacked share against published
    tables (numbers averaged over runs satisfy it only approximately).

    Raises:
        ValueError: a value outside (0, 1] for precision or recall, or accuracy outside [0, 1].
    """
    for name, value in (("precision", precision), ("recall", recall)):
        if not 0.0 < float(value) <= 1.0:
            raise ValueError(f"{name} must lie in (0, 1], got {value!r}")
    if not 0.0 <= float(accuracy) <= 1.0:
        raise ValueError(f"accuracy must lie in [0, 1], got {accuracy!r}")
    denominator = 1.0 - recall + recall * (1.0 / precision - 1.0)
    if denominator <= 0.0:
        raise ValueError("precision = recall = 1 leaves the share undetermined (every error count is 0)")
    return float((1.0 - accuracy) / denominator)


def _check_params(kind: str, params: dict) -> dict:
    """Defaults filled in and every used parameter validated; unknown names raise."""
    unknown = set(params) - set(DEFAULT_PARAMS)
    if unknown:
        raise ValueError(f"unknown attack parameters {sorted(unknown)}; known: {sorted(DEFAULT_PARAMS)}")
    if kind not in ATTACK_KINDS:
        raise ValueError(f"unknown attack kind {kind!r}; known: {', '.join(ATTACK_KINDS)}")
    merged = {**DEFAULT_PARAMS, **params}
    if merged["ramp_shape"] not in RAMP_SHAPES:
        raise ValueError(f"ramp_shape must be one of {', '.join(RAMP_SHAPES)}, got {merged['ramp_shape']!r}")
    for key in ("duration_min_hours", "duration_max_hours", *_MAGNITUDE_KEYS[kind]):
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not np.isfinite(value) or value <= 0:
            raise ValueError(f"{key} must be a positive finite number, got {value!r}")
    low, high = _MAGNITUDE_KEYS[kind]
    if merged[low] > merged[high]:
        raise ValueError(f"{low}={merged[low]} exceeds {high}={merged[high]}")
    if merged["duration_min_hours"] > merged["duration_max_hours"]:
        raise ValueError(f"duration_min_hours={merged['duration_min_hours']} exceeds "
                         f"duration_max_hours={merged['duration_max_hours']}")
    return merged


def duration_steps(duration_min_hours: float, duration_max_hours: float, resolution: int) -> tuple[int, int]:
    """The segment lengths ``(min, max)`` in steps: hours converted at ``resolution`` minutes, kept inside the
    hour bounds (ceil of the minimum, floor of the maximum).

    Raises:
        ValueError: a non-positive resolution or no whole number of steps within the bounds.
    """
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution < 1:
        raise ValueError(f"resolution must be a positive number of minutes, got {resolution!r}")
    low = max(1, math.ceil(60.0 * duration_min_hours / resolution - 1e-9))
    high = math.floor(60.0 * duration_max_hours / resolution + 1e-9)
    if low > high:
        raise ValueError(f"no whole number of {resolution}-minute steps lies between duration_min_hours="
                         f"{duration_min_hours} and duration_max_hours={duration_max_hours}")
    return low, high


def longest_loaded_run(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``[N]`` int: per profile, the length of the longest run of consecutive valid steps holding at least one
    step with positive load (0 when there is none). A segment of length ``L`` with positive load fits the
    profile exactly when ``L`` is at most this value."""
    out = np.zeros(len(values), dtype=np.int64)
    positive = valid & (values > 0)
    for i in np.flatnonzero(positive.any(axis=1)):
        edges = np.diff(np.concatenate([[0], valid[i].astype(np.int8), [0]]))
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        loaded = np.add.reduceat(positive[i].astype(np.int64), starts) > 0 if len(starts) else []
        lengths = (stops - starts)[np.asarray(loaded, dtype=bool)]
        out[i] = lengths.max() if len(lengths) else 0
    return out


def admissible_starts(values: np.ndarray, valid: np.ndarray, length: int) -> np.ndarray:
    """Start positions ``a`` of one profile (``[T]`` arrays) where ``[a, a + length)`` is all valid and holds
    positive load."""
    n_steps = len(values)
    if length > n_steps:
        return np.zeros(0, dtype=np.int64)
    invalid = np.concatenate([[0], np.cumsum(~valid)])
    loaded = np.concatenate([[0], np.cumsum(valid & (values > 0))])
    starts = np.arange(n_steps - length + 1)
    ok = (invalid[starts + length] - invalid[starts] == 0) & (loaded[starts + length] - loaded[starts] > 0)
    return starts[ok]


def inject(values_kw: np.ndarray, valid: np.ndarray, kind: str, fraction: float = 0.5,
           resolution: int | None = None, rng: np.random.Generator | None = None,
           **params: float) -> tuple[np.ndarray, np.ndarray, list[AttackSegment]]:
    """Attack a random ``fraction`` of the eligible profiles of ``values_kw`` with ``kind``.

    Args:
        values_kw: ``[N, T]`` loads in kW (non-negative physical loads; padding values are ignored).
        valid: ``[N, T]`` bool, False on padding (attacks never touch it).
        kind: ``"scaling"`` or ``"ramping"``.
        fraction: share of the eligible profiles to attack, in [0, 1]; ``round(fraction * n_eligible)``
            profiles are attacked (halves rounded up).
        resolution: minutes per step (converts the durations to steps); required.
        rng: the seeded generator of every draw; required.
        **params: any of :data:`DEFAULT_PARAMS` (those of the other attack kind are accepted and ignored).

    Returns:
        ``(attacked, labels, segments)``: ``attacked [N, T]`` with the dtype of ``values_kw`` (identical bit for
        bit outside the attacked segments), ``labels [N]`` bool (True = attacked) and one
        :class:`AttackSegment` per attacked profile, in row order.

    Raises:
        ValueError: bad shapes, non-finite valid values, an unknown kind or parameter, a fraction outside
            [0, 1], a missing resolution or rng, or durations shorter than one step.
    """
    merged = _check_params(kind, params)
    if rng is None or not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy Generator, got {rng!r}")
    if resolution is None:
        raise ValueError("resolution (minutes per step) is required")
    values = np.asarray(values_kw)
    valid = np.asarray(valid)
    if values.ndim != 2 or valid.shape != values.shape:
        raise ValueError(f"values_kw and valid must share a 2-D shape, got {values.shape} and {valid.shape}")
    if valid.dtype != np.bool_:
        raise ValueError(f"valid must be a boolean array, got {valid.dtype}")
    if values.dtype.kind != "f":
        raise ValueError(f"values_kw must be a float array, got {values.dtype}")
    if not np.isfinite(values[valid]).all():
        raise ValueError("values_kw must be finite on valid steps")
    if isinstance(fraction, bool) or not 0.0 <= float(fraction) <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction!r}")
    min_len, max_len = duration_steps(merged["duration_min_hours"], merged["duration_max_hours"], resolution)
    lam_low, lam_high = (float(merged[k]) for k in _MAGNITUDE_KEYS[kind])

    longest = longest_loaded_run(values, valid)
    eligible = np.flatnonzero(longest >= min_len)
    n_attack = int(math.floor(float(fraction) * len(eligible) + 0.5))
    rows = np.sort(rng.choice(eligible, size=n_attack, replace=False)) if n_attack else np.zeros(0, np.int64)

    attacked = values.copy()
    labels = np.zeros(len(values), dtype=bool)
    segments = []
    for row in rows:
        length = int(rng.integers(min_len, min(max_len, int(longest[row])) + 1))
        starts = admissible_starts(values[row], valid[row], length)
        start = int(starts[rng.integers(len(starts))])
        sign = 1.0 if rng.random() < 0.5 else -1.0
        lam = sign * float(rng.uniform(lam_low, lam_high))
        stop = start + length
        span = values[row, start:stop].astype(np.float64) * attack_factors(kind, length, lam, merged["ramp_shape"])
        attacked[row, start:stop] = span.astype(values.dtype)
        labels[row] = True
        segments.append(AttackSegment(int(row), start, stop, lam))
    return attacked, labels, segments
