"""A toy task for the training-loop tests: linear regression on a fixed synthetic set.

Importable (the tests run it in-process) and runnable (``python tests/train_toy.py RUN [--resume]``,
also under ``torchrun``), so a test can kill a real training process. Before each batch it prints
``batch <epoch> <step>`` and flushes: the test waits for that line, not for time.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, Iterator

import numpy as np
import torch

from blurgen.config.schema import option, section
from blurgen.train.config import TrainSection
from blurgen.train.distributed import DistContext

N, D = 48, 5
TRUE_W = np.arange(1, D + 1, dtype=np.float32) / D


@section
class ToyConfig:
    seed: int = option(3, "seed")
    train: TrainSection = option(doc="loop", default_factory=lambda: TrainSection(
        epochs=3, batch_size=4, lr=0.05, log_every=1, workers=0))


def toy_data() -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, D)).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(x @ TRUE_W + 0.5)


@dataclasses.dataclass
class ToyTask:
    config: Any = dataclasses.field(default_factory=ToyConfig)
    announce: bool = False  # print "batch <epoch> <step>" before each batch
    name: str = "toy"
    find_unused_parameters: bool = False

    def data_identity(self) -> str:
        return f"toy-{N}x{D}"

    def data_sources(self) -> dict[str, Any]:
        return {"train": None, "validation": None}  # made in memory, from no shard folder

    def build_model(self) -> torch.nn.Module:
        return torch.nn.Linear(D, 1)

    def steps_per_epoch(self, epoch: int, dist: DistContext) -> int:
        return N // (self.config.train.batch_size * dist.world)

    def batches(self, epoch: int, start_step: int, dist: DistContext) -> Iterator[Any]:
        x, y = toy_data()
        order = np.random.default_rng([self.config.seed, epoch]).permutation(N)
        mine = order[dist.rank::dist.world]  # rank r of R: every R-th index of the epoch's draw
        b = self.config.train.batch_size
        for step in range(start_step, self.steps_per_epoch(epoch, dist)):
            if self.announce:
                print(f"batch {epoch} {step}", flush=True)
            index = torch.from_numpy(mine[step * b:(step + 1) * b])
            yield x[index], y[index]

    def loss(self, model, batch, dist, rng):
        x, y = (t.to(dist.device) for t in batch)
        loss = torch.nn.functional.mse_loss(model(x)[:, 0], y)
        return loss, {"mse": float(loss.detach())}, len(x)

    def epoch_stats(self, epoch: int) -> dict[str, float]:
        return {}

    def validate(self, model, dist) -> dict[str, float]:
        x, y = toy_data()
        return {"mse": float(torch.nn.functional.mse_loss(model(x.to(dist.device))[:, 0].cpu(), y))}


if __name__ == "__main__":
    from blurgen.train.distributed import close_distributed, init_distributed
    from blurgen.train.loop import train

    run, resume = sys.argv[1], "--resume" in sys.argv
    every = int(sys.argv[sys.argv.index("--every") + 1]) if "--every" in sys.argv else 0
    batch = int(sys.argv[sys.argv.index("--batch") + 1]) if "--batch" in sys.argv else 4
    config = ToyConfig(train=dataclasses.replace(ToyConfig().train, checkpoint_every=every, batch_size=batch))
    dist = init_distributed("cpu")
    try:
        train(ToyTask(config, announce=True), run, dist, resume=resume, progress=False)
    finally:
        close_distributed()
