"""The Ray Data evaluation job on a tiny manifest."""

import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from raycodec.data.synth import synth_clip
from raycodec.evaluate import METRICS, run_evaluation, to_markdown
from raycodec.tracking.names import metric_key
from tests.codec.conftest import make_checkpoint


@pytest.fixture()
def manifest(tmp_path):
    rows = []
    for i, (sr, ch) in enumerate([(24000, 1), (16000, 2), (24000, 1)]):
        path = tmp_path / f"c{i}.wav"
        x = synth_clip(0.6, sr, ch, seed=i)
        sf.write(path, x.T, sr)
        rows.append({"path": str(path), "sample_rate": sr, "channels": ch,
                     "frames": x.shape[-1], "duration": x.shape[-1] / sr})
    out = tmp_path / "manifest.parquet"
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out


@pytest.mark.slow
def test_evaluate_job_writes_table(ray_local, manifest, tmp_path):
    ck = make_checkpoint(tmp_path / "run" / "checkpoint_000000")
    table = run_evaluation(str(tmp_path / "run"), str(manifest), [1.5, 6.0],
                           str(tmp_path / "out"), batch_size=2, concurrency=1,
                           aim_repo=str(tmp_path / "aim"))
    assert [r["bandwidth"] for r in table] == [1.5, 6.0]
    assert all(r["clips"] == 3 for r in table)
    for r in table:
        assert abs(r["bitrate_kbps"] - r["bandwidth"]) / r["bandwidth"] < 0.05
        assert r["encode_rtf"] > 0 and r["decode_rtf"] > 0
        assert math.isfinite(r["si_snr_db"]) and r["mel_distance"] > 0
    assert table[1]["mel_distance"] <= table[0]["mel_distance"] * 1.5
    md = (tmp_path / "out" / "summary.md").read_text()
    assert md == to_markdown(table)
    header = (tmp_path / "out" / "summary.csv").read_text().splitlines()[0].split(",")
    assert header == ["bandwidth", "clips", *METRICS]
    assert ck.exists()

    from aim import Repo
    from aim.storage.context import Context

    from tests.tracking.test_aim_tracker import reindex

    reindex(str(tmp_path / "aim"))
    runs = list(Repo.from_path(str(tmp_path / "aim")).iter_runs())
    assert [(r.experiment, r["train_signature"]) for r in runs] == [("evaluate", "testsig")]
    for r in table:  # the keys training's validation uses: `<metric>_<bw>kbps`
        si_snr = runs[0].get_metric(metric_key("si_snr_db", r["bandwidth"]),
                                    Context({"subset": "evaluate"}))
        assert si_snr.values.values_list() == pytest.approx([r["si_snr_db"]])


def _evaluate_main():
    """experiments/evaluate.py's main(), loaded from its file (experiments/ is no package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "experiments" / "evaluate.py"
    spec = importlib.util.spec_from_file_location("evaluate_cli", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.parametrize("kind, message", [
    ("missing", "--data manifest not found: "),
    ("no_columns", "manifest lacks columns"),
])
def test_evaluate_cli_checks_data_like_training(ray_local, tmp_path, capsys, kind, message):
    data = tmp_path / "m.parquet"
    if kind == "no_columns":
        pq.write_table(pa.table({"file": ["a.wav"]}), data)
    ck = make_checkpoint(tmp_path / "run" / "checkpoint_000000")
    assert _evaluate_main()(["--checkpoint", str(ck), "--data", str(data),
                             "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("evaluate: error: ") and message in err and "\n" not in err
    assert not (tmp_path / "out").exists()  # nothing evaluated
