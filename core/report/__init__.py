"""The report: reading a run's result and curve files and writing ``report.md`` and ``report.html``.

- :mod:`core.report.markdown`: collecting a run, the Markdown report, the figure registry and the command
  line (``python -m core.report [RUN_DIR]``, ``python -m core.report compare``).
- :mod:`core.report.html`: the HTML report.
- :mod:`core.report.history`: run metadata, run folders and the verdict history across runs.
- :mod:`core.report.compare`: comparing two runs claim by claim.

The report reads only files (``results/*.json``, ``curves/*.json``, ``run.json``); the papers' figures
are reached through the registry ``FIGURE_RENDERERS`` by module path, never imported directly.
"""
