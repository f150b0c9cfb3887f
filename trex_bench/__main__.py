"""``python -m trex_bench …`` is ``trex-bench …`` (for machines where the package is on PYTHONPATH, not
installed)."""

import sys

from trex_bench.cli import main

sys.exit(main())
