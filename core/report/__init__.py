"""The report: reading a run's result and curve files and writing ``report.md`` and ``report.html``.

- :mod:`core.report.collect`: collecting a run (results, curves, figures, history, comparison) once
  for both reports.
- :mod:`core.report.format`: the shared text formatting (numbers, intervals, verdicts).
- :mod:`core.report.figures`: drawing every paper's figures with the renderers of the manifest
  (:mod:`core.papers`).
- :mod:`core.report.markdown`: the Markdown report, and writing both reports of a run.
- :mod:`core.report.html`: the HTML report.
- :mod:`core.report.history`: run metadata, run folders and the verdict history across runs.
- :mod:`core.report.compare`: comparing two runs claim by claim.
- :mod:`core.report.cli`: the command line (``python -m core.report [RUN_DIR]``,
  ``python -m core.report compare``).

The report reads only files (``results/*.json``, ``curves/*.json``, ``run.json``); the papers' figures
are reached only through the manifest of papers (:data:`core.papers.PAPERS`), never imported directly.
"""
