"""``blurgen train`` / ``blurgen evaluate``: the papers' baselines, streamed from shards.

One training loop (:mod:`blurgen.train.loop`: devices, mixed precision, torchrun/DDP,
checkpoints, resume, logs, plots) runs a task; a task supplies its model, losses, data and
metrics (:mod:`blurgen.train.retrieval` for the blur-retrieval paper). Nothing here imports
Blender, and nothing is downloaded: backbones start random or from a user's file.
"""
