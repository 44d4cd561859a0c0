"""Active learning: explore, score, select, label, refit (issue 5).

Import from the modules: :mod:`kernelpot.active.loop` (:class:`ActiveLearner`),
:mod:`kernelpot.active.explorers`, :mod:`kernelpot.active.strategies`,
:mod:`kernelpot.active.incremental`, :mod:`kernelpot.active.checkpoint`.
"""
