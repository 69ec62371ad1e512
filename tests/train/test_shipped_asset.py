"""The codec `make demo` fine-tunes (experiments/assets/small_24khz) fits its config and works."""

from pathlib import Path

import pytest
import torch

from raycodec.config import load_config
from raycodec.data.corpus import valid_clips
from raycodec.data.speech import generate_speech
from raycodec.data.synth import generate_collection
from raycodec.evaluate.anchors import Anchor, opus_available
from raycodec.evaluate.quality import score_anchors, score_codec
from raycodec.models.loading import map_key
from raycodec.train.finetune import build_solver, load_init

ASSET = Path(__file__).resolve().parents[2] / "experiments" / "assets" / "small_24khz"


@pytest.mark.skipif(not opus_available(), reason="opus-tools not installed")
def test_shipped_codec_loads_and_beats_opus_6kbps_on_fresh_audio(tmp_path):
    cfg = load_config("small_24khz", [f"continue_from={ASSET}",
                                      "continue_from_parts=[model,balancer]"])
    init = load_init(cfg)
    assert init.taken == ["model", "balancer"]
    model = build_solver(cfg, init).raw_model
    # The generator starts from the shipped weights (stored in fp16).
    state = {map_key(k): v for k, v in model.state_dict().items()}
    for key, value in init.model.items():
        assert torch.equal(state[map_key(key)], value.to(state[map_key(key)].dtype)), key
    # Audio the codec never saw (other seeds than the benchmark's corpus), loudest 2 s of each.
    speech = generate_speech(tmp_path / "speech", files=4, seed=11)
    music = generate_collection(tmp_path / "music", 0.5, seed=11, min_duration=2.5,
                                max_duration=10.0)
    opus6 = Anchor("opus_6kbps", "opus", kbps=6.0)
    for paths in (speech, music):
        clips = valid_clips(paths, 24000, 2.0, 4)
        mel = [s.metrics["mel_distance"] for s in score_codec(model, clips, [1.5, 6.0])]
        opus = score_anchors([opus6], clips, 24000)[0].metrics["mel_distance"]
        # Measured at shipping: speech 0.484 / 0.471 vs Opus 0.922; music and effects 1.173 /
        # 1.143 vs Opus 1.349 (the codec before the msspec floor fix: 1.587 / 1.584 vs 1.349).
        assert mel[1] < opus, (paths[0].parent.name, mel, opus)
        assert mel[0] > mel[1], (paths[0].parent.name, mel)  # more bits, less distortion
