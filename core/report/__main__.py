"""``python -m core.report``: write a run's report, or compare two runs (see :func:`main`)."""
import sys

from core.report.cli import main

sys.exit(main())
