"""Chunked encode/decode with bounded memory: the model never sees the whole waveform.

Models without segments (the causal 24 kHz presets) run on overlapping chunks: each chunk of
`chunk` seconds is extended by `context` seconds on both sides (clipped to the file), encoded or
decoded, and only the frames/samples of its core are kept. Boundaries fall on frame boundaries,
so the codes of a chunk line up with those of the whole file; the context lets the convolutions
and the LSTM warm up, which keeps the result within a small margin of whole-file processing.

Segmented models (the 48 kHz preset) are processed one segment at a time, exactly as
`EncodecModel.encode` splits them, with the overlap-add of `decode` done incrementally.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from raycodec.models import EncodecModel


def num_frames(model: EncodecModel, length: int) -> int:
    """Frames `model.encode` produces for `length` samples."""
    if model.segment_length is None:
        return math.ceil(length / model.hop_length)
    return sum(math.ceil(min(model.segment_length, length - off) / model.hop_length)
               for off in model.segment_offsets(length))


def plan_chunks(total: int, chunk: int, context: int) -> list[tuple[int, int, int, int]]:
    """(core_start, core_stop, start, stop) spans covering [0, total), context clipped."""
    chunk = max(1, chunk)
    return [(a, min(a + chunk, total), max(0, a - context), min(total, a + chunk + context))
            for a in range(0, total, chunk)]


def _frames(model: EncodecModel, seconds: float) -> int:
    return max(1, round(seconds * model.sample_rate / model.hop_length))


def _device(model: EncodecModel) -> torch.device:
    # Chunks go to the model's device (`--device cuda`) and results come back to the CPU.
    return next(model.parameters()).device


def _pad_to_hop(x: torch.Tensor, hop: int) -> torch.Tensor:
    # encode() needs at least one frame; a shorter tail only happens for very short files.
    return torch.nn.functional.pad(x, (0, hop - x.shape[-1])) if x.shape[-1] < hop else x


@torch.inference_mode()
def encode_chunks(model: EncodecModel, read: Callable[[int, int], torch.Tensor], length: int,
                  bandwidth: float | None, chunk: float = 10.0, context: float = 1.0
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield (codes [K, n], scale or None) in order; `read(a, b)` gives samples [C, b - a]."""
    hop, dev = model.hop_length, _device(model)
    if model.segment_length is not None:
        for off in model.segment_offsets(length):
            x = _pad_to_hop(read(off, min(length, off + model.segment_length)), hop).to(dev)
            codes, scale = model.encode_segment(x[None], bandwidth)
            yield codes[0].cpu(), (None if scale is None else scale[0, 0].cpu())
        return
    total = num_frames(model, length)
    for a, b, s, e in plan_chunks(total, _frames(model, chunk), _frames(model, context)):
        x = _pad_to_hop(read(s * hop, min(length, e * hop)), hop).to(dev)
        codes, _ = model.encode(x[None], bandwidth)
        yield codes[0, :, a - s: b - s].cpu(), None


@torch.inference_mode()
def decode_chunks(model: EncodecModel, get_codes: Callable[[int, int], torch.Tensor],
                  length: int, scales: list[float] | None = None, chunk: float = 10.0,
                  context: float = 1.0) -> Iterator[torch.Tensor]:
    """Yield decoded audio [C, n] in order, `length` samples in all; `get_codes(f0, f1)`
    returns codes [K, f1 - f0]."""
    hop = model.hop_length
    total = num_frames(model, length)
    if model.segment_length is not None:
        yield from _decode_segments(model, get_codes, length, scales or [])
        return
    emitted, dev = 0, _device(model)
    for a, b, s, e in plan_chunks(total, _frames(model, chunk), _frames(model, context)):
        y = model.decode(get_codes(s, e)[None].to(dev))[0].cpu()
        core = y[:, (a - s) * hop: (b - s) * hop][:, : length - emitted]
        emitted += core.shape[-1]
        yield core


def _decode_segments(model: EncodecModel, get_codes, length: int, scales: list[float]
                     ) -> Iterator[torch.Tensor]:
    offsets = model.segment_offsets(length)
    if model.renormalize and len(scales) != len(offsets):
        raise ValueError(f"expected {len(offsets)} segment scales, got {len(scales)}")
    hop, seg = model.hop_length, model.segment_length
    per_seg = math.ceil(seg / hop)
    f0, pos, weight = 0, 0, None
    out = w = None  # accumulators covering samples [pos, pos + out.shape[-1])
    for i, off in enumerate(offsets):
        n = math.ceil(min(seg, length - off) / hop)
        codes = get_codes(f0, f0 + n)
        f0 += n
        dev = _device(model)
        scale = torch.tensor([[scales[i]]], device=dev) if model.renormalize else None
        y = model.decode(codes[None].to(dev), scale)[0].cpu()
        if len(offsets) == 1:  # decode() skips the overlap-add for a single segment
            yield y[:, :length]
            return
        if weight is None:  # decode() builds the triangle from the first segment's length
            t = torch.linspace(0, 1, per_seg * hop + 2, dtype=y.dtype)[1:-1]
            weight = 0.5 - (t - 0.5).abs()
        end = off + y.shape[-1]
        if out is None:
            out, w = y.new_zeros(y.shape[0], end - pos), y.new_zeros(end - pos)
        elif end - pos > out.shape[-1]:
            grow = end - pos - out.shape[-1]
            out = torch.nn.functional.pad(out, (0, grow))
            w = torch.nn.functional.pad(w, (0, grow))
        out[:, off - pos: end - pos] += weight[: y.shape[-1]] * y
        w[off - pos: end - pos] += weight[: y.shape[-1]]
        final = (offsets[i + 1] if i + 1 < len(offsets) else end) - pos
        final = min(final, length - pos)
        yield out[:, :final] / w[:final]
        out, w, pos = out[:, final:], w[final:], pos + final
        if pos >= length:
            return
