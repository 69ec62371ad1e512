"""AimTracker against real Aim repositories."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from raycodec.tracking import AimTracker, mel_image, resolve_repo


def reindex(repo: str) -> None:
    """Make sequences written by a closed run visible to readers (what `aim up` does)."""
    aim_cli = Path(sys.executable).with_name("aim")
    subprocess.run([str(aim_cli), "storage", "--repo", repo, "reindex", "-y"], check=True,
                   capture_output=True)


def test_metrics_audio_images_and_resume(tmp_path):
    from aim import Repo
    from aim.storage.context import Context

    repo = str(tmp_path / "aim")
    tracker = AimTracker(repo, "exp", "deadbeef", hparams={"losses": {"adv": 4.0}})
    assert not tracker.resumed
    tracker.log_metrics({"l1": 0.5, "msspec": 2.0}, step=1, epoch=0, subset="train")
    sr = 16000
    tone = np.sin(2 * np.pi * 440 * np.arange(sr) / sr)[None].astype(np.float32) * 0.5
    tracker.log_audio("reconstruction", tone, sr, step=1, context={"bandwidth": 6.0})
    tracker.log_image("mel", mel_image(tone, sr), step=1, context={"bandwidth": 6.0})
    first_hash = tracker.hash
    tracker.close()

    again = AimTracker(repo, "exp", "deadbeef")
    assert again.resumed and again.hash == first_hash
    again.log_metrics({"l1": 0.25}, step=2, epoch=1, subset="train")
    again.close()
    other = AimTracker(repo, "exp", "cafef00d")
    assert other.hash != first_hash
    other.close()

    reindex(repo)
    run = Repo.from_path(repo).get_run(first_hash)
    assert run.name == "deadbeef" and run.experiment == "exp"
    assert run["hparams"] == {"losses": {"adv": 4.0}}
    assert run.get_metric("l1", Context({"subset": "train"})).values.values_list() == [0.5, 0.25]
    audio = run.get_audio_sequence("reconstruction", Context({"bandwidth": 6.0}))
    assert audio is not None and len(audio.values.values_list()) == 1
    images = run.get_image_sequence("mel", Context({"bandwidth": 6.0}))
    assert images is not None and len(images.values.values_list()) == 1


def test_mel_image_shape_and_range():
    sr = 24000
    img = mel_image(np.random.default_rng(0).normal(size=(2, sr)).astype(np.float32), sr)
    assert img.dtype == np.uint8 and img.shape[0] == 80 and img.shape[1] > 50
    assert img.max() == 255


def test_unwritable_repo_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="not writable"):
        resolve_repo(blocker / "aim")
    assert resolve_repo("aim://127.0.0.1:53800") == "aim://127.0.0.1:53800"
    assert Path(resolve_repo(tmp_path / "rel")).is_absolute()


def test_tracking_errors_warn_instead_of_raising(tmp_path):
    tracker = AimTracker(str(tmp_path / "aim"), "exp", "0badc0de")
    with pytest.warns(UserWarning, match="Aim tracking failed"):
        tracker.log_metrics({"l1": "not a number"}, step=0)
    tracker.close()
    tracker.log_metrics({"l1": 1.0}, step=1)  # closed: silently ignored, no crash
    tracker.close()
