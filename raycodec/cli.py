"""The `raycodec` console script: compress, decompress and export."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="raycodec", description="Use a trained raycodec codec.")
    sub = p.add_subparsers(dest="command", required=True)
    ck_help = ("run folder (its latest checkpoint), checkpoint folder, its state.pt, `encodec` "
               ".th or audiocraft checkpoint")
    c = sub.add_parser("compress", help="audio file -> .rcdc")
    c.add_argument("input")
    c.add_argument("output")
    c.add_argument("--checkpoint", required=True, help=ck_help)
    c.add_argument("--preset", default="encodec_24khz", help="model preset for a .th checkpoint")
    c.add_argument("--bandwidth", type=float, default=6.0, help="kbps (default 6)")
    d = sub.add_parser("decompress", help=".rcdc -> audio file (format from the extension)")
    d.add_argument("input")
    d.add_argument("output")
    d.add_argument("--checkpoint", help=ck_help + " (default: the one recorded in the file)")
    d.add_argument("--preset", default=None, help="model preset for a .th checkpoint")
    d.add_argument("--model-format", action="store_true",
                   help="write at the model's rate/channels instead of the input's")
    d.add_argument("--subtype", default=None, help="soundfile subtype, e.g. PCM_16, FLOAT")
    for sp in (c, d):
        sp.add_argument("--chunk", type=float, default=10.0, help="seconds per chunk")
        sp.add_argument("--context", type=float, default=1.0,
                        help="seconds of context on each side of a chunk")
        sp.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    e = sub.add_parser("export", help="checkpoint -> `encodec` package .th or audiocraft format")
    e.add_argument("checkpoint", help=ck_help)
    e.add_argument("output")
    e.add_argument("--preset", default="encodec_24khz", help="model preset for a .th checkpoint")
    e.add_argument("--format", default="encodec", choices=("encodec", "audiocraft"),
                   help="encodec: the `encodec` package's state dict (its two architectures); "
                        "audiocraft: audiocraft's compression checkpoint (any architecture, "
                        "with the discriminators and EMA when the source has them)")
    return p


def _to_device(codec, device: str):
    """Move the codec's model to `device` (a clear error when CUDA is absent)."""
    from raycodec.train.builders import resolve_device

    codec.identity  # noqa: B018 - hashed from the CPU weights, before the move
    codec.model.to(resolve_device(device))
    return codec


def _run(args: argparse.Namespace) -> str:
    from raycodec.codec import compress_file, decompress_file, export_codec, load_codec

    if args.command == "compress":
        codec = _to_device(load_codec(args.checkpoint, args.preset), args.device)
        h = compress_file(codec, args.input, args.output, args.bandwidth, args.chunk,
                          args.context)
        secs = h.length / h.sample_rate
        kbps = h.payload_size * 8 / secs / 1000 if secs else 0.0
        return (f"{args.output}: {secs:.2f}s, {h.n_q} codebooks, payload {h.payload_size} B "
                f"({kbps:.2f} kbps)")
    if args.command == "decompress":
        codec = None
        if args.checkpoint:
            codec = _to_device(load_codec(args.checkpoint, args.preset or "encodec_24khz"),
                               args.device)
        elif args.device != "cpu":
            raise ValueError("--device needs --checkpoint")
        h = decompress_file(args.input, args.output, codec, args.chunk, args.context,
                            original_format=not args.model_format, subtype=args.subtype)
        return f"{args.output}: {h.length / h.sample_rate:.2f}s decoded"
    preset, digest = export_codec(load_codec(args.checkpoint, args.preset), args.output,
                                  args.format)
    if args.format == "audiocraft":
        return (f"{args.output}: audiocraft compression checkpoint (sha256 {digest}); fine-tune "
                f"from it with continue_from={args.output}")
    return (f"{args.output}: `encodec` {preset} state dict (sha256 {digest}); load with "
            f"EncodecModel.{preset.replace('encodec_', 'encodec_model_')}(pretrained=False)"
            f".load_state_dict(torch.load(path))")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors print one line and exit with status 2."""
    args = _parser().parse_args(argv)
    try:
        print(_run(args))
    except (ValueError, OSError, RuntimeError) as exc:  # soundfile raises RuntimeErrors
        print(f"raycodec {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
