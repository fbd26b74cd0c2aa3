"""What blurgen and its Blender script must agree on: instants, render seeds, protocol words, files.

Standard library only, so that both sides import this one module: the script inside Blender as
``contract`` (render_trajectories.py puts its own folder first on ``sys.path``), blurgen as
``blurgen._blender_scripts.contract``. Changing a number here changes every rendered sample.
"""

from __future__ import annotations

SCRIPT_NAME = "render_trajectories.py"  # the script blurgen launches (in this folder)

# ---------------------------------------------------------------- time
INSTANTS = 24  # trajectory instants (the blur-retrieval paper, §4.1)
SUB_INTERVALS = INSTANTS - 1  # 23 sub-intervals between them, each rendered with motion blur
SHARP_INSTANT = (INSTANTS - 1) / 2  # 11.5: the sharp image is rendered at the trajectory centre

# ---------------------------------------------------------------- render seeds
# Every render of an item has its own Cycles seed, (item seed + index) % SEED_MODULUS, where the
# index says which render it is: 0..22 the sub-intervals, then the sharp render, the silhouettes
# (one per instant), the direct window renders, and the object-coordinate renders.
SEED_MODULUS = 2**31
SHARP_INDEX = SUB_INTERVALS
SILHOUETTE_INDEX0 = SHARP_INDEX + 1  # + instant
WINDOW_INDEX0 = SILHOUETTE_INDEX0 + INSTANTS  # + the window's position in the item's list
COORD_INDEX0 = 2**20  # + instant; above any window index: a job never has a million windows
ITEM_SEED_BOUND = SEED_MODULUS - 2**16  # blurgen draws item seeds in [0, ITEM_SEED_BOUND)

# ---------------------------------------------------------------- protocol (the script's stdout)
ITEM_DONE = "blurgen-item-done"  # "blurgen-item-done <item_id>": its .npz is written
ITEM_ERROR = "blurgen-item-error"  # "blurgen-item-error <item_id> <reason>": its error report is
FATAL = "blurgen-fatal"  # "blurgen-fatal <reason>": the job cannot run at all; no retry helps
FATAL_EXIT_STATUS = 2  # the script's exit status after a FATAL line (1: a crash, retried)

# ---------------------------------------------------------------- files
ERROR_SUFFIX = ".error.json"  # an item that cannot be rendered: <out> + this, {"item_id", "reason"}

# ---------------------------------------------------------------- test hook
CRASH_AFTER = "_test_crash_after"  # job key: SIGKILL the process when that many items are done
