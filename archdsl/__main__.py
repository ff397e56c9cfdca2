"""`python -m archdsl`: the `archdsl` command."""

import sys

from archdsl.cli import main

sys.exit(main())
