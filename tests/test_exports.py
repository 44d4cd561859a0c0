"""Every public name resolves: each package's ``__all__``, the everyday names, the imports the README shows."""

import importlib
import pkgutil
import subprocess
import sys

import pytest

import kernelpot

PACKAGES = sorted(name for _, name, is_package in pkgutil.walk_packages(kernelpot.__path__, "kernelpot.")
                  if is_package) + ["kernelpot"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_name_of_all_imports(package):
    module = importlib.import_module(package)
    assert module.__all__, f"{package} lists no public names"
    assert len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
        assert name in dir(module)


@pytest.mark.parametrize("package", PACKAGES)
def test_unknown_names_raise_attribute_error(package):
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        importlib.import_module(package).no_such_name


def test_imports_the_readme_implies():
    from kernelpot import GAPCalculator, SparseGPR, load_model
    from kernelpot.active import ActiveLearner
    from kernelpot.models import IncrementalSparseGPR
    from kernelpot.models.gap import SparseGPR as GapSparseGPR
    from kernelpot.uncertainty import recalibrate

    assert SparseGPR is GapSparseGPR and IncrementalSparseGPR.__mro__[1] is SparseGPR
    assert callable(recalibrate) and callable(load_model) and ActiveLearner and GAPCalculator


def test_import_kernelpot_and_the_cli_parser_stay_light():
    # Lazy exports: neither `import kernelpot` nor building the command's parser loads the models' modules.
    code = ("import sys, kernelpot, kernelpot.cli; kernelpot.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.startswith(('kernelpot.models', 'kernelpot.descriptors.', "
            "'sklearn', 'numba', 'scipy.linalg'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", loaded
