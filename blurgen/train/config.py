"""Config sections every baseline's training shares (the task configs add their own).

docs/train.md sets each field against the papers.
"""

from __future__ import annotations

from blurgen.config.schema import option, section


@section
class TrainSection:
    epochs: int = option(30, "passes over the epoch's draw of training samples", min=1)
    batch_size: int = option(32, "samples per batch on each rank (under torchrun the global batch is "
                                 "this times the ranks)", min=1)
    optimizer: str = option("adam", "adam or adamw", choices=("adam", "adamw"))
    lr: float = option(1e-4, "initial learning rate", min=0.0)
    lr_milestones: tuple[int, ...] = option((), "epochs (counted from 0) at whose start the learning rate "
                                                "is multiplied by lr_gamma, e.g. the flow paper's [100, 150, "
                                                "200, 250]; empty: a fixed rate", min=1)
    lr_gamma: float = option(0.5, "factor applied at each of lr_milestones (the flow paper: 0.5)", min=0.0, max=1.0)
    weight_decay: float = option(0.0, "weight decay (AdamW: decoupled)", min=0.0)
    grad_clip: float = option(10.0, "clip the global gradient norm to this; 0: no clipping", min=0.0)
    amp: bool = option(True, "mixed precision (float16 autocast, gradient scaling) on CUDA; the CPU "
                             "always trains in float32", run_only=True)
    channels_last: bool = option(True, "channels-last memory format on CUDA", run_only=True)
    workers: int = option(2, "data-loading worker processes per rank (decoding happens there)", min=0,
                          run_only=True)
    checkpoint_every: int = option(0, "also checkpoint every N steps (0: at the end of each epoch only)",
                                   min=0, run_only=True)
    log_every: int = option(10, "write the training losses to metrics.jsonl every N steps", min=1,
                            run_only=True)
