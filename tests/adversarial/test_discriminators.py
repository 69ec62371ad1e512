"""Discriminators: output convention, audiocraft checkpoint layout (old weight norm keys)."""

import copy
import warnings

import pytest
import torch
from torch import nn

from raycodec.adversarial import (
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    MultiScaleSTFTDiscriminator,
    NormConv1d,
    to_legacy_state_dict,
)
from raycodec.adversarial import build_adversary as _build_adversary
from raycodec.config import default_dict

SCALES = [1024, 2048, 512, 256, 128]


def build_adversary(name, **kwargs):
    """The adversary of the default config's section `name`, `kwargs` on top (as a config does)."""
    return _build_adversary(name, **{**default_dict().get(name, {}), **kwargs})


def _audiocraft_msstftd_state(seed=0):
    """A state dict for the default msstftd config written with audiocraft's key names and
    shapes (old-style weight norm: weight_g [out, 1, 1, 1], weight_v = weight shape)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    state = {}
    for s, n_fft in enumerate(SCALES):
        p = f"discriminators.{s}."
        state[p + "spec_transform.window"] = torch.hann_window(n_fft)
        state[p + "convs.0.conv.weight"] = r(32, 2, 3, 9)
        state[p + "convs.0.conv.bias"] = r(32)
        for j, k in [(1, 9), (2, 9), (3, 9), (4, 3)]:
            state[p + f"convs.{j}.conv.bias"] = r(32)
            state[p + f"convs.{j}.conv.weight_g"] = r(32, 1, 1, 1).abs()
            state[p + f"convs.{j}.conv.weight_v"] = r(32, 32, 3, k)
        state[p + "conv_post.conv.bias"] = r(1)
        state[p + "conv_post.conv.weight_g"] = r(1, 1, 1, 1).abs()
        state[p + "conv_post.conv.weight_v"] = r(1, 32, 3, 3)
    return state


def test_msstftd_loads_audiocraft_state_dict():
    disc = build_adversary("msstftd")
    legacy = _audiocraft_msstftd_state()
    disc.load_state_dict(legacy, strict=True)
    conv = disc.discriminators[2].convs[1].conv
    g = legacy["discriminators.2.convs.1.conv.weight_g"]
    v = legacy["discriminators.2.convs.1.conv.weight_v"]
    expected = g * v / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    assert torch.allclose(conv.weight, expected, atol=1e-6)
    assert torch.equal(disc.discriminators[0].convs[0].conv.weight,
                       legacy["discriminators.0.convs.0.conv.weight"])
    # And back: the exported keys and shapes are audiocraft's.
    exported = to_legacy_state_dict(disc)
    assert {k: v.shape for k, v in exported.items()} == {k: v.shape for k, v in legacy.items()}
    # Parameter order (bias, g, v) matches old-style weight norm: optimizer states line up.
    names = [n for n, _ in disc.named_parameters()]
    renamed = [n.replace("parametrizations.weight.original0", "weight_g")
               .replace("parametrizations.weight.original1", "weight_v") for n in names]
    assert renamed == [k for k in legacy if not k.endswith("window")]


@pytest.mark.parametrize("norm,old_fn", [("weight_norm", "weight_norm"),
                                         ("spectral_norm", "spectral_norm")])
def test_legacy_norm_keys_give_the_same_conv(norm, old_fn):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        old = getattr(nn.utils, old_fn)(nn.Conv1d(4, 6, 5))
    old.eval()
    new = NormConv1d(4, 6, 5, norm=norm).eval()
    new.load_state_dict({f"conv.{k}": v for k, v in old.state_dict().items()})
    x = torch.randn(2, 4, 32)
    assert torch.allclose(new(x), old(x), atol=1e-5)
    assert set(to_legacy_state_dict(new)) == {f"conv.{k}" for k in old.state_dict()}


@pytest.mark.parametrize("name,kwargs,n_sub,n_fmaps", [
    ("msstftd", {"filters": 4, "n_ffts": [256, 128], "hop_lengths": [64, 32],
                 "win_lengths": [256, 128]}, 2, 5),
    ("mpd", {"filters": 2, "filters_scale": 2, "max_filters": 16}, 5, 6),
    ("msd", {"filters": 4, "max_filters": 32, "groups": None}, 3, 7),
])
def test_output_convention_and_gradients(name, kwargs, n_sub, n_fmaps):
    disc = build_adversary(name, **kwargs)
    x = torch.randn(3, 1, 2000, requires_grad=True)
    logits, fmaps = disc(x)
    assert isinstance(logits, list) and len(logits) == n_sub == disc.num_discriminators
    assert all(isinstance(f, list) and len(f) == n_fmaps for f in fmaps)
    assert all(t.shape[0] == 3 for t in logits + [m for f in fmaps for m in f])
    sum(t.mean() for t in logits).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_msd_pools_between_scales():
    disc = MultiScaleDiscriminator(filters=4, max_filters=16)
    logits, _ = disc(torch.randn(1, 1, 4096))
    lengths = [t.shape[-1] for t in logits]
    assert lengths[0] > lengths[1] > lengths[2]  # audiocraft feeds the raw signal to every scale


def test_mpd_default_layout_matches_audiocraft():
    disc = MultiPeriodDiscriminator()
    shapes = {k: tuple(v.shape) for k, v in to_legacy_state_dict(disc).items()}
    assert shapes["discriminators.0.convs.0.conv.weight_v"] == (32, 1, 5, 1)
    assert shapes["discriminators.4.convs.4.conv.weight_v"] == (1024, 1024, 5, 1)
    assert shapes["discriminators.4.conv_post.conv.weight_v"] == (1, 1024, 3, 1)
    assert len(disc.discriminators) == 5


def test_stereo_sep_channels():
    disc = MultiScaleSTFTDiscriminator(filters=4, in_channels=2, sep_channels=True,
                                       n_ffts=[128], hop_lengths=[32], win_lengths=[128])
    logits, _ = disc(torch.randn(3, 2, 1000))
    assert logits[0].shape[0] == 6


def test_bad_inputs_raise_value_errors():
    disc = build_adversary("msstftd", filters=4)
    with pytest.raises(ValueError, match=r"\[B, 1, T\]"):
        disc(torch.randn(2, 2, 1000))
    with pytest.raises(ValueError, match="unknown adversary 'foo'.*msstftd"):
        build_adversary("foo")
    with pytest.raises(ValueError, match="unknown keys \\['filterz'\\]"):
        build_adversary("msstftd", filterz=3)
    with pytest.raises(ValueError, match="unknown activation"):
        build_adversary("mpd", activation="Nope")
    with pytest.raises(ValueError, match="unknown conv norm"):
        build_adversary("msd", scale_norms=["batch_norm"])
    with pytest.raises(ValueError, match="equal length"):
        build_adversary("msstftd", n_ffts=[128])


def test_mpd_config_aliases():
    # audiocraft's yaml spells these `kernel_size` / `filter_scales`.
    disc = build_adversary("mpd", kernel_size=3, filter_scales=2, filters=4, periods=[2])
    assert disc.discriminators[0].convs[0].conv.weight.shape == (8, 1, 3, 1)


def test_stft_scale_matches_torchaudio_and_contiguous_convs():
    # The STFT is computed with torch.stft (compile-friendly) and convs run channels-last:
    # both must give torchaudio's spectrogram and the plain-layout values.
    torch.manual_seed(0)
    disc = build_adversary("msstftd", filters=4, in_channels=2, n_ffts=[256], hop_lengths=[64],
                           win_lengths=[200]).discriminators[0]
    x = torch.randn(3, 2, 1000)
    spec = disc.spec_transform(x)
    assert torch.allclose(disc._spectrogram(x), spec, atol=1e-6)
    logits, fmaps = disc(x)
    z = torch.cat([spec.real, spec.imag], dim=1).transpose(-1, -2).contiguous()
    for conv, fmap in zip(disc.convs, fmaps):
        z = disc.activation(conv(z))
        assert torch.allclose(fmap, z, atol=1e-5)
    assert torch.allclose(logits, disc.conv_post(z), atol=1e-5)


def test_msstftd_inplace_activations_change_nothing():
    """In-place LeakyReLU after each conv: same logits, feature maps and input gradients."""
    torch.manual_seed(0)
    disc = MultiScaleSTFTDiscriminator(filters=4, n_ffts=[128, 64], hop_lengths=[32, 16],
                                       win_lengths=[128, 64])
    assert all(d.activation.inplace for d in disc.discriminators)
    plain = copy.deepcopy(disc)
    for d in plain.discriminators:
        d.activation.inplace = False
    x = torch.randn(2, 1, 2000)
    outputs = []
    for model in (disc, plain):
        xi = x.clone().requires_grad_(True)
        logits, fmaps = model(xi)
        loss = sum(logit.square().mean() for logit in logits)
        loss = loss + sum(f.abs().mean() for fmap in fmaps for f in fmap)
        loss.backward()
        outputs.append((logits, fmaps, xi.grad))
    (la, fa, ga), (lb, fb, gb) = outputs
    assert all(torch.equal(a, b) for a, b in zip(la, lb))
    assert all(torch.equal(a, b) for fa_, fb_ in zip(fa, fb) for a, b in zip(fa_, fb_))
    assert torch.equal(ga, gb)
