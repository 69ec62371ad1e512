"""espeak-ng speech collection and the quality corpus built on it (real espeak-ng, real files)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from raycodec.data.corpus import SegmentSampler, make_corpus, valid_clips
from raycodec.data.speech import SENTENCES, SpeechUnavailable, generate_speech, main, speech_plan

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng not installed (apt-get install espeak-ng)")


def test_plan_is_deterministic_and_varied():
    plan = speech_plan(16, seed=3)
    assert plan == speech_plan(16, seed=3)
    assert plan != speech_plan(16, seed=4)
    assert {u.voice.split("+")[0] for u in plan} == set(SENTENCES)  # every language
    assert len({u.voice.split("+")[1] for u in plan}) >= 5
    assert max(u.rate for u in plan) - min(u.rate for u in plan) >= 40
    assert max(u.pitch for u in plan) - min(u.pitch for u in plan) >= 30
    assert max(u.level for u in plan) / min(u.level for u in plan) > 2


@needs_espeak
def test_generate_speech_writes_speech_at_planned_levels(tmp_path):
    paths = generate_speech(tmp_path, files=4, seed=0)
    plan = speech_plan(4, seed=0)
    assert [p.name for p in paths] == [u.name for u in plan]
    for path, utt in zip(paths, plan):
        audio, rate = sf.read(path)
        assert rate >= 16000 and audio.ndim == 1 and len(audio) > rate  # over a second
        assert np.abs(audio).max() == pytest.approx(utt.level, abs=2e-3)
        # speech has pauses and voiced parts: frame energies vary a lot
        frames = audio[: len(audio) // 400 * 400].reshape(-1, 400)
        energy = (frames ** 2).mean(1)
        assert energy.max() > 100 * np.percentile(energy, 10) + 1e-12


def test_missing_espeak_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without espeak-ng
    with pytest.raises(SpeechUnavailable, match="espeak-ng not found"):
        generate_speech(tmp_path / "out", files=1)
    assert main([str(tmp_path / "out"), "--files", "1"]) == 2
    assert "apt-get install espeak-ng" in capsys.readouterr().err


@needs_espeak
def test_corpus_holds_out_whole_files(tmp_path):
    corpus = make_corpus(tmp_path, speech_files=4, music_minutes=0.3, seed=0, holdout_every=2)
    assert corpus.valid and corpus.train
    assert not set(corpus.train) & set(corpus.valid)
    clips = valid_clips(corpus.valid, 24000, 1.0, count=4)
    assert all(c.audio.shape == (1, 24000) for c in clips)
    assert {c.speech for c in clips} == {True, False}  # speech and music alternate
    held = {p.stem for p in corpus.valid}
    assert all(c.name in held for c in clips)
    sampler = SegmentSampler(corpus.train, 24000, 0.5, seed=0)
    batch = sampler.batch(8)
    assert batch.shape == (8, 1, 12000)
    peaks = batch.abs().amax(dim=(1, 2))
    assert peaks.max() / peaks.min().clamp_min(1e-6) > 1.5  # levels vary
