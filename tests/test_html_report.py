"""The HTML report (core.report.html) and the figures drawn with the manifest's renderers
(core.report.figures, core.papers), on hand-made runs.

The run holds every verdict, an xfail, a skip, an error, a truncated result file, ABL curves, curves
of a paper drawn by a stand-in renderer (figures and a table), of a paper whose renderer raises, and
of an experiment without a renderer; an earlier run beside it gives the history and the comparison.
The last test opens the report in headless Chromium.
"""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from core import papers
from core.cache import atomic_path, atomic_write_json, atomic_write_text
from core.report.html import markdown_to_html
from core.report.markdown import render_report
from core.results import claim_sort_key, write_curves, write_result
from tests.test_report import CASES, FULL_PAPER, PNG_SIGNATURE, SMALL_PAPER, abl_payload, make_result

MOD_TABLE = "| subset | accuracy |\n| --- | --- |\n| code | 41.5 |\n| wiki | 38.0 |"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def use_renderer(mp: pytest.MonkeyPatch, experiment: str, render) -> None:
    """Give the paper of ``experiment`` in the manifest (core.papers.PAPERS) the renderer ``render``."""
    mp.setattr(papers, "PAPERS", tuple(replace(p, render=render) if p.experiment == experiment else p
                                       for p in papers.PAPERS))


def render_stand_in(payloads, figures_dir):
    """A stand-in renderer (MOD's here): one PNG per payload and a table."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = []
    for p in payloads:
        fig = Figure(figsize=(4, 3))
        FigureCanvasAgg(fig)
        fig.subplots().plot(p["x"], p["y"])
        path = Path(figures_dir) / f"mod-{p['model']}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        out.append({"title": f"MOD stand-in on {p['model']}", "path": path,
                    "caption": f"Curve of `{p['model']}`."})
    out.append({"title": "MOD table", "path": None, "caption": "Per-subset accuracy.",
                "markdown": MOD_TABLE})
    return out


def render_raises(payloads, figures_dir):
    raise RuntimeError("renderer broke on purpose")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    old = root / "20260101T000000Z-ci"
    write_result(old, make_result("ABL-1", "smollm2-135m", "inconclusive", statistic=0.1,
                                  interval=[-0.5, 0.7]))
    atomic_write_json(old / "run.json", {"profile": "ci", "started": "2026-01-01T00:00:00+00:00"})

    run = root / "20260102T000000Z-ci"
    for claim, model, verdict, extra in CASES:
        write_result(run, make_result(claim, model, verdict, **extra))
    atomic_write_text(run / "results" / "ABL-3__smollm2-135m.json", '{"claim": "ABL-3", "mod')
    write_curves(run, "abl__smollm2-135m", abl_payload("smollm2-135m", "causal", 0))
    for model in ("a", "b"):
        write_curves(run, f"mod__{model}", {"experiment": "mod", "model": model, "x": [0, 1, 2],
                                            "y": [3, 1, 2]})
    write_curves(run, "bcl__m", {"experiment": "bcl", "model": "m"})
    write_curves(run, "xyz__m", {"experiment": "xyz"})
    atomic_write_json(run / "run.json", {
        "profile": "ci", "device": "cuda", "gpus": ["GPU A", "GPU B"], "git_commit": "0123456789abcdef",
        "git_dirty": True, "started": "2026-01-02T00:00:00+00:00", "duration_s": 12.5,
        "versions": {"torch": "2.13.0"}})
    with pytest.MonkeyPatch.context() as mp:
        use_renderer(mp, "mod", render_stand_in)
        use_renderer(mp, "bcl", render_raises)
        md, html = render_report(run)
    return run, md.read_text(encoding="utf-8"), html.read_text(encoding="utf-8")


def test_headline_table_has_every_result(run):
    _, _, html = run
    table = re.search(r'<table id="headline".*?</table>', html, re.S).group(0)
    cells = re.findall(r'<td data-verdict="(\w+)"', table)
    assert sorted(cells) == sorted(v for _, _, v, _ in CASES)
    heads = re.findall(r"<th><code>([^<]+)</code>", table)
    assert sorted(heads) == sorted({m for _, m, _, _ in CASES})
    assert re.findall(r'<th><a href="#([^"]+)">', table) == [
        "ABL-1", "ABL-2", "ABL-4", "ABL-5", "ABL-7", "ABL-10", "MOD-1", "BCL-2"]
    assert "1.23 <span class=\"iv\">[0.500, 2.00]</span>" in table
    assert table.count("xfail: recorded contradicted") == 2
    assert "measured differs" in table


def test_one_section_per_paper_with_rule_paper_value_history(run):
    _, _, html = run
    for paper in ("ABL", "MOD", "BCL"):
        assert html.count(f'<section id="paper-{paper}">') == 1
    rows = re.findall(r'<tr data-claim="([^"]+)" data-model="([^"]+)">', html)
    assert sorted(rows) == sorted((c, m) for c, m, _, _ in CASES)
    assert html.count("Rule: replicated if both differences &gt; 0") == len({c for c, *_ in CASES})
    assert FULL_PAPER in html and SMALL_PAPER not in html
    # ABL-1 on smollm2 ran in both runs: inconclusive then replicated, this run outlined
    assert re.search(r'title="20260101T000000Z-ci \(ci\): inconclusive 0.100 \[-0.500, 0.700\]">~'
                     r'</span><span class="v-replicated current"', html)


def test_figures_embedded_and_every_paper_drawn(run):
    run_dir, md, html = run
    uris = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]+)"', html)
    forest = [alt for _, alt in uris if alt.endswith(" across models")]
    assert [alt for _, alt in uris if alt not in forest] == [
        "ABL: top1 and CE against the fraction of attention pre-out neurons pruned",
        "MOD stand-in on a", "MOD stand-in on b"]
    measured = {c for c, _, v, *rest in CASES if v in ("replicated", "contradicted", "inconclusive")}
    assert forest == [f"{c} across models" for c in sorted(measured, key=claim_sort_key)]
    for data, _ in uris:
        assert base64.b64decode(data)[:8] == PNG_SIGNATURE
    assert "<td>code</td><td>41.5</td>" in html  # the renderer's Markdown table
    for name in ("abl.png", "mod-a.png", "mod-b.png"):
        assert f"](figures/{name})" in md
    assert MOD_TABLE in md
    assert not re.search(r'(src|href)="(https?:|//)', html) and "<script" not in html


def test_problems_and_skips_listed(run):
    _, md, html = run
    problems = re.search(r'<section id="problems">.*?</section>', html, re.S).group(0)
    assert "results/ABL-3__smollm2-135m.json" in problems
    assert "RuntimeError: renderer broke on purpose" in problems
    assert "no figure renderer for experiment &#x27;xyz&#x27;" in problems
    skipped = re.search(r'<section id="skipped">.*?</section>', html, re.S).group(0)
    assert "needs package llm-foo (pip install llm-foo)" in skipped
    assert "NaN activations in layer 3" in skipped
    assert "RuntimeError: renderer broke on purpose" in md and "Figures not drawn:" in md


def test_changes_and_run_metadata(run):
    _, md, html = run
    changes = re.search(r'<section id="changes">.*?</section>', html, re.S).group(0)
    assert "20260101T000000Z-ci" in changes and "<td>inconclusive</td><td>replicated</td>" in changes
    assert "commit <code>0123456789ab</code> (with local changes)" in html
    assert "GPU A, GPU B" in html
    assert "## History" in md and "## Since the previous run" in md


def render_without_its_library(payloads, figures_dir):
    import core.no_such_module  # noqa: F401 - a plotting library that is not installed

    return []


def test_renderer_missing_its_library_is_a_problem(tmp_path, monkeypatch):
    use_renderer(monkeypatch, "mod", render_without_its_library)
    write_result(tmp_path, make_result("MOD-1", "m", "replicated"))
    write_curves(tmp_path, "mod__m", {"experiment": "mod", "model": "m"})
    md, html = render_report(tmp_path, history=0)
    assert "ModuleNotFoundError" in md.read_text() and "ModuleNotFoundError" in html.read_text()
    assert '<td data-verdict="replicated"' in html.read_text()


def test_markdown_to_html():
    out = markdown_to_html("A `x` and **b**.\n\n| h1 | h2 |\n| --- | ---: |\n| 1 \\| 2 | <3> |\n\n"
                           "- one\n- two\n\n### Head\ntext")
    assert "<p>A <code>x</code> and <b>b</b>.</p>" in out
    assert "<thead><tr><th>h1</th><th>h2</th></tr></thead>" in out
    assert "<td>1 | 2</td><td>&lt;3&gt;</td>" in out
    assert "<ul><li>one</li><li>two</li></ul>" in out and "<h4>Head</h4>\n<p>text</p>" in out


# ---------------------------------------------------------------------- end to end in a browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

_CHECK = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const t = document.getElementById('headline');
  const r = t.getBoundingClientRect(), s = getComputedStyle(t);
  document.body.setAttribute('data-check', JSON.stringify({
    images: imgs.length, loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    widths: imgs.map(i => i.naturalWidth), top: r.top, width: r.width, height: r.height,
    visible: s.visibility !== 'hidden' && s.display !== 'none', rows: t.tBodies[0].rows.length,
    viewport: window.innerHeight}));
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None,
                    reason="Chromium is not installed; install it with: apt-get install chromium")
def test_opens_in_headless_chromium(run, tmp_path):
    run_dir, _, html = run
    page = tmp_path / "report-check.html"  # the report with a check script; figures are embedded
    page.write_text(html.replace("</body>", _CHECK + "</body>"), encoding="utf-8")
    cmd = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
           "--window-size=1366,768", "--virtual-time-budget=5000"]
    proc = subprocess.run([*cmd, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                          timeout=120)
    m = re.search(r'data-check="([^"]+)"', proc.stdout)
    assert m, f"no check result in the DOM: {proc.stderr[-2000:]}"
    check = json.loads(m.group(1).replace("&quot;", '"'))
    forest = html.count('data-figure="forest__')  # one forest plot per claim measured
    assert forest > 0 and check["images"] == 3 + forest and check["loaded"] == check["images"], check
    assert min(check["widths"]) > 100, check
    assert check["visible"] and check["width"] > 400 and check["height"] > 100, check
    assert 0 <= check["top"] < check["viewport"], check  # on the first screen
    assert check["rows"] == len({c for c, *_ in CASES})

    shot = tmp_path / "shot.png"
    subprocess.run([*cmd, f"--screenshot={shot}", (run_dir / "report.html").as_uri()],
                   capture_output=True, timeout=120)
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (768, 1366) and pixels.std() > 0.05  # a drawn page, not blank
