"""pytest-benchmark timings of the core algorithms (``tox -e bench``); :mod:`benchmark.common` holds
what several of them load."""
