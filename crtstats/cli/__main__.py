"""``python -m crtstats.cli``."""

import sys

from crtstats.cli import main

sys.exit(main())
