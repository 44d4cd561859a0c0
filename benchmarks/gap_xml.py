"""One GAP XML model, two codes: quippy's ``Potential`` and kernelpot's :func:`load_gap_xml`, same process.

Without ``--xml``, gap_fit first fits the mlearn Si recipe (2b + SOAP l_max=6 n_max=8, E+F) on the bundled
training cells; both codes then predict energies, forces and stresses of the bundled test cells. Prints the
throughput (atoms per CPU second, best of ``--repeats``, after a warm-up), the ratio kernelpot/quippy, the
largest differences, and the load average. Set ``OMP_NUM_THREADS``/``NUMBA_NUM_THREADS`` to compare at a given
thread count (CPU time counts every thread).

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/gap_xml.py [--quick] [--xml model.xml --test frames.xyz]
"""

import argparse
import os

from ase.io import read

from kernelpot.bench.gap_cases import gap_xml_prediction


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 sparse points, 6 test cells")
    parser.add_argument("--xml", help="an existing GAP XML model instead of fitting one")
    parser.add_argument("--test", help="structures to predict (extxyz; default: the bundled mlearn Si test cells)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    frames = read(args.test, ":") if args.test else None
    rows = gap_xml_prediction(args.quick, xml=args.xml, test_frames=frames, repeats=args.repeats)
    print(rows[0].task)
    for row in rows:
        print(f"{row.metric}: kernelpot {row.kernelpot:.4g} {row.unit}, quippy {row.peer_value:.4g} {row.unit}, "
              f"ratio kernelpot/quippy {row.ratio:.2f} ({row.better} is better)")
    print(rows[0].note)
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'unset')}; load average "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
