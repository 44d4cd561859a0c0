"""GAP potentials: fitting recipe (gap_fit strings), baselines under the GAP (fixed-charge Coulomb), ASE calculator,
model files (.kpot; QUIP/GAP XML in and out), error metrics, the force-σ watch of MD runs.

Names are imported on first use (:mod:`kernelpot.utils.lazy`).
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "GAPCalculator": "calculator",
    "CoulombBaseline": "coulomb_baseline",
    "parse_charge_table": "coulomb_baseline",
    "CoreRepulsion": "core_repulsion",
    "BaselineSum": "core_repulsion",
    "PairBarrier": "core_repulsion",
    "LennardJones": "core_repulsion",
    "HydrogenBondWall": "core_repulsion",
    "UnbridgedPairWall": "core_repulsion",
    "load_model": "serialization",
    "save_model": "serialization",
    "ModelFileError": "model_file",
    "load_gap_xml": "gap_xml",
    "save_gap_xml": "gap_xml",
    "load_potential": "gap_xml",
    "GapXMLError": "gap_xml",
    "DEFAULT_GAP": "defaults",
    "DEFAULT_SIGMA": "defaults",
    "terms_from_gap_string": "recipe",
    "describe_recipe": "recipe",
    "describe_terms": "recipe",
    "parse_gap_string": "gap_string",
    "error_table": "metrics",
    "UncertaintyWatch": "watch",
    "UncertaintyExceeded": "watch",
    "ResumableMD": "dynamics",
    "MDExplosion": "dynamics",
    "GeometryGuard": "dynamics",
    "read_frames": "dynamics",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
