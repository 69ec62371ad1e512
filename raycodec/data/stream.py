"""A lazy multi-epoch stream of training segments for Ray Train.

TorchTrainer takes one Dataset and splits it across workers once; this stream holds epochs
`start_epoch..end_epoch-1` back to back, and the training loop reads `updates_per_epoch`
batches per epoch from it. The (file, offset) plan of each block is drawn inside a Ray task,
seeded by (seed, epoch, block), so nothing proportional to the whole run sits on the driver.

With `slots=(lo, hi)` the stream holds only items lo..hi-1 of every global batch of
`batch_size`: one elastic rank's slice. The draws are those of the whole stream, so the global
batch of a step is the same set of segments whatever the world size.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa

from raycodec.data.reader import draw, read_segments
from raycodec.data.segments import eligible_files, seed_key


def _plan_block(batch: dict[str, np.ndarray], *, files_ref, segment_duration: float,
                rows: int, samples_per_epoch: int, seed: int,
                slots: tuple[int, int, int] | None = None) -> pa.Table:
    from raycodec.data.reader import _file_table

    files = _file_table(files_ref)
    tables = []
    for epoch, block in zip(batch["epoch"].tolist(), batch["block"].tolist()):
        n = min(rows, samples_per_epoch - block * rows)
        rng = np.random.default_rng((int(seed), 2, int(epoch), int(block)))
        idx, offsets = draw(files, rng, n, segment_duration)
        # Globally unique ids keep the replacement draws of failed reads distinct per epoch.
        first = epoch * samples_per_epoch + block * rows
        keep = np.arange(n)
        if slots is not None:  # this rank's items of each global batch (epochs hold whole ones)
            lo, hi, size = slots
            keep = keep[((block * rows + keep) % size >= lo) & ((block * rows + keep) % size < hi)]
        tables.append(pa.table({
            "segment_id": (first + keep).astype(np.int64),
            "path": pa.array(files["path"][idx[keep]].tolist(), pa.string()),
            "sample_rate": files["sample_rate"][idx[keep]],
            "channels": files["channels"][idx[keep]],
            "frames": files["frames"][idx[keep]], "offset": offsets[keep],
        }))
    return pa.concat_tables(tables)


def epoch_stream(manifest: str | Path | pa.Table, *, start_epoch: int, end_epoch: int,
                 samples_per_epoch: int, segment_duration: float, sample_rate: int,
                 channels: int, seed: int = 0, min_segment_ratio: float = 0.5,
                 batch_size: int = 32, rows_per_task: int = 256, max_read_retries: int = 20,
                 slots: tuple[int, int] | None = None):
    """Ray Dataset of audio segments for epochs [start_epoch, end_epoch), in epoch order
    (with `slots`, only those items of every global batch of `batch_size`)."""
    import ray

    if not 0 <= start_epoch < end_epoch:
        raise ValueError(f"need 0 <= start_epoch < end_epoch, got {start_epoch}, {end_epoch}")
    if slots is not None and not (0 <= slots[0] < slots[1] <= batch_size
                                  and samples_per_epoch % batch_size == 0):
        raise ValueError(f"slots {slots} must lie in [0, batch_size={batch_size}] and "
                         f"samples_per_epoch {samples_per_epoch} hold whole batches")
    num_frames = int(round(segment_duration * sample_rate))
    files = eligible_files(manifest, segment_duration=segment_duration,
                           min_segment_ratio=min_segment_ratio, channels=channels)
    rows = max(1, min(rows_per_task, samples_per_epoch))
    blocks = math.ceil(samples_per_epoch / rows)
    files_ref = ray.put(files)
    items = [{"epoch": e, "block": b} for e in range(start_epoch, end_epoch) for b in range(blocks)]
    # One plan item per block keeps tasks small; very long runs group a few items per block.
    plan = ray.data.from_items(items, override_num_blocks=min(len(items), 10_000)).map_batches(
        _plan_block, batch_size=1, batch_format="numpy",
        fn_kwargs=dict(files_ref=files_ref, segment_duration=segment_duration, rows=rows,
                       samples_per_epoch=samples_per_epoch, seed=seed,
                       slots=None if slots is None else (*slots, batch_size)))
    share = batch_size if slots is None else slots[1] - slots[0]
    return plan.map_batches(
        read_segments, batch_size=share, batch_format="numpy", zero_copy_batch=True,
        fn_kwargs=dict(channels=channels, num_frames=num_frames, sample_rate=sample_rate,
                       segment_duration=segment_duration, seed_key=seed_key(seed, 0, True),
                       max_read_retries=max_read_retries, return_info=False,
                       files_ref=files_ref))
