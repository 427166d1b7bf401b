"""``python -m vitals`` is the ``vitals`` command."""

import sys

from vitals.cli import main

sys.exit(main())
