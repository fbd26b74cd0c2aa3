"""Composite throughput: ``python bench/composite.py [--samples N] [--sam]``.

Samples/s at 512x512 for each blur type alone and for the default mix, measured side by side in
one run with albumentations' ``MotionBlur`` on the same views of the same photos. blurgen also
makes the blur mask, the intensity map and the sharp image; albumentations only blurs the
whole frame. The target (issue 4) is at least half albumentations' throughput.

Both sides start from the same decoded photo in memory (blurgen: linear float + instance masks;
albumentations: the 8-bit sRGB view), so neither is timed reading files. albumentations is
run with ``blur_limit`` up to 41 px, matching blurgen's strong-blur range (up to 40 px), and
with its default (3-7 px) for reference.

``--sam`` also times SAM's automatic mask generator per source photo, with the ViT-B
architecture randomly initialised (no checkpoint can be downloaded here; the cost does not
depend on the weights) and the default generator settings. albumentations is needed only
here: ``pip install albumentations``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402

from blurgen.color import linear_to_srgb_uint8  # noqa: E402
from blurgen.composite.config import BLUR_TYPES, KIND, CompositeConfig  # noqa: E402
from blurgen.composite.plan import CompositeItem  # noqa: E402
from blurgen.composite.procedural import procedural_source  # noqa: E402
from blurgen.composite.sample import make_sample  # noqa: E402
from blurgen.composite.sources import SourceData, SourceRef  # noqa: E402
from blurgen.composite.views import centred_crop, cut_view  # noqa: E402
from blurgen.config import resolve_config  # noqa: E402

SIZE = 512
PHOTOS = 8


def sources() -> list[SourceData]:
    out = []
    for i in range(PHOTOS):
        image, masks, names = procedural_source(0, i, 800, 600)
        out.append(SourceData(f"procedural-{i:05d}", image, masks, names))
    return out


def blurgen_rate(config: CompositeConfig, photos: list[SourceData], n: int) -> float:
    """Samples/s of make_sample as the pipeline runs it: samples.per_source samples of a photo
    in a row (sharing its view cache), cycling through the photos."""
    refs = [SourceRef(p.source_id, None, i) for i, p in enumerate(photos)]
    make_sample(config, CompositeItem(0, refs[0], "train"), photos[0])  # warm-up (imports, caches)
    per_source = config.samples.per_source
    start = time.perf_counter()
    views: dict = {}
    for i in range(n):
        photo = (i // per_source) % len(photos)
        if i % per_source == 0:
            views = {}
        make_sample(config, CompositeItem(i, refs[photo], "train"), photos[photo], views)
    return n / (time.perf_counter() - start)


def albumentations_rate(views: list[np.ndarray], n: int, blur_limit: tuple[int, int]) -> float:
    import albumentations as A

    transform = A.MotionBlur(blur_limit=blur_limit, p=1.0)
    transform(image=views[0])
    start = time.perf_counter()
    for i in range(n):
        transform(image=views[i % len(views)])
    return n / (time.perf_counter() - start)


def sam_seconds_per_photo(photos: list[SourceData], count: int) -> float:
    from segment_anything import SamAutomaticMaskGenerator, sam_model_registry

    model = sam_model_registry["vit_b"](checkpoint=None).eval()
    generator = SamAutomaticMaskGenerator(model)
    start = time.perf_counter()
    for photo in photos[:count]:
        generator.generate(linear_to_srgb_uint8(photo.image))
    return (time.perf_counter() - start) / count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200, help="samples timed per row")
    parser.add_argument("--sam", action="store_true", help="also time SAM (ViT-B, random weights) per photo")
    args = parser.parse_args(argv)

    print(f"machine: {machine()}")
    photos = sources()
    views = [linear_to_srgb_uint8(cut_view(p.image, p.masks, p.mask_names,
                                           centred_crop(p.image.shape[:2], SIZE, SIZE), SIZE, SIZE).image)
             for p in photos]
    base = {"samples": {"width": SIZE, "height": SIZE}}
    rows = []
    albu = albumentations_rate(views, args.samples, (3, 41))
    albu_default = albumentations_rate(views, args.samples, (3, 7))
    rows.append(("albumentations MotionBlur, blur_limit 3-41", albu))
    rows.append(("albumentations MotionBlur, blur_limit 3-7 (default)", albu_default))
    mix = resolve_config(CompositeConfig, KIND, preset="demo", overrides=base)
    rows.append(("blurgen default mix", blurgen_rate(mix, photos, args.samples)))
    for kind in BLUR_TYPES:
        config = resolve_config(CompositeConfig, KIND, preset="demo", overrides={
            **base, "blur": {"types": [kind]}, "coverage": {"sharp": 0.0, "full": 1.0, "partial": 0.0}})
        rows.append((f"blurgen {kind} only (full coverage)", blurgen_rate(config, photos, args.samples)))
    print(f"\n{args.samples} samples per row, {SIZE}x{SIZE}, {PHOTOS} procedural photos 800x600")
    print(f"{'':58s} {'samples/s':>10s} {'vs albu 3-41':>13s}")
    for name, rate in rows:
        print(f"{name:58s} {rate:10.1f} {rate / albu:12.2f}x")
    if args.sam:
        seconds = sam_seconds_per_photo(photos, 2)
        print(f"\nSAM ViT-B automatic mask generator (32x32 points, random weights): {seconds:.1f} s per "
              "800x600 photo, once per photo (cached)")


if __name__ == "__main__":
    main()
