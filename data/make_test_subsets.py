"""Copy the frames the tests use from the shared rMD17 and QM7 files into data/ (run once; see data/README.md).

    python data/make_test_subsets.py /path/to/shared/data

rMD17 (CC0): for each file, only the frames the tests read, with their
original frame index in ``frames``; every key of the source npz is kept
(``coords`` Å, ``energies`` kcal/mol, ``forces`` kcal/mol/Å, ...).
QM7 from qml (MIT): the molecules the tests read (the first 400, every 71st,
and the 600 that ``tests/test_qm7.py`` draws), with their index in the
7101-molecule file as ``qm7_index``, gzipped extxyz.
"""

import shutil
import sys
from pathlib import Path

import ase.io
import numpy as np

HERE = Path(__file__).resolve().parent
RMD17_FRAMES = {
    "rmd17_aspirin_train_01": sorted(set(range(0, 1000, 33)[:30]) | set(range(8)) | {500}),
    "rmd17_aspirin_test_01": [0, 500],
    "rmd17_ethanol_train_01": list(range(40)),
    "rmd17_ethanol_test_01": list(range(40)) + [500],
    "rmd17_malonaldehyde_test_01": [0, 500],
    "rmd17_uracil_test_01": [0, 500],
}
QM7_SIZE = 7101
QM7_INDICES = sorted(set(range(400)) | set(range(0, QM7_SIZE, 71))
                     | set(np.random.default_rng(0).permutation(QM7_SIZE)[:600].tolist()))


def main(shared: Path) -> None:
    for name, frames in RMD17_FRAMES.items():
        source = np.load(shared / "rmd17" / f"{name}.npz")
        per_frame = {key: value[frames] for key, value in source.items() if value.ndim and len(value) == 1000}
        rest = {key: value for key, value in source.items() if key not in per_frame}
        np.savez_compressed(HERE / "rmd17_subset" / f"{name}.npz", frames=np.array(frames), **per_frame, **rest)
    shutil.copy(shared / "rmd17" / "LICENSE_CC0_andersx_rmd17-npz.txt", HERE / "rmd17_subset")
    molecules = ase.io.read(shared / "qm" / "qm7_qml" / "qm7_pbe0_7101.extxyz", index=":")
    assert len(molecules) == QM7_SIZE
    subset = []
    for index in QM7_INDICES:
        atoms = molecules[index]
        atoms.info["qm7_index"] = index
        subset.append(atoms)
    ase.io.write(HERE / "qm7_subset" / "qm7_pbe0_subset.extxyz.gz", subset, format="extxyz")
    shutil.copy(shared / "qm" / "qm7_qml" / "LICENSE_qml_MIT.txt", HERE / "qm7_subset")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
