"""``samic-fast train DATA_DIR -o CKPT``: train a SAMIC codec (paper §3.5, §4.2).

Random crops of the images under DATA_DIR, the loss of Eq. 13 (+ LPIPS when installed locally)
and CompressAI's auxiliary loss, Adam with the paper's step decay. Under
``torchrun --nproc_per_node=N -m samic_fast train ...`` it runs DistributedDataParallel (one GPU
per rank with NCCL, gloo on CPU). The checkpoint records its configuration, so compress,
decompress, eval and demo use it without --arch; ``--resume`` continues it exactly.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from samic_fast.commands.common import add_model_arguments, positive_int


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def register(subparsers) -> None:
    from samic_fast.train_settings import TrainSettings  # no torch: --help stays quick

    d = TrainSettings()
    p = subparsers.add_parser("train", help="train a SAMIC model on a folder of images",
                              description="Train a SAMIC codec on random crops of the images under DATA_DIR: the "
                              "loss of Eq. 13 and CompressAI's auxiliary loss, Adam with the paper's step "
                              "decay; DistributedDataParallel under torchrun. The checkpoint records its "
                              "configuration, so the other commands need no --arch.")
    p.add_argument("data", type=Path, metavar="DATA_DIR", help="folder of training images (recursive)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="CKPT",
                   help="checkpoint to write (rewritten at every --save-every and at the end)")
    add_model_arguments(p)  # here --checkpoint gives the initial weights of a new run
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=positive_int, default=None, help="optimizer steps in all")
    length.add_argument("--epochs", type=positive_int, default=None,
                        help="passes over the data (the paper trains 150)")
    p.add_argument("--lambda", dest="lmbda", type=_nonneg_float, default=None,
                   help=f"rate-distortion trade-off on 255²·MSE (default {d.lmbda}; the paper uses "
                        "0.0035, 0.0067, 0.013, 0.025)")
    p.add_argument("--beta", type=_nonneg_float, default=None,
                   help=f"weight of the LPIPS term (default {d.beta}, the paper's)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help=f"images per process and step (default {d.batch_size})")
    p.add_argument("--patch-size", type=positive_int, default=None,
                   help=f"random crop side, a multiple of 64 (default {d.patch_size})")
    p.add_argument("--lr", type=float, default=None, help=f"Adam learning rate (default {d.lr:g})")
    p.add_argument("--aux-lr", type=float, default=None,
                   help=f"learning rate of the auxiliary (quantile) optimizer (default {d.aux_lr:g})")
    p.add_argument("--clip", type=_nonneg_float, default=None,
                   help=f"gradient-norm clipping, 0 for none (default {d.clip:g})")
    p.add_argument("--seed", type=int, default=None, help=f"random seed (default {d.seed})")
    p.add_argument("--no-amp", dest="amp", action="store_const", const=False, default=None,
                   help="no bfloat16 autocast on CUDA")
    p.add_argument("--resume", type=Path, default=None, metavar="CKPT",
                   help="continue a checkpoint written by train (its settings apply)")
    p.add_argument("--save-every", type=positive_int, default=None, metavar="N",
                   help="also save every N steps")
    p.add_argument("--stop-after", type=positive_int, default=None, metavar="N",
                   help="stop after N steps of this run (e.g. a scheduler's time slot); "
                        "continue with --resume")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="data-loading processes (default 0: in the training process)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from samic_fast.train import train
    from samic_fast.train_settings import TrainSettings

    names = ("lmbda", "beta", "steps", "epochs", "batch_size", "patch_size", "lr", "aux_lr", "clip",
             "seed", "amp")
    explicit = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    if args.resume is None and "steps" not in explicit and "epochs" not in explicit:
        from samic_fast.errors import ConfigError

        raise ConfigError("give --steps or --epochs")
    settings = TrainSettings(**explicit)
    train(args.data, args.output, settings, arch=args.arch, resume=args.resume, device=args.device,
          backend=args.backend, init=args.checkpoint, stop_after=args.stop_after, save_every=args.save_every,
          workers=args.workers, explicit=explicit)
    return 0
