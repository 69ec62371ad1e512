"""Parity with the `encodec` package (0.1.1): identical codes, decoded audio within 1e-4."""

import warnings

import pytest
import torch

from raycodec.data.synth import synth_clip
from raycodec.models import load_encodec_checkpoint

encodec = pytest.importorskip("encodec", reason="the `encodec` reference package (dev extra)")


def _reference(variant: str, seed: int):
    """The package's model, built without downloading, with random initialised codebooks."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # old-style weight_norm deprecation
        ref = getattr(encodec.EncodecModel, f"encodec_model_{variant}")(pretrained=False)
    for layer in ref.quantizer.vq.layers:
        cb = layer._codebook
        cb.embed.normal_()
        cb.embed_avg.copy_(cb.embed)
        cb.inited.fill_(1)
    return ref.eval()


def _inputs(ref, seconds: float):
    n = int(ref.sample_rate * seconds)
    noise = torch.randn(1, ref.channels, n, generator=torch.Generator().manual_seed(1)) * 0.1
    harmonic = torch.from_numpy(synth_clip(seconds, ref.sample_rate, ref.channels, seed=3))[None]
    return {"random": noise, "harmonic": harmonic}


@pytest.fixture(scope="module", params=["24khz", "48khz"])
def pair(request, tmp_path_factory):
    ref = _reference(request.param, seed=0)
    path = tmp_path_factory.mktemp("ckpt") / f"encodec_{request.param}.th"
    torch.save(ref.state_dict(), path)  # the package's own key layout (weight_g/weight_v...)
    ours = load_encodec_checkpoint(path, f"encodec_{request.param}")
    return ref, ours


@pytest.mark.parametrize("seconds", [1.0, 1.7])
def test_codes_and_audio_match_at_every_bandwidth(pair, seconds):
    ref, ours = pair
    assert len(ref.state_dict()) == len(ours.state_dict())
    for kind, x in _inputs(ref, seconds).items():
        for bw in ref.target_bandwidths:
            ref.set_target_bandwidth(bw)
            ours.set_target_bandwidth(bw)
            with torch.no_grad():
                frames = ref.encode(x)
                ref_codes = torch.cat([codes for codes, _ in frames], dim=-1)
                ref_audio = ref.decode(frames)[..., : x.shape[-1]]
                codes, scale = ours.encode(x)
                audio = ours.decode(codes, scale, length=x.shape[-1])
                forward_audio = ours(x).x
            assert torch.equal(codes, ref_codes), f"{kind} codes differ at {bw} kbps"
            assert (audio - ref_audio).abs().max() < 1e-4, f"{kind} audio differs at {bw} kbps"
            assert (forward_audio - ref_audio).abs().max() < 1e-4
            if ref.normalize:
                ref_scale = torch.cat([s for _, s in frames], dim=1)
                assert torch.allclose(scale, ref_scale)
