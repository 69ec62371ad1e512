"""Probe one audio file: metadata with soundfile.info plus a small decode check.

Every outcome is a row: usable files get their metadata, the rest a reject reason and detail.
"""

from __future__ import annotations

import re

import numpy as np
import soundfile as sf

from raycodec.data.audio_io import file_size, open_audio, read_head

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
                b".snd", b"caff", b"NIST", b"wvpk")  # fmt: skip
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


def _check_frames(f: sf.SoundFile, frames: int, n: int, full: bool) -> tuple[str, str] | None:
    """Decode the head, middle and tail (or everything); (reason, detail) on a problem."""
    n = max(1, min(n, frames))
    if full:
        spans = [(s, min(n, frames - s)) for s in range(0, frames, n)]
    else:
        spans = sorted({(0, n), (max(0, frames // 2 - n // 2), n), (frames - n, n)})
    for start, count in spans:
        is_tail = start + count >= frames
        try:
            f.seek(start)
            got = f.read(count, dtype="float32", always_2d=True)
        except Exception as e:  # libsndfile raises several types for bad data
            # A failed seek means the data ends before the header says it does.
            reason = "truncated" if is_tail or "seek" in str(e).lower() else "corrupt"
            return reason, f"decode failed at frame {start}: {_short(e)}"
        if len(got) < count:
            reason = "truncated" if is_tail else "corrupt"
            return reason, f"read {len(got)} of {count} frames at frame {start} (header: {frames})"
        bad = ~np.isfinite(got)
        if bad.any():
            first = start + int(np.argmax(bad.any(axis=1)))
            return "nan_or_inf", f"{int(bad.sum())} non-finite samples, first at frame {first}"
    return None


def probe_file(path: str, *, check_frames: int = 4096, full_check: bool = False) -> dict:
    """Metadata of one file, or why it cannot be used (keys `ok`, `reason`, `detail`)."""
    row: dict = dict(path=path, ok=True, reason=None, detail=None, sample_rate=None,
                     channels=None, frames=None, duration=None, format=None, subtype=None,
                     size=None)  # fmt: skip
    try:
        try:
            row["size"] = file_size(path)
            head = read_head(path, 16) if row["size"] else b""
        except OSError as e:
            return _reject(row, "unreadable", _short(e))
        if row["size"] == 0:
            return _reject(row, "empty", "0 bytes")
        try:
            with open_audio(path) as f:
                sr, ch, frames = f.samplerate, f.channels, f.frames
                row.update(sample_rate=sr, channels=ch, frames=frames, format=f.format,
                           subtype=f.subtype)  # fmt: skip
                if sr <= 0 or ch <= 0:
                    return _reject(row, "corrupt", f"bad header: sample_rate={sr} channels={ch}")
                row["duration"] = frames / sr
                if frames <= 0:
                    return _reject(row, "zero_frames", "the header declares 0 frames")
                # libsndfile clamps a truncated WAV's frame count silently; its log keeps the
                # declared data size ("data : N (should be M)").
                if _DATA_SHOULD_BE.search(f.extra_info or ""):
                    return _reject(row, "truncated", "data chunk is longer than the file")
                problem = _check_frames(f, frames, check_frames, full_check)
        except sf.LibsndfileError as e:
            if row["format"] is not None:  # opened, then failed: bad data, not a bad format
                return _reject(row, "corrupt", _short(e))
            kind = sniff(head)
            reason = _SNIFF_REASON.get(kind, "not_audio")
            return _reject(row, reason, f"{_short(e)} (first bytes {head[:8]!r})")
        except OSError as e:
            return _reject(row, "unreadable", _short(e))
        if problem is not None:
            return _reject(row, *problem)
        return row
    except Exception as e:  # a scan must never crash on one file
        return _reject(row, "probe_error", _short(e))
