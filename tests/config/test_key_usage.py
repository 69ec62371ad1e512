"""Every key of default.yaml is read by the code, consumed whole by a builder, or documented.

A key nobody reads still validates, shows in --print-config and may change the experiment
signature: editing it would create a "new" experiment that computes exactly the same thing.
The search is static (ast, so comments, docstrings and key tables do not count): a key
`a.b.c` is read where the code accesses `b.c`, `b["c"]` or `b.get("c")` under an `a` (the last
three components must match; `x[name]` with a computed name matches any component but the leaf).
"""

import ast
import importlib
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

import raycodec
from raycodec.config.loading import _defaults
from raycodec.config.schema import iter_keys

PACKAGE = Path(raycodec.__file__).parent

# Sections handed whole to one consumer (each key becomes a kwarg or entry there, so a key the
# consumer does not take fails at build time): section -> the consumer.
CONSUMED_WHOLE = {
    "encodec": "raycodec.config.schema.model_overrides",
    "seanet": "raycodec.config.schema.model_overrides",
    "rvq": "raycodec.config.schema.model_overrides",
    "losses": "raycodec.losses.builders.build_aux_losses",  # one loss per weight
    "balancer": "raycodec.losses.balancer.Balancer",
    "l1": "raycodec.losses.builders.build_aux_losses",  # cfg[name] for each losses.<name>
    "l2": "raycodec.losses.builders.build_aux_losses",
    "mrstft": "raycodec.losses.builders.build_aux_losses",
    "mel": "raycodec.losses.builders.build_aux_losses",
    "sisnr": "raycodec.losses.builders.build_aux_losses",
    "msspec": "raycodec.losses.builders.build_aux_losses",
    "msstftd": "raycodec.adversarial.builders.build_adversaries",  # cfg[name] per adversary
    "mpd": "raycodec.adversarial.builders.build_adversaries",
    "msd": "raycodec.adversarial.builders.build_adversaries",
    "optim.adam": "raycodec.adversarial.builders.build_optimizer",  # torch.optim kwargs
    "compile_kwargs": "raycodec.train.builders.compile_modules",  # torch.compile kwargs
}
# Keys that no code reads by name, and why they exist.
DOC_ONLY = {
    "label": "only enters the experiment signature (config_diff), to tell duplicates apart",
}


def _chain(node: ast.AST) -> list[str] | None:
    """`cfg.dataset[split].manifest` -> ['cfg', 'dataset', '*', 'manifest']; None otherwise."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        base = _chain(node.value)
        return None if base is None else [*base, node.attr]
    if isinstance(node, ast.Subscript):
        base = _chain(node.value)
        key = node.slice
        name = key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else "*"
        return None if base is None else [*base, name]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get" and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)):
        base = _chain(node.func.value)
        return None if base is None else [*base, node.args[0].value]
    return None


@pytest.fixture(scope="module")
def accesses() -> set[tuple[str, ...]]:
    """Every access chain in raycodec's source (the longest chains and their prefixes)."""
    found: set[tuple[str, ...]] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            chain = _chain(node)
            if chain and len(chain) > 1:
                found.add(tuple(chain))
    return found


def _is_read(key: str, accesses: set[tuple[str, ...]]) -> bool:
    parts = key.split(".")
    want = parts[-3:] if len(parts) > 1 else ["cfg", parts[0]]
    for chain in accesses:
        tail = chain[-len(want):]
        if len(tail) == len(want) and tail[-1] == want[-1] and all(
                fnmatchcase(w, c) for c, w in zip(tail[:-1], want[:-1])):
            return True
    return False


def _covered(key: str) -> bool:
    return any(key == s or key.startswith(s + ".") for s in (*CONSUMED_WHOLE, *DOC_ONLY))


def test_every_default_key_is_read_or_documented(accesses):
    keys = list(iter_keys(_defaults()[0]))
    # A section is read through its keys (`dataset.train` through dataset.train.manifest).
    leaves = [k for k in keys if not any(other.startswith(k + ".") for other in keys)]
    unread = [k for k in leaves if not _covered(k) and not _is_read(k, accesses)]
    assert not unread, (f"keys of default.yaml that no code reads: {unread}; read them, delete "
                        "them (and from schema.py, identity.py, the docs), or list them in "
                        "CONSUMED_WHOLE / DOC_ONLY here with the reason")


def test_the_lists_name_real_keys_and_consumers():
    keys = set(iter_keys(_defaults()[0]))
    assert not (set(CONSUMED_WHOLE) | set(DOC_ONLY)) - keys
    for consumer in set(CONSUMED_WHOLE.values()):
        module, _, name = consumer.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), consumer


def test_the_search_sees_reads_and_misses_non_reads(accesses):
    # The search itself: attribute, subscript, .get and computed-name reads count ...
    assert _is_read("optim.ema.decay", accesses)  # optim["ema"]["decay"] in train/builders.py
    assert _is_read("dataset.valid.num_samples", accesses)  # cfg.dataset.valid.num_samples
    assert _is_read("seed", accesses)
    # ... names in docstrings, key tables and other sections do not.
    assert not _is_read("dataset.num_workers", accesses)  # only ray.num_workers is read
    assert not _is_read("dataset.train.shuffle", accesses)
