"""Where training runs: the device, and the process group when ``torchrun`` started several ranks.

blurgen launches nothing itself: ``torchrun --nproc-per-node G -m blurgen train ...`` (or a
cluster's own launcher setting ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``) starts
the ranks, and :func:`init_distributed` joins them: NCCL on CUDA, gloo on the CPU (which is how
the tests run two ranks on a laptop).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re

import torch

from blurgen.errors import BlurgenError


@dataclasses.dataclass(frozen=True)
class DistContext:
    """This process's place in the run: rank ``rank`` of ``world`` on ``device``."""

    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        """The rank that writes checkpoints, logs, plots and reports."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; a CUDA device that
    is not there is a one-line error rather than a crash deep inside the first step."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if not re.fullmatch(r"cpu|cuda(:\d+)?", name):
        raise BlurgenError(f"--device {name!r} is not one of auto, cpu, cuda, cuda:N")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BlurgenError(f"--device {name}: no CUDA device is available here; use --device cpu or auto")
        if name == "cuda":
            name = f"cuda:{local_rank}"  # one GPU per torchrun rank on its node
        if int(name.split(":")[1]) >= torch.cuda.device_count():
            raise BlurgenError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return torch.device(name)
    return torch.device("cpu")


def init_distributed(device_name: str) -> DistContext:
    """Join the process group ``torchrun`` describes in the environment, or run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1 and re.fullmatch(r"cuda:\d+", device_name):
        raise BlurgenError(f"--device {device_name} under torchrun would put every rank on one GPU: use "
                           "--device cuda (each rank takes cuda:LOCAL_RANK) or auto")
    device = resolve_device(device_name, local_rank)
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        # rank 0 validates alone after each epoch while the others wait in the next collective:
        # a timeout longer than NCCL's default 10 minutes lets a large validation finish
        torch.distributed.init_process_group(backend=backend, rank=rank, world_size=world,
                                             timeout=datetime.timedelta(hours=2))
    return DistContext(device, rank, world)


def close_distributed() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def mean_across_ranks(values: dict[str, float], dist: DistContext) -> dict[str, float]:
    """The mean of each value over the ranks (the logged loss of a DDP step)."""
    if not dist.distributed or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64,
                          device=dist.device if dist.device.type == "cuda" else "cpu")
    torch.distributed.all_reduce(tensor)
    return {k: float(v) / dist.world for k, v in zip(keys, tensor.tolist())}
