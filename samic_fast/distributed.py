"""Running on several processes or GPUs: device assignment and torch.distributed plumbing.

Two ways to use several devices:

- ``samic-fast compress --jobs N``: N worker processes; with several visible GPUs worker ``i``
  runs on ``cuda:(i % count)`` (:func:`device_for_worker`).
- ``torchrun --nproc_per_node=N -m samic_fast eval|train ...``: N ranks of one
  ``torch.distributed`` job. :class:`ProcessGroup` joins it (NCCL when the rank's device is a GPU,
  gloo on CPU), rank ``r`` takes ``cuda:LOCAL_RANK`` by the same rule, :func:`shard` splits work
  round-robin and :func:`gather` brings every rank's results back.

Without torchrun's environment (``WORLD_SIZE`` unset or 1) everything degrades to one process and
no process group is created.
"""

from __future__ import annotations

import os
from typing import Any, List, Optional, Sequence

import torch


def device_for_worker(index: int, device: Optional[str], cuda_count: int) -> Optional[str]:
    """The device worker ``index`` (or local rank) should use.

    An explicit device with an index (``cuda:1``) or a non-CUDA device (``cpu``) is used by every
    worker. Otherwise (``None`` or plain ``cuda``) workers are spread over the ``cuda_count``
    visible GPUs, ``cuda:(index % cuda_count)``; with no GPU the result is ``device`` unchanged
    (``None`` means the default device, CPU here).
    """
    if device is not None:
        dev = torch.device(device)
        if dev.type != "cuda" or dev.index is not None:
            return device
    if cuda_count < 1:
        return device
    return f"cuda:{index % cuda_count}"


def env_world() -> tuple:
    """``(rank, world_size, local_rank)`` from torchrun's environment; ``(0, 1, 0)`` without it."""
    def read(name: str, default: int) -> int:
        try:
            return int(os.environ.get(name, default))
        except ValueError:
            return default

    return read("RANK", 0), read("WORLD_SIZE", 1), read("LOCAL_RANK", 0)


class ProcessGroup:
    """Context manager: join torchrun's process group (if any) and pick this rank's device.

    Attributes after ``__enter__``: ``rank``, ``world_size``, ``device`` (a string or None, see
    :func:`device_for_worker`), ``distributed`` (whether a group was created). The group is
    destroyed on exit, also on errors, so a failed rank does not leave a stale group behind.
    """

    def __init__(self, device: Optional[str] = None) -> None:
        self.requested = device
        self.rank, self.world_size, self.local_rank = env_world()
        self.distributed = False
        self.device = device

    def __enter__(self) -> "ProcessGroup":
        import torch.distributed as dist

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        self.device = device_for_worker(self.local_rank, self.requested, count)
        if self.world_size > 1:
            on_gpu = self.device is not None and torch.device(self.device).type == "cuda"
            if on_gpu:
                torch.cuda.set_device(torch.device(self.device))  # NCCL maps ranks to devices by it
            if not dist.is_initialized():
                dist.init_process_group(backend="nccl" if on_gpu else "gloo",
                                        **({"device_id": torch.device(self.device)} if on_gpu else {}))
                self.distributed = True
        return self

    def __exit__(self, *exc) -> None:
        import torch.distributed as dist

        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()
        self.distributed = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()


def shard(items: Sequence, rank: int, world_size: int) -> List[tuple]:
    """``(index, item)`` pairs of this rank's share, round-robin (rank r takes r, r+W, ...):
    consecutive images, often of similar size, land on different ranks."""
    return [(i, items[i]) for i in range(rank, len(items), world_size)]


def gather(obj: Any, group: Optional[ProcessGroup]) -> List[Any]:
    """Every rank's ``obj``, in rank order (``all_gather_object``); ``[obj]`` in one process."""
    if group is None or not group.distributed:
        return [obj]
    import torch.distributed as dist

    out: List[Any] = [None] * group.world_size
    dist.all_gather_object(out, obj)
    return out


__all__ = ["device_for_worker", "env_world", "ProcessGroup", "shard", "gather"]
