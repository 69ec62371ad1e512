"""compress/decompress: round trip, bitrate, chunking, bounded memory, corrupted files."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from raycodec.codec import compress_file, decompress_file, load_codec, read_rcdc_header
from raycodec.codec.loading import LoadedCodec
from raycodec.data.synth import synth_clip
from raycodec.metrics import si_snr
from raycodec.models import build_model, preset_settings
from tests.codec.conftest import make_checkpoint


@pytest.fixture(scope="module")
def codec(debug_ckpt):
    return load_codec(debug_ckpt)


def _whole(model, x, bw):
    with torch.no_grad():
        codes, scale = model.encode(x[None], bw)
        return model.decode(codes, scale, length=x.shape[-1])[0]


def test_roundtrip_equals_decode_encode(codec, clip, tmp_path):
    x = torch.from_numpy(sf.read(clip, dtype="float32", always_2d=True)[0].T.copy())
    # One chunk covering the file: the result must be decode(encode(x)) itself.
    compress_file(codec, clip, tmp_path / "a.rcdc", 3.0, chunk=100)
    decompress_file(tmp_path / "a.rcdc", tmp_path / "a.wav", codec, chunk=100, subtype="FLOAT")
    y = torch.from_numpy(sf.read(tmp_path / "a.wav", dtype="float32", always_2d=True)[0].T.copy())
    ref = _whole(codec.model, x, 3.0)
    assert y.shape == x.shape
    assert (y - ref).abs().max() < 1e-5


def test_bitrate_within_one_percent(codec, clip, tmp_path):
    duration = sf.info(clip).duration
    for bw in (1.5, 6.0, 24.0):
        out = tmp_path / f"b{bw}.rcdc"
        h = compress_file(codec, clip, out, bw, chunk=1.0, context=0.2)
        header_size = out.stat().st_size - h.payload_size
        assert header_size < 200
        payload_kbps = h.payload_size * 8 / duration / 1000
        assert abs(payload_kbps - bw) / bw < 0.01, (bw, payload_kbps)
        assert h.n_q == round(bw / 0.75)


def test_chunked_quality_and_bounded_chunks(codec, tmp_path):
    model = codec.model
    seen = []
    encode, decode = model.encode, model.decode

    def spy_encode(x, bw=None):
        seen.append(x.shape[-1])
        return encode(x, bw)

    def spy_decode(codes, scale=None, length=None):
        seen.append(codes.shape[-1] * model.hop_length)
        return decode(codes, scale, length)

    maxima = []
    for seconds in (4.0, 8.0):
        path = tmp_path / f"long{seconds}.wav"
        x = synth_clip(seconds, 24000, 1, seed=5)
        sf.write(path, x.T, 24000, subtype="FLOAT")
        seen.clear()
        model.encode, model.decode = spy_encode, spy_decode
        try:
            compress_file(codec, path, tmp_path / "c.rcdc", 6.0, chunk=0.5, context=0.25)
            decompress_file(tmp_path / "c.rcdc", tmp_path / "c.wav", codec, chunk=0.5,
                            context=0.25, subtype="FLOAT")
        finally:
            del model.encode, model.decode
        maxima.append(max(seen))
        xt = torch.from_numpy(x)
        y = torch.from_numpy(sf.read(tmp_path / "c.wav", dtype="float32", always_2d=True)[0].T)
        chunked = si_snr(xt[None], y[None]).item()
        whole = si_snr(xt[None], _whole(model, xt, 6.0)[None]).item()
        assert abs(chunked - whole) < 0.1, (seconds, chunked, whole)
    # The largest span fed to the model is the same for a 4 s and an 8 s file (< 1.05 s).
    assert maxima[0] == maxima[1] <= math.ceil(1.05 * 24000)


def test_segmented_renormalizing_model_is_exact(tmp_path):
    settings = preset_settings("debug", causal=False, renormalize=True, segment=0.5)
    from raycodec.models import build_from_settings

    torch.manual_seed(0)
    model = build_from_settings(settings).eval()
    for layer in model.quantizer.vq.layers:
        layer._codebook.embed.normal_()
        layer._codebook.inited.fill_(1)
    codec = LoadedCodec(model, settings, "mem", "debug")
    x = synth_clip(1.7, 24000, 1, seed=3) * np.linspace(0.1, 1, 40800, dtype=np.float32)
    sf.write(tmp_path / "s.wav", x.T, 24000, subtype="FLOAT")
    h = compress_file(codec, tmp_path / "s.wav", tmp_path / "s.rcdc", 3.0)
    with torch.no_grad():
        _, scale = model.encode(torch.from_numpy(x)[None], 3.0)
    assert np.allclose(h.scales, scale[0].numpy())
    assert read_rcdc_header(tmp_path / "s.rcdc").scales == h.scales
    decompress_file(tmp_path / "s.rcdc", tmp_path / "s.wav", codec, subtype="FLOAT")
    y = sf.read(tmp_path / "s.wav", dtype="float32", always_2d=True)[0].T
    ref = _whole(model, torch.from_numpy(x), 3.0).numpy()
    assert np.abs(y - ref).max() < 1e-4


def test_resampled_stereo_input_comes_back_in_its_format(codec, tmp_path):
    x = synth_clip(1.0, 44100, 2, seed=4)
    sf.write(tmp_path / "in.flac", x.T, 44100)
    compress_file(codec, tmp_path / "in.flac", tmp_path / "r.rcdc", 6.0, chunk=0.3, context=0.1)
    h = decompress_file(tmp_path / "r.rcdc", tmp_path / "r.wav")  # model from the file's hint
    info = sf.info(tmp_path / "r.wav")
    assert (h.orig_sample_rate, h.orig_channels) == (44100, 2)
    assert (info.samplerate, info.channels, info.frames) == (44100, 2, 44100)


def _compressed(codec, clip, tmp_path):
    path = tmp_path / "ok.rcdc"
    compress_file(codec, clip, path, 3.0)
    return path, bytearray(path.read_bytes())


@pytest.mark.parametrize("damage,message", [
    (lambda b: b"WAVE" + b[4:], "bad magic"),
    (lambda b: b[:4] + b"\x07\x00" + b[6:], "unsupported .rcdc version 7"),
    (lambda b: b[:-10], "truncated .rcdc payload"),
    (lambda b: b[:40], "truncated .rcdc header"),
    (lambda b: b[:-5] + bytes([b[-5] ^ 0xFF]) + b[-4:], "payload \\(CRC"),
    (lambda b: b[:30] + b"\x09\x00" + b[32:], "corrupted .rcdc header"),
])
def test_damaged_files_rejected(codec, clip, tmp_path, damage, message):
    path, data = _compressed(codec, clip, tmp_path)
    path.write_bytes(bytes(damage(bytes(data))))
    with pytest.raises(ValueError, match=message):
        decompress_file(path, tmp_path / "x.wav", codec)


def test_foreign_model_rejected(codec, clip, tmp_path):
    path, _ = _compressed(codec, clip, tmp_path)
    other = load_codec(make_checkpoint(tmp_path / "other", seed=1))
    with pytest.raises(ValueError, match="encoded with another model"):
        decompress_file(path, tmp_path / "x.wav", other)


def test_run_folder_takes_latest_checkpoint_and_ema(tmp_path):
    run = tmp_path / "run"
    make_checkpoint(run / "checkpoint_000000")
    model = build_model("debug")
    from raycodec.train.checkpoint import load_checkpoint, save_checkpoint

    state = load_checkpoint(run / "checkpoint_000000")
    ema = {k: torch.full_like(v, 0.5) for k, v in state["solver"]["model"].items()
           if k.endswith("embed")}
    state["solver"]["ema"] = {"state": {"model": ema}, "count": 1.0}
    save_checkpoint(run / "checkpoint_000001", state, {"epoch": 1, "step": 5})
    loaded = load_codec(run)
    assert loaded.source.endswith("checkpoint_000001")
    assert loaded.signature is None
    embed = loaded.model.quantizer.vq.layers[0]._codebook.embed
    assert torch.all(embed == 0.5) and len(model.state_dict()) == len(loaded.model.state_dict())
