"""Provenance (claims.md, "Rules that hold for every claim": every verdict carries its numbers) and a
nightly run that measures.

- Every result file records the catalogue's revision and a hash of the rule it applied, the experiment's
  version and whether it was computed or re-read, the model's weights, dtype and device; result files
  older than these fields still load and render.
- With ``NEURON_CLAIMS_EXPERIMENT_CACHE`` (what ``scripts/nightly.sh`` sets to a fresh folder per run) a
  warm cache no longer answers for the experiments: they are computed again, while the converted models
  are read from the shared cache.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core import cache as cache_mod
from core.cache import EXPERIMENTS_ENV_VAR, cache_dir, experiment_record, note_experiment
from core.provenance import CATALOGUE_ENV_VAR, catalogue_info, experiment_summary, experiment_version
from core.results import ClaimResult, read_results, result_path
from core.zoo import models
from core.zoo import own as zoo_own
from tests import own_models as own

ROOT = Path(__file__).resolve().parents[1]
RULE = "replicated if the mean of 1..19 > 0 with interval excluding 0"  # tests/provenance_tiny/claims_p.py's

CATALOGUE = """# The claim catalogue

## ABL

| ABL-1 | ... |

## Revisions

Rules are fixed before a run.

**Revision 2 (2026-11-29), before any run under it.**
- something

**Revision 3 (2027-02-01), for a reason.**
- something else
"""


@pytest.fixture(autouse=True)
def fresh(tmp_path, monkeypatch):
    """An empty cache, no experiment cache of its own, nothing loaded or recorded in this process."""
    own.isolate(tmp_path, monkeypatch)
    monkeypatch.delenv(EXPERIMENTS_ENV_VAR, raising=False)

    def forget():
        own.forget_loaded_models()
        cache_mod._EXPERIMENTS.clear()

    forget()
    yield
    forget()


# --- the catalogue -------------------------------------------------------------------------------

def test_the_revision_is_the_last_one_of_the_revisions_section(tmp_path):
    path = tmp_path / "claims.md"
    path.write_text(CATALOGUE)
    info = catalogue_info(path)
    assert info == {"found": True, "path": str(path), "source": "given", "revision": "Revision 3 (2027-02-01)",
                    "sha256": hashlib.sha256(CATALOGUE.encode()).hexdigest()}
    path.write_text(CATALOGUE.split("## Revisions")[0])
    assert catalogue_info(path)["revision"] == "revision 1 (no Revisions section)"


def test_a_missing_catalogue_is_recorded_as_not_found(tmp_path, monkeypatch):
    monkeypatch.setenv(CATALOGUE_ENV_VAR, str(tmp_path / "nowhere" / "claims.md"))
    assert catalogue_info() == {"found": False, "looked_in": [str(tmp_path / "nowhere" / "claims.md")]}


def test_the_experiment_versions_are_those_that_key_its_cache():
    from core.abl.ablation import ABL_VERSION
    from core.bcl.experiment import BCL_VERSION, REPR_VERSION
    from core.mod.experiment import MOD_VERSION
    from core.mod.moefication import CLUSTERING_VERSION

    assert experiment_version("ABL") == {"experiment": "abl", "ABL_VERSION": ABL_VERSION,
                                         "CACHE_VERSION": cache_mod.CACHE_VERSION}
    assert experiment_version("MOD")["MOD_VERSION"] == MOD_VERSION
    assert experiment_version("MOD")["CLUSTERING_VERSION"] == CLUSTERING_VERSION
    assert (experiment_version("BCL")["BCL_VERSION"], experiment_version("BCL")["REPR_VERSION"]) == \
        (BCL_VERSION, REPR_VERSION)


def test_the_experiment_record_says_computed_re_read_or_partly():
    assert experiment_record("bcl", "m") is None
    note_experiment("bcl", "m", "/c/bcl/news.json", computed=True)
    assert experiment_record("bcl", "m")["status"] == "computed"
    note_experiment("bcl", "m", "/c/bcl/wiki.json", computed=False)
    assert experiment_record("bcl", "m")["status"] == "partly re-read"
    assert experiment_record("bcl", "m")["re_read"] == ["/c/bcl/wiki.json"]
    note_experiment("abl", "m", "/c/abl/x.npz", computed=False)
    assert experiment_record("abl", "m")["status"] == "re-read"


# --- a result file carries it --------------------------------------------------------------------

def test_a_concluded_result_records_catalogue_rule_experiment_weights_dtype_and_device(tmp_path):
    """conftest's conclude, in a pytest run of tests/provenance_tiny/claims_p.py on a tiny checkpoint."""
    (tmp_path / "claims.md").write_text(CATALOGUE)
    folder = own.save(own.causal(), tmp_path / "tiny-ckpt")
    env = dict(os.environ, NEURON_CLAIMS_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1",
               NEURON_CLAIMS_CATALOGUE=str(tmp_path / "claims.md"), PROVENANCE_TINY_MODEL=str(folder))
    env.pop(EXPERIMENTS_ENV_VAR, None)
    env.pop("PYTEST_XDIST_WORKER", None)
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/provenance_tiny/claims_p.py", "-p",
                           "no:cacheprovider", "-q", "--run-dir", str(run)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (result,), problems = read_results(run)
    assert not problems
    from core.abl.ablation import ABL_VERSION

    p = result.provenance
    assert p["catalogue"]["revision"] == "Revision 3 (2027-02-01)" and p["catalogue"]["found"]
    assert p["rule_sha256"] == hashlib.sha256(RULE.encode()).hexdigest() and result.rule == RULE
    assert p["experiment"]["ABL_VERSION"] == ABL_VERSION and p["experiment"]["status"] == "computed"
    assert p["model"]["dtype"] == "float32" and p["model"]["device"] == "cpu"
    card_key = zoo_own.own_weights_key(zoo_own.own_spec(str(folder)), folder)
    assert p["model"]["weights"] == f"files:{card_key}"
    assert "Catalogue: Revision 3 (2027-02-01). Experiments: 1 result(s) computed in this run, 0 re-read" \
        in (run / "report.md").read_text()
    assert "claims.md Revision 3 (2027-02-01)" in (run / "report.html").read_text()


def _old_result(run_dir: Path) -> Path:
    """A result file as written before provenance existed (no such key at all)."""
    fields = ClaimResult(claim="ABL-1", model="smollm2-135m", tier="small", profile="ci", verdict="replicated",
                         statistic=1.5, statistic_name="x", interval=[0.5, 2.5], sample_sizes={"n": 3},
                         seeds=[0], paper_value=None, data="d").to_dict()
    del fields["provenance"]
    path = result_path(run_dir, "ABL-1", "smollm2-135m")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(fields))
    return path


def test_an_older_result_without_provenance_still_loads_and_renders(tmp_path):
    from core.report.markdown import render_report

    path = _old_result(tmp_path / "run")
    back = ClaimResult.from_dict(json.loads(path.read_text()))
    assert back.provenance is None
    md, html = render_report(tmp_path / "run")
    assert "Catalogue: not recorded." in md.read_text()
    assert "claims.md not recorded" in html.read_text()
    assert experiment_summary([back]) == {"computed": [], "re_read": [], "unrecorded": ["ABL-1 on smollm2-135m"]}


def test_a_provenance_that_is_not_a_dict_is_refused():
    with pytest.raises(ValueError, match="provenance"):
        ClaimResult(claim="ABL-1", model="m", tier="small", profile="ci", verdict="skipped", statistic=None,
                    statistic_name="x", interval=None, sample_sizes={}, seeds=[], paper_value=None,
                    data="d", reason="r", provenance="Revision 2")


# --- a nightly run measures ----------------------------------------------------------------------

def test_a_fresh_experiment_cache_recomputes_a_warm_experiment_while_the_models_are_reused(tmp_path, monkeypatch):
    """abl_experiment on a tiny GGUF model (converted once into the models cache); its sweep is faked
    (``run_abl``: one number, counted) so that only the caching is measured. With a warm cache the
    experiment is re-read; with a fresh experiment cache (the nightly switch) it is computed again, and
    the GGUF file is not converted again."""
    from core.abl import ablation
    from core.profiles import get_profile
    from core.zoo import build

    conversions, sweeps = [], []
    real_build = build.build_folder
    monkeypatch.setattr(build, "build_folder", lambda *a, **k: conversions.append(a[0]) or real_build(*a, **k))

    class FakeSweep:
        def __init__(self, value):
            self.value = value

        def save(self, path):
            Path(path).write_text(str(self.value))

    monkeypatch.setattr(ablation, "_text_inputs", lambda *a, **k: (None, None, {}, {}, {}))
    monkeypatch.setattr(ablation, "run_abl", lambda *a, **k: sweeps.append(1) or FakeSweep(len(sweeps)))
    monkeypatch.setattr(ablation.AblationSweep, "load", staticmethod(lambda p: FakeSweep(int(Path(p).read_text()))))
    name = zoo_own.resolve(own.write_gguf(tmp_path / "tiny.gguf"))
    profile = get_profile("ci")

    def new_process():
        models.load_once.cache_clear()
        cache_mod._EXPERIMENTS.clear()

    first = ablation.abl_experiment(name, profile, progress=False)
    assert (first.value, len(sweeps), len(conversions)) == (1, 1, 1)
    assert experiment_record("abl", name)["status"] == "computed"
    new_process()
    warm = ablation.abl_experiment(name, profile, progress=False)  # what the nightly used to do
    assert (warm.value, len(sweeps)) == (1, 1)
    assert experiment_record("abl", name)["status"] == "re-read"

    new_process()
    monkeypatch.setenv(EXPERIMENTS_ENV_VAR, str(tmp_path / "nightly-1"))
    again = ablation.abl_experiment(name, profile, progress=False)
    assert (again.value, len(sweeps)) == (2, 2)  # computed again ...
    assert len(conversions) == 1  # ... on the model converted before
    record = experiment_record("abl", name)
    assert record == {"status": "computed", "re_read": [], "cache": str(tmp_path / "nightly-1" / "abl")}
    assert list((tmp_path / "nightly-1" / "abl").glob("*.npz")) and not (tmp_path / "nightly-1" / "models").exists()
    assert cache_dir("models") == tmp_path / "cache" / "models"


def test_cache_dir_sends_only_the_experiment_kinds_to_the_experiment_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(EXPERIMENTS_ENV_VAR, str(tmp_path / "exp"))
    for kind in ("abl", "mod", "bcl", "stats", "moefication", "a-new-papers-kind"):
        assert cache_dir(kind) == tmp_path / "exp" / kind
    assert cache_dir("mod", "stats") == tmp_path / "exp" / "mod" / "stats"
    for kind in cache_mod.SHARED_KINDS:
        assert cache_dir(kind) == tmp_path / "cache" / kind


def _nightly_copy(tmp_path: Path) -> Path:
    """A copy of scripts/nightly.sh in a folder whose setup.sh does nothing, whose .venv/bin/python is this
    Python on this checkout, and whose .venv/bin/pytest records the environment it ran in and writes one
    result file (its experiment re-read when the run had no experiment cache of its own)."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "nightly.sh", repo / "scripts" / "nightly.sh")
    (repo / "scripts" / "setup.sh").write_text("exit 0\n")
    bin_ = repo / ".venv" / "bin"
    bin_.mkdir(parents=True)
    (bin_ / "python").write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" "$@"\n')
    (bin_ / "pytest").write_text(f'''#!/bin/sh
while [ $# -gt 0 ]; do [ "$1" = --run-dir ] && run_dir="$2"; shift; done
cache="${{NEURON_CLAIMS_EXPERIMENT_CACHE:-}}"
exists=no; [ -n "$cache" ] && [ -d "$cache" ] && [ -z "$(ls -A "$cache")" ] && exists=empty
echo "$cache $exists" >> "{tmp_path}/pytest.log"
mkdir -p "$run_dir/results"
status=computed; [ -z "$cache" ] && status=re-read
sed "s/STATUS/$status/" "{tmp_path}/result.json" > "$run_dir/results/ABL-1__opt-1.3b.json"
''')
    for f in (bin_ / "python", bin_ / "pytest"):
        f.chmod(0o755)
    result = ClaimResult(claim="ABL-1", model="opt-1.3b", tier="full", profile="paper", verdict="replicated",
                         statistic=1.0, statistic_name="x", interval=[0.5, 1.5], sample_sizes={"n": 1},
                         seeds=[0], paper_value=None, data="d",
                         provenance={"experiment": {"experiment": "abl", "status": "STATUS"}})
    (tmp_path / "result.json").write_text(json.dumps(result.to_dict()))
    return repo


def _nightly(repo: Path, tmp_path: Path, **env):
    full = dict(os.environ, NEURON_CLAIMS_CACHE=str(tmp_path / "cache"), NIGHTLY_RESULTS=str(tmp_path / "runs"),
                **env)
    full.pop(EXPERIMENTS_ENV_VAR, None)
    return subprocess.run(["bash", str(repo / "scripts" / "nightly.sh")], env=full, capture_output=True,
                          text=True, timeout=300)


def test_nightly_sh_gives_every_run_a_fresh_experiment_cache_and_lists_what_it_re_read(tmp_path):
    repo = _nightly_copy(tmp_path)
    first, second = _nightly(repo, tmp_path), _nightly(repo, tmp_path)
    for proc in (first, second):
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "Experiments: 1 result(s) computed in this run, 0 re-read from the cache" in proc.stdout
    runs = sorted((tmp_path / "runs").iterdir())
    lines = (tmp_path / "pytest.log").read_text().splitlines()
    assert lines == [f"{runs[0].resolve()}/experiment-cache empty", f"{runs[1].resolve()}/experiment-cache empty"]
    assert not any((r / "experiment-cache").exists() for r in runs)  # removed after the run
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())

    reused = _nightly(repo, tmp_path, NIGHTLY_REUSE_EXPERIMENTS="1")
    assert reused.returncode == 0, reused.stdout[-3000:] + reused.stderr[-3000:]
    assert (tmp_path / "pytest.log").read_text().splitlines()[-1] == " no"
    assert "0 result(s) computed in this run, 1 re-read from the cache" in reused.stdout
    assert "Re-read: ABL-1 on opt-1.3b" in reused.stdout
