"""``python -m crtstats``."""

import sys

from crtstats.cli import main

sys.exit(main())
