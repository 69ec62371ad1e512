"""The benchmark anchor (audiocraft's run_step replayed) computes what GANStep computes."""

import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
from audiocraft_step import AudiocraftStep  # noqa: E402
from step_check import batches, make_step  # noqa: E402

# Computed before any update: equal up to float rounding.
BEFORE_UPDATE = ["d_loss", "msspec", "l1", "mel", "sisnr", "penalty", "bandwidth",
                 "codebook_perplexity"]
# Computed after the discriminator's Adam step. Adam's first update is ~lr * sign(grad), which
# turns rounding noise in near-zero gradients into lr-sized weight gaps: a looser tolerance.
AFTER_UPDATE = ["adv", "feat", "g_loss", "ratio2"]


def test_anchor_metrics_equal_ganstep():
    ours, ref = make_step("debug"), AudiocraftStep(make_step("debug"))
    rng_a, rng_b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    for i, x in enumerate(batches(2, 2, 1, 6000, 24000, seed=3)):
        torch.manual_seed(i)
        a = ours(x, i, rng_a)
        torch.manual_seed(i)
        b = ref(x, i, rng_b)
        assert "ratio1" in b and a["skipped"] == 0.0
        tol = 1e-5 if i == 0 else 2e-2
        for key in BEFORE_UPDATE:
            assert math.isclose(a[key], b[key], rel_tol=tol, abs_tol=1e-7), (i, key, a[key], b[key])
        for key in AFTER_UPDATE:
            assert math.isclose(a[key], b[key], rel_tol=2e-2), (i, key, a[key], b[key])
    # Both took the same generator updates (up to Adam's lr-sized sign noise).
    for p, q in zip(ours.raw_model.parameters(), ref.step.raw_model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=2e-3)
