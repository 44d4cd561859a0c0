"""Benchmark and example scripts refuse an unwritable output before any data are loaded or any fit starts.

benchmarks/gap_rmd17.py once lost a finished 37-minute fit because its --save-dir folder did not exist and that was
found only at the save; every long script now checks its outputs (``kernelpot.cli.options.check_output``) right
after parsing its arguments, and exits with argparse's status 2 and one line naming the option. The functions that
would load data or fit are replaced by ones that fail the test if called, so no shared data are needed.
"""

import importlib.util
import sys

import pytest
from conftest import REPO_ROOT


def _script(relative):
    """The script's module (each loaded once; scripts with dataclasses look their module up in sys.modules)."""
    name = "script_" + relative.replace("/", "_").removesuffix(".py")
    if relative == "benchmarks/long_range.py":
        name = "long_range_benchmark"  # the name tests/test_long_range_benchmark.py loads it under
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / relative)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str((REPO_ROOT / relative).parent))  # sagpr_learning_curves imports sagpr_common
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str((REPO_ROOT / relative).parent))
    return sys.modules[name]


#: script, its arguments ({missing}: a folder that does not exist), the option named in the error, the functions
#: that would load data or fit, and whether main takes argv (else it reads sys.argv).
CASES = [
    ("benchmarks/gap.py", ["--json-out", "{missing}/run.json"], "--json-out", ["bench"], False),
    ("benchmarks/long_range.py", ["--benchmark", "dimers", "--json", "{missing}/results.json"], "--json",
     ["load_dimers", "_nacl_main", "_nacl_md_main", "_smoke"], True),
    ("benchmarks/long_range.py", ["--markdown", "{missing}/results.md"], "--markdown",
     ["load_dimers", "_nacl_main", "_nacl_md_main", "_smoke"], True),
    ("benchmarks/long_range.py", ["--md-model", "{missing}/md.kpot"], "--md-model",
     ["nacl_md_data", "fit_nacl_md_model", "_nacl_md_main"], True),
    # a missing --save-dir is created (parents too); one that cannot be, below a file, is refused
    ("benchmarks/long_range.py", ["--benchmark", "nacl", "--save-dir", "{file}/models"], "--save-dir",
     ["load_nacl", "_nacl_main", "run_nacl"], True),
    ("benchmarks/long_range_dipoles.py", ["--json", "{missing}/rows.json"], "--json", ["run_dataset", "load"], True),
    ("benchmarks/long_range_dipoles.py", ["--plot", "{missing}/curves.png"], "--plot", ["run_dataset", "load"], True),
    ("examples/fit_si_gap.py", ["--every", "10", "--output", "{missing}/si.kpot"], "--output", ["read", "fit"], True),
    ("examples/qm7_learning_curve.py", ["--output", "{missing}/curve.png"], "--output", ["load_qm7"], False),
    ("examples/sagpr_learning_curves.py", ["--output", "{missing}/curves.png"], "--output",
     ["dimer_curve", "bulk_curve"], False),
]


def _no_work(*args, **kwargs):
    raise AssertionError("data were loaded or a fit started before the output was checked")


@pytest.mark.parametrize("script, argv, option, heavy, takes_argv", CASES,
                         ids=[f"{case[0].split('/')[-1]} {case[2]}" for case in CASES])
def test_unwritable_output_is_refused_before_any_work(script, argv, option, heavy, takes_argv, tmp_path, monkeypatch,
                                                      capsys):
    module = _script(script)
    for name in heavy:
        monkeypatch.setattr(module, name, _no_work)
    (tmp_path / "file").write_text("not a folder")
    argv = [a.format(missing=tmp_path / "missing", file=tmp_path / "file") for a in argv]
    with pytest.raises(SystemExit) as exit_:
        if takes_argv:
            module.main(argv)
        else:
            monkeypatch.setattr(sys, "argv", [script, *argv])
            module.main()
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert option in error and ("does not exist" in error or "Not a directory" in error), error
    assert not (tmp_path / "missing").exists()


def test_long_range_creates_a_missing_save_dir_and_loads_an_existing_md_model(tmp_path, monkeypatch):
    """A missing --save-dir is made up front (as the saves would); an existing --md-model is an input, not checked."""
    module = _script("benchmarks/long_range.py")
    monkeypatch.setattr(module, "_nacl_main", lambda args: "nacl")
    save_dir = tmp_path / "a" / "b"
    assert module.main(["--benchmark", "nacl", "--save-dir", str(save_dir)]) == {"nacl": "nacl"}
    assert save_dir.is_dir()
    existing = tmp_path / "md.kpot"
    existing.write_text("stands for a saved model")  # check_output(model=True) would refuse it as an output
    monkeypatch.setattr(module, "_nacl_md_main", lambda args: str(args.md_model))
    assert module.main(["--md-model", str(existing)]) == {"nacl_md": str(existing)}
