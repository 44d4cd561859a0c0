"""Version shims for ASE APIs that changed between the releases kernelpot supports."""

from __future__ import annotations

__all__ = ["thermalize"]


def thermalize(atoms, temperature_K: float, rng) -> None:
    """Draw Maxwell-Boltzmann momenta at ``temperature_K`` (K) into ``atoms``, in place.

    ASE 3.29 renamed ``MaxwellBoltzmannDistribution`` to ``thermalize_momenta``
    and deprecated the old name; older releases have only the old one.
    """
    try:
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # ase < 3.29
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
    thermalize_momenta(atoms, temperature_K=temperature_K, rng=rng)
