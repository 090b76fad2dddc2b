"""Per-donor specification of the simulated cohort (:func:`noa_omics.datasets.demo_testis`).

A donor is described by a :class:`DonorSpec`: its histology (which germ stages exist and how many
germ cells there are), an optional germ-cell apoptosis programme (:class:`ApoptosisSpec`) and the
multi-hit perturbations it carries (:class:`Hits`). Specs can be written as plain dicts::

    {"donor": "D01", "condition": "control", "histology": "normal", "n_cells": 500,
     "germ_fraction": 0.6, "arrest_stage": None,
     "apoptosis": {"sets": ["apoptosis_intrinsic"], "cell_types": ["spermatocyte"],
                   "fraction": 0.3, "fold": 3.0},
     "hits": {"endocrine": 1.0, "oxidative": 1.0, "genetic_xist": True,
              "genetic_azf_loss": "c", "inflammation": 1.0, "niche": 0.0, "epigenetic": 0.0},
     "composition": {"leydig": 2.5}, "dissociation": None}

and are validated by :meth:`DonorSpec.from_dict`, which names the bad field and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .._vocabulary import CELL_TYPES, GERM_STAGES, HISTOLOGIES

#: Expected fraction of germ cells per histology when ``germ_fraction`` is None.
DEFAULT_GERM_FRACTION: dict[str, float] = {
    "normal": 0.6,
    "hypospermatogenesis": 0.2,
    "maturation_arrest": 0.4,
    "sertoli_cell_only": 0.0,
}

#: Multiplicative germ-cell depletion applied when ``germ_fraction`` is None.
GERM_DEPLETION = {"genetic_xist": 0.1, "genetic_azf_loss": 0.4}

HIT_AXES = ("endocrine", "oxidative", "inflammation", "niche", "epigenetic")
AZF_CHOICES = ("a", "b", "c", "bc", "abc")


def _fail(donor: str, message: str) -> None:
    raise ValueError(f"donor spec {donor!r}: {message}")


def _check_keys(donor: str, what: str, data: Mapping[str, Any], allowed: Sequence[str]) -> None:
    if not isinstance(data, Mapping):
        _fail(donor, f"`{what}` must be a dict, got {type(data).__name__}.")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        _fail(donor, f"unknown key(s) {unknown} in `{what}`; allowed keys: {list(allowed)}.")


def _as_float(donor: str, name: str, value: Any, *, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(donor, f"`{name}` must be a number, got {value!r}.")
    value = float(value)
    if value != value or (low is not None and value < low) or (high is not None and value > high):
        rng = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
        _fail(donor, f"`{name}` must lie in {rng}, got {value!r}.")
    return value


@dataclass(frozen=True)
class ApoptosisSpec:
    """Germ-cell apoptosis planted in a donor.

    Attributes
    ----------
    sets
        Names of the gene sets switched on (e.g. ``("apoptosis_intrinsic",)``).
    cell_types
        Germ stages whose cells can be apoptotic.
    fraction
        Fraction of the cells of ``cell_types`` that are apoptotic (``truth_apoptosis``).
    fold
        Linear fold change of the set genes in apoptotic cells (> 1).
    """

    sets: tuple[str, ...] = ("apoptosis_intrinsic",)
    cell_types: tuple[str, ...] = ("spermatogonia", "spermatocyte", "round_spermatid")
    fraction: float = 0.3
    fold: float = 3.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, donor: str = "?") -> ApoptosisSpec:
        """Validate a dict (``set`` is accepted as an alias of ``sets``)."""
        _check_keys(donor, "apoptosis", data, ("sets", "set", "cell_types", "fraction", "fold"))
        data = dict(data)
        if "set" in data:
            if "sets" in data:
                _fail(donor, "give either `apoptosis.set` or `apoptosis.sets`, not both.")
            data["sets"] = data.pop("set")
        sets = data.get("sets", cls.sets)
        sets = (sets,) if isinstance(sets, str) else tuple(sets)
        if not sets or not all(isinstance(s, str) and s for s in sets):
            _fail(donor, f"`apoptosis.sets` must be gene-set names, got {sets!r}.")
        cell_types = data.get("cell_types", cls.cell_types)
        cell_types = (cell_types,) if isinstance(cell_types, str) else tuple(cell_types)
        bad = [t for t in cell_types if t not in GERM_STAGES]
        if bad or not cell_types:
            _fail(donor, f"`apoptosis.cell_types` must be germ stages from {list(GERM_STAGES)}, got {list(cell_types)}.")
        fraction = _as_float(donor, "apoptosis.fraction", data.get("fraction", cls.fraction), low=0.0, high=1.0)
        fold = _as_float(donor, "apoptosis.fold", data.get("fold", cls.fold), low=1.0)
        return cls(sets=sets, cell_types=cell_types, fraction=fraction, fold=fold)


@dataclass(frozen=True)
class Hits:
    """Multi-hit perturbations of a donor.

    Numeric hits are effect sizes in log2 units (a gene programme changes by :math:`2^{h}`).

    Attributes
    ----------
    endocrine
        Leydig steroidogenesis genes (``endocrine_leydig_steroidogenesis``) times :math:`2^{-h}`,
        Leydig immaturity genes (``leydig_immaturity``) times :math:`2^{h}`, in Leydig cells.
    oxidative
        ``stress_oxidative`` and ``stress_heat`` genes times :math:`2^{h}` in germ and Sertoli cells.
    inflammation
        ``inflammation`` genes times :math:`2^{h}` in somatic cells; macrophage and T-cell
        abundance times :math:`1 + h`.
    niche
        ``sertoli_immaturity`` times :math:`2^{h}` and ``niche_btb`` times :math:`2^{-h}` in Sertoli
        cells; germ cells depleted by :math:`1/(1+h)` when ``germ_fraction`` is derived.
    epigenetic
        ``epigenetic_regulation`` genes times :math:`2^{h}` in germ cells.
    genetic_xist
        XIST expressed in every cell (47,XXY Klinefelter signal).
    genetic_azf_loss
        Y AZF genes set to zero: ``True`` (= ``"c"`` in human, every AZF ortholog in mouse), a
        region string (``"a"``, ``"b"``, ``"c"``, ``"bc"``, ``"abc"``) or False.
    """

    endocrine: float = 0.0
    oxidative: float = 0.0
    inflammation: float = 0.0
    niche: float = 0.0
    epigenetic: float = 0.0
    genetic_xist: bool = False
    genetic_azf_loss: bool | str = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, donor: str = "?") -> Hits:
        """Validate a dict of hits."""
        _check_keys(donor, "hits", data, HIT_AXES + ("genetic_xist", "genetic_azf_loss"))
        values: dict[str, Any] = {}
        for axis in HIT_AXES:
            if axis in data:
                values[axis] = _as_float(donor, f"hits.{axis}", data[axis], low=0.0, high=10.0)
        if "genetic_xist" in data:
            if not isinstance(data["genetic_xist"], bool):
                _fail(donor, f"`hits.genetic_xist` must be True or False, got {data['genetic_xist']!r}.")
            values["genetic_xist"] = data["genetic_xist"]
        if "genetic_azf_loss" in data:
            azf = data["genetic_azf_loss"]
            if azf is None:
                azf = False
            if not isinstance(azf, bool) and azf not in AZF_CHOICES:
                _fail(donor, f"`hits.genetic_azf_loss` must be True/False or one of {list(AZF_CHOICES)}, got {azf!r}.")
            values["genetic_azf_loss"] = azf
        return cls(**values)

    @property
    def genetic(self) -> bool:
        """Whether the donor carries a genetic hit."""
        return bool(self.genetic_xist) or bool(self.genetic_azf_loss)


@dataclass(frozen=True)
class DonorSpec:
    """One simulated donor.

    Attributes
    ----------
    donor
        Donor (= sample) id, e.g. ``"D01"``.
    condition
        Free-text condition label (``"control"``, ``"klinefelter"``, ...), ``obs["condition"]``.
    histology
        One of :data:`noa_omics._vocabulary.HISTOLOGIES`. ``sertoli_cell_only`` has no germ cells;
        ``maturation_arrest`` has none beyond ``arrest_stage``.
    n_cells
        Cells of this donor; None shares the ``n_cells`` of :func:`demo_testis` equally among the
        donors without an explicit number.
    germ_fraction
        Expected fraction of germ cells; None derives it from the histology
        (:data:`DEFAULT_GERM_FRACTION`) and the depleting hits (niche, XIST, AZF).
    arrest_stage
        Last germ stage present (maturation arrest only; default ``"spermatocyte"``).
    apoptosis
        Germ-cell apoptosis programme, or None.
    hits
        Multi-hit perturbations.
    composition
        Multipliers of the somatic cell-type abundances, e.g. ``{"leydig": 2.5}`` (Leydig hyperplasia).
    dissociation
        Strength (log2 units) of the dissociation programme; None draws it from U(0, 1).
    """

    donor: str
    condition: str = "control"
    histology: str = "normal"
    n_cells: int | None = None
    germ_fraction: float | None = None
    arrest_stage: str | None = None
    apoptosis: ApoptosisSpec | None = None
    hits: Hits = field(default_factory=Hits)
    composition: Mapping[str, float] = field(default_factory=dict)
    dissociation: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DonorSpec:
        """Build and validate a spec from a dict (see the module docstring for the schema)."""
        if isinstance(data, DonorSpec):
            return data
        if not isinstance(data, Mapping):
            raise TypeError(f"a donor spec must be a dict or DonorSpec, got {type(data).__name__}.")
        donor = data.get("donor")
        if not isinstance(donor, str) or not donor:
            raise ValueError(f"every donor spec needs a non-empty string `donor` id; got {donor!r} in {dict(data)!r}.")
        _check_keys(donor, "donor spec", data, tuple(f.name for f in cls.__dataclass_fields__.values()))
        condition = data.get("condition", "control")
        if not isinstance(condition, str) or not condition:
            _fail(donor, f"`condition` must be a non-empty string, got {condition!r}.")
        histology = data.get("histology", "normal")
        if histology not in HISTOLOGIES:
            _fail(donor, f"unknown histology {histology!r}; use one of {list(HISTOLOGIES)}.")
        n_cells = data.get("n_cells")
        if n_cells is not None and (isinstance(n_cells, bool) or not isinstance(n_cells, int) or n_cells < 1):
            _fail(donor, f"`n_cells` must be a positive integer or None, got {n_cells!r}.")
        germ_fraction = data.get("germ_fraction")
        if germ_fraction is not None:
            germ_fraction = _as_float(donor, "germ_fraction", germ_fraction, low=0.0, high=0.95)
            if histology == "sertoli_cell_only" and germ_fraction > 0:
                _fail(donor, "histology 'sertoli_cell_only' has no germ cells; set germ_fraction to 0 or None.")
        arrest_stage = data.get("arrest_stage")
        if arrest_stage is not None:
            if histology != "maturation_arrest":
                _fail(donor, f"`arrest_stage` is only used with histology 'maturation_arrest' (got {histology!r}); "
                             "remove it or change the histology.")
            if arrest_stage not in GERM_STAGES[:-1]:
                _fail(donor, f"`arrest_stage` must be one of {list(GERM_STAGES[:-1])}, got {arrest_stage!r}.")
        elif histology == "maturation_arrest":
            arrest_stage = "spermatocyte"
        apoptosis = data.get("apoptosis")
        if apoptosis is not None and not isinstance(apoptosis, ApoptosisSpec):
            apoptosis = ApoptosisSpec.from_dict(apoptosis, donor=donor)
        hits = data.get("hits") or {}
        if not isinstance(hits, Hits):
            hits = Hits.from_dict(hits, donor=donor)
        composition = data.get("composition") or {}
        if not isinstance(composition, Mapping):
            _fail(donor, f"`composition` must be a dict cell type -> multiplier, got {composition!r}.")
        somatic = [t for t in CELL_TYPES if t not in GERM_STAGES]
        bad = [t for t in composition if t not in somatic]
        if bad:
            _fail(donor, f"`composition` keys must be somatic cell types from {somatic}, got {bad}.")
        composition = {t: _as_float(donor, f"composition.{t}", v, low=0.0) for t, v in composition.items()}
        dissociation = data.get("dissociation")
        if dissociation is not None:
            dissociation = _as_float(donor, "dissociation", dissociation, low=0.0, high=10.0)
        return cls(
            donor=donor,
            condition=condition,
            histology=histology,
            n_cells=n_cells,
            germ_fraction=germ_fraction,
            arrest_stage=arrest_stage,
            apoptosis=apoptosis,
            hits=hits,
            composition=composition,
            dissociation=dissociation,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (round-trips through :meth:`from_dict`)."""
        out = asdict(self)
        out["composition"] = dict(self.composition)
        if self.apoptosis is not None:
            out["apoptosis"]["sets"] = list(self.apoptosis.sets)
            out["apoptosis"]["cell_types"] = list(self.apoptosis.cell_types)
        return out

    def expected_germ_fraction(self) -> float:
        """Germ fraction used by the simulation (explicit, or derived from histology and hits)."""
        if self.histology == "sertoli_cell_only":
            return 0.0
        if self.germ_fraction is not None:
            return self.germ_fraction
        fraction = DEFAULT_GERM_FRACTION[self.histology] / (1.0 + self.hits.niche)
        if self.hits.genetic_xist:
            fraction *= GERM_DEPLETION["genetic_xist"]
        if self.hits.genetic_azf_loss:
            fraction *= GERM_DEPLETION["genetic_azf_loss"]
        return fraction

    def last_stage(self) -> str:
        """Most advanced germ stage present."""
        return self.arrest_stage if self.histology == "maturation_arrest" else GERM_STAGES[-1]


def default_cohort() -> list[DonorSpec]:
    """The default 13-donor cohort of :func:`demo_testis`.

    ========  ====================  ====================  =========================================
    donors    condition             histology             planted truth
    ========  ====================  ====================  =========================================
    D01-D03   control               normal                physiological apoptosis (3 % of germ cells)
    D04-D05   sertoli_cell_only     sertoli_cell_only     niche hit (immature Sertoli, barrier down)
    D06-D07   maturation_arrest     maturation_arrest     arrest at spermatocyte; checkpoint +
                                                          intrinsic apoptosis in 40 % of spermatocytes
    D08-D09   hypospermatogenesis   hypospermatogenesis   all stages, few germ cells; endocrine hit
    D10       klinefelter           sertoli_cell_only     XIST, Leydig hyperplasia, endocrine hit
                                                          (germ cells scarce: SCO-like)
    D11       azfc_deletion         hypospermatogenesis   AZFc genes absent, germ depletion
    D12-D13   apoptosis_stress      normal                oxidative/heat stress + intrinsic apoptosis
                                                          in 30 % of germ cells; one with inflammation
    ========  ====================  ====================  =========================================
    """
    physiological = {"sets": ["apoptosis_intrinsic"], "cell_types": ["spermatogonia", "spermatocyte"],
                     "fraction": 0.03, "fold": 2.5}
    specs: list[dict[str, Any]] = [
        *({"donor": f"D0{i}", "condition": "control", "histology": "normal", "apoptosis": physiological}
          for i in (1, 2, 3)),
        *({"donor": f"D0{i}", "condition": "sertoli_cell_only", "histology": "sertoli_cell_only",
           "hits": {"niche": 1.5}} for i in (4, 5)),
        *({"donor": f"D0{i}", "condition": "maturation_arrest", "histology": "maturation_arrest",
           "arrest_stage": "spermatocyte",
           "apoptosis": {"sets": ["apoptosis_checkpoint", "apoptosis_intrinsic"], "cell_types": ["spermatocyte"],
                         "fraction": 0.4, "fold": 3.0}} for i in (6, 7)),
        {"donor": "D08", "condition": "hypospermatogenesis", "histology": "hypospermatogenesis",
         "hits": {"endocrine": 1.0}, "apoptosis": physiological},
        {"donor": "D09", "condition": "hypospermatogenesis", "histology": "hypospermatogenesis",
         "hits": {"endocrine": 0.7, "inflammation": 0.5}, "apoptosis": physiological},
        {"donor": "D10", "condition": "klinefelter", "histology": "sertoli_cell_only",
         "hits": {"genetic_xist": True, "endocrine": 1.5, "niche": 1.0}, "composition": {"leydig": 2.5}},
        {"donor": "D11", "condition": "azfc_deletion", "histology": "hypospermatogenesis",
         "hits": {"genetic_azf_loss": "c"}, "apoptosis": physiological},
        {"donor": "D12", "condition": "apoptosis_stress", "histology": "normal", "hits": {"oxidative": 1.5},
         "apoptosis": {"sets": ["apoptosis_intrinsic"],
                       "cell_types": ["spermatogonia", "spermatocyte", "round_spermatid"],
                       "fraction": 0.3, "fold": 3.0}},
        {"donor": "D13", "condition": "apoptosis_stress", "histology": "normal",
         "hits": {"oxidative": 1.5, "inflammation": 1.0},
         "apoptosis": {"sets": ["apoptosis_intrinsic"],
                       "cell_types": ["spermatogonia", "spermatocyte", "round_spermatid"],
                       "fraction": 0.3, "fold": 3.0}},
    ]
    return [DonorSpec.from_dict(s) for s in specs]
