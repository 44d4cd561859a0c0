"""kernelpot: kernel-based atomistic machine learning.

The package reads like the pipeline it implements::

    structures -> descriptors -> kernels -> models -> applications
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
