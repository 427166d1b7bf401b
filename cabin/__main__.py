"""``python -m cabin`` is the ``cabin`` command."""

import sys

from cabin.cli import main

sys.exit(main())
