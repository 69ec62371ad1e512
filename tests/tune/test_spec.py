"""Sweep files: parsing of search-space entries and validation errors (no Ray)."""

import subprocess
import sys
from pathlib import Path

import pytest

from raycodec.config import load_config
from raycodec.tune import SweepError, cluster_fit, load_sweep, parse_param, parse_space

ROOT = Path(__file__).resolve().parents[2]


def _sweep(tmp_path, text: str) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return str(path)


BASE = """
config: debug
overrides: {optim.epochs: 3}
search:
  num_samples: 2
  space:
    adversarial.every: choice [1, 2, 3, 4]
    losses.adv: loguniform [0.5, 8]
"""


def test_entries_become_tune_domains():
    from ray.tune.search.sample import Categorical, Float, Integer

    every = parse_param("adversarial.every", "choice [1, 2, 3, 4]")
    assert every.values == (1, 2, 3, 4) and isinstance(every.domain(), Categorical)
    assert every.domain(grid=True) == {"grid_search": [1, 2, 3, 4]}
    adv = parse_param("losses.adv", {"loguniform": [0.5, 8]})
    dom = adv.domain()
    assert isinstance(dom, Float) and (dom.lower, dom.upper) == (0.5, 8.0)
    assert type(dom.get_sampler()).__name__ == "_LogUniform"
    lr = parse_param("optim.lr", "uniform [1e-5, 1e-3]")  # 1e-5: a float, not a YAML string
    assert lr.values == (1e-5, 1e-3)
    n = parse_param("x", "randint [1, 4]").domain()
    assert isinstance(n, Integer) and (n.lower, n.upper) == (1, 5)  # upper bound included
    assert parse_param("x", "grid [true, false]").domain() == {"grid_search": [True, False]}
    nested = parse_space({"losses": {"adv": "uniform [1, 2]", "feat": {"choice": [1, 2]}}})
    assert [p.key for p in nested] == ["losses.adv", "losses.feat"]


@pytest.mark.parametrize("entry, message", [
    ("between [1, 2]", "unknown kind 'between'"),
    ("loguniform [0, 8]", "loguniform needs low > 0"),
    ("uniform [4, 1]", "low must be below high"),
    ("uniform [1]", r"expected \[low, high\]"),
    ("choice []", "non-empty"),
    ("randint [1, 2.5]", "must be integers"),
    ("uniform [a, 2]", "finite numbers"),
    (3, "expected '<kind> \\[values\\]'"),
])
def test_bad_entries_are_clear_errors(entry, message):
    with pytest.raises(SweepError, match=message):
        parse_param("losses.adv", entry)


def test_shipped_sweeps_are_valid():
    debug = load_sweep("debug")
    assert debug.name == "debug_sweep"
    assert debug.trial_config({"losses.adv": 1.0}).tracking.experiment == "debug_sweep"
    assert debug.cfg.ray.num_workers == 1 and debug.cfg.ray.resources_per_worker.CPU == 0.5
    assert debug.max_t == debug.cfg.optim.epochs == 3 and debug.metric == "valid_mel"
    adv = load_sweep("adv_balance")
    keys = [p.key for p in adv.params]
    assert {"adversarial.every", "losses.adv", "losses.feat", "losses.l1",
            "losses.msspec"} <= set(keys)
    assert adv.cfg.ray.use_gpu and adv.cfg.ray.num_workers == 2 and adv.cfg.sample_rate == 24000


def test_overrides_and_sweep_overrides(tmp_path):
    path = _sweep(tmp_path, BASE)
    spec = load_sweep(path, ["optim.updates_per_epoch=2", "sweep.search.num_samples=5",
                             "sweep.scheduler.grace_period=2", "sweep.name=other"])
    assert spec.num_samples == 5 and spec.grace_period == 2 and spec.name == "other"
    assert spec.cfg.optim.updates_per_epoch == 2 and spec.cfg.optim.epochs == 3
    cfg = spec.trial_config({"losses.adv": 2.5, "adversarial.every": 3})
    assert cfg.losses.adv == 2.5 and cfg.adversarial.every == 3
    assert cfg.tracking.experiment == "other" and cfg.optim.updates_per_epoch == 2


@pytest.mark.parametrize("extra, message", [
    (["sweep.search.space.losses.advv=choice [1, 2]"],
     "unknown key 'losses.advv'; did you mean losses.adv"),
    (["sweep.search.space.adversarial.every=uniform [1, 3]"],
     "wrong type for 'adversarial.every': expected int"),
    (["sweep.search.space.adversarial.adv_loss=choice [hinge, hing]"], "bad value 'hing'"),
    (["losses.adv=2"], "'losses.adv' is both searched and fixed"),
    (["optim.lrr=1"], "unknown key 'optim.lrr'"),
    (["sweep.schedular.metric=valid_mel"], "unknown key 'schedular'.*did you mean scheduler"),
    (["sweep.scheduler.metirc=x"], "unknown key 'scheduler.metirc'"),
    (["sweep.scheduler.metric=valid_foo"], "not a validation metric"),
    (["sweep.scheduler.mode=lowest"], "mode must be min or max"),
    (["sweep.scheduler.max_t=10"], r"max_t \(10\) exceeds optim.epochs \(3\)"),
    (["sweep.scheduler.grace_period=0"], "grace_period must be an integer >= 1"),
    (["sweep.scheduler.reduction_factor=1"], "reduction_factor must be a number > 1"),
    (["sweep.search.algorithm=bayes"], "algorithm must be one of"),
    (["sweep.search.algorithm=grid"], "grid needs discrete entries"),
    (["sweep.search.num_samples=0"], "num_samples must be an integer >= 1"),
    (["sweep.resources.workers=0"], "resources.workers must be an integer >= 1"),
    (["sweep.max_concurrent_trials=0"], "max_concurrent_trials must be an integer >= 1"),
    (["sweep.name=a b"], "sweep name 'a b' may only use"),
    (["sweep.config=nope"], "unknown config 'nope'"),
    (["oops"], "not of the form key=value"),
])
def test_invalid_sweeps_name_the_problem(tmp_path, extra, message):
    with pytest.raises(SweepError, match=message):
        load_sweep(_sweep(tmp_path, BASE), extra)


def test_missing_or_unknown_sweep(tmp_path):
    with pytest.raises(SweepError, match="unknown sweep 'debg'; did you mean debug"):
        load_sweep("debg")
    with pytest.raises(SweepError, match="sweep file not found"):
        load_sweep(str(tmp_path / "none.yaml"))
    with pytest.raises(SweepError, match="must name its base training config"):
        load_sweep(_sweep(tmp_path, "search: {space: {losses.adv: 'choice [1]'}}"))
    with pytest.raises(SweepError, match="search.space must map"):
        load_sweep(_sweep(tmp_path, "config: debug\n"))


def test_expected_trials_counts_grid_points(tmp_path):
    grid = "config: debug\nsearch: {num_samples: 3, space: {losses.adv: 'grid [1, 2]', " \
           "losses.feat: 'uniform [1, 2]', adversarial.every: 'choice [1, 2, 3]'}}\n"
    assert load_sweep(_sweep(tmp_path, grid)).expected_trials() == 6
    discrete = load_sweep(_sweep(tmp_path, grid), ["sweep.search.algorithm=grid",
                                                   "sweep.search.space.losses.feat=grid [1]"])
    assert discrete.expected_trials() == 3 * 2 * 3 * 1


def test_optuna_request_without_optuna(tmp_path, monkeypatch):
    import raycodec.tune.spec as spec_module

    monkeypatch.setattr(spec_module, "optuna_installed", lambda: False)
    with pytest.raises(SweepError, match="needs the optuna package, which is not installed"):
        load_sweep(_sweep(tmp_path, BASE), ["sweep.search.algorithm=optuna"])
    auto = load_sweep(_sweep(tmp_path, BASE), ["sweep.search.algorithm=auto"])
    assert auto.algorithm == "random" and "optuna is not installed" in auto.notes[0]


def test_cluster_fit_counts_workers_and_data_cpu():
    cfg = load_config("debug", ["ray.num_workers=1", "ray.resources_per_worker={CPU: 0.5}"])
    assert cluster_fit(cfg, {"CPU": 4.0}) == 5  # (4 - 1 for data) / (0.5 + 0.1 trial actor)
    gpu = load_config("debug", ["ray.num_workers=2", "ray.use_gpu=true"])
    assert cluster_fit(gpu, {"CPU": 64.0, "GPU": 8.0}) == 4
    assert cluster_fit(gpu, {"CPU": 2.0, "GPU": 8.0}) == 1  # never 0: Tune would then wait


def test_cli_prints_sweep_and_rejects_bad_input(tmp_path):
    cli = [sys.executable, str(ROOT / "experiments" / "tune.py")]
    ok = subprocess.run([*cli, "--sweep", "debug", "--print-sweep", "optim.lr=1e-4"],
                        capture_output=True, text=True, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "losses.adv: loguniform [0.5, 8]" in ok.stdout and "optim.lr=1e-4" in ok.stdout
    bad = subprocess.run([*cli, "--sweep", "debug", "losses.advv=1"], capture_output=True,
                         text=True, cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "unknown key 'losses.advv'" in bad.stderr
