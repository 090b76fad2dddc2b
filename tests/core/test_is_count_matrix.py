"""The one raw-counts detector shared by annotation, enrichment, the multi-hit model, loading and the pipeline."""

import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp

from noa_omics._validation import is_count_matrix


@pytest.fixture
def counts():
    rng = np.random.default_rng(0)
    return rng.poisson(1.5, size=(300, 40)).astype(np.float32)


@pytest.mark.parametrize("wrap", [np.asarray, sp.csr_matrix, sp.csc_matrix, lambda m: da.from_array(m, chunks=(50, 40))])
def test_counts_detected_in_every_storage(counts, wrap):
    assert is_count_matrix(wrap(counts))
    assert not is_count_matrix(wrap(np.log1p(counts)))


def test_negative_or_nonfinite_values_are_not_counts(counts):
    negative = counts.copy()
    negative[0, 0] = -1
    assert not is_count_matrix(negative)
    nan = counts.copy()
    nan[0, 0] = np.nan
    assert not is_count_matrix(nan)


def test_all_zero_matrix_answer_is_the_callers_choice():
    zeros = np.zeros((5, 4))
    assert is_count_matrix(zeros, empty=True)
    assert not is_count_matrix(zeros, empty=False)
    assert not is_count_matrix(sp.csr_matrix(zeros))


def test_float32_rounding_of_integers_is_tolerated():
    values = np.array([[1.0000001, 2.0], [0.0, 3.0]])
    assert is_count_matrix(values)
    assert not is_count_matrix(values + 0.01)
