"""The command line, ``python -m l2l_helpers`` (or ``l2l``): :mod:`.parser` (its grammar), :mod:`.train`
(``train``), :mod:`.main` (``evaluate``, ``list``, ``run-notebooks`` and the entry point)."""
