"""Command line of the training entry point: `train.py [--config NAME_OR_FILE] key=value ...`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from omegaconf import DictConfig

from raycodec.config.identity import experiment_signature
from raycodec.config.loading import DEFAULT_CONFIG, available_configs, format_config, load_config
from raycodec.config.schema import ConfigError


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argparse parser: --config, --print-config and key=value overrides."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Train an EnCodec-style codec with Ray.",
        epilog="Overrides use dotted keys, e.g. optim.lr=1e-4 dataset.batch_size=32 "
               "'adversarial.adversaries=[msstftd,mpd]'.")
    parser.add_argument(
        "--config", default=None, metavar="NAME_OR_FILE",
        help=f"a shipped config ({', '.join(available_configs())}) or a YAML file merged onto "
             f"the defaults (default: {DEFAULT_CONFIG})")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resulting config and its signature, then exit")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    return parser


def parse_train_args(argv: Sequence[str] | None = None, prog: str | None = None) -> DictConfig:
    """The validated config from command-line arguments.

    Bad arguments or config errors print a one-line message to stderr and exit with status 2
    (no traceback); --print-config prints the YAML to stdout and exits with status 0.
    """
    parser = build_parser(prog)
    # Intermixed: flags may come after overrides (`train.py optim.lr=1e-4 --print-config`).
    args = parser.parse_intermixed_args(sys.argv[1:] if argv is None else list(argv))
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as exc:
        parser.error(str(exc))  # exits 2
    if args.print_config:
        sys.stdout.write(format_config(cfg))
        sys.stdout.write(f"# signature: {experiment_signature(cfg)}\n")
        sys.stdout.flush()
        raise SystemExit(0)
    return cfg
