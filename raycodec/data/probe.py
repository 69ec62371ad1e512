"""Probe one audio file: metadata with soundfile.info plus a small decode check.

Every outcome is a row: usable files get their metadata, the rest a reject reason and detail.
"""

from __future__ import annotations

import re

import numpy as np
import soundfile as sf

from raycodec.data.audio_io import file_size, open_audio, read_head, read_tail
from raycodec.data.ogg import final_pages, vorbis_setup, vorbis_shortfall
from raycodec.data.reader import read_float

# Why a file cannot be used; the rejects Parquet file's `reason` column takes these values.
REJECT_REASONS = {
    "unreadable": "the file cannot be opened or stat'ed (missing, permissions, not a file)",
    "empty": "the file has zero bytes",
    "not_audio": "no known audio signature and libsndfile does not recognise it",
    "unsupported_format": "an audio container libsndfile cannot decode (mp4/m4a, wma...)",
    "corrupt": "an audio signature, but the header or the checked frames fail to decode",
    "truncated": "fewer bytes or frames than the header declares",
    "zero_frames": "a valid header with no audio frames",
    "nan_or_inf": "NaN or infinite samples in the checked frames",
    "bad_manifest_entry": "an input manifest line that is not valid (JSON, path, weight)",
    "probe_error": "an unexpected error while probing (see detail)",
}

_AUDIO_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"BW64", b"riff", b"fLaC", b"OggS", b"ID3", b"FORM",
                b".snd", b"caff", b"NIST", b"wvpk")
_UNSUPPORTED_MAGIC = (b"0&\xb2u", b"#!AMR", b"MThd", b".RMF")  # asf/wma, amr, midi, realmedia
_SNIFF_REASON = {"audio": "corrupt", "unsupported": "unsupported_format"}
_DATA_SHOULD_BE = re.compile(r"^data\s*:\s*\d+\s*\(should be", re.MULTILINE)


def sniff(head: bytes) -> str:
    """'audio', 'unsupported' or 'unknown' from a file's first bytes."""
    if head[4:8] == b"ftyp":  # ISO base media (mp4, m4a, mov): no libsndfile decoder
        return "unsupported"
    if head.startswith(_UNSUPPORTED_MAGIC):
        return "unsupported"
    if head.startswith(_AUDIO_MAGIC):
        return "audio"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # MPEG audio frame sync
        return "audio"
    return "unknown"


def _reject(row: dict, reason: str, detail: str) -> dict:
    row.update(ok=False, reason=reason, detail=detail[:500])
    return row


def _short(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"


# Vorbis/Opus lengths come from the last page's granule position, and encoders often leave it a
# little past the samples that actually decode (100-900 frames seen in game audio that plays fine
# everywhere). That slack comes from the final packet's bookkeeping, so it is at most one Vorbis
# long block: the spec caps block sizes at 8192 samples. Up to 2048 frames (one common long
# block, 46 ms at 44.1 kHz) is always tolerated, so short sound effects stay; beyond that up to
# 1% of the file, never more than 8192 frames (0.19 s at 44.1 kHz). A larger loss cannot be
# slack: it means missing pages, and the file stays rejected as truncated.
OGG_SLACK_FLOOR, OGG_SLACK_CAP, OGG_SLACK_FRACTION = 2048, 8192, 0.01


def ogg_slack_tolerance(frames: int) -> int:
    """Largest header-over-decodable shortfall (frames) accepted for an Ogg file."""
    return min(OGG_SLACK_CAP, max(OGG_SLACK_FLOOR, int(frames * OGG_SLACK_FRACTION)))


def _non_finite(got: np.ndarray, start: int) -> tuple[str, str] | None:
    bad = ~np.isfinite(got)
    if not bad.any():
        return None
    first = start + int(np.argmax(bad.any(axis=1)))
    return "nan_or_inf", f"{int(bad.sum())} non-finite samples, first at frame {first}"


# Decoding a file's first frames is a copy for PCM (and cheap for FLAC, whose subtypes are
# PCM_*) but a real decode for lossy codecs (for Ogg Vorbis ~15% of the probe, and the
# hand-written loop the scan is measured against skips it). Without --full-check lossy files
# therefore skip it: a damaged first block is then found at training time, as a counted read
# failure, instead of at scan time.
_COPY_SUBTYPES = ("PCM", "FLOAT", "DOUBLE", "ULAW", "ALAW")


def _check_frames(f: sf.SoundFile, frames: int, n: int, full: bool, tail_start: int | None,
                  head: bool, pos: int = 0) -> tuple[tuple[str, str] | None, int | None]:
    """Decode the tail (plus the head, or everything): (problem or None, decodable frames).

    The tail is read to the end of the data from `tail_start` (default frames - n), so that the
    decodable length is measured, not assumed from the header; None when decoding failed.
    `pos` is the file's position (-1: unknown, seek first).
    """
    n = max(1, min(n, frames))
    tail = max(0, frames - n) if tail_start is None else max(0, min(tail_start, frames - n))
    if full:
        spans = [(s, min(n, tail - s)) for s in range(0, tail, n)]
    else:
        spans = [(0, min(n, tail))] if head else []
    spans = [sp for sp in spans if sp[1] > 0] + [(tail, frames - tail)]
    for start, count in spans:
        is_tail = start == tail
        try:
            if start != pos:  # a seek restarts an Ogg/FLAC decoder: only when needed
                f.seek(start)
            got = read_float(f, count)  # f.read() would seek after reading: a decoder restart
            pos = start + len(got)
        except Exception as e:  # libsndfile raises several types for bad data
            # A failed seek means the data ends before the header says it does.
            reason = "truncated" if is_tail or "seek" in str(e).lower() else "corrupt"
            return (reason, f"decode failed at frame {start}: {_short(e)}"), None
        problem = _non_finite(got, start)
        if problem is not None:
            return problem, None
        if len(got) < count:
            reason = "truncated" if is_tail else "corrupt"
            return (reason, f"read {len(got)} of {count} frames at frame {start} "
                            f"(header: {frames})"), start + len(got)
    return None, frames


def _check_ogg(f: sf.SoundFile, path: str, size: int, frames: int, n: int, full: bool,
               subtype: str) -> tuple[tuple[str, str] | None, int | None]:
    """_check_frames for Ogg, measuring the decodable length without trusting the final granule.

    Reading from a position gives the true length when libsndfile's seek to it is exact:
    positions up to the final page's start, and (Vorbis) any position within 2 s of the start
    of a freshly opened file, where libsndfile decodes forward instead of searching. Otherwise
    the final page's true length is counted from its packets (ogg.vorbis_shortfall), and only
    when that cannot be told is the whole final page decoded (the costly, always-exact way).
    """
    end = final_pages(lambda k: read_tail(path, size, k), size)
    if end is None:  # no clean chain of pages at the end: read from frames - n, as for others
        return _check_frames(f, frames, n, full, None, full)
    pcm_start = max(0, end.final_granule - frames)  # granule of frame 0 (0 for most files)
    start = max(0, end.prev_granule - pcm_start)  # the final page's first frame
    t = max(0, frames - n)
    if full or subtype != "VORBIS" or t <= start:
        return _check_frames(f, frames, n, full, start, full)
    if t < 2 * f.samplerate:  # libsndfile's VORBIS_SEEK_THRESHOLD: an exact forward skip
        return _check_frames(f, frames, n, False, t, False)
    setup = vorbis_setup(read_head(path, 1 << 14))  # the headers are ~4 kB, unless tagged
    if setup is None and size > 1 << 14:
        setup = vorbis_setup(read_head(path, 1 << 18))
    shortfall = None if setup is None else vorbis_shortfall(setup, end.tail, end.starts)
    if shortfall is None:
        return _check_frames(f, frames, n, False, start, False)
    # Decode the last n frames as the loop does (a check of the final packets; the position
    # libsndfile maps t to may be off by the slack, so the count read only bounds the length).
    problem, measured = _check_frames(f, frames, n, False, t, False)
    decodable = frames - shortfall
    if problem is not None and measured is None:
        return problem, None  # the final packets fail to decode
    if problem is not None and measured < decodable:  # fewer than the packets promise: measure
        return _check_frames(f, frames, n, False, start, False, pos=-1)
    if shortfall == 0:
        return None, frames
    return ("truncated", f"the final page decodes {shortfall} frames fewer than its granule "
                         f"position claims (header: {frames})"), decodable


def _ogg_shortfall(row: dict, problem: tuple[str, str], decodable: int | None) -> bool:
    """Accept an Ogg file whose data end early by at most the slack tolerance (True if so).

    Only a clean early end counts: a decode error stays a reject, whatever the position.
    """
    frames = row["frames"]
    if problem[0] != "truncated" or not decodable or frames - decodable > ogg_slack_tolerance(
            frames):
        return False
    row.update(frames=decodable, duration=decodable / row["sample_rate"],
               note=f"length_corrected: header {frames} frames, {decodable} decode")
    return True


def probe_file(path: str, *, size: int | None = None, check_frames: int = 4096,
               full_check: bool = False) -> dict:
    """Metadata of one file, or why it cannot be used (keys `ok`, `reason`, `detail`, `note`).

    `frames` is the decodable length; `note` says when it differs from the header's.
    `size` (bytes, from the listing) saves a stat.
    """
    row: dict = dict(path=path, ok=True, reason=None, detail=None, sample_rate=None,
                     channels=None, frames=None, duration=None, format=None, subtype=None,
                     size=size, note=None)
    try:
        try:
            if row["size"] is None:
                row["size"] = file_size(path)
        except OSError as e:
            return _reject(row, "unreadable", _short(e))
        if row["size"] == 0:
            return _reject(row, "empty", "0 bytes")
        try:
            with open_audio(path) as f:
                sr, ch, frames = f.samplerate, f.channels, f.frames
                fmt, subtype = f.format, f.subtype  # each read is a libsndfile query
                row.update(sample_rate=sr, channels=ch, frames=frames, format=fmt,
                           subtype=subtype)
                if sr <= 0 or ch <= 0:
                    return _reject(row, "corrupt", f"bad header: sample_rate={sr} channels={ch}")
                row["duration"] = frames / sr
                if frames <= 0:
                    return _reject(row, "zero_frames", "the header declares 0 frames")
                # libsndfile clamps a truncated WAV's frame count silently; its log keeps the
                # declared data size ("data : N (should be M)").
                if fmt != "OGG" and _DATA_SHOULD_BE.search(f.extra_info or ""):
                    return _reject(row, "truncated", "data chunk is longer than the file")
                if fmt == "OGG":
                    problem, decodable = _check_ogg(f, path, row["size"], frames,
                                                    check_frames, full_check, subtype)
                else:
                    head = full_check or str(subtype).startswith(_COPY_SUBTYPES)
                    problem, decodable = _check_frames(f, frames, check_frames, full_check,
                                                       None, head)
        except sf.LibsndfileError as e:
            if row["format"] is not None:  # opened, then failed: bad data, not a bad format
                return _reject(row, "corrupt", _short(e))
            head = _head(path)
            return _reject(row, _SNIFF_REASON.get(sniff(head), "not_audio"),
                           f"{_short(e)} (first bytes {head[:8]!r})")
        except OSError as e:
            return _reject(row, "unreadable", _short(e))
        if problem is not None and not (row["format"] == "OGG"
                                        and _ogg_shortfall(row, problem, decodable)):
            return _reject(row, *problem)
        return row
    except Exception as e:  # a scan must never crash on one file
        return _reject(row, "probe_error", _short(e))


def _head(path: str) -> bytes:
    """First bytes of a file that failed to open (to tell unsupported formats from garbage)."""
    try:
        return read_head(path, 16)
    except OSError:
        return b""
