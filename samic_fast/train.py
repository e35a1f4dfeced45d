"""Training SAMIC (paper §3.5 and §4.2), on one process or under torchrun with DDP.

Objective: :class:`samic_fast.loss.RateDistortionPerceptionLoss` (Eq. 13: bpp + λ·255²·MSE +
β·LPIPS, the LPIPS term only when its weights are installed locally) plus CompressAI's auxiliary
loss of the entropy bottleneck, which moves only its ``quantiles`` and has its own Adam optimizer
(CompressAI's ``configure_optimizers``). The two losses reach disjoint parameters, so one backward
of their sum gives each optimizer exactly its own gradient, and DDP sees every parameter used in
one forward.

Schedule (§4.2): Adam at 1e-4; the learning rate drops by 10× at 140/150 and 145/150 of training
(the paper's epochs 140 and 145 of 150), whether the length is given in steps or epochs.

Data: random ``patch_size`` crops (§4.2: 256) of the images under a folder (recursive), an edge-
replicated pad first for an image smaller than the patch. Sample ``p`` of the stream (step ``s``,
rank ``r``, slot ``j``: ``p = (s·world + r)·batch + j``) is image ``perm_e[p mod n]`` of the
epoch's permutation ``perm_e`` (``e = p div n``) cropped at an offset drawn from a generator
seeded by ``(seed, p)``: the data of every step is a pure function of the step, so resuming needs
no sampler state and loader workers change nothing.

Checkpoints (``torch.save``, loadable with ``weights_only=True``): ``state_dict`` (the model,
CDF tables from ``update()`` included, so any checkpoint can code), ``config``
(``SAMICConfig.canonical()``), ``arch``, ``step``, ``total_steps``, ``settings``, ``optimizer``,
``aux_optimizer``, ``lr_scheduler``, ``rng`` (torch/CUDA/numpy/python states, one per rank),
``world_size``, ``history`` (a float64 tensor, one row per step: the columns
:data:`HISTORY_COLUMNS`, rank-averaged) and
``finished``. ``resume`` continues from one exactly: the next step's loss equals that of an
uninterrupted run (same world size, same device kind).
"""

from __future__ import annotations

import dataclasses
import math
import random
import sys
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import torch.nn as nn

from samic_fast.errors import ConfigError, InputFileError
from samic_fast.train_settings import TrainSettings

CHECKPOINT_FORMAT = "samic_fast.train/v1"
#: The paper decays the learning rate at epochs 140 and 145 of 150.
DECAY_AT = (140 / 150, 145 / 150)
DECAY_FACTOR = 0.1
HISTORY_COLUMNS = ("step", "loss", "bpp", "psnr", "aux")


# ---------------------------------------------------------------- data
def image_files(root: Path) -> List[Path]:
    """The image files under ``root`` (recursive, hidden files skipped), sorted by path."""
    from PIL import Image

    root = Path(root)
    if not root.is_dir():
        raise InputFileError(f"{root}: not a folder of training images")
    exts = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise InputFileError(f"{root}: holds no image files")
    return files


def sample_index(p: int, n: int, seed: int) -> int:
    """Image of stream position ``p``: every image once per epoch, in a seeded random order."""
    epoch, within = divmod(p, n)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return int(torch.randperm(n, generator=gen)[within])


class PatchStream(torch.utils.data.Dataset):
    """Item ``p`` is the ``(3, P, P)`` float crop of stream position ``p`` (module docstring)."""

    def __init__(self, files: List[Path], patch: int, seed: int) -> None:
        self.files, self.patch, self.seed = files, patch, seed

    def __len__(self) -> int:  # positions are unbounded; the batch sampler chooses them
        return 2**62

    def __getitem__(self, p: int) -> torch.Tensor:
        from samic_fast.imageio import read_image_file

        rgb = read_image_file(self.files[sample_index(p, len(self.files), self.seed)])
        h, w = rgb.shape[:2]
        P = self.patch
        if h < P or w < P:
            rgb = np.pad(rgb, ((0, max(0, P - h)), (0, max(0, P - w)), (0, 0)), mode="edge")
            h, w = rgb.shape[:2]
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + p) * 2 + 1)
        top = int(torch.randint(0, h - P + 1, (1,), generator=gen))
        left = int(torch.randint(0, w - P + 1, (1,), generator=gen))
        crop = np.ascontiguousarray(rgb[top:top + P, left:left + P])
        return torch.from_numpy(crop).permute(2, 0, 1).float().div_(255.0)


def batch_positions(step: int, rank: int, world: int, batch: int) -> List[int]:
    base = (step * world + rank) * batch
    return list(range(base, base + batch))


# ---------------------------------------------------------------- optimisation
class _WithAux(nn.Module):
    """``forward(x) -> (output, aux_loss)``: one forward for DDP covering every parameter."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        with torch.autocast(x.device.type, enabled=False):  # the quantile fit stays in float32
            aux = self.model.aux_loss()
        return self.model(x), aux


def split_parameters(model: nn.Module):
    """CompressAI's split: the bottleneck's ``quantiles`` (aux optimizer) and all the rest."""
    main = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith(".quantiles")]
    aux = [p for n, p in model.named_parameters() if p.requires_grad and n.endswith(".quantiles")]
    return main, aux


def milestones(total_steps: int) -> List[int]:
    return [max(1, round(total_steps * f)) for f in DECAY_AT]


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {"key": np_state[0], "state": torch.from_numpy(np_state[1].astype(np.int64)),
                      "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
            "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and state.get("cuda"):
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["key"], n["state"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _amp_context(device: torch.device, enabled: bool):
    """bfloat16 autocast on CUDA (its float32 range keeps likelihoods ~1e-9 representable, where
    float16 would underflow them to 0); nothing elsewhere."""
    import contextlib

    if enabled and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def resumed_settings(raw: dict, explicit: Dict[str, object]) -> TrainSettings:
    """The settings of the run a checkpoint continues; an explicit flag that contradicts them
    raises :class:`ConfigError`, except ``steps``/``epochs``, which may extend the run."""
    stored = dict(raw.get("settings", {}))
    for key, value in explicit.items():
        if key not in ("steps", "epochs") and stored.get(key) != value:
            flag = "--" + ("lambda" if key == "lmbda" else key.replace("_", "-"))
            raise ConfigError(f"{flag} {value} differs from the resumed run's {stored.get(key)}")
    known = {f.name for f in dataclasses.fields(TrainSettings)}
    settings = TrainSettings(**{k: v for k, v in stored.items() if k in known})
    if explicit.get("steps") or explicit.get("epochs"):
        settings.steps = int(explicit.get("steps") or 0)
        settings.epochs = explicit.get("epochs")
    return settings


# ---------------------------------------------------------------- the loop
def train(data_dir: Path, output: Path, settings: TrainSettings, arch: Optional[str] = None,
          resume: Optional[Path] = None, device: Optional[str] = None, backend: str = "auto",
          init: Optional[Path] = None,
          stop_after: Optional[int] = None, save_every: Optional[int] = None, workers: int = 0,
          explicit: Optional[Dict[str, object]] = None, log: Callable[[str], None] = print) -> dict:
    """Train and write ``output``; returns the final checkpoint dict (rank 0) or ``{}``.

    ``init`` (``--checkpoint``) starts a new run from a checkpoint's weights (any layout
    :func:`samic_fast.model.load_checkpoint` reads) with fresh optimizers.
    ``explicit`` holds the settings the user named; on ``resume`` the checkpoint's settings apply
    and an explicit value that differs raises :class:`ConfigError` (except ``steps``/``epochs``,
    which may extend the run; the decay points then move with the new total).
    """
    from tqdm import tqdm

    from samic_fast.codec import atomic_write, resolve_device
    from samic_fast.config import arch_name
    from samic_fast.distributed import ProcessGroup, gather
    from samic_fast.loss import RateDistortionPerceptionLoss, load_lpips
    from samic_fast.model import DEFAULT_SEED, default_model, load_checkpoint, read_checkpoint, resolve_config

    explicit = explicit or {}
    files = image_files(data_dir)
    ckpt = None
    if init is not None and resume is not None:
        raise ConfigError("--checkpoint (initial weights) and --resume exclude each other")
    if resume is not None:
        if not Path(resume).is_file():
            raise InputFileError(f"checkpoint {resume}: no such file")
        ckpt = read_checkpoint(resume)
        if ckpt["raw"].get("format") != CHECKPOINT_FORMAT:
            raise ConfigError(f"{resume}: not a samic-fast train checkpoint (no optimizer or step to resume)")
        settings = resumed_settings(ckpt["raw"], explicit)
    settings.check()

    with ProcessGroup(device) as group:
        dev = resolve_device(group.device)
        rank, world = group.rank, group.world_size
        if settings.epochs:
            settings.steps = settings.epochs * math.ceil(len(files) / (settings.batch_size * world))
        if settings.steps < 1:
            raise ConfigError("give --steps or --epochs")
        if init is not None:
            from samic_fast.codec import load_model

            model = load_model(init, backend=backend, device="cpu", arch=arch)
            config = model.config
        elif ckpt is not None:
            model = load_checkpoint(resume, backend=backend, arch=arch)  # its config; CDF sizes
            config = model.config
        else:
            config = resolve_config(None, arch=arch)
            model = default_model(config, backend=backend, seed=DEFAULT_SEED + settings.seed)
        name = arch_name(config)
        model.to(dev).train()
        main_params, aux_params = split_parameters(model)
        optimizer = torch.optim.Adam(main_params, lr=settings.lr)
        aux_optimizer = torch.optim.Adam(aux_params, lr=settings.aux_lr)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones(settings.steps), DECAY_FACTOR)
        step, history = 0, []
        seed_everything(settings.seed * 1_000_003 + rank)
        if ckpt is not None:
            raw = ckpt["raw"]
            optimizer.load_state_dict(raw["optimizer"])
            aux_optimizer.load_state_dict(raw["aux_optimizer"])
            scheduler.load_state_dict(raw["lr_scheduler"])
            from collections import Counter

            scheduler.milestones = Counter(milestones(settings.steps))  # a longer run moves them
            step = int(raw["step"])
            history = [tuple(row) for row in raw["history"].tolist()] if "history" in raw else []
            if int(raw.get("world_size", 1)) == world and len(raw.get("rng", [])) == world:
                set_rng_state(raw["rng"][rank])
            else:
                if group.is_main:
                    warnings.warn(f"resuming with {world} process(es) instead of {raw.get('world_size')}: "
                                  "random streams are reseeded, so the run is not an exact continuation")
                seed_everything(settings.seed * 1_000_003 + rank + 7919 * step)

        perceptual, reason = load_lpips() if settings.beta > 0 else (None, None)
        if reason and group.is_main:
            print(f"note: the LPIPS term of the loss is left out: {reason}", file=sys.stderr)
        criterion = RateDistortionPerceptionLoss(settings.lmbda, settings.beta, perceptual=perceptual)
        net: nn.Module = _WithAux(model)
        if group.distributed:
            # broadcast_buffers=False: the only buffers are the CDF tables, which training never
            # reads and which rank 0 alone recomputes (and resizes) when it saves.
            net = nn.parallel.DistributedDataParallel(
                net, device_ids=[dev.index] if dev.type == "cuda" else None, broadcast_buffers=False)

        end = settings.steps if stop_after is None else min(settings.steps, step + stop_after)
        stream = PatchStream(files, settings.patch_size, settings.seed)
        sampler = [batch_positions(s, rank, world, settings.batch_size) for s in range(step, end)]
        # A private generator: a DataLoader otherwise draws its workers' base seed from the global
        # RNG, one draw per run, which would shift the noise of a resumed run by one draw.
        loader = torch.utils.data.DataLoader(stream, batch_sampler=sampler, num_workers=workers,
                                             pin_memory=dev.type == "cuda",
                                             generator=torch.Generator().manual_seed(settings.seed))

        def checkpoint(finished: bool) -> Optional[dict]:
            states = gather(rng_state(), group)  # collective: every rank takes part
            if not group.is_main:
                return None
            model.update(force=True)  # CDF tables: any checkpoint can code
            state = {
                "format": CHECKPOINT_FORMAT, "arch": name, "config": config.canonical(),
                "state_dict": model.state_dict(), "step": step, "total_steps": settings.steps,
                "settings": dataclasses.asdict(settings), "optimizer": optimizer.state_dict(),
                "aux_optimizer": aux_optimizer.state_dict(), "lr_scheduler": scheduler.state_dict(),
                "rng": states, "world_size": world, "finished": finished,
                "history": torch.tensor(history, dtype=torch.float64).reshape(-1, len(HISTORY_COLUMNS)),
                "history_columns": list(HISTORY_COLUMNS),
            }
            atomic_write(output, lambda tmp: torch.save(state, tmp))
            return state

        bar = tqdm(total=settings.steps, initial=step, unit="step", file=sys.stderr, desc="train",
                   disable=None if group.is_main else True)
        final: Optional[dict] = None
        with bar:
            for batch in loader:
                x = batch.to(dev, non_blocking=True)
                with _amp_context(dev, settings.amp):
                    out, aux = net(x)
                out = {"x_hat": out["x_hat"].float(),
                       "likelihoods": {k: v.float() for k, v in out["likelihoods"].items()}}
                losses = criterion(out, x)
                optimizer.zero_grad(set_to_none=True)
                aux_optimizer.zero_grad(set_to_none=True)
                (losses["loss"] + aux.float()).backward()
                if settings.clip > 0:
                    nn.utils.clip_grad_norm_(main_params, settings.clip)
                optimizer.step()
                aux_optimizer.step()
                scheduler.step()
                step += 1
                stats = torch.stack([losses["loss"].detach(), losses["bpp_loss"].detach(),
                                     losses["mse_loss"].detach(), aux.detach().float()]).double()
                if group.distributed:
                    import torch.distributed as dist

                    dist.all_reduce(stats)
                    stats /= world
                loss, bpp, mse, aux_v = stats.tolist()
                psnr = 10 * math.log10(1.0 / mse) if mse > 0 else math.inf
                history.append((step, loss, bpp, psnr, aux_v))
                bar.set_postfix(loss=f"{loss:.4g}", bpp=f"{bpp:.3f}", psnr=f"{psnr:.2f}", refresh=False)
                bar.update(1)
                if not math.isfinite(loss):
                    raise ConfigError(f"the loss became {loss} at step {step}; lower --lr")
                if save_every and step % save_every == 0 and step < end:
                    checkpoint(False)
            final = checkpoint(step >= settings.steps)
        if group.is_main and history:
            _, loss, bpp, psnr, _ = history[-1]
            log(f"step {step}/{settings.steps}  loss {loss:.4f}  bpp {bpp:.4f}  PSNR {psnr:.2f} dB  -> {output}")
        return final or {}


__all__ = ["TrainSettings", "train", "image_files", "PatchStream", "milestones", "CHECKPOINT_FORMAT",
           "HISTORY_COLUMNS"]
