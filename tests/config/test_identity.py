"""Experiment identity: config_diff and the 8-hex experiment signature."""

import json
import os
import re
import subprocess
import sys

from omegaconf import OmegaConf

from raycodec.config import config_diff, default_config, experiment_signature, load_config


def sig(*overrides, name=None):
    return experiment_signature(load_config(name, list(overrides)))


def test_default_signature_is_8_hex_and_empty_diff():
    assert re.fullmatch(r"[0-9a-f]{8}", sig())
    assert config_diff(default_config()) == {}


def test_signature_is_stable_across_processes():
    code = ("from raycodec.config import experiment_signature as s, load_config as c; "
            "print(s(c()), s(c('debug')))")
    seen = set()
    for seed in ("0", "1"):  # a different str hash seed must not matter
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout.split()
        seen.add(tuple(out))
    assert seen == {(sig(), sig(name="debug"))}


def test_result_affecting_keys_change_the_signature():
    base = sig()
    changed = {sig("optim.lr=1e-4"), sig("losses.l1=1.0"), sig("seanet.n_filters=16"),
               sig("model=debug"), sig("seed=1"), sig("dataset.batch_size=32"),
               sig("autocast=true")}
    assert base not in changed and len(changed) == 7


def test_excluded_keys_keep_the_signature():
    base = sig()
    for override in ("tracking.repo=/tmp/aim", "tracking.log_every=1",
                     "compile_kwargs.backend=aot_eager", "dataset.path=/data/audio",
                     "dataset.train.manifest=/data/m.parquet",
                     "ray.storage_path=/tmp/ray", "ray.address=auto", "ray.num_workers=8",
                     "ray.use_gpu=true", "checkpoint.keep_last=3", "debug.fail_at_step=5",
                     "compile=true", "balancer.monitor=false"):
        assert sig(override) == base, override


def test_label_makes_duplicates_distinct():
    assert len({sig(), sig("label=a"), sig("label=b")}) == 3
    assert sig("label=a", "optim.lr=1e-4") == sig("optim.lr=1e-4", "label=a")


def test_signature_ignores_key_order_and_number_spelling():
    cfg = load_config(None, ["optim.lr=1e-4", "losses.l1=1"])
    plain = OmegaConf.to_container(cfg, resolve=True)
    reordered = json.loads(json.dumps(dict(reversed(list(plain.items())))))
    assert experiment_signature(reordered) == experiment_signature(cfg)
    assert sig("losses.l1=1") == sig("losses.l1=1.0")


def test_config_diff_is_flat_and_complete():
    cfg = load_config("debug", ["optim.adam.betas=[0.8,0.99]", "tracking.repo=/tmp/aim"])
    diff = config_diff(cfg)
    assert diff["model"] == "debug" and diff["optim.adam.betas"] == [0.8, 0.99]
    assert diff["tracking.repo"] == "/tmp/aim"
    assert "tracking.repo" not in config_diff(cfg, result_only=True)
    assert all("." in k or k in ("model", "label", "seed") for k in diff)


def test_saved_config_keeps_its_signature(tmp_path):
    from raycodec.config import save_config

    cfg = load_config("debug", ["label=resume"])
    path = save_config(cfg, tmp_path / "config.yaml")
    assert experiment_signature(load_config(str(path))) == experiment_signature(cfg)
