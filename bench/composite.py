"""Composite throughput: ``python bench/composite.py [--samples N] [--repeat R] [--labels] [--sam]``.

Samples/s at 512x512 for each blur type alone and for the default mix, measured side by side in
one run with albumentations' ``MotionBlur`` on the same views of the same photos. blurgen also
makes the blur mask, the intensity map and the sharp image; albumentations only blurs the
whole frame. The target (issues 4 and 14) is at least half albumentations' throughput for the
default mix; ``--repeat R`` measures that row R times and prints the range (a shared machine's
load moves single runs by +-10 %).

``--labels`` checks the demo preset's labels agree (issue 14): the mask pixels whose intensity
is 0, in how many samples, and how many of those differ visibly (> 4/255) from ``sharp``.

Both sides start from the same decoded photo in memory (blurgen: linear float + instance masks;
albumentations: the 8-bit sRGB view), so neither is timed reading files. albumentations is
run with ``blur_limit`` up to 41 px, matching blurgen's strong-blur range (up to 40 px), and
with its default (3-7 px) for reference.

``--sam`` also times SAM's image encoder per source photo, the ViT-B architecture randomly
initialised (no checkpoint can be downloaded here; the encoder's cost does not depend on the
weights). albumentations is needed only here: ``pip install albumentations``.
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


def interleaved_rates(config: CompositeConfig, photos: list[SourceData], views: list[np.ndarray], n: int,
                      blur_limit: tuple[int, int]) -> tuple[float, float]:
    """Samples/s of blurgen and of albumentations' MotionBlur, timed alternately sample by sample
    (so that load on a shared machine hits both alike).

    blurgen runs as the pipeline does: ``samples.per_source`` samples of a photo in a row,
    sharing its view cache, cycling through the photos; albumentations blurs the same photo's
    8-bit view each time.
    """
    import albumentations as A

    transform = A.MotionBlur(blur_limit=blur_limit, p=1.0)
    refs = [SourceRef(p.source_id, None, i) for i, p in enumerate(photos)]
    make_sample(config, CompositeItem(0, refs[0], "train"), photos[0])  # warm-up (imports, caches)
    transform(image=views[0])
    per_source = config.samples.per_source
    ours = theirs = 0.0
    cache: dict = {}
    for i in range(n):
        photo = (i // per_source) % len(photos)
        if i % per_source == 0:
            cache = {}
        start = time.perf_counter()
        make_sample(config, CompositeItem(i, refs[photo], "train"), photos[photo], cache)
        middle = time.perf_counter()
        transform(image=views[photo])
        theirs += time.perf_counter() - middle
        ours += middle - start
    return n / ours, n / theirs


def label_agreement() -> str:
    """The demo preset's samples (96 at 512x512): mask pixels with intensity 0, as a line."""
    from blurgen.composite.mask_sources import mask_source
    from blurgen.composite.plan import list_sources, make_plan
    from blurgen.composite.sources import load_source

    config = resolve_config(CompositeConfig, KIND, preset="demo")
    masks = mask_source(config, Path("."))  # procedural photos: nothing is written
    mask_px = zero_px = visible = affected = samples = 0
    for item in make_plan(config, list_sources(config)):
        source = load_source(item.source, masks, min_area=config.sources.min_area, max_area=config.sources.max_area)
        sample = make_sample(config, item, source)
        mask = sample["blur_mask"]
        zero = mask & (sample["blur_intensity"] == 0)
        difference = np.abs(sample["image"].astype(np.int16) - sample["sharp"]).max(axis=2)
        samples += 1
        mask_px += int(mask.sum())
        zero_px += int(zero.sum())
        affected += bool(zero.any())
        visible += int((zero & (difference > 4)).sum())
    return (f"demo preset, {samples} samples: {zero_px} of {mask_px} blur_mask pixels "
            f"({100 * zero_px / max(mask_px, 1):.2f} %) have intensity 0, in {affected} samples; "
            f"{visible} of them differ from sharp by > 4/255")


def sam_encoder_seconds(photos: list[SourceData], count: int) -> float:
    """Seconds per photo of SAM's ViT-B image encoder (SamPredictor.set_image), random weights.

    The encoder's cost does not depend on the weights; the automatic generator's mask decoding
    and filtering do (a random model passes pathological numbers of masks), so only the encoder
    is timed here.
    """
    import torch
    from segment_anything import SamPredictor, sam_model_registry

    model = sam_model_registry["vit_b"](checkpoint=None).eval()
    predictor = SamPredictor(model)
    with torch.no_grad():
        start = time.perf_counter()
        for photo in photos[:count]:
            predictor.set_image(linear_to_srgb_uint8(photo.image))
    return (time.perf_counter() - start) / count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200, help="samples timed per row")
    parser.add_argument("--repeat", type=int, default=1, help="measure the default mix this many times")
    parser.add_argument("--labels", action="store_true", help="also check the demo preset's labels agree")
    parser.add_argument("--sam", action="store_true", help="also time SAM (ViT-B, random weights) per photo")
    args = parser.parse_args(argv)

    print(f"machine: {machine()}")
    if args.labels:
        print(label_agreement())
    photos = sources()
    views = [linear_to_srgb_uint8(cut_view(p.image, p.masks, p.mask_names,
                                           centred_crop(p.image.shape[:2], SIZE, SIZE), SIZE, SIZE).image)
             for p in photos]
    base = {"samples": {"width": SIZE, "height": SIZE}}
    configs = [("default mix", resolve_config(CompositeConfig, KIND, preset="demo", overrides=base))]
    for kind in BLUR_TYPES:
        configs.append((f"{kind} only (full coverage)", resolve_config(CompositeConfig, KIND, preset="demo", overrides={
            **base, "blur": {"types": [kind]}, "coverage": {"sharp": 0.0, "full": 1.0, "partial": 0.0}})))
    print(f"\n{args.samples} samples per row, {SIZE}x{SIZE}, {PHOTOS} procedural photos 800x600; "
          "albumentations MotionBlur with blur_limit 3-41 px, timed alternately with blurgen")
    print(f"| {'blurgen samples':34s} | blurgen samples/s | albumentations images/s | ratio |")
    print("|---|---|---|---|")
    ratios = []
    for name, config in [configs[0]] * max(1, args.repeat) + configs[1:]:
        ours, theirs = interleaved_rates(config, photos, views, args.samples, (3, 41))
        print(f"| {name:34s} | {ours:17.1f} | {theirs:23.1f} | {ours / theirs:.2f}x |", flush=True)
        if config is configs[0][1]:
            ratios.append(ours / theirs)
    if len(ratios) > 1:
        print(f"\ndefault mix over {len(ratios)} runs: {min(ratios):.2f}x to {max(ratios):.2f}x "
              f"(median {float(np.median(ratios)):.2f}x)")
    _, default_limit = interleaved_rates(configs[0][1], photos, views, args.samples // 4, (3, 7))
    print(f"\nfor reference, albumentations' default blur_limit (3-7 px): {default_limit:.0f} images/s")
    if args.sam:
        seconds = sam_encoder_seconds(photos, 2)
        print(f"\nSAM ViT-B image encoder (1024x1024 input, random weights): {seconds:.1f} s per 800x600 "
              "photo; once per photo, then cached")


if __name__ == "__main__":
    main()
