"""Optical flow utilities shared by the generators.

- :mod:`blurgen.flow.metrics`: end-point error and the direction-free ``min(EPE fwd, EPE bwd)``
  of the flow-from-blur paper.
- :mod:`blurgen.flow.flo`: Middlebury ``.flo`` files (what ``blurgen shards export-flo`` writes).
- :mod:`blurgen.flow.estimators`: classical estimators by name (OpenCV DIS presets), pluggable.
- :mod:`blurgen.flow.warp`: backward warping and the forward-backward consistency check.
"""
