"""``python -m signaling`` is the ``signaling`` command."""

import sys

from signaling.cli import main

sys.exit(main())
