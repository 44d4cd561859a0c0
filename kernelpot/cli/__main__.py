"""``python -m kernelpot.cli ...`` runs the ``kernelpot`` command."""

from .parser import main

raise SystemExit(main())
