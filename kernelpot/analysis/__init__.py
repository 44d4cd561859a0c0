"""Analysis of MD trajectories: liquid structure (RDFs, solvation shells, coordination) and transport
(self-diffusion with uncertainties, Yeh–Hummer correction, Nernst–Einstein conductivity), with plots.

Names are imported on first use (:mod:`kernelpot.utils.lazy`).
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "RDF": "structure",
    "radial_distribution": "structure",
    "rdf_table": "structure",
    "close_pair_counts": "structure",
    "window_means": "structure",
    "Diffusion": "transport",
    "self_diffusion": "transport",
    "combine_diffusions": "transport",
    "yeh_hummer_correction": "transport",
    "periodic_self_potential": "transport",
    "nernst_einstein_conductivity": "transport",
    "YEH_HUMMER_XI": "transport",
    "plot_rdfs": "plots",
    "plot_msds": "plots",
    "plot_close_pairs": "plots",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
