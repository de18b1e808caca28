"""False-data-injection attacks: what changes, by how much, for how long, on which profiles, and errors."""

from __future__ import annotations

import numpy as np
import pytest

from bench.tasks.attacks import (
    ATTACK_KINDS,
    admissible_starts,
    attack_factors,
    duration_steps,
    inject,
    longest_loaded_run,
)

RES = 30  # minutes: default durations 3..12 h are 6..24 steps


def loads(n: int = 120, length: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positive daily-shaped loads (kW, float32) with some all-zero days and some padded (month-like) rows."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / length
    values = (0.2 + rng.uniform(0.2, 1.0, (n, 1)) * np.sin(np.pi * t) ** 2
              + 0.05 * rng.random((n, length))).astype(np.float32)
    values[:5] = 0.0  # vacant days: never eligible
    valid = np.ones((n, length), dtype=bool)
    valid[5:15, 30:] = False  # padded rows: 30 valid steps
    values[~valid] = 0.0
    return values, valid


def expected_eligible(values: np.ndarray, valid: np.ndarray, min_len: int) -> np.ndarray:
    """Brute force: a valid window of ``min_len`` steps holding positive load exists."""
    out = []
    for x, v in zip(values, valid):
        out.append(any(v[a:a + min_len].all() and (x[a:a + min_len] > 0).any()
                       for a in range(len(x) - min_len + 1)))
    return np.array(out)


@pytest.mark.parametrize("kind", ATTACK_KINDS)
def test_attack_changes_exactly_the_labelled_segments(kind):
    values, valid = loads()
    attacked, labels, segments = inject(values, valid, kind, 0.5, RES, np.random.default_rng(1))
    assert attacked.dtype == values.dtype and attacked.shape == values.shape
    eligible = expected_eligible(values, valid, 6)
    assert eligible.sum() == 115
    assert labels.sum() == 58  # round(0.5 * 115), halves up
    assert not (labels & ~eligible).any()
    # unlabelled profiles are identical bit for bit
    assert attacked[~labels].tobytes() == values[~labels].tobytes()
    assert [s.row for s in segments] == list(np.flatnonzero(labels))
    for seg in segments:
        x, y = values[seg.row], attacked[seg.row]
        assert 6 <= seg.length <= 24
        assert valid[seg.row, seg.start:seg.stop].all()
        assert (x[seg.start:seg.stop] > 0).any()
        outside = np.ones(len(x), dtype=bool)
        outside[seg.start:seg.stop] = False
        assert y[outside].tobytes() == x[outside].tobytes()
        inside = np.zeros(len(x), dtype=bool)
        inside[seg.start:seg.stop] = True
        np.testing.assert_array_equal(y != x, inside & (x != 0))
    assert (attacked >= 0).all()
    lengths = [s.length for s in segments]
    starts = [s.start for s in segments]
    assert min(lengths) < 12 and max(lengths) > 18 and len(set(starts)) > 10  # spread, not fixed


def test_scaling_ratio_is_constant_with_magnitudes_in_range():
    values, valid = loads()
    attacked, _, segments = inject(values, valid, "scaling", 0.5, RES, np.random.default_rng(2))
    signs = set()
    for seg in segments:
        span = slice(seg.start, seg.stop)
        ratio = attacked[seg.row, span].astype(np.float64) / values[seg.row, span]
        np.testing.assert_allclose(ratio, 1.0 + seg.lam, rtol=1e-6)
        assert 0.3 <= abs(seg.lam) <= 0.8  # the default range
        signs.add(np.sign(seg.lam))
    assert signs == {-1.0, 1.0}


def test_ramp_is_linear_and_reaches_lam_at_the_end():
    values, valid = loads()
    attacked, _, segments = inject(values, valid, "ramping", 0.5, RES, np.random.default_rng(3),
                                   ramp_min=0.5, ramp_max=0.9)
    signs = set()
    for seg in segments:
        span = slice(seg.start, seg.stop)
        ratio = attacked[seg.row, span].astype(np.float64) / values[seg.row, span]
        expected = 1.0 + seg.lam * np.arange(1, seg.length + 1) / seg.length
        np.testing.assert_allclose(ratio, expected, rtol=1e-6)
        assert ratio[-1] == pytest.approx(1.0 + seg.lam, rel=1e-6)
        steps = np.diff(ratio)
        np.testing.assert_allclose(steps, seg.lam / seg.length, rtol=1e-4, atol=1e-6)  # linear
        assert (steps > 0).all() if seg.lam > 0 else (steps < 0).all()
        assert 0.5 <= abs(seg.lam) <= 0.9
        signs.add(np.sign(seg.lam))
    assert signs == {-1.0, 1.0}


def test_steep_downward_attacks_clip_at_zero():
    np.testing.assert_allclose(attack_factors("ramping", 4, -2.0), [0.5, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(attack_factors("scaling", 3, -1.5), [0.0, 0.0, 0.0])
    values, valid = loads()
    attacked, labels, segments = inject(values, valid, "ramping", 1.0, RES, np.random.default_rng(4),
                                        ramp_min=2.0, ramp_max=3.0)
    assert (attacked >= 0).all()
    down = [s for s in segments if s.lam < 0]
    assert down and all(attacked[s.row, s.stop - 1] == 0.0 for s in down)


def test_eligibility_fraction_bounds_and_rounding():
    values, valid = loads(n=20)
    n_eligible = 15  # 5 zero rows
    for fraction, expected in ((0.0, 0), (1.0, n_eligible), (0.5, 8), (0.1, 2)):
        _, labels, _ = inject(values, valid, "scaling", fraction, RES, np.random.default_rng(0))
        assert labels.sum() == expected
        assert not labels[:5].any()
    # valid runs shorter than the minimum duration (3 h = 6 steps) are never attacked
    gappy = np.ones((3, 48), dtype=bool)
    gappy[0, ::5] = False  # runs of 4 valid steps
    gappy[1, 10:] = False  # one run of 10 steps...
    positive = np.ones((3, 48), dtype=np.float32)
    positive[1, :10] = 0.0  # ...without load
    _, labels, segments = inject(positive, gappy, "scaling", 1.0, RES, np.random.default_rng(0))
    np.testing.assert_array_equal(labels, [False, False, True])
    # a loaded valid run of 8 steps caps the segment at 8 steps
    short = np.zeros((1, 48), dtype=bool)
    short[0, 20:28] = True
    _, _, segments = inject(np.ones((1, 48), np.float32), short, "ramping", 1.0, RES, np.random.default_rng(0))
    assert 20 <= segments[0].start and segments[0].stop <= 28 and 6 <= segments[0].length <= 8


def test_helpers_against_brute_force():
    rng = np.random.default_rng(7)
    for _ in range(50):
        valid = rng.random(30) < 0.8
        values = np.where(rng.random(30) < 0.3, rng.random(30), 0.0)
        best = max([b - a for a in range(31) for b in range(a + 1, 31)
                    if valid[a:b].all() and (values[a:b] > 0).any()], default=0)
        assert longest_loaded_run(values[None], valid[None])[0] == best
        for length in (1, 3, 6):
            brute = [a for a in range(31 - length) if valid[a:a + length].all() and (values[a:a + length] > 0).any()]
            np.testing.assert_array_equal(admissible_starts(values, valid, length), brute)
    assert duration_steps(3, 12, 30) == (6, 24)
    assert duration_steps(3, 12, 60) == (3, 12)
    assert duration_steps(0.25, 1.0, 15) == (1, 4)


def test_deterministic_per_seed():
    values, valid = loads()
    a = inject(values, valid, "ramping", 0.5, RES, np.random.default_rng(5))
    b = inject(values, valid, "ramping", 0.5, RES, np.random.default_rng(5))
    c = inject(values, valid, "ramping", 0.5, RES, np.random.default_rng(6))
    assert a[0].tobytes() == b[0].tobytes() and a[2] == b[2]
    np.testing.assert_array_equal(a[1], b[1])
    assert (a[1] != c[1]).any()


def test_bad_arguments():
    values, valid = loads(n=10)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown attack kind"):
        inject(values, valid, "spike", 0.5, RES, rng)
    with pytest.raises(ValueError, match="unknown attack parameters"):
        inject(values, valid, "scaling", 0.5, RES, rng, magnitude=0.3)
    with pytest.raises(ValueError, match="scale_min"):
        inject(values, valid, "scaling", 0.5, RES, rng, scale_min=0.7, scale_max=0.6)
    with pytest.raises(ValueError, match="ramp_min"):
        inject(values, valid, "ramping", 0.5, RES, rng, ramp_min=-0.1)
    with pytest.raises(ValueError, match="duration_min_hours"):
        inject(values, valid, "scaling", 0.5, RES, rng, duration_min_hours=13)
    with pytest.raises(ValueError, match="no whole number"):
        inject(values, valid, "scaling", 0.5, RES, rng, duration_min_hours=0.1, duration_max_hours=0.2)
    with pytest.raises(ValueError, match="fraction"):
        inject(values, valid, "scaling", 1.5, RES, rng)
    with pytest.raises(ValueError, match="resolution"):
        inject(values, valid, "scaling", 0.5, None, rng)
    with pytest.raises(ValueError, match="rng"):
        inject(values, valid, "scaling", 0.5, RES, None)
    with pytest.raises(ValueError, match="shape"):
        inject(values, valid[:, :10], "scaling", 0.5, RES, rng)
    with pytest.raises(ValueError, match="boolean"):
        inject(values, valid.astype(int), "scaling", 0.5, RES, rng)
    bad = values.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        inject(bad, valid, "scaling", 0.5, RES, rng)


def test_ramp_shapes_by_hand():
    from bench.tasks.attacks import ramp

    np.testing.assert_allclose(ramp(4, "up"), [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(ramp(4, "up-down"), [0.5, 1.0, 1.0, 0.5])
    np.testing.assert_allclose(ramp(5, "up-down"), [1 / 3, 2 / 3, 1.0, 2 / 3, 1 / 3])
    np.testing.assert_allclose(ramp(1, "up-down"), [1.0])
    np.testing.assert_allclose(attack_factors("ramping", 4, -0.5, "up-down"), [0.75, 0.5, 0.5, 0.75])
    with pytest.raises(ValueError, match="ramp_shape"):
        ramp(4, "down")
    with pytest.raises(ValueError, match="ramp_shape"):
        inject(*loads(), "ramping", 0.5, RES, np.random.default_rng(0), ramp_shape="zigzag")


def test_up_down_ramp_rises_to_lam_in_the_middle_and_falls_back():
    values, valid = loads()
    attacked, _, segments = inject(values, valid, "ramping", 0.5, RES, np.random.default_rng(4), ramp_shape="up-down")
    for seg in segments:
        ratio = attacked[seg.row, seg.start:seg.stop].astype(np.float64) / values[seg.row, seg.start:seg.stop]
        deviation = (ratio - 1.0) / seg.lam
        half = (seg.length + 1) // 2
        np.testing.assert_allclose(deviation, np.minimum(np.arange(1, seg.length + 1),
                                                         np.arange(seg.length, 0, -1)) / half, rtol=1e-4)
        assert deviation.max() == pytest.approx(1.0, rel=1e-4) and 0.5 <= abs(seg.lam) <= 1.0


def test_implied_attack_share():
    from bench.tasks.attacks import implied_attack_share

    # a confusion matrix by hand: 30 attacked of 100, TP 24, FP 6 -> acc 0.88, precision 0.8, recall 0.8
    assert implied_attack_share(0.88, 0.8, 0.8) == pytest.approx(0.3)
    # the unified paper's Table II, proposed model: scaling and ramping rows imply about half attacked
    assert implied_attack_share(0.8444, 0.9234, 0.7729) == pytest.approx(0.534, abs=1e-3)
    assert implied_attack_share(0.8329, 0.8918, 0.7567) == pytest.approx(0.499, abs=1e-3)
    with pytest.raises(ValueError, match="precision"):
        implied_attack_share(0.9, 0.0, 0.5)
    with pytest.raises(ValueError, match="undetermined"):
        implied_attack_share(1.0, 1.0, 1.0)
