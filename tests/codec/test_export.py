"""Export to the `encodec` package format, round-tripped through the package itself."""

import warnings

import pytest
import torch

from raycodec.codec import export_codec, load_codec
from raycodec.data.synth import synth_clip
from tests.codec.conftest import make_checkpoint

encodec = pytest.importorskip("encodec", reason="the `encodec` reference package (dev extra)")


def _package_24khz():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # old-style weight_norm deprecation
        return encodec.EncodecModel.encodec_model_24khz(pretrained=False).eval()


def test_export_roundtrip_through_encodec_package(tmp_path):
    ck = make_checkpoint(tmp_path / "ck", seed=3, overrides=["model=encodec_24khz"])
    codec = load_codec(ck)
    preset, digest = export_codec(codec, tmp_path / "model.th")
    assert preset == "encodec_24khz" and len(digest) == 8
    ref = _package_24khz()
    ref.load_state_dict(torch.load(tmp_path / "model.th", weights_only=True))  # strict
    x = torch.from_numpy(synth_clip(0.5, 24000, 1, seed=1))[None]
    ref.set_target_bandwidth(6.0)
    with torch.no_grad():
        frames = ref.encode(x)
        ref_codes = frames[0][0]
        ref_audio = ref.decode(frames)[..., : x.shape[-1]]
        codes, _ = codec.model.encode(x, 6.0)
        audio = codec.model.decode(codes, length=x.shape[-1])
    assert torch.equal(codes, ref_codes)
    assert (audio - ref_audio).abs().max() < 1e-4
    # And back: the exported file loads as an `encodec` .th checkpoint with the preset.
    again = load_codec(tmp_path / "model.th", "encodec_24khz")
    for (k, a), (k2, b) in zip(sorted(again.model.state_dict().items()),
                               sorted(codec.model.state_dict().items())):
        assert k == k2 and torch.equal(a, b), k
