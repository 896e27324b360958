"""``python -m packr_replay``: the command line."""

import sys

from .cli import main

sys.exit(main())
