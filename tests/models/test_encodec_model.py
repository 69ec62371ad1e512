"""EncodecModel: shapes, causality, bandwidths, state round trip and bad input."""

import pytest
import torch

from raycodec.models import PRESETS, build_model, load_encodec_checkpoint


def _fill_codebooks(model, seed=0):
    """Random, initialised codebooks so that eval-mode codes are meaningful."""
    g = torch.Generator().manual_seed(seed)
    for layer in model.quantizer.vq.layers:
        cb = layer._codebook
        cb.embed.copy_(torch.randn(cb.embed.shape, generator=g))
        cb.embed_avg.copy_(cb.embed)
        cb.inited.fill_(1)
    return model


@pytest.mark.parametrize("length", [320, 321, 4000, 24000, 24011])
def test_debug_shapes_at_several_lengths(length):
    model = _fill_codebooks(build_model("debug")).eval()
    x = torch.randn(2, 1, length)
    with torch.no_grad():
        res = model(x)
        codes, scale = model.encode(x)
        y = model.decode(codes, scale, length=length)
    frames = -(-length // model.hop_length)
    assert res.x.shape == x.shape and y.shape == x.shape
    assert codes.shape == (2, model.quantizer.n_q, frames) and codes.dtype == torch.int64
    assert scale is None
    assert torch.allclose(res.x, y, atol=1e-6)


@pytest.mark.parametrize("name", ["encodec_24khz", "encodec_48khz", "audiocraft_base_24khz"])
def test_full_presets_shapes(name):
    model = _fill_codebooks(build_model(name)).eval()
    x = torch.randn(1, model.channels, int(model.sample_rate * 1.1) + 7) * 0.1
    with torch.no_grad():
        res = model(x)
        codes, scale = model.encode(x)
    assert res.x.shape == x.shape
    assert codes.shape[:2] == (1, model.quantizer.n_q)
    if model.renormalize:  # 48 kHz: one scale per 1 s segment (stride 0.99 s)
        assert scale.shape == (1, 2)


def test_trainable_parameters_of_the_24khz_model():
    model = build_model("encodec_24khz")
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 14_851_810
    assert not list(model.quantizer.parameters())  # codebooks are buffers only


@pytest.mark.parametrize("name", ["debug", "encodec_24khz", "audiocraft_base_24khz"])
def test_causal_presets_do_not_look_ahead(name):
    model = _fill_codebooks(build_model(name)).eval()
    hop = model.hop_length
    x = torch.randn(1, 1, 24000) * 0.1
    t = 12345
    x2 = x.clone()
    x2[..., t:] = torch.randn(24000 - t)
    with torch.no_grad():
        z, z2 = model.encoder(x), model.encoder(x2)
        y, y2 = model(x).x, model(x2).x
        # Decoder alone: latents that differ from frame k on leave samples before k * hop alone.
        k = 40
        w = z.clone()
        w[..., k:] += 1.0
        d, d2 = model.decoder(z), model.decoder(w)
    # One frame of latency: the frame holding t may change, everything before it is final.
    assert torch.equal(z[..., : t // hop], z2[..., : t // hop])
    assert not torch.allclose(z[..., t // hop:], z2[..., t // hop:])
    assert torch.equal(d[..., : k * hop], d2[..., : k * hop])
    assert not torch.allclose(d[..., k * hop:], d2[..., k * hop:])
    assert torch.equal(y[..., : (t // hop) * hop], y2[..., : (t // hop) * hop])


def test_non_causal_preset_looks_ahead():
    model = _fill_codebooks(build_model("encodec_48khz")).eval()
    x = torch.randn(1, 2, 24000) * 0.1
    x2 = x.clone()
    x2[..., 20000:] = 0.5
    with torch.no_grad():
        assert not torch.equal(model(x).x[..., :15000], model(x2).x[..., :15000])


def test_bandwidth_math_and_selection():
    m24, m48 = build_model("encodec_24khz"), build_model("encodec_48khz")
    assert m24.frame_rate == 75 and m48.frame_rate == 150
    assert m24.quantizer.bandwidth_per_quantizer == pytest.approx(0.75)
    assert m48.quantizer.bandwidth_per_quantizer == pytest.approx(1.5)
    assert m24.target_bandwidths == [1.5, 3.0, 6.0, 12.0, 24.0]
    assert m48.target_bandwidths == [3.0, 6.0, 12.0, 24.0]
    _fill_codebooks(m24).eval()
    x = torch.randn(1, 1, 8000)
    for bw, n_q in [(1.5, 2), (3.0, 4), (6.0, 8), (12.0, 16), (24.0, 32)]:
        m24.set_target_bandwidth(bw)
        assert m24.bandwidth == pytest.approx(bw)
        with torch.no_grad():
            res = m24(x)
        assert res.codes.shape[1] == n_q and float(res.bandwidth) == pytest.approx(bw)
        assert m24.encode(x, bandwidth=bw)[0].shape[1] == n_q
    for bad in (0.5, 30.0):
        with pytest.raises(ValueError, match="out of range"):
            m24.set_target_bandwidth(bad)


def test_state_dict_round_trip(tmp_path):
    model = build_model("debug", n_q=4, bins=64)
    model.train()
    for _ in range(2):  # k-means init + EMA updates change every buffer
        model(torch.randn(2, 1, 6400))
    torch.save(model.state_dict(), tmp_path / "m.pt")
    fresh = build_model("debug", n_q=4, bins=64)
    fresh.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    model.eval()
    fresh.eval()
    x = torch.randn(1, 1, 4000)
    with torch.no_grad():
        assert torch.equal(model.encode(x)[0], fresh.encode(x)[0])
        assert torch.equal(model(x).x, fresh(x).x)


def test_audiocraft_checkpoint_naming_loads(tmp_path):
    source = _fill_codebooks(build_model("audiocraft_base_24khz")).eval()
    # audiocraft saves old-style weight norm (weight_g/weight_v) and `initialized` codebook flags.
    renames = {".parametrizations.weight.original0": ".weight_g",
               ".parametrizations.weight.original1": ".weight_v",
               "._codebook.inited": "._codebook.initialized"}
    state = {}
    for key, value in source.state_dict().items():
        for new, old in renames.items():
            key = key.replace(new, old)
        state[key] = value
    assert any(k.endswith("weight_g") for k in state) and any("initialized" in k for k in state)
    torch.save({"best_state": {"model": state}, "xp.cfg": "..."}, tmp_path / "checkpoint.th")
    loaded = load_encodec_checkpoint(tmp_path / "checkpoint.th", "audiocraft_base_24khz")
    x = torch.randn(1, 1, 8000) * 0.1
    with torch.no_grad():
        assert torch.equal(source(x).x, loaded(x).x)


@pytest.mark.parametrize("make_input, message", [
    (lambda: torch.randn(1, 2, 4000), "expected 1 channel"),
    (lambda: torch.randn(1, 1, 100), "at least one frame"),
    (lambda: torch.randint(0, 5, (1, 1, 4000)), "floating-point"),
    (lambda: torch.full((1, 1, 4000), float("nan")), "NaN"),
    (lambda: torch.randn(1, 4000), r"shape \[B, C, T\]"),
])
def test_bad_audio_input(make_input, message):
    model = build_model("debug").eval()
    with pytest.raises(ValueError, match=message):
        model(make_input())
    with pytest.raises(ValueError, match=message):
        model.encode(make_input())


def test_unknown_preset_and_setting():
    with pytest.raises(ValueError, match="did you mean encodec_24khz"):
        build_model("encodec_24kHz")
    with pytest.raises(ValueError, match="did you mean n_filters"):
        build_model("debug", n_filter=8)
    assert set(PRESETS) == {"encodec_24khz", "encodec_48khz", "audiocraft_base_24khz", "debug"}


def test_checkpoint_with_missing_unexpected_or_misshapen_keys(tmp_path):
    state = build_model("encodec_24khz").state_dict()
    missing = {k: v for k, v in state.items() if "decoder.model.15" not in k}
    with pytest.raises(ValueError, match=r"missing keys: decoder\.model\.15"):
        load_encodec_checkpoint(missing, "encodec_24khz")
    extra = dict(state, **{"lm.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"unexpected keys: lm\.weight"):
        load_encodec_checkpoint(extra, "encodec_24khz")
    with pytest.raises(ValueError, match="wrong shape"):
        narrow = build_model("encodec_24khz", n_filters=8).state_dict()
        load_encodec_checkpoint(narrow, "encodec_24khz")
    with pytest.raises(ValueError, match="not found"):
        load_encodec_checkpoint(tmp_path / "nope.th")
    (tmp_path / "junk.th").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_encodec_checkpoint(tmp_path / "junk.th")
