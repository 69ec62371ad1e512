"""Residual VQ: EMA updates, k-means init, dead codes, dropout, gradients and metrics."""

import pytest
import torch

from raycodec.quantization import EuclideanCodebook, ResidualVectorQuantizer


def test_ema_update_matches_formula():
    torch.manual_seed(0)
    cb = EuclideanCodebook(dim=3, codebook_size=4, kmeans_init=False, decay=0.9,
                           threshold_ema_dead_code=0).train()
    embed0 = torch.eye(4, 3) * 5
    cb.embed.copy_(embed0)
    cb.embed_avg.copy_(embed0)
    cb.cluster_size.fill_(1.0)
    x = embed0[[0, 0, 1, 2]] + 0.1 * torch.randn(4, 3)
    q, codes, counts = cb(x)
    assert codes.tolist() == [0, 0, 1, 2]
    assert torch.equal(q, embed0[codes])  # quantized with the codebook from before the update
    expected_size = 0.9 * torch.ones(4) + 0.1 * torch.tensor([2.0, 1.0, 1.0, 0.0])
    assert torch.allclose(cb.cluster_size, expected_size)
    sums = torch.stack([x[:2].sum(0), x[2], x[3], torch.zeros(3)])
    assert torch.allclose(cb.embed_avg, 0.9 * embed0 + 0.1 * sums)
    n = expected_size.sum()
    smoothed = (expected_size + 1e-5) / (n + 4 * 1e-5) * n
    assert torch.allclose(cb.embed, cb.embed_avg / smoothed[:, None])
    assert counts.tolist() == [2.0, 1.0, 1.0, 0.0]


def test_kmeans_init_finds_the_clusters():
    torch.manual_seed(0)
    centers = torch.tensor([[10.0, 0], [-10, 0], [0, 10], [0, -10]])
    x = centers.repeat_interleave(50, 0) + 0.1 * torch.randn(200, 2)
    cb = EuclideanCodebook(dim=2, codebook_size=4, kmeans_init=True, kmeans_iters=20,
                           threshold_ema_dead_code=0).train()
    assert cb.inited.item() == 0 and torch.all(cb.embed == 0)
    cb(x)
    assert cb.inited.item() == 1
    dist = torch.cdist(centers, cb.embed).min(dim=1).values
    assert dist.max() < 0.5  # every true center has a code next to it


def test_dead_codes_are_replaced_by_batch_vectors_and_stay():
    torch.manual_seed(0)
    cb = EuclideanCodebook(dim=2, codebook_size=8, kmeans_init=False, decay=0.99,
                           threshold_ema_dead_code=2).train()
    cb.embed.copy_(torch.randn(8, 2) + 100)  # far from the data: nothing is ever picked
    cb.embed_avg.copy_(cb.embed)
    cb.cluster_size.fill_(0.5)  # all below the threshold
    x = torch.randn(64, 2)
    cb(x)
    for row in cb.embed:
        assert torch.isclose(x, row[None]).all(dim=1).any(), "replaced code not from the batch"
    # The replacement survives the next step's EMA recomputation (embed = embed_avg / size).
    before = cb.embed.clone()
    cb.eval()
    _, codes, _ = cb(x)
    assert torch.equal(cb.embed, before) and codes.unique().numel() > 1


def test_quantizer_dropout_range_and_eval_uses_all():
    rvq = ResidualVectorQuantizer(dimension=4, n_q=6, bins=16, kmeans_init=False,
                                  q_dropout=True).train()
    x = torch.randn(2, 4, 10)
    drawn = {rvq(x).codes.shape[1] for _ in range(60)}
    assert drawn == set(range(1, 7))
    rvq.eval()
    assert rvq(x).codes.shape[1] == 6
    assert ResidualVectorQuantizer(dimension=4, n_q=6, bins=16).train()(x).codes.shape[1] == 6


def test_dropout_draw_is_identical_across_replicas():
    a = ResidualVectorQuantizer(dimension=4, n_q=8, bins=16, q_dropout=True).train()
    b = ResidualVectorQuantizer(dimension=4, n_q=8, bins=16, q_dropout=True).train()
    x = torch.randn(1, 4, 5)
    assert [a(x).codes.shape[1] for _ in range(10)] == [b(x).codes.shape[1] for _ in range(10)]


def test_straight_through_and_per_layer_commitment_gradients():
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(dimension=4, n_q=3, bins=8, kmeans_init=False,
                                  threshold_ema_dead_code=0).train()
    x = torch.randn(2, 4, 16, requires_grad=True)
    res = rvq(x)
    res.x.sum().backward(retain_graph=True)
    assert torch.equal(x.grad, torch.ones_like(x))  # identity gradient through the STE
    x.grad = None
    res.penalty.backward()
    assert x.grad.abs().sum() > 0
    # Each layer's commitment loss reaches the input (residuals are built from detached codes).
    x2 = x.detach().clone().requires_grad_(True)
    rvq.eval()
    rvq.train()
    _, _, losses, _ = rvq.vq(x2, 3)
    for loss in losses:
        (g,) = torch.autograd.grad(loss, x2, retain_graph=True)
        assert g.abs().sum() > 0


def test_codebook_metrics():
    rvq = ResidualVectorQuantizer(dimension=4, n_q=2, bins=16, kmeans_init=False).eval()
    m = rvq(torch.randn(4, 4, 50)).metrics
    assert 0 < float(m["codebook_usage_q0"]) <= 1
    assert 1 <= float(m["codebook_perplexity_q1"]) <= 16
    assert float(m["codebook_usage"]) == pytest.approx(
        (float(m["codebook_usage_q0"]) + float(m["codebook_usage_q1"])) / 2)


def test_bandwidth_math():
    rvq = ResidualVectorQuantizer(n_q=32, bins=1024, frame_rate=75)
    assert rvq.bandwidth_per_quantizer == pytest.approx(0.75)
    assert [rvq.n_q_for_bandwidth(b) for b in (1.5, 3, 6, 12, 24)] == [2, 4, 8, 16, 32]
    assert rvq.n_q_for_bandwidth(None) == 32
    with pytest.raises(ValueError):
        ResidualVectorQuantizer(n_q=0)
