"""Freeze qmllib's FCHL19 features for tests/test_fchl19.py (run from the repository root).

Made with qmllib 1.2.0 (``qmllib.representations.generate_fchl19``), numpy 2.4,
on rMD17 ethanol (test split 01, frame 0) and the first QM7 molecule with S (``0215.xyz``),
for the default parameters and for a second set with ``nFourier=2``.
"""

from pathlib import Path

import numpy as np
import qmllib
from ase.io import read
from qmllib.representations import generate_fchl19

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2].parent / "shared" / "data"
ELEMENTS = [1, 6, 7, 8, 16]
SECOND = dict(nRs2=10, nRs3=8, nFourier=2, rcut=5.0, acut=4.0, zeta=1.5)


def main():
    ethanol = np.load(DATA / "rmd17" / "rmd17_ethanol_test_01.npz")
    qm7 = [m for m in read(DATA / "qm" / "qm7_qml" / "qm7_pbe0_7101.extxyz", ":2000") if 16 in m.numbers][0]
    numbers = [ethanol["nuclear_charges"].astype(np.int64), qm7.numbers]
    positions = [ethanol["coords"][0], qm7.positions]
    default = [generate_fchl19(z, r, elements=ELEMENTS) for z, r in zip(numbers, positions)]
    second = [generate_fchl19(z, r, elements=ELEMENTS, **SECOND) for z, r in zip(numbers, positions)]
    np.savez_compressed(
        HERE / "fchl19_qmllib.npz",
        numbers=np.concatenate(numbers),
        positions=np.concatenate(positions),
        counts=np.array([len(z) for z in numbers]),
        default=np.concatenate(default),
        second=np.concatenate(second),
        qmllib_version=qmllib.__version__ if hasattr(qmllib, "__version__") else "1.2.0",
        qm7_name=qm7.info["name"],
    )


if __name__ == "__main__":
    main()
