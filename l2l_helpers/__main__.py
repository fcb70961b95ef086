"""``python -m l2l_helpers``: the command line (see :mod:`l2l_helpers.cli.main`)."""

import sys

from l2l_helpers.cli.main import main

sys.exit(main())
