"""One spelling per concept (issue 17 item 13): renamed keywords keep working with a warning."""

from __future__ import annotations

import inspect

import pytest

import noa_omics as noa
from noa_omics._validation import renamed_arguments


def test_renamed_arguments_maps_old_to_new_with_a_future_warning():
    @renamed_arguments(seed="random_state")
    def f(*, random_state=0):
        return random_state

    assert f(random_state=3) == 3
    with pytest.warns(FutureWarning, match=r"f\(seed=...\) is deprecated; use random_state="):
        assert f(seed=5) == 5
    with pytest.raises(TypeError, match="both 'seed' and its new name 'random_state'"):
        f(seed=1, random_state=2)


@pytest.mark.parametrize(("func", "new", "old"), [
    (noa.tl.enrichment, "random_state", "seed"),
    (noa.tl.enrichment, "n_permutations", "permutation_num"),
    (noa.spatial.niche_summary, "random_state", "seed"),
    (noa.spatial.niche_summary, "n_permutations", "n_perms"),
])
def test_analysis_functions_use_one_spelling(func, new, old):
    params = inspect.signature(func).parameters
    assert new in params and old not in params


def test_seed_and_permutation_keywords_across_the_api():
    """Analysis functions say random_state and n_permutations; `seed` is left to the simulators
    (demo_testis(seed=0) is the contract) and to the command line's --seed."""
    import noa_omics.celltypes as ct

    for module in (noa.tl, noa.spatial, ct):
        for name in getattr(module, "__all__", []):
            func = getattr(module, name)
            if not callable(func) or inspect.isclass(func):
                continue
            params = inspect.signature(func).parameters
            assert "seed" not in params, f"{module.__name__}.{name} takes seed=; use random_state="
            assert "permutation_num" not in params and "n_perms" not in params, name


def test_pipeline_is_an_attribute():
    assert noa.pipeline.run_pipeline is not None
    assert "pipeline" in noa.__all__
