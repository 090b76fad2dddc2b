"""Shared plumbing of the plotting functions: the scanpy-style ``ax=/show=/save=`` handling and palettes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Colours of the tubule/sample histologies (colour-blind safe, Okabe-Ito).
HISTOLOGY_COLORS: Mapping[str, str] = {
    "normal": "#009E73",
    "hypospermatogenesis": "#E69F00",
    "maturation_arrest": "#D55E00",
    "sertoli_cell_only": "#CC79A7",
}

#: Colours of the apoptosis contexts (colour-blind safe, Okabe-Ito), none shared with a histology:
#: the multi-hit heatmap draws both strips side by side with one legend.
CONTEXT_COLORS: Mapping[str, str] = {
    "protective": "#F0E442",
    "irreversible": "#3B3B3B",
    "potentially_reversible": "#0072B2",
    "not_elevated": "#56B4E9",
    "indeterminate": "#BBBBBB",
}


def finish(fig: Any, axes: Any, *, show: bool | None, save: str | Path | None) -> Any:
    """Save and/or show a figure the scanpy way.

    The figure is written to ``save`` when given (150 dpi, tight box); with ``show=True`` it is
    shown and None is returned, otherwise the axes are returned for further customisation.
    """
    import matplotlib.pyplot as plt

    if save is not None:
        fig.savefig(save, dpi=150, bbox_inches="tight")
    if show:
        plt.show()
        return None
    return axes
