"""Codebooks stay bit-identical across DDP ranks and equal full-batch single-process training."""

import torch
import torch.distributed as dist

from raycodec.quantization import ResidualVectorQuantizer
from tests.distributed_utils import run_distributed


def _quantizer(**kw):
    return ResidualVectorQuantizer(dimension=8, n_q=4, bins=32, kmeans_iters=5, **kw).train()


def _consistency_worker(rank, world_size, out_path):
    torch.manual_seed(100 + rank)  # different data and different local RNG on every rank
    rvq = _quantizer(q_dropout=True, threshold_ema_dead_code=2)
    initial = [layer._codebook.embed.clone() for layer in rvq.vq.layers]
    for _ in range(6):
        rvq(torch.randn(3, 8, 20) * (1 + rank))
    state = torch.cat([b.flatten() for b in rvq.buffers()])
    gathered = [torch.empty_like(state) for _ in range(world_size)]
    dist.all_gather(gathered, state)
    if rank == 0:
        changed = any(not torch.equal(a, layer._codebook.embed)
                      for a, layer in zip(initial, rvq.vq.layers))
        torch.save({"states": gathered, "changed": changed}, out_path)


def test_codebooks_bit_identical_across_ranks(tmp_path):
    out = tmp_path / "out.pt"
    run_distributed(_consistency_worker, 2, str(out))
    result = torch.load(out)
    assert result["changed"]
    assert torch.equal(result["states"][0], result["states"][1])


def _equivalence_worker(rank, world_size, out_path, data):
    rvq = _quantizer(kmeans_init=False, threshold_ema_dead_code=0)
    rvq.load_state_dict(torch.load(out_path + ".init"))
    half = data.shape[1] // world_size
    for step in range(data.shape[0]):
        rvq(data[step, rank * half:(rank + 1) * half])
    if rank == 0:
        torch.save(rvq.state_dict(), out_path)


def test_two_ranks_on_half_batches_equal_one_process_on_full_batch(tmp_path):
    torch.manual_seed(0)
    data = torch.randn(4, 6, 8, 20)  # 4 steps of a batch of 6
    reference = _quantizer(kmeans_init=False, threshold_ema_dead_code=0)
    out = str(tmp_path / "ddp.pt")
    torch.save(reference.state_dict(), out + ".init")
    for step in range(4):
        reference(data[step])
    run_distributed(_equivalence_worker, 2, out, data)
    ddp_state = torch.load(out)
    for key, value in reference.state_dict().items():
        assert torch.allclose(ddp_state[key], value, atol=1e-5), key
