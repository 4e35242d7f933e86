"""``python -m gowasm_exporter``: the same program as the ``gowasm-exporter`` command."""

import sys

from .cli import main

sys.exit(main())
