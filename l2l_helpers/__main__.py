"""``python -m l2l_helpers``: the command line (see :mod:`l2l_helpers.cli`)."""

import sys

from .cli import main

sys.exit(main())
