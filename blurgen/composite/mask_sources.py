"""The mask source of a composite job: procedural photos, mask files, or SAM (one factory).

Each kind lives in its own module and gives a source's pixels and masks through ``load(ref)``
(:class:`~blurgen.composite.sources.MaskSource`); this module is the one place that knows all
of them and which config settings choose between them.
"""

from __future__ import annotations

from pathlib import Path

from blurgen.composite.config import CompositeConfig
from blurgen.composite.masks import FolderMasks
from blurgen.composite.procedural import ProceduralMasks
from blurgen.composite.sam import SamMasks
from blurgen.composite.sources import MaskSource
from blurgen.config import to_dict
from blurgen.errors import BlurgenError

SAM_CACHE_DIR = "sam-cache"  # below the output folder: a re-run or another task reuses the masks


def mask_source(config: CompositeConfig, out_dir: Path) -> MaskSource:
    """Where instance masks come from: procedural, mask files, or SAM (cached next to the output)."""
    src = config.sources
    if src.images is None:
        if src.masks or src.sam_checkpoint:
            raise BlurgenError("masks or a SAM checkpoint were given without sources.images (--images): "
                               "give the photos they belong to")
        return ProceduralMasks(config.seed, tuple(src.procedural_size))
    if src.masks and src.sam_checkpoint:
        raise BlurgenError("give either a masks folder (--masks) or a SAM checkpoint (--sam-checkpoint), not both")
    if src.masks:
        return FolderMasks(Path(src.masks).expanduser(), src.mask_orientation)
    if src.sam_checkpoint:
        generator = {k: v for k, v in to_dict(config.sam).items() if k != "device"}
        return SamMasks(Path(src.sam_checkpoint).expanduser(), src.sam_model, generator,
                        Path(out_dir) / SAM_CACHE_DIR, device=config.sam.device)
    raise BlurgenError("photos need instance masks: give --masks DIR (mask files) or --sam-checkpoint FILE "
                       "(segment with SAM)")
