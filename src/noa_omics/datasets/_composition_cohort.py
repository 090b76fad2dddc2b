r"""Simulated cohorts of per-cell labels with donor-level overdispersed composition.

Used to check :func:`noa_omics.tl.compare_composition` against known proportion shifts. Two
generators of the donor proportions :math:`\pi_s`:

- ``"dirichlet"``: :math:`\pi_s \sim \mathrm{Dirichlet}(c\,\pi_g)` around the group proportions
  :math:`\pi_g` with concentration :math:`c` (smaller :math:`c` = more donor-to-donor spread);
- ``"logistic_normal"``: :math:`\pi_s = \operatorname{softmax}(\log \pi_g + \varepsilon_s)` with
  :math:`\varepsilon_{sk} \sim N(0, \sigma^2)`.

Cell counts are then :math:`n_s \sim \mathrm{Multinomial}(N_s, \pi_s)` with :math:`N_s` drawn
uniformly between the bounds of ``cells_per_donor``. A shift multiplies the group proportion of a
cell type by a fold change and renormalises (the other types absorb it, as in a real loss).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .._vocabulary import CELL_TYPES

GENERATORS = ("dirichlet", "logistic_normal")

#: Default fine-type proportions of a normal adult testis biopsy (rough single-cell shares).
DEFAULT_PROPORTIONS: Mapping[str, float] = {
    "SSC": 0.04,
    "spermatogonia": 0.08,
    "spermatocyte": 0.18,
    "round_spermatid": 0.16,
    "elongating_spermatid": 0.12,
    "sertoli": 0.10,
    "leydig": 0.08,
    "peritubular_myoid": 0.07,
    "endothelial": 0.07,
    "macrophage": 0.05,
    "t_cell": 0.03,
    "other": 0.02,
}


def composition_cohort(
    n_donors: tuple[int, int] = (4, 4),
    *,
    proportions: Mapping[str, float] | None = None,
    shift: Mapping[str, float] | None = None,
    cells_per_donor: int | tuple[int, int] = (500, 2000),
    concentration: float = 50.0,
    sigma: float = 0.3,
    generator: str = "dirichlet",
    conditions: Sequence[str] = ("case", "control"),
    seed: int = 0,
) -> pd.DataFrame:
    """Per-cell table (``donor``, ``condition``, ``noa_cell_type``) of a simulated cohort.

    Parameters
    ----------
    n_donors
        Donors of the case and of the control condition.
    proportions
        Control-group proportions per cell type (normalised; default :data:`DEFAULT_PROPORTIONS`).
    shift
        Fold change of the case-group proportion per cell type (e.g. ``{"spermatocyte": 0.5}``),
        renormalised; None or empty = null cohort.
    cells_per_donor
        Cells per donor, or (low, high) bounds of a uniform draw.
    concentration
        Dirichlet concentration :math:`c` (``generator="dirichlet"``).
    sigma
        Standard deviation of the donor log-proportion effects (``"logistic_normal"``).
    generator
        ``"dirichlet"`` or ``"logistic_normal"``.
    conditions
        Names of the case and control conditions.
    seed
        Random seed; the same seed gives the same cohort.

    Returns
    -------
    pandas.DataFrame
        One row per cell; ``attrs["truth"]`` holds the group proportions and the shifted types.
    """
    counts, donors, sides, types, p_case, p_control, fold = simulate_counts(
        n_donors, proportions=proportions, shift=shift, cells_per_donor=cells_per_donor,
        concentration=concentration, sigma=sigma, generator=generator, conditions=conditions, seed=seed,
    )
    frames = [
        pd.DataFrame({"donor": donor, "condition": conditions[side], "noa_cell_type": np.repeat(types, row)})
        for donor, side, row in zip(donors, sides, counts)
    ]
    cells = pd.concat(frames, ignore_index=True)
    order = [t for t in CELL_TYPES if t in types] + [t for t in types if t not in CELL_TYPES]
    cells["noa_cell_type"] = pd.Categorical(cells["noa_cell_type"], categories=order)
    cells["condition"] = pd.Categorical(cells["condition"], categories=list(conditions))
    cells.attrs["truth"] = {
        "control_proportions": dict(zip(types, p_control)),
        "case_proportions": dict(zip(types, p_case)),
        "shifted": [t for t, f in zip(types, fold) if f != 1.0],
    }
    return cells


def simulate_counts(
    n_donors: tuple[int, int] = (4, 4),
    *,
    proportions: Mapping[str, float] | None = None,
    shift: Mapping[str, float] | None = None,
    cells_per_donor: int | tuple[int, int] = (500, 2000),
    concentration: float = 50.0,
    sigma: float = 0.3,
    generator: str = "dirichlet",
    conditions: Sequence[str] = ("case", "control"),
    seed: int = 0,
):
    """Donors x cell types counts of :func:`composition_cohort` (same draws, no per-cell table).

    Returns ``(counts, donors, sides, types, p_case, p_control, fold)``; ``sides`` is 0 for case
    donors and 1 for control donors.
    """
    if generator not in GENERATORS:
        raise ValueError(f"unknown generator {generator!r}; use one of {list(GENERATORS)}.")
    base = dict(proportions or DEFAULT_PROPORTIONS)
    unknown = [k for k in (shift or {}) if k not in base]
    if unknown:
        raise ValueError(f"shift names cell type(s) {unknown} that are not in the proportions {list(base)}.")
    types = list(base)
    p_control = np.array([base[t] for t in types], dtype=float)
    if (p_control <= 0).any():
        raise ValueError("every proportion must be positive.")
    p_control /= p_control.sum()
    fold = np.array([float((shift or {}).get(t, 1.0)) for t in types])
    p_case = p_control * fold
    p_case /= p_case.sum()
    low, high = (cells_per_donor, cells_per_donor) if np.isscalar(cells_per_donor) else cells_per_donor
    rng = np.random.default_rng(seed)
    rows, donors, sides = [], [], []
    for side, (n, group_p, name) in enumerate(zip(n_donors, (p_case, p_control), conditions)):
        for i in range(int(n)):
            if generator == "dirichlet":
                pi = rng.dirichlet(concentration * group_p)
            else:
                logits = np.log(group_p) + rng.normal(0.0, sigma, len(types))
                pi = np.exp(logits - logits.max())
                pi /= pi.sum()
            n_cells = int(rng.integers(int(low), int(high) + 1))
            rows.append(rng.multinomial(n_cells, pi))
            donors.append(f"{name}_{i + 1}")
            sides.append(side)
    return np.array(rows), donors, np.array(sides), types, p_case, p_control, fold
