"""Reconstruction losses: values against direct formulas, audiocraft defaults, validation."""

import math

import pytest
import torch
import torch.nn.functional as F
from torchaudio.transforms import MelSpectrogram

from raycodec.config import default_dict
from raycodec.losses import (
    SISNR,
    MelSpectrogramL1Loss,
    MelSpectrogramWrapper,
    MRSTFTLoss,
    MultiScaleMelSpectrogramLoss,
    build_aux_losses,
    build_loss,
)

SR = 24000
# The reference mel transforms below are built without the module's warning filter.
pytestmark = pytest.mark.filterwarnings("ignore:At least one mel filterbank")


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 4000, generator=g) * 0.3
    y = x + 0.05 * torch.randn(2, 1, 4000, generator=g)
    return x, y


def _ref_mel(x, n_fft, hop, n_mels, f_min, normalized=False):
    """audiocraft's mel: reflect pad (n_fft - hop) // 2, zero pad to full frames, center=False."""
    p = (n_fft - hop) // 2
    x = F.pad(x, (p, p), mode="reflect")
    n_frames = math.ceil((x.shape[-1] - n_fft) / hop + 1)
    x = F.pad(x, (0, (n_frames - 1) * hop + n_fft - x.shape[-1]))
    mel = MelSpectrogram(SR, n_fft=n_fft, win_length=n_fft, hop_length=hop, f_min=f_min,
                         n_mels=n_mels, center=False, normalized=normalized)
    return mel(x).flatten(1, 2)


def test_mel_l1_matches_direct_formula(pair):
    x, y = pair
    loss = MelSpectrogramL1Loss(SR, n_fft=1024, hop_length=256, win_length=1024, n_mels=64,
                                f_min=64)
    ref = F.l1_loss(torch.log10(1e-5 + _ref_mel(x, 1024, 256, 64, 64)),
                    torch.log10(1e-5 + _ref_mel(y, 1024, 256, 64, 64)))
    assert torch.allclose(loss(x, y), ref, rtol=1e-5)
    assert loss(x, x).item() == 0


def test_mel_frames_are_full_and_buffers_registered():
    wrapper = MelSpectrogramWrapper(n_fft=1024, hop_length=256, n_mels=64, sample_rate=SR)
    assert wrapper(torch.randn(1, 1, 2400)).shape[-1] == math.ceil(2400 / 256)
    buffers = dict(wrapper.named_buffers())
    assert {"mel_transform.spectrogram.window", "mel_transform.mel_scale.fb"} <= set(buffers)
    wrapper.double()
    assert buffers["mel_transform.mel_scale.fb"].dtype == torch.float32  # old refs unchanged
    assert dict(wrapper.named_buffers())["mel_transform.mel_scale.fb"].dtype == torch.float64


@pytest.mark.parametrize("normalized,alphas", [(True, False), (False, True)])
def test_msspec_matches_audiocraft_formula(pair, normalized, alphas):
    x, y = pair
    loss = MultiScaleMelSpectrogramLoss(SR, range_start=6, range_end=9, n_mels=64, f_min=64,
                                        normalized=normalized, alphas=alphas)
    ref, total = 0.0, 0.0
    for i in range(6, 9):
        mx = _ref_mel(x, 2**i, 2**i // 4, 64, 64, normalized)
        my = _ref_mel(y, 2**i, 2**i // 4, 64, 64, normalized)
        alpha = math.sqrt(2**i - 1) if alphas else 1.0
        ref = ref + F.l1_loss(mx, my) + alpha * F.mse_loss(torch.log10(1e-5 + mx),
                                                         torch.log10(1e-5 + my))
        total += alpha + 1
    if normalized:
        ref = ref / total
    assert torch.allclose(loss(x, y), ref, rtol=1e-5)


def test_msspec_computes_each_mel_once_per_scale(pair, monkeypatch):
    x, y = pair
    loss = MultiScaleMelSpectrogramLoss(SR, range_start=6, range_end=11)
    calls = []
    for m in loss.mels:
        original = m.mel_transform.forward
        monkeypatch.setattr(m.mel_transform, "forward",
                            lambda s, _o=original: calls.append(1) or _o(s))
    loss(y, x)
    assert len(calls) == 2 * 5  # one per signal per scale (audiocraft: 4 per scale)


def test_mrstft_matches_torch_stft(pair):
    x, y = pair
    loss = MRSTFTLoss(factor_sc=0.5, factor_mag=0.5)
    sc = mag = 0.0
    for n, h, w in zip([1024, 2048, 512], [120, 240, 50], [600, 1200, 240]):
        def m(s, n=n, h=h, w=w):
            spec = torch.stft(s.view(-1, s.shape[-1]), n, h, w, torch.hann_window(w),
                              return_complex=True)
            return torch.sqrt(torch.clamp(spec.real**2 + spec.imag**2, min=1e-7))
        mx, my = m(x), m(y)
        eps = torch.finfo(torch.float32).eps
        sc = sc + torch.norm(my - mx, p="fro") / (torch.norm(my, p="fro") + eps)
        mag = mag + F.l1_loss(torch.log(eps + my), torch.log(eps + mx))
    assert torch.allclose(loss(x, y), 0.5 * sc / 3 + 0.5 * mag / 3, rtol=1e-5)
    assert loss(x, x).item() == pytest.approx(0, abs=1e-6)


def test_sisnr_known_snr_and_scale_invariance():
    g = torch.Generator().manual_seed(1)
    ref = torch.randn(3, 1, SR, generator=g)
    noise = torch.randn(3, 1, SR, generator=g)
    noise = noise - (noise * ref).sum(-1, keepdim=True) / ref.pow(2).sum(-1, keepdim=True) * ref
    noise = noise - noise.mean(-1, keepdim=True)
    ref = ref - ref.mean(-1, keepdim=True)
    noise = noise / noise.norm(dim=-1, keepdim=True) * ref.norm(dim=-1, keepdim=True) * 0.1
    loss = SISNR(sample_rate=SR, segment=None)
    assert loss(ref + noise, ref).item() == pytest.approx(-20.0, abs=1e-3)  # 20 dB SNR
    # Scale invariant: a gain on the estimate does not change the value.
    assert loss(3 * (ref + noise), ref).item() == pytest.approx(-20.0, abs=1e-3)
    # 5 s segments on 1 s of audio: one zero-padded segment, same value.
    long_segments = SISNR(sample_rate=SR, segment=5.0)
    assert long_segments(ref + noise, ref).item() == pytest.approx(-20, abs=1e-2)


def test_sisnr_averages_overlapping_segments():
    g = torch.Generator().manual_seed(2)
    ref = torch.randn(1, 1, 400, generator=g)
    est = ref + torch.randn(1, 1, 400, generator=g)
    loss = SISNR(sample_rate=100, segment=2.0, overlap=0.5)  # frame 200, stride 100 -> 4 frames
    whole = SISNR(segment=None)
    per_frame = [whole(est[..., s:s + 200], ref[..., s:s + 200]) for s in (0, 100, 200)]
    last = SISNR(segment=None)(F.pad(est[..., 300:], (0, 100)), F.pad(ref[..., 300:], (0, 100)))
    assert torch.allclose(loss(est, ref), torch.stack(per_frame + [last]).mean(), atol=1e-4)


@pytest.mark.parametrize("name", ["l1", "l2", "mel", "msspec", "mrstft", "sisnr"])
def test_losses_reject_mismatched_shapes(name):
    loss = build_loss(name, SR)
    with pytest.raises(ValueError, match=r"\[B, C, T\]"):
        loss(torch.zeros(1, 1, 4000), torch.zeros(1, 1, 3999))


def test_build_aux_losses_defaults_and_split():
    weights = {"adv": 4, "feat": 4, "l1": 0.1, "mel": 0, "msspec": 2, "sisnr": 0}
    cfg = default_dict()  # the per-loss sections of the shipped defaults
    cfg["msspec"]["range_end"] = 9
    aux, info = build_aux_losses(weights, SR, cfg)
    assert sorted(aux) == ["l1", "msspec"] and sorted(info) == ["mel", "sisnr"]
    msspec = aux["msspec"]
    assert len(msspec.mels) == 3 and msspec.normalized and msspec.alphas == [1.0] * 3
    assert msspec.mels[0].mel_transform.mel_scale.f_min == 64  # audiocraft config, not class
    assert info["sisnr"].segment == 5.0 and info["sisnr"].sample_rate == SR


def test_build_aux_losses_errors():
    with pytest.raises(ValueError, match="unknown loss 'l3'.*l1"):
        build_aux_losses({"l3": 1.0}, SR, default_dict())
    with pytest.raises(ValueError, match=">= 0"):
        build_aux_losses({"l1": -1.0}, SR, default_dict())
    with pytest.raises(ValueError, match="unknown keys \\['nfft'\\]"):
        build_aux_losses({"mel": 1.0}, SR, {"mel": {"nfft": 512}})
    with pytest.raises(ValueError, match="16000"):
        build_aux_losses({"sisnr": 1.0}, SR, {"sisnr": {"sample_rate": 16000}})
