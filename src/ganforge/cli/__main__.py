"""`python -m ganforge.cli` runs the command line."""

import sys

from ganforge.cli import main

sys.exit(main())
