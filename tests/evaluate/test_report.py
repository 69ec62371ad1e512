"""Quality scores, the report table, figures, target check and the run report, on a real
debug codec, real checkpoints and real audio files written by the test."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch
from omegaconf import OmegaConf

from raycodec.config import load_config
from raycodec.data.corpus import Clip
from raycodec.data.synth import synth_clip
from raycodec.evaluate.anchors import opus_available
from raycodec.evaluate.quality import Score, score_codec
from raycodec.evaluate.report import (
    extrapolate_steps,
    plot_curves,
    plot_rate_distortion,
    table,
    target_check,
)
from raycodec.evaluate.run_report import write_run_report
from raycodec.train.checkpoint import save_checkpoint
from raycodec.train.finetune import build_solver

PNG = b"\x89PNG\r\n\x1a\n"


def _scores(mel: dict[float, float], codec: str = "codec", step: int | None = None):
    return [Score(codec, k, {"mel_distance": v, "si_snr_db": -v, "stft_distance": 2 * v}, step)
            for k, v in mel.items()]


ANCHORS = [Score("opus_6kbps", 6.0, {"mel_distance": 0.8, "si_snr_db": 1.0}),
           Score("silence", None, {"mel_distance": 4.0, "si_snr_db": -80.0})]


def test_table_orders_by_bitrate_and_skips_empty_metrics():
    text = table(_scores({6.0: 0.7, 1.5: 1.1}) + ANCHORS, ("mel_distance", "visqol_audio"))
    lines = text.splitlines()
    assert "visqol_audio" not in lines[0]  # no value anywhere: no column
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["1.5", "6", "6", "-"]
    assert "| 6 | codec | 0.700 |" in text


def test_target_check_and_extrapolation():
    ok = target_check(_scores({1.5: 1.0, 3.0: 0.9, 6.0: 0.75}), ANCHORS, [1.5, 3.0, 6.0])
    assert ok["ordered_by_bitrate"] and ok["beats_reference"]
    bad = target_check(_scores({1.5: 1.0, 3.0: 1.0, 6.0: 0.9}), ANCHORS, [1.5, 3.0, 6.0])
    assert not bad["ordered_by_bitrate"] and not bad["beats_reference"]
    assert bad["gap_to_reference"] == pytest.approx(0.1)
    # mel = 2 * step^-0.25 reaches 0.8 at step (2 / 0.8)^4 = 39.06
    curve = [s for n in (10, 20, 30, 40) for s in _scores({6.0: 2 * n ** -0.25}, step=n)]
    assert extrapolate_steps(curve, 6.0, 0.8) == pytest.approx(39.0625, rel=1e-6)
    rising = [s for n in (10, 20, 30) for s in _scores({6.0: 0.1 * n}, step=n)]
    assert extrapolate_steps(rising, 6.0, 0.8) is None


def test_figures_are_pngs(tmp_path):
    curve = [s for n in (0, 10, 20) for s in _scores({1.5: 1.2 - n / 100, 6.0: 1.0 - n / 100},
                                                      step=n)]
    for path in (plot_curves(curve, ANCHORS, tmp_path / "c.png"),
                 plot_rate_distortion(curve[-2:], ANCHORS, tmp_path / "rd.png")):
        data = path.read_bytes()
        assert data[:8] == PNG and len(data) > 10_000


def _debug_solver():
    cfg = load_config("debug", ["encodec.target_bandwidths=[1.5,6.0]", "rvq.n_q=8",
                               "rvq.kmeans_iters=5"])
    torch.manual_seed(0)
    return cfg, build_solver(cfg)


def test_score_codec_measures_every_bandwidth():
    _, step_fn = _debug_solver()
    clips = [Clip(f"c{i}", torch.from_numpy(synth_clip(0.5, 24000, 1, seed=i)), i == 0)
             for i in range(2)]
    scores = score_codec(step_fn.raw_model, clips, [1.5, 6.0], step=3)
    assert [(s.kbps, s.step) for s in scores] == [(1.5, 3), (6.0, 3)]
    for s in scores:
        assert set(s.metrics) == {"si_snr_db", "mel_distance", "stft_distance", "codebook_usage"}
        assert all(math.isfinite(v) for v in s.metrics.values())


@pytest.mark.skipif(not opus_available(), reason="opus-tools not installed")
def test_run_report_writes_page_figures_and_audio(tmp_path):
    cfg, step_fn = _debug_solver()
    x = torch.from_numpy(np.stack([synth_clip(0.5, 24000, 1, seed=s) for s in range(2)]))
    run = tmp_path / "run"
    yaml = OmegaConf.to_yaml(cfg, resolve=True)
    step_fn(x, 1, torch.Generator().manual_seed(1))  # one real step; two kept checkpoints
    for i, step in enumerate((1, 2)):
        save_checkpoint(run / f"checkpoint_{i:06d}", {"solver": step_fn.state_dict(),
                        "epoch": i + 1, "step": step, "config": yaml},
                        {"epoch": i + 1, "step": step, "signature": "t"})
    held = tmp_path / "heldout"
    (held / "speech").mkdir(parents=True)
    (held / "music").mkdir()
    for i, kind in enumerate(("speech", "music")):
        sf.write(held / kind / f"{kind}.wav", synth_clip(3.0, 22050, 1, seed=10 + i)[0], 22050)
    report = write_run_report(run, held, tmp_path / "out", clips=2, heavy_clips=0,
                              aim_command="aim up --repo X")
    text = report.path.read_text()
    assert "| 6 | codec |" in text and "opus_6kbps" in text and "aim up --repo X" in text
    assert (tmp_path / "out" / "learning_curves.png").read_bytes()[:8] == PNG
    wavs = sorted(p.name for p in (tmp_path / "out" / "audio").iterdir())
    assert "speech_reference.wav" in wavs and "music_codec_6kbps.wav" in wavs
    assert set(report.targets) >= {"ordered_by_bitrate", "beats_reference", "gap_to_reference"}
