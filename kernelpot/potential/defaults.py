"""The default GAP recipe of ``kernelpot fit`` and of the Python recipe, as plain constants.

Kept apart from :mod:`kernelpot.potential.recipe` (which builds descriptors)
so that the command's parser can show them without importing the models.
:func:`kernelpot.potential.recipe.describe_recipe` says them in words.
"""

__all__ = ["DEFAULT_GAP", "DEFAULT_SIGMA"]

# 2-body + SOAP, as in the mlearn GAP benchmark of Zuo et al., J. Phys. Chem. A 124, 731 (2020).
DEFAULT_GAP = (
    "{distance_2b cutoff=5.0 n_sparse=20 covariance_type=ard_se delta=2.0 theta_uniform=1.0 "
    "sparse_method=uniform : soap l_max=6 n_max=8 atom_sigma=0.5 cutoff=5.0 cutoff_transition_width=1.0 "
    "delta=0.2 covariance_type=dot_product zeta=4 n_sparse=1000 sparse_method=cur_points}"
)
# Noise of energies (eV/atom), forces (eV/Å) and virials (eV/atom), gap_fit's default_sigma: the default of
# `kernelpot fit --default-sigma` and of the Python recipe. The virial's 0.1 eV/atom (about 0.8 GPa on Si)
# was chosen on mlearn Si with every 5th training structure held out: against energies and forces only,
# stress RMSE 0.51 vs 0.75 GPa at the same energy and force errors (+1-2 %); gap_fit's usual 0.05 cost 5 %
# in forces there and 20 % in test energies.
DEFAULT_SIGMA = (0.002, 0.1, 0.1)
