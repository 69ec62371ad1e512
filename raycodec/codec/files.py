"""Compress an audio file to `.rcdc` and back, chunk by chunk."""

from __future__ import annotations

import os
import tempfile
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from raycodec.codec.audio import AudioSource
from raycodec.codec.format import BitWriter, Header, code_bits, read_header, unpack_codes
from raycodec.codec.loading import LoadedCodec, load_codec
from raycodec.codec.stream import decode_chunks, encode_chunks, num_frames


def compress_file(codec: LoadedCodec, src: str | Path, dst: str | Path,
                  bandwidth: float | None = None, chunk: float = 10.0,
                  context: float = 1.0) -> Header:
    """Encode `src` (any soundfile format, resampled/remixed to the model) into `dst`."""
    model = codec.model
    n_q = model.quantizer.n_q_for_bandwidth(bandwidth)
    with AudioSource(src, model.sample_rate, model.channels) as source:
        length = max(source.length, 1)
        n_scales = len(model.segment_offsets(length)) if model.renormalize else 0
        header = Header(codec.identity, model.sample_rate, model.channels, model.hop_length,
                        int(model.frame_rate), n_q, model.quantizer.bins, length,
                        num_frames(model, length), source.orig_sample_rate,
                        source.orig_channels, [0.0] * n_scales,
                        {"checkpoint": codec.source, "preset": codec.preset})
        header.payload_size = header.expected_payload_size()
        tmp = Path(dst).with_name(Path(dst).name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(header.to_bytes())  # placeholder: scales and CRC are filled in below
            writer = BitWriter(f, header.bins)
            scales, frames = [], 0
            for codes, scale in encode_chunks(model, source.read, length, bandwidth, chunk,
                                              context):
                writer.write(codes.T.cpu().numpy())
                frames += codes.shape[-1]
                if scale is not None:
                    scales.append(float(scale))
            writer.close()
            if frames != header.num_frames or writer.size != header.payload_size:
                raise RuntimeError(f"internal error: wrote {frames} frames, expected "
                                   f"{header.num_frames}")
            header.scales, header.payload_crc = scales, writer.crc
            f.seek(0)
            f.write(header.to_bytes())
        os.replace(tmp, dst)
    return header


def _check_payload(f, header: Header, start: int) -> None:
    f.seek(start)
    crc, size = 0, 0
    while block := f.read(1 << 20):
        crc, size = zlib.crc32(block, crc), size + len(block)
    if size < header.payload_size:
        raise ValueError(f"truncated .rcdc payload ({size} of {header.payload_size} bytes)")
    if size > header.payload_size:
        raise ValueError("corrupted .rcdc file (trailing data after the payload)")
    if crc != header.payload_crc:
        raise ValueError("corrupted .rcdc payload (CRC mismatch)")


def _check_model(header: Header, codec: LoadedCodec) -> None:
    model = codec.model
    if header.model_id != codec.identity:
        raise ValueError(f"this file was encoded with another model (identity "
                         f"{header.model_id.hex()}, checkpoint {codec.source} is "
                         f"{codec.identity.hex()})")
    if (header.sample_rate, header.channels, header.hop_length, header.bins) != \
            (model.sample_rate, model.channels, model.hop_length, model.quantizer.bins) \
            or header.n_q > model.quantizer.n_q:
        raise ValueError("the .rcdc stream parameters do not match the model")


def read_rcdc_header(path: str | Path) -> Header:
    """Read and validate the header of an `.rcdc` file."""
    with open(path, "rb") as f:
        return read_header(f)


def decompress_file(src: str | Path, dst: str | Path, codec: LoadedCodec | None = None,
                    chunk: float = 10.0, context: float = 1.0, original_format: bool = True,
                    subtype: str | None = None) -> Header:
    """Decode `src` into an audio file (format from the extension), chunk by chunk.

    Without `codec` the checkpoint recorded in the file's hint is loaded. With
    `original_format` the audio is converted back to the input's rate and channels.
    """
    with open(src, "rb") as f:
        header = read_header(f)
        start = f.tell()
        _check_payload(f, header, start)
        if codec is None:
            hint = header.hint
            if not hint.get("checkpoint"):
                raise ValueError("no --checkpoint given and the file names none")
            codec = load_codec(hint["checkpoint"], hint.get("preset", "encodec_24khz"))
        _check_model(header, codec)
        model, bits_per_frame = codec.model, header.n_q * code_bits(header.bins)

        def get_codes(f0: int, f1: int) -> torch.Tensor:
            a, b = f0 * bits_per_frame, f1 * bits_per_frame
            f.seek(start + a // 8)
            data = f.read((b + 7) // 8 - a // 8)
            codes = unpack_codes(data, f1 - f0, header.n_q, header.bins, a % 8)
            if codes.size and codes.max() >= model.quantizer.bins:
                raise ValueError("corrupted .rcdc payload (code out of range)")
            return torch.from_numpy(codes.T.copy())

        convert = original_format and (header.orig_sample_rate, header.orig_channels) != \
            (header.sample_rate, header.channels)
        out_path = Path(dst)
        tmp_dir = tempfile.mkdtemp(dir=out_path.parent) if convert else None
        model_rate_path = Path(tmp_dir) / "model_rate.wav" if convert else out_path
        with sf.SoundFile(str(model_rate_path), "w", header.sample_rate, header.channels,
                          subtype="FLOAT" if convert else subtype) as out:
            for y in decode_chunks(model, get_codes, header.length, header.scales, chunk,
                                   context):
                out.write(np.ascontiguousarray(y.T.float().numpy()))
    if convert:
        _convert_file(model_rate_path, out_path, header, subtype)
        model_rate_path.unlink()
        os.rmdir(tmp_dir)
    return header


def _convert_file(src: Path, dst: Path, header: Header, subtype: str | None,
                  block: int = 1 << 18) -> None:
    # Reuse the bounded-memory reader for the way back to the input's rate and channels.
    with AudioSource(src, header.orig_sample_rate, header.orig_channels) as source, \
            sf.SoundFile(str(dst), "w", header.orig_sample_rate, header.orig_channels,
                         subtype=subtype) as out:
        for a in range(0, source.length, block):
            out.write(np.ascontiguousarray(source.read(a, a + block).T.numpy()))
