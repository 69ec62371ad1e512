"""Embedded speech dataset: sentences synthesised with espeak-ng in several voices and languages.

Each file is a few sentences in one language, spoken by one voice variant (male/female/named) at
its own rate, pitch and word gap, scaled to its own level. Deterministic per seed. espeak-ng
(Debian package `espeak-ng`) must be on PATH; without it `generate_speech` raises a one-line
`SpeechUnavailable` error.

CLI: ``python -m raycodec.data.speech OUT_DIR --files 40 --seed 0``
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

# A few plain sentences per language: espeak-ng reads any text, real sentences give it real
# prosody (stress, phrase-final lengthening) instead of word salad.
SENTENCES: dict[str, tuple[str, ...]] = {
    "en-us": ("The quick brown fox jumps over the lazy dog.",
              "Please call Stella and ask her to bring these things from the store.",
              "A rainbow is a division of white light into many beautiful colours.",
              "She sells sea shells by the sea shore, every summer morning.",
              "We will meet at nine thirty near the old railway station."),
    "en-gb": ("The birch canoe slid on the smooth planks.",
              "Glue the sheet to the dark blue background.",
              "It is easy to tell the depth of a well.",
              "These days a chicken leg is a rare dish."),
    "de": ("Der schnelle braune Fuchs springt über den faulen Hund.",
           "Heute Abend gehen wir gemeinsam ins Theater.",
           "Die Sonne scheint und die Vögel singen im Garten."),
    "fr": ("Le vif renard brun saute par-dessus le chien paresseux.",
           "Nous irons au marché demain matin avant le déjeuner.",
           "La musique remplit la salle d'une lumière douce."),
    "es": ("El veloz zorro marrón salta sobre el perro perezoso.",
           "Mañana por la tarde vamos a caminar junto al río.",
           "La ciudad despierta lentamente bajo la lluvia."),
    "it": ("La volpe veloce salta sopra il cane pigro.",
           "Domani andremo al mare con tutta la famiglia."),
    "pt": ("A rápida raposa marrom pula sobre o cão preguiçoso.",
           "O comboio chega sempre atrasado nos dias de chuva."),
    "nl": ("De snelle bruine vos springt over de luie hond.",
           "Morgen gaan we met de fiets naar het strand."),
}
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "f5",
            "klatt", "klatt3", "Andrea", "Alex", "Denis", "john", "steph", "robosoft")


class SpeechUnavailable(RuntimeError):
    """espeak-ng is missing or failed."""


@dataclass(frozen=True)
class Utterance:
    """One file of the speech collection: what is said, by which voice, how."""

    name: str
    text: str
    voice: str     # espeak-ng voice: language + "+" + variant
    rate: int      # words per minute
    pitch: int     # 0..99
    gap: int       # extra pause between words, in units of 10 ms
    level: float   # peak level after scaling, 0..1


def espeak_binary() -> str:
    """Path of espeak-ng, or SpeechUnavailable with the install hint."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise SpeechUnavailable("espeak-ng not found on PATH (Debian: apt-get install espeak-ng)")
    return path


def speech_plan(files: int = 40, seed: int = 0) -> list[Utterance]:
    """The deterministic list of utterances of a collection of `files` files."""
    if files < 1:
        raise ValueError(f"files must be >= 1, got {files}")
    rng = np.random.default_rng([int(seed), 0x5BEEC4])
    languages = sorted(SENTENCES)
    plan = []
    for i in range(files):
        lang = languages[i % len(languages)]  # every language appears, round robin
        pool = SENTENCES[lang]
        picks = rng.choice(len(pool), size=min(len(pool), int(rng.integers(1, 4))), replace=False)
        variant = VARIANTS[int(rng.integers(len(VARIANTS)))]
        plan.append(Utterance(
            name=f"speech_{i:04d}_{lang}_{variant.lower()}.wav",
            text=" ".join(pool[j] for j in picks), voice=f"{lang}+{variant}",
            rate=int(rng.integers(110, 231)), pitch=int(rng.integers(15, 91)),
            gap=int(rng.integers(0, 4)), level=float(rng.uniform(0.05, 0.95)),
        ))
    return plan


def synthesize(utt: Utterance) -> tuple[np.ndarray, int]:
    """Run espeak-ng for one utterance: (float32 mono samples scaled to utt.level, rate)."""
    cmd = [espeak_binary(), "-v", utt.voice, "-s", str(utt.rate), "-p", str(utt.pitch),
           "-g", str(utt.gap), "--stdout", utt.text]
    proc = subprocess.run(cmd, capture_output=True, timeout=60)
    if proc.returncode != 0 or len(proc.stdout) < 100:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise SpeechUnavailable(f"espeak-ng failed for voice {utt.voice!r}: "
                                f"{err[-1] if err else 'no audio produced'}")
    audio, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    peak = float(np.abs(audio).max())
    if peak < 1e-6:
        raise SpeechUnavailable(f"espeak-ng produced silence for voice {utt.voice!r}")
    return (audio * (utt.level / peak)).astype(np.float32), rate


def generate_speech(out_dir: str | Path, files: int = 40, seed: int = 0,
                    overwrite: bool = False) -> list[Path]:
    """Write the speech collection into out_dir (16-bit WAV at espeak's rate); returns paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for utt in speech_plan(files, seed):
        path = out / utt.name
        paths.append(path)
        if path.exists() and path.stat().st_size > 0 and not overwrite:
            continue  # deterministic content: reruns are cheap
        audio, rate = synthesize(utt)
        tmp = path.with_name(path.name + ".part")
        sf.write(tmp, audio, rate, subtype="PCM_16", format="WAV")
        tmp.replace(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    p = argparse.ArgumentParser(prog="python -m raycodec.data.speech",
                                description="Write an espeak-ng speech collection.")
    p.add_argument("out_dir")
    p.add_argument("--files", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    try:
        paths = generate_speech(args.out_dir, args.files, args.seed, args.overwrite)
    except (ValueError, OSError, SpeechUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    total = sum(sf.info(str(q)).duration for q in paths)
    print(f"wrote {len(paths)} speech files ({total / 60:.2f} min) to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
