"""The background evaluation's reader: `evaluate.max_seconds` of each file, from its start."""

import soundfile as sf
import torch

from raycodec.codec.loading import model_settings
from raycodec.config import load_config
from raycodec.data.synth import synth_clip
from raycodec.evaluate.background import evaluate_weights
from raycodec.models import build_from_settings
from raycodec.tracking.names import metric_key


def test_max_seconds_evaluates_the_start_of_each_file(tmp_path):
    settings = model_settings(load_config("debug"))
    torch.manual_seed(0)
    state = build_from_settings(settings).state_dict()
    sr = 24000
    audio = synth_clip(3.0, sr, seed=1)
    sf.write(tmp_path / "long.wav", audio.T, sr, subtype="FLOAT")
    sf.write(tmp_path / "start.wav", audio[:, :sr].T, sr, subtype="FLOAT")
    bws = [settings["target_bandwidths"][-1]]
    cropped = evaluate_weights(state, settings, [str(tmp_path / "long.wav")], bws, max_seconds=1.0)
    start = evaluate_weights(state, settings, [str(tmp_path / "start.wav")], bws)
    whole = evaluate_weights(state, settings, [str(tmp_path / "long.wav")], bws)
    assert cropped.keys() == start.keys() and metric_key("mel_distance", bws[0]) in cropped
    quality = [k for k in cropped if "_rtf_" not in k]  # real-time factors are timings
    for key in quality:
        assert abs(cropped[key] - start[key]) <= 1e-6 * max(1.0, abs(start[key])), key
    assert any(abs(whole[k] - start[k]) > 1e-4 for k in quality)  # the crop made a difference
