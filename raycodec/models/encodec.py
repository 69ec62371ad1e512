"""EncodecModel: SEANet encoder -> residual VQ -> SEANet decoder."""

from __future__ import annotations

import math

import torch
from torch import nn

from raycodec.models.seanet import SEANetDecoder, SEANetEncoder
from raycodec.quantization import QuantizedResult, ResidualVectorQuantizer


class EncodecModel(nn.Module):
    """Neural audio codec on [B, channels, T] float waveforms at `sample_rate`.

    With `segment` (seconds) the audio is processed in overlapping segments that are overlap-added
    on decode (the 48 kHz model); with `renormalize` each segment is scaled to unit RMS and the
    scale is returned next to the codes.
    """

    def __init__(self, encoder: SEANetEncoder, decoder: SEANetDecoder,
                 quantizer: ResidualVectorQuantizer, *, sample_rate: int, channels: int,
                 renormalize: bool = False, segment: float | None = None, overlap: float = 0.01,
                 target_bandwidths: list[float] | None = None):
        super().__init__()
        if encoder.hop_length != math.prod(decoder.ratios):
            raise ValueError("encoder and decoder ratios differ")
        self.encoder, self.decoder, self.quantizer = encoder, decoder, quantizer
        self.sample_rate, self.channels = sample_rate, channels
        self.renormalize, self.segment, self.overlap = renormalize, segment, overlap
        self.hop_length = encoder.hop_length
        self.frame_rate = math.ceil(sample_rate / self.hop_length)
        max_bw = self.quantizer.n_q * self.quantizer.bandwidth_per_quantizer
        # Keep only the bandwidths this quantizer can reach (presets may be built with fewer n_q).
        self.target_bandwidths = [b for b in (target_bandwidths or []) if b <= max_bw + 1e-9] \
            or [max_bw]

    # -- bandwidth ---------------------------------------------------------------------------
    @property
    def bandwidth(self) -> float:
        """The inference bandwidth in kbps (number of active codebooks x kbps per codebook)."""
        return self.quantizer.n_q_active * self.quantizer.bandwidth_per_quantizer

    def set_target_bandwidth(self, bandwidth: float) -> None:
        """Choose the bandwidth (kbps) used by encode/forward in eval mode."""
        self.quantizer.set_num_codebooks(self.quantizer.n_q_for_bandwidth(bandwidth))

    # -- segments ------------------------------------------------------------------------------
    @property
    def segment_length(self) -> int | None:
        """Segment length in samples (None: the whole input is one segment)."""
        return None if self.segment is None else int(self.segment * self.sample_rate)

    @property
    def segment_stride(self) -> int | None:
        """Hop between segments in samples."""
        length = self.segment_length
        return None if length is None else max(1, int((1 - self.overlap) * length))

    def segment_offsets(self, length: int) -> list[int]:
        """Start samples of the segments that `length` samples are split into."""
        if self.segment_length is None:
            return [0]
        # Same split as the `encodec` package: a new segment starts every stride samples.
        return list(range(0, length, self.segment_stride))

    def _segments(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.segment_length is None:
            return [x]
        return [x[..., off: off + self.segment_length] for off in self.segment_offsets(x.shape[-1])]

    def _overlap_add(self, frames: list[torch.Tensor]) -> torch.Tensor:
        # Triangular weights peaking mid-segment, normalised by their sum at every sample.
        if len(frames) == 1:
            return frames[0]
        stride = self.segment_stride
        total = stride * (len(frames) - 1) + frames[-1].shape[-1]
        first = frames[0].shape[-1]
        t = torch.linspace(0, 1, first + 2, device=frames[0].device, dtype=frames[0].dtype)[1:-1]
        weight = 0.5 - (t - 0.5).abs()
        out = frames[0].new_zeros(*frames[0].shape[:-1], total)
        sum_weight = frames[0].new_zeros(total)
        for i, frame in enumerate(frames):
            n = frame.shape[-1]
            out[..., i * stride: i * stride + n] += weight[:n] * frame
            sum_weight[i * stride: i * stride + n] += weight[:n]
        return out / sum_weight

    # -- input checks and scaling ---------------------------------------------------------------
    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected audio of shape [B, C, T], got {shape}")
        if not x.is_floating_point():
            raise ValueError(f"expected a floating-point waveform, got dtype {x.dtype}")
        if x.shape[1] != self.channels:
            raise ValueError(f"expected {self.channels} channel(s), got {x.shape[1]}")
        if x.shape[-1] < self.hop_length:
            raise ValueError(f"expected at least one frame ({self.hop_length} samples), "
                             f"got {x.shape[-1]}")
        if not torch.isfinite(x).all():
            raise ValueError("input audio contains NaN or infinite values")

    def _preprocess(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.renormalize:
            return x, None
        volume = x.mean(dim=1, keepdim=True).pow(2).mean(dim=2, keepdim=True).sqrt()
        scale = 1e-8 + volume
        return x / scale, scale.view(-1, 1)

    # -- public API ----------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, bandwidth: float | None = None):
        """Audio [B, C, T] -> (codes [B, K, T'], scale [B, S] or None), S = number of segments."""
        self._check_input(x)
        codes, scales = zip(*(self.encode_segment(seg, bandwidth) for seg in self._segments(x)))
        scale = torch.cat(scales, dim=1) if self.renormalize else None
        return torch.cat(codes, dim=-1), scale

    def encode_segment(self, x: torch.Tensor, bandwidth: float | None = None):
        """Encode one segment (at most `segment_length` samples) -> (codes, scale [B, 1] or None).

        For chunked processing of long files: `encode` would split a full segment again.
        """
        n_q = self.quantizer.n_q_for_bandwidth(bandwidth) if bandwidth else None
        seg, scale = self._preprocess(x)
        return self.quantizer.encode(self.encoder(seg), n_q), scale

    def decode(self, codes: torch.Tensor, scale: torch.Tensor | None = None,
               length: int | None = None) -> torch.Tensor:
        """Codes [B, K, T'] (and the scale from encode) -> audio [B, C, T' * hop] (or `length`)."""
        if codes.dim() != 3 or codes.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"expected integer codes [B, K, T'], got {codes.dtype} "
                             f"{tuple(codes.shape)}")
        if self.renormalize and scale is None:
            raise ValueError("this model renormalizes its input: pass the scale from encode()")
        codes = codes.long()
        if self.segment_length is None:
            chunks = [codes]
        else:
            chunks = list(codes.split(math.ceil(self.segment_length / self.hop_length), dim=-1))
        frames = []
        for i, chunk in enumerate(chunks):
            out = self.decoder(self.quantizer.decode(chunk))
            if scale is not None:
                out = out * scale[:, i].view(-1, 1, 1)
            frames.append(out)
        out = self._overlap_add(frames)
        return out if length is None else out[..., :length]

    def forward(self, x: torch.Tensor) -> QuantizedResult:
        """Encode, quantize and decode; returns the reconstruction (same length as x) and more."""
        self._check_input(x)
        outs, codes, penalties, bandwidth, metrics = [], [], [], None, {}
        for seg in self._segments(x):
            seg_in, scale = self._preprocess(seg)
            q = self.quantizer(self.encoder(seg_in))
            out = self.decoder(q.x)
            outs.append(out if scale is None else out * scale.view(-1, 1, 1))
            codes.append(q.codes)
            if q.penalty is not None:
                penalties.append(q.penalty)
            bandwidth, metrics = q.bandwidth, q.metrics
        y = self._overlap_add(outs)[..., : x.shape[-1]]
        penalty = torch.stack(penalties).mean() if penalties else None
        return QuantizedResult(y, torch.cat(codes, dim=-1), bandwidth, penalty, metrics)
