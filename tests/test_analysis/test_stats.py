"""medssl.analysis.stats against hand computations."""
import math

import pytest

from medssl.analysis import stats


def test_describe_by_hand():
    d = stats.describe([1, 2, 3, 4])
    assert d['n'] == 4 and d['mean'] == pytest.approx(2.5)
    assert d['sd'] == pytest.approx(math.sqrt(5 / 3))
    half = 3.18244630528 * math.sqrt(5 / 3) / 2  # t_{.975, 3}
    assert (d['ci_low'], d['ci_high']) == pytest.approx((2.5 - half,
                                                         2.5 + half))
    one = stats.describe([7.])
    assert one['mean'] == 7. and math.isnan(one['sd'])
    assert math.isnan(one['ci_low'])
    assert stats.format_mean_sd_ci(one) == '7.00'
    assert stats.format_mean_sd_ci(stats.describe([1, 3])) == \
        '2.00 ± 1.41 [-10.71, 14.71]'


def test_paired_by_hand():
    # d = 2, 3, 2: mean 7/3, sd sqrt(1/3), t = (7/3) / (sqrt(1/3)/sqrt(3))
    # = 7, df 2: two-sided p = 1 - t / sqrt(2 + t^2)
    r = stats.paired_comparison([3, 5, 4], [1, 2, 2])
    assert r['mean_diff'] == pytest.approx(7 / 3)
    assert r['sd_diff'] == pytest.approx(math.sqrt(1 / 3))
    assert r['t'] == pytest.approx(7.)
    assert r['p'] == pytest.approx(1 - 7 / math.sqrt(51))
    half = 4.30265272975 * math.sqrt(1 / 3) / math.sqrt(3)  # t_{.975, 2}
    assert r['ci_low'] == pytest.approx(7 / 3 - half)
    # by seed: only the seeds both have, matched by seed not by position
    r2 = stats.paired_by_seed({0: 3, 1: 5, 2: 4, 9: 100.},
                              {2: 2, 1: 2, 0: 1, 5: -1.})
    assert r2['seeds'] == [0, 1, 2] and r2['t'] == pytest.approx(7.)
    with pytest.raises(ValueError, match='equally many'):
        stats.paired_comparison([1, 2], [1])


def test_welch_one_sided():
    t, p = stats.welch_greater([3, 4, 5], [1, 2, 3])
    assert t == pytest.approx(2 / math.sqrt(2 / 3))
    assert 0 < p < 0.05
    assert all(math.isnan(v) for v in stats.welch_greater([1.], [2., 3.]))


def test_welch_unequal_sizes_and_variances_by_hand():
    """a = 2, 4, 6, 8 (mean 5, var 20/3), b = 1, 2 (mean 1.5, var 1/2).
    Welch: se^2 = (20/3)/4 + (1/2)/2 = 23/12, t = 3.5 / sqrt(23/12),
    df = (23/12)^2 / ((5/3)^2/3 + (1/4)^2/1) (Welch-Satterthwaite),
    p = P(T_df > t). Student's pooled test would give t = 3.5 /
    sqrt(5.125 * (1/4 + 1/2)) = 1.785 with df 4."""
    from scipy import stats as sps
    t, p = stats.welch_greater([2, 4, 6, 8], [1, 2])
    t_hand = 3.5 / math.sqrt(23 / 12)
    df = (23 / 12)**2 / ((5 / 3)**2 / 3 + (1 / 4)**2 / 1)
    assert t == pytest.approx(t_hand) and t == pytest.approx(2.5281, abs=1e-4)
    assert df == pytest.approx(3.7166, abs=1e-4)
    assert p == pytest.approx(sps.t.sf(t_hand, df))
    assert p == pytest.approx(
        sps.ttest_ind([2, 4, 6, 8], [1, 2], equal_var=False,
                      alternative='greater').pvalue)
    # one-sided: the reverse hypothesis gets the other tail
    t2, p2 = stats.welch_greater([1, 2], [2, 4, 6, 8])
    assert t2 == pytest.approx(-t_hand) and p2 == pytest.approx(1 - p)
