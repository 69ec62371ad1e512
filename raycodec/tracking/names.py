"""One name, one meaning: every metric raycodec logs, in train, valid and evaluate alike.

The same names reach Aim (context `subset`), Ray Train results and Tune tables (prefixed
`train_`/`valid_`/`evaluate_`). audiocraft's metrics keep audiocraft's names and definitions
(`sisnr` is its loss: minus SI-SNR); the others have names that say what they are. A metric
measured per bandwidth gets `_<bw>kbps` appended (`metric_key`); per codebook, `_q<i>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TRAIN, VALID, EVALUATE = "train", "valid", "evaluate"
_BW = re.compile(r"^(?P<name>.+)_(?P<bw>[0-9]+(\.[0-9]+)?)kbps$")
_LAYER = re.compile(r"_q[0-9]+$")


@dataclass(frozen=True)
class Metric:
    """A metric's one definition: what it is, which way is better, where it is logged."""

    name: str          # `adv_<adversary>` stands for adv_msstftd, adv_mpd, ...
    definition: str
    better: str        # lower | higher | "" (a diagnostic, neither)
    subsets: tuple[str, ...]
    per_bandwidth: bool = False


_TV = (TRAIN, VALID)
METRICS: tuple[Metric, ...] = (
    Metric("sisnr", "audiocraft's SI-SNR loss: minus the scale-invariant SNR (dB) over "
           "`sisnr.segment`-second segments", "lower", _TV),
    Metric("si_snr_db", "scale-invariant SNR of the whole segment or clip, in dB", "higher",
           (VALID, EVALUATE), per_bandwidth=True),
    Metric("mel", "audiocraft's mel loss: L1 between log10 mel spectrograms (`mel.*`)", "lower",
           _TV, per_bandwidth=True),
    Metric("msspec", "audiocraft's multi-scale mel loss (`msspec.*`)", "lower", _TV,
           per_bandwidth=True),
    Metric("l1", "mean absolute error of the waveform", "lower", _TV),
    Metric("l2", "mean squared error of the waveform", "lower", _TV),
    Metric("mrstft", "multi-resolution STFT loss (`mrstft.*`)", "lower", _TV),
    Metric("adv_<adversary>", "generator adversarial loss against one discriminator", "lower",
           _TV),
    Metric("feat_<adversary>", "feature-matching loss against one discriminator", "lower", _TV),
    Metric("adv", "sum of the adv_<adversary> losses", "lower", _TV),
    Metric("feat", "sum of the feat_<adversary> losses", "lower", _TV),
    Metric("penalty", "commitment loss of the quantizer (weight 1, outside the balancer)",
           "lower", _TV),
    Metric("codebook_usage", "share of codes used in the batch, mean over codebooks (`_q<i>`: "
           "one codebook)", "higher", _TV, per_bandwidth=True),
    Metric("codebook_perplexity", "perplexity of the code distribution, mean over codebooks",
           "higher", _TV, per_bandwidth=True),
    Metric("d_loss", "discriminator loss, summed over discriminators (steps that update them)",
           "", (TRAIN,)),
    Metric("d_<adversary>", "loss of one discriminator", "", (TRAIN,)),
    Metric("g_loss", "the balanced generator loss actually back-propagated", "lower", (TRAIN,)),
    Metric("ratio_<loss>", "balancer monitor: the loss's share of the gradient-norm EMA", "",
           (TRAIN,)),
    Metric("ratio2", "generator gradient norm before clipping", "", (TRAIN,)),
    Metric("bandwidth", "kbps used by the step (varies with quantizer dropout)", "", (TRAIN,)),
    Metric("skipped", "1 when a non-finite loss or gradient cancelled the generator update",
           "lower", (TRAIN,)),
    Metric("d_skipped", "1 when a non-finite loss cancelled a discriminator update", "lower",
           (TRAIN,)),
    Metric("read_failures", "training files that failed to decode so far (replaced by others)",
           "lower", (TRAIN,)),
    Metric("mel_distance", "L1 between log10 mel magnitudes (80 mels, n_fft 512 and 2048, "
           "hop n_fft/4)", "lower", (EVALUATE,), per_bandwidth=True),
    Metric("stft_distance", "L1 between log10 STFT magnitudes (n_fft 512 and 2048, hop "
           "n_fft/4)", "lower", (EVALUATE,), per_bandwidth=True),
    Metric("visqol_audio", "ViSQOL MOS-LQO, audio mode", "higher", (EVALUATE,),
           per_bandwidth=True),
    Metric("visqol_speech", "ViSQOL MOS-LQO, speech mode", "higher", (EVALUATE,),
           per_bandwidth=True),
    Metric("pesq", "PESQ (wide band, 16 kHz)", "higher", (EVALUATE,), per_bandwidth=True),
    Metric("stoi", "STOI", "higher", (EVALUATE,), per_bandwidth=True),
    Metric("bitrate_kbps", "bits of the .rcdc payload per second of audio", "lower",
           (EVALUATE,), per_bandwidth=True),
    Metric("encode_rtf", "encode time / audio duration", "lower", (EVALUATE,),
           per_bandwidth=True),
    Metric("decode_rtf", "decode time / audio duration", "lower", (EVALUATE,),
           per_bandwidth=True),
)
REGISTRY = {m.name: m for m in METRICS}
_PATTERNS = [(m.name.split("<")[0], m) for m in METRICS if "<" in m.name]


def metric_key(name: str, bandwidth: float) -> str:
    """`<name>_<bw>kbps`, the key of a metric measured at one bandwidth (6.0 -> `mel_6kbps`)."""
    return f"{name}_{float(bandwidth):g}kbps"


def parse_metric_key(key: str) -> tuple[str, float | None]:
    """(name, bandwidth) of a key; bandwidth None when the key is not per bandwidth."""
    match = _BW.match(key)
    return (match["name"], float(match["bw"])) if match else (key, None)


def lookup(key: str) -> Metric:
    """The definition behind a logged key (per bandwidth or per codebook); KeyError if none."""
    name, bandwidth = parse_metric_key(key)
    name = _LAYER.sub("", name) if name.startswith("codebook_") else name
    metric = REGISTRY.get(name)
    if metric is None:
        metric = next((m for prefix, m in _PATTERNS if name.startswith(prefix)), None)
    if metric is None or (bandwidth is not None and not metric.per_bandwidth):
        raise KeyError(f"metric {key!r} has no definition in raycodec.tracking.names")
    return metric


def mode(name: str) -> str:
    """Tune's mode for a metric name: min when lower is better, max when higher is."""
    better = lookup(name).better
    if not better:
        raise KeyError(f"metric {name!r} is a diagnostic: neither lower nor higher is better")
    return "min" if better == "lower" else "max"


def markdown_table() -> str:
    """The README's metric table, generated from METRICS."""
    lines = ["| name | subsets | better | per bandwidth | definition |",
             "|---|---|---|---|---|"]
    for m in METRICS:
        lines.append(f"| `{m.name}` | {', '.join(m.subsets)} | {m.better or '-'} | "
                     f"{'yes' if m.per_bandwidth else ''} | {m.definition} |")
    return "\n".join(lines) + "\n"
