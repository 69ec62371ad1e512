"""Demo on embedded defaults: fit the `debug` codec on generated audio, then encode/decode a
held-out clip at every bandwidth and print the bitrate and SI-SNR.

(A stand-in until the Ray training job lands: it shows the model API end to end in ~1 minute.)
"""

from __future__ import annotations

import argparse
import time

import torch

from raycodec.data.synth import synth_clip
from raycodec.metrics import bitrate_kbps, si_snr
from raycodec.models import build_model


def fit(model, audio: torch.Tensor, steps: int, batch: int, seed: int) -> None:
    """A few hundred steps of L1 + SI-SNR + commitment on random 1 s crops (no GAN: quick).

    SI-SNR keeps the untrained model from settling on near-silence, which L1 alone rewards.
    """
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.5, 0.9))
    seg = model.sample_rate
    model.train()
    start = time.time()
    for step in range(1, steps + 1):
        offsets = torch.randint(0, audio.shape[-1] - seg, (batch,), generator=g)
        x = torch.stack([audio[:, o:o + seg] for o in offsets.tolist()])
        res = model(x)
        loss = (res.x - x).abs().mean() - 0.1 * si_snr(x, res.x).mean() + res.penalty
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps:
            snr = float(si_snr(x, res.x.detach()).mean())
            print(f"  step {step:4d}/{steps}  si-snr {snr:6.2f} dB  "
                  f"{time.time() - start:5.1f}s", flush=True)


def main() -> None:
    """Fit, then print one row per bandwidth."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model = build_model("debug")
    sr = model.sample_rate
    train = torch.from_numpy(synth_clip(60.0, sr, 1, seed=args.seed))
    test = torch.from_numpy(synth_clip(5.0, sr, 1, seed=args.seed + 1))[None]
    print(f"Fitting the debug codec ({sum(p.numel() for p in model.parameters()):,} params) "
          f"on 60 s of generated audio for {args.steps} steps...")
    fit(model, train, args.steps, args.batch, args.seed)
    model.eval()
    duration = test.shape[-1] / sr
    print(f"\nHeld-out 5 s generated clip at {sr} Hz, {model.frame_rate} frames/s:")
    # Latent SNR isolates the quantizer (more codebooks, finer latents); the audio SI-SNR also
    # depends on how long the autoencoder trained (a minute here, days for a real codec).
    print(f"{'target kbps':>11} {'codebooks':>9} {'bitrate kbps':>12} {'latent SNR dB':>13} "
          f"{'SI-SNR dB':>9}")
    with torch.no_grad():
        latent = model.encoder(test)
    for bw in model.target_bandwidths:
        model.set_target_bandwidth(bw)
        with torch.no_grad():
            codes, scale = model.encode(test)
            out = model.decode(codes, scale, length=test.shape[-1])
            quantized = model.quantizer.decode(codes)
        kbps = bitrate_kbps(codes, model.quantizer.bins, duration)
        latent_snr = 10 * torch.log10(latent.pow(2).sum() / (latent - quantized).pow(2).sum())
        print(f"{bw:11.1f} {codes.shape[1]:9d} {kbps:12.2f} {float(latent_snr):13.2f} "
              f"{float(si_snr(test, out)):9.2f}")


if __name__ == "__main__":
    main()
