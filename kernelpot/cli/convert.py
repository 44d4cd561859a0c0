"""``kernelpot convert``: GAP XML (QUIP) to ``.kpot`` and back, the direction told by the file suffixes."""

from __future__ import annotations

from pathlib import Path

__all__ = ["add_parser", "run"]

_KINDS = {".xml": "GAP XML", ".kpot": "kernelpot model"}


def add_parser(sub) -> None:
    convert = sub.add_parser(
        "convert", help="convert a GAP XML potential to .kpot, or a .kpot model to GAP XML",
        description="Convert between QUIP/GAP XML potentials (model.xml with its model.xml.sparseX.* files, as "
                    "gap_fit writes them) and kernelpot model files (.kpot). The direction is given by the "
                    "suffixes: model.xml -o model.kpot reads a GAP and writes it for kernelpot (terms kernelpot "
                    "lacks are refused by name); model.kpot -o model.xml writes a GAP XML for quippy and LAMMPS "
                    "pair_style quip.")
    convert.add_argument("input", type=Path, help="model to read: .xml (GAP) or .kpot")
    convert.add_argument("-o", "--output", type=Path, required=True,
                         help="model to write: .kpot (from .xml) or .xml (from .kpot)")
    convert.add_argument("--label", default=None,
                         help="GAP_params label to read when the XML holds several (default: the only one)")
    convert.add_argument("--quiet", action="store_true", help="print nothing on success")
    convert.set_defaults(handler=run)


def run(args) -> int:
    from ..potential.gap_xml import load_gap_xml, save_gap_xml
    from ..potential.serialization import load_model, save_model

    source, target = args.input.suffix.lower(), args.output.suffix.lower()
    if source not in _KINDS or target not in _KINDS or source == target:
        raise ValueError(f"convert reads .xml and writes .kpot, or reads .kpot and writes .xml; got "
                         f"{args.input.name} -> {args.output.name}")
    if not args.output.parent.is_dir():
        raise ValueError(f"the folder of the output {str(args.output)!r} does not exist")
    if source == ".xml":
        model = load_gap_xml(args.input, label=args.label)
        save_model(model, args.output, metadata=model.metadata_)
        written = [args.output]
    else:
        if args.label is not None:
            raise ValueError("--label selects a GAP inside an XML input; the input is a .kpot")
        written = save_gap_xml(load_model(args.input), args.output)
    if not args.quiet:
        model_terms = len(model.terms_) if source == ".xml" else None
        what = f" ({model_terms} terms)" if model_terms else ""
        print(f"read {_KINDS[source]} {args.input}{what}; wrote " + ", ".join(str(p) for p in written))
    return 0
