"""Claims of "Randomized truncation": predicates and their negative controls."""

from __future__ import annotations

import numpy as np
import pytest

from bptt.claims import randomized_truncation as claims
from bptt.influence import InfluenceBalancing
from bptt.influence_training import chunk_mask, sgd

PROBLEM = InfluenceBalancing(n_units=10, n_positive=3, steps=50, target=1.0)


def test_chunk_mask_cuts_the_boundaries():
    np.testing.assert_array_equal(chunk_mask(7, 3), [1, 1, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(chunk_mask(5, 2, phase=1), [1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match="phase"):
        chunk_mask(5, 2, phase=2)


def test_full_sgd_converges_and_chunked_diverges():
    assert claims.converged(PROBLEM, sgd(PROBLEM, "full", tau=4, lr=0.02, updates=300, seed=0),
                            tolerance=0.01)
    assert sgd(PROBLEM, "chunked", tau=4, lr=0.02, updates=300, seed=0).diverged


def test_unbiased_converges_where_truncation_does_not():
    runs = {name: [sgd(PROBLEM, name, tau=4, lr=0.02, updates=400, seed=s) for s in range(10)]
            for name in ("randomized", "chunked")}
    table = claims.success_table(PROBLEM, runs, tolerance=0.01)
    assert claims.unbiased_converges_where_truncation_does_not(table, unbiased="randomized",
                                                               truncated="chunked")


@pytest.mark.negative_control
def test_negative_control_when_truncation_also_converges_the_claim_fails():
    """A problem where every unit pushes the same way: truncation has the right sign and
    (with a window covering every path) converges, so the claim must fail."""
    easy = InfluenceBalancing(n_units=3, n_positive=3, steps=50, target=1.0)
    runs = {name: [sgd(easy, name, tau=4, lr=0.005, updates=400, seed=s) for s in range(5)]
            for name in ("randomized", "full")}
    table = claims.success_table(easy, runs, tolerance=0.01)
    assert table.successes["full"] == 5
    assert not claims.unbiased_converges_where_truncation_does_not(table, unbiased="randomized",
                                                                   truncated="full")
    # and a world where the unbiased estimator does not converge (too few updates)
    few = {name: [sgd(PROBLEM, name, tau=4, lr=0.001, updates=4, seed=s) for s in range(5)]
           for name in ("randomized", "chunked")}
    few_table = claims.success_table(PROBLEM, few, tolerance=0.01)
    assert not claims.unbiased_converges_where_truncation_does_not(few_table, unbiased="randomized",
                                                                   truncated="chunked")


@pytest.mark.negative_control
def test_negative_control_smaller_error_everywhere_fails_when_one_window_loses():
    assert claims.smaller_error_everywhere([1, 2], [2, 3])
    assert not claims.smaller_error_everywhere([1, 4], [2, 3])
