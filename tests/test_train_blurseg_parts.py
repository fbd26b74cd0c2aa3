"""Blur segmentation's parts against hand values and independent oracles: each loss (Eq. 3-10), the
metrics on hand-made masks and scores (brute-force counting, scipy's Mann-Whitney U), the
curriculum schedule and epoch draw, padding and cropping, rescaling, the frequency channel, the
model's heads and the user's encoder weights."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

from blurgen.composite.config import KIND as COMPOSITE_KIND
from blurgen.composite.config import CompositeConfig
from blurgen.composite.pipeline import composite_dataset
from blurgen.config import resolve_config
from blurgen.errors import BlurgenError
from blurgen.rng import seeded_torch
from blurgen.train.blurseg import BlurSegTask, model_inputs, rescale
from blurgen.train.blurseg_config import KIND, BlurSegConfig, CurriculumSection
from blurgen.train.blurseg_data import composite_split_files, composite_split_names, epoch_items, stage_of_epoch
from blurgen.train.blurseg_eval import refuse_threshold_shards, resolve_source
from blurgen.train.blurseg_frequency import laplacian_variance
from blurgen.train.blurseg_losses import (bce_loss, deep_supervision_loss, dice_loss, downsampled_target,
                                          focal_tversky_loss, mask_loss, masked_huber_loss, prevalence_loss)
from blurgen.train.blurseg_metrics import (TOP, PixelCounts, best_image_threshold, best_pixel_threshold,
                                           image_metrics, image_score, pixel_metrics, quantise, roc_auc)
from blurgen.train.blurseg_model import PADDING, BlurSegNet
from blurgen.train.data import split_source, validation_files
from blurgen.train.distributed import DistContext
from blurgen.train.padding import crop_to, pad_to_multiple

# -- losses against hand values ---------------------------------------------------------------------

P = torch.tensor([0.75, 0.25]).view(1, 1, 1, 2)  # predicted probabilities
Y = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)    # true mask
LOGITS = torch.log(P / (1 - P))


def test_bce_of_two_pixels_is_the_mean_negative_log_likelihood():
    assert float(bce_loss(LOGITS, Y)) == pytest.approx(-math.log(0.75), rel=1e-6)  # both pixels -log 0.75
    assert float(bce_loss(torch.zeros(1, 1, 3, 3), torch.ones(1, 1, 3, 3))) == pytest.approx(math.log(2))


def test_dice_and_focal_tversky_of_two_pixels():
    # Dice: 1 - (2 * 0.75 + 1) / (1.0 + 1 + 1) = 1/6
    assert float(dice_loss(P, Y, smooth=1.0)) == pytest.approx(1 / 6, rel=1e-6)
    # TP 0.75, FN 0.25, FP 0.25: TI = 1.75 / (0.75 + 0.7 * 0.25 + 0.3 * 0.25 + 1) = 0.875; (1 - TI)^0.75
    assert float(focal_tversky_loss(P, Y, 0.7, 0.3, 0.75, smooth=1.0)) == pytest.approx(0.125 ** 0.75, rel=1e-6)
    # false negatives cost more than false positives with alpha > beta
    miss = focal_tversky_loss(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0]), 0.7, 0.3, 1.0, smooth=0.0)
    extra = focal_tversky_loss(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.0]), 0.7, 0.3, 1.0, smooth=0.0)
    assert float(miss) == pytest.approx(1.0) and float(extra) == pytest.approx(1 - 1 / 1.3, rel=1e-6)


def test_mask_loss_is_the_weighted_sum_of_its_three_terms():
    hand = -math.log(0.75) + 2 * (1 / 6) + 3 * 0.125 ** 0.75
    got = mask_loss(LOGITS, Y, bce=1.0, dice=2.0, focal_tversky=3.0, alpha=0.7, beta=0.3, gamma=0.75, smooth=1.0)
    assert float(got) == pytest.approx(hand, rel=1e-5)


def test_huber_inside_the_true_mask_only():
    pred = torch.tensor([0.35, 0.6, 0.9, 0.0])
    true = torch.tensor([0.30, 0.3, 0.0, 0.5])
    mask = torch.tensor([1.0, 1.0, 0.0, 0.0])  # the last two pixels are outside the mask: ignored
    # residuals 0.05 (quadratic: 0.00125) and 0.3 (linear: 0.1 * (0.3 - 0.05) = 0.025), delta 0.1
    assert float(masked_huber_loss(pred, true, mask, 0.1)) == pytest.approx((0.00125 + 0.025) / 2, rel=1e-5)
    zero = masked_huber_loss(pred.requires_grad_(), true, torch.zeros(4), 0.1)
    assert float(zero.detach()) == 0.0 and zero.requires_grad  # no blur in the batch: 0, and still a graph


def test_prevalence_regulariser_is_the_squared_gap_to_pi():
    assert float(prevalence_loss(torch.full((2, 1, 4, 4), 0.5), 0.1)) == pytest.approx(0.16, rel=1e-6)
    assert float(prevalence_loss(torch.full((1, 1, 2, 2), 0.1), 0.1)) == pytest.approx(0.0, abs=1e-12)


def test_deep_supervision_downsamples_the_mask_as_coverage_and_averages_the_stages():
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :3] = 1  # 6 pixels
    assert downsampled_target(mask, (2, 2)).flatten().tolist() == [1.0, 0.5, 0.0, 0.0]
    assert downsampled_target(mask, (1, 1)).item() == pytest.approx(6 / 16)
    # logits 0 (p = 1/2) at 2x2 and 1x1: BCE ln 2 at both; Dice 1 - (2 * sum(p y) + 1) / (sum p + sum y + 1)
    dice_2 = 1 - (2 * 0.5 * 1.5 + 1) / (2 + 1.5 + 1)
    dice_1 = 1 - (2 * 0.5 * 0.375 + 1) / (0.5 + 0.375 + 1)
    got = deep_supervision_loss([torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 1, 1)], mask, bce=1.0, dice=1.0,
                                focal_tversky=0.0)
    assert float(got) == pytest.approx(math.log(2) + (dice_2 + dice_1) / 2, rel=1e-5)
    assert float(deep_supervision_loss([], mask)) == 0.0
    with pytest.raises(ValueError, match="target 4x4 is not a whole multiple of the auxiliary map 3x3"):
        downsampled_target(mask, (3, 3))  # cells that do not tile the mask: refused, never averaged anyhow


# -- metrics on hand-made masks and scores -----------------------------------------------------------

def _counts(prob: np.ndarray, mask: np.ndarray) -> PixelCounts:
    counts = PixelCounts()
    counts.add(quantise(prob), mask)
    return counts


def test_pixel_metrics_of_a_hand_made_confusion():
    truth = np.zeros((4, 4), bool)
    truth[0, :4] = True
    truth[1, 0] = True                     # 5 blur pixels
    pred = np.zeros((4, 4))
    pred[0, :3] = 0.9                      # 3 true positives
    pred[3, 3] = 0.8                       # 1 false positive; 2 false negatives, 10 true negatives
    m = pixel_metrics(_counts(pred, truth), 0.5)
    assert m.pixel_accuracy == pytest.approx(13 / 16)
    assert m.iou_blur == pytest.approx(3 / 6) and m.iou_sharp == pytest.approx(10 / 13)
    assert m.mean_iou == pytest.approx((0.5 + 10 / 13) / 2)
    assert m.weighted_iou == pytest.approx((5 * 0.5 + 11 * 10 / 13) / 16)
    assert m.mean_class_accuracy == pytest.approx((3 / 5 + 10 / 11) / 2)
    assert (m.precision, m.recall, m.f1) == pytest.approx((3 / 4, 3 / 5, 2 * 3 / (2 * 3 + 1 + 2)))
    # a threshold above every prediction: no blur predicted, IoU(blur) 0, precision undefined
    high = pixel_metrics(_counts(pred, truth), 0.95)
    assert high.iou_blur == 0.0 and math.isnan(high.precision)


def _brute_average_precision(scores: np.ndarray, truth: np.ndarray) -> float:
    """AP by definition: every distinct score as a threshold, from the highest down, sum of recall
    gains times precision (counted directly)."""
    ap, last_recall = 0.0, 0.0
    for t in sorted(set(scores.tolist()), reverse=True):
        chosen = scores >= t
        tp = int((chosen & truth).sum())
        recall = tp / truth.sum()
        ap += (recall - last_recall) * tp / chosen.sum()
        last_recall = recall
    return ap


def test_pr_auc_equals_average_precision_counted_by_brute_force():
    rng = np.random.default_rng(4)
    truth = rng.random((30, 40)) < 0.3
    prob = np.clip(0.35 * truth + rng.random((30, 40)) * 0.7, 0, 1)
    prob[:3] = 0.5  # ties
    levels = quantise(prob)
    got = _counts(prob, truth).average_precision()
    assert got == pytest.approx(_brute_average_precision(levels.astype(np.int64).ravel(), truth.ravel()), abs=1e-12)
    perfect = np.where(truth, 0.9, 0.1)
    assert _counts(perfect, truth).average_precision() == pytest.approx(1.0)
    flat = np.zeros_like(prob)  # "no blur" everywhere: one threshold, recall 1 at precision = prevalence
    assert _counts(flat, truth).average_precision() == pytest.approx(truth.mean())


def test_quantised_thresholds_and_the_grid_search_for_iou():
    truth = np.array([[True, True, False, False]])
    prob = np.array([[0.7, 0.35, 0.3, 0.1]])
    counts = _counts(prob, truth)
    # IoU(blur) is 1 for thresholds in (0.3, 0.35]: the grid's best (lowest of equals) is 0.31
    assert best_pixel_threshold(counts, 0.01) == pytest.approx(0.31)
    assert pixel_metrics(counts, 0.35).iou_blur == 1.0  # q >= round(65535 t): 0.35 itself is blur
    assert quantise(np.array([0.0, 0.5, 1.0, 2.0])).tolist() == [0, 32768, TOP, TOP]


def test_image_score_is_the_mean_of_the_top_share():
    levels = quantise(np.linspace(0, 1, 101))  # 0.00, 0.01, ..., 1.00
    # ceil(0.03 * 101) = 4 pixels: 0.97, 0.98, 0.99, 1.00
    assert image_score(levels, 0.03) == pytest.approx(np.mean([0.97, 0.98, 0.99, 1.0]), abs=1e-4)
    assert image_score(levels, 1e-9) == pytest.approx(1.0)


def test_roc_auc_against_pair_counting_and_mann_whitney():
    rng = np.random.default_rng(1)
    scores = np.round(rng.random(40), 1)  # many ties
    labels = rng.random(40) < 0.4
    pos, neg = scores[labels], scores[~labels]
    pairs = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg) / (len(pos) * len(neg))
    assert roc_auc(scores, labels) == pytest.approx(pairs, abs=1e-12)
    u = mannwhitneyu(pos, neg, alternative="two-sided").statistic
    assert roc_auc(scores, labels) == pytest.approx(u / (len(pos) * len(neg)), abs=1e-12)
    assert math.isnan(roc_auc(scores, np.ones(40, bool)))


def test_image_metrics_and_the_f1_threshold():
    scores = np.array([0.9, 0.8, 0.6, 0.4, 0.3, 0.2])
    labels = np.array([True, True, False, True, False, False])
    m = image_metrics(scores, labels, 0.5)  # TP 2, FP 1, FN 1, TN 2
    assert (m.accuracy, m.precision, m.recall, m.specificity, m.f1) == pytest.approx((4 / 6, 2 / 3, 2 / 3, 2 / 3, 2 / 3))
    assert m.as_dict()["sharp_accuracy"] == m.specificity and m.as_dict()["blur_accuracy"] == m.recall
    # F1 by threshold: (0.6, 0.8] 4/5, (0.4, 0.6] 4/6, (0.3, 0.4] 6/7 (TP 3, FP 1: the best), (0.2, 0.3] 6/8
    assert best_image_threshold(scores, labels, 0.01) == pytest.approx(0.31)


# -- curriculum --------------------------------------------------------------------------------------

def test_curriculum_stage_per_epoch():
    c = CurriculumSection(mixed_from=2, advanced_from=4)
    assert [stage_of_epoch(e, c) for e in range(6)] == ["stabilization"] * 2 + ["mixed"] * 2 + ["advanced"] * 2
    assert stage_of_epoch(0, CurriculumSection()) == "advanced"  # the defaults: no curriculum


def test_epoch_draw_takes_the_stage_and_earlier_ones_plus_sharp_references_of_blurred_samples():
    stages = np.array(["stabilization"] * 10 + ["mixed"] * 10 + ["advanced"] * 10)
    blurred = np.arange(30) % 3 != 0
    c = CurriculumSection(mixed_from=1, advanced_from=2)
    draws = [epoch_items(stages, blurred, e, c, sharp_pairs=0.5, seed=7) for e in range(3)]
    for epoch, items in enumerate(draws):
        samples, refs = items[items < 30], items[items >= 30] - 30
        assert sorted(samples.tolist()) == list(range(10 * (epoch + 1)))  # the stage and the earlier ones
        assert len(refs) == round(0.5 * blurred[:10 * (epoch + 1)].sum()) and blurred[refs].all()
        assert set(refs) <= set(samples) and len(set(refs)) == len(refs)
    assert np.array_equal(draws[2], epoch_items(stages, blurred, 2, c, sharp_pairs=0.5, seed=7))
    assert not np.array_equal(draws[2], epoch_items(stages, blurred, 2, c, sharp_pairs=0.5, seed=8))
    # two ranks: disjoint halves of the same draw, cut to whole global batches of 2 x 4
    whole = epoch_items(stages, blurred, 2, c, sharp_pairs=0.5, seed=7, batch_size=4)
    ranks = [epoch_items(stages, blurred, 2, c, sharp_pairs=0.5, seed=7, rank=r, world=2, batch_size=4)
             for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == (len(whole) // 8) * 4
    assert np.array_equal(np.sort(np.concatenate(ranks)), np.sort(whole[:(len(whole) // 8) * 8]))


# -- composite folders: the validation split, what evaluation scores --------------------------------

def make_composite(folder: Path, stage: str, *, val_fraction: float = 0.5, seed: int = 0) -> Path:
    """A tiny composite folder (2 procedural photos, one 16 x 16 sample each): with val_fraction 0.5
    one photo's sample is train and the other's val; with 0 both are train."""
    config = resolve_config(CompositeConfig, COMPOSITE_KIND, preset="demo", overrides=[
        f"seed={seed}", "sources.procedural_count=2", "sources.procedural_size=[64, 64]", "samples.per_source=1",
        "samples.width=16", "samples.height=16", "samples.min_instance_px=8", f"samples.val_fraction={val_fraction}",
        f"blur.stage={stage}", "output.preview=false"])
    composite_dataset(config, folder, progress=False)
    return folder


def validation(data: Path) -> list[str] | None:
    """What blur-seg's run validates on without --val."""
    return validation_files(data, None, "val", composite_split_files, composite_split_names)


def test_no_val_split_in_any_stage_folder_means_no_validation(tmp_path):
    for stage in ("stabilization", "mixed"):
        make_composite(tmp_path / "stages" / stage, stage, val_fraction=0.0)
    assert validation(tmp_path / "stages") is None
    assert validation(make_composite(tmp_path / "flat", "advanced", val_fraction=0.0)) is None
    made = make_composite(tmp_path / "both" / "mixed", "mixed")
    assert [Path(f).name for f in validation(made.parent)] == ["val-00000-of-00001.h5"]


def test_a_broken_val_shard_is_one_line_not_no_validation(tmp_path):
    stages = tmp_path / "stages"
    make_composite(stages / "stabilization", "stabilization")
    other = make_composite(tmp_path / "other", "mixed", seed=1)
    # a val shard of another stage in the stabilization folder (its train shards are right)
    shutil.copyfile(other / "val-00000-of-00001.h5", stages / "stabilization" / "val-00000-of-00001.h5")
    with pytest.raises(BlurgenError, match="stabilization holds samples of stage mixed, not only stabilization"):
        validation(stages)
    # a val shard that cannot be read, in one composite folder
    (other / "val-00000-of-00001.h5").write_bytes(b"truncated")
    with pytest.raises(BlurgenError, match="val-00000-of-00001.h5 is not a readable HDF5 file") as err:
        validation(other)
    assert "\n" not in str(err.value)


def test_stage_folders_that_disagree_on_the_val_split_are_refused_in_one_line(tmp_path):
    stages = tmp_path / "stages"
    make_composite(stages / "stabilization", "stabilization")
    make_composite(stages / "mixed", "mixed", val_fraction=0.0)
    with pytest.raises(BlurgenError, match="stage folders stabilization have 'val' shards, mixed not") as err:
        validation(stages)
    assert "\n" not in str(err.value)


def test_evaluation_scores_the_test_split_by_default_and_never_the_thresholds_own_shards(tmp_path):
    folder = make_composite(tmp_path / "data", "advanced")
    with pytest.raises(BlurgenError, match=r"has no 'test' split \(splits there: train, val\): name the held-out "
                                           "split to score with --split NAME"):
        resolve_source(data=folder)
    val = resolve_source(data=folder, split="val")
    assert val.inputs["split"] == "val" and [Path(f).name for f in val.files] == ["val-00000-of-00001.h5"]
    held_out = tmp_path / "held_out"  # a folder with a test split (shards named so)
    held_out.mkdir()
    shutil.copyfile(folder / "train-00000-of-00001.h5", held_out / "test-00000-of-00001.h5")
    default = resolve_source(data=held_out)
    assert default.inputs["split"] == "test" and [Path(f).name for f in default.files] == ["test-00000-of-00001.h5"]
    # thresholds chosen on the val split of stage folders: those shards, all or one stage folder's,
    # are refused; their train shards and another folder's val shards are not
    stages = tmp_path / "stages"
    for k, stage in enumerate(("stabilization", "mixed")):
        make_composite(stages / stage, stage, seed=k)
    chosen_on = split_source(stages, "val", composite_split_files(stages, "val"))
    for scored in (resolve_source(data=stages, split="val"), resolve_source(data=stages / "mixed", split="val")):
        with pytest.raises(BlurgenError, match="are the ones the thresholds were chosen on") as err:
            refuse_threshold_shards(scored, chosen_on)
        assert "\n" not in str(err.value)
    refuse_threshold_shards(resolve_source(data=stages / "mixed", split="train"), chosen_on)
    refuse_threshold_shards(val, chosen_on)
    refuse_threshold_shards(resolve_source(data=stages, split="val"), None)  # thresholds of unknown origin


# -- padding, rescaling, frequency channel, model ----------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 3, 37, 50), (1, 1, 5, 7), (1, 2, 64, 32)])
def test_padding_to_the_encoder_multiple_and_cropping_back_round_trip(shape):
    x = torch.randn(shape)
    padded = pad_to_multiple(x, 32, mode=PADDING)
    assert padded.shape[-2] % 32 == 0 and padded.shape[-1] % 32 == 0
    assert torch.equal(crop_to(padded, shape[-2:]), x)
    if shape == (2, 3, 37, 50):  # mirrored: row 37 is row 35, column 50 is column 48
        assert torch.equal(padded[..., 37, :50], x[..., 35, :]) and torch.equal(padded[..., :37, 50], x[..., 48])
    if shape == (1, 1, 5, 7):  # too small to mirror to 32: the edge repeated
        assert torch.equal(padded[..., 31, :7], x[..., 4, :]) and torch.equal(padded[..., :5, 31], x[..., 6])


def test_rescaling_keeps_labels_aligned_and_scales_the_intensity():
    image = torch.zeros(1, 3, 16, 16)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:8, 4:8] = 1
    intensity = mask * 0.3
    big_image, big_mask, big_intensity = rescale(image, mask, intensity, 2.0)
    assert big_image.shape[-2:] == (32, 32)
    assert big_mask[0, 0].nonzero().min(0).values.tolist() == [8, 8] and int(big_mask.sum()) == 64
    assert float(big_intensity[0, 0, 12, 12]) == pytest.approx(0.6)  # an extent of 2x the pixels
    assert float(rescale(image, mask, mask * 0.8, 2.0)[2].max()) == 1.0  # clipped to 1


def test_laplacian_variance_of_alternating_columns():
    a = 0.5
    image = torch.zeros(1, 3, 12, 15)
    image[..., 1::2] = a  # grey columns 0, a, 0, a...: the Laplacian is -2a / +2a, alternating
    var = laplacian_variance(image, window=7)
    # over 7 columns: 4 of one sign, 3 of the other -> mean +-2a/7, mean square 4a^2
    assert torch.allclose(var, torch.full_like(var, 4 * a * a - (2 * a / 7) ** 2), atol=1e-5)
    assert float(laplacian_variance(torch.full((1, 3, 9, 9), 0.4)).abs().max()) < 1e-10  # flat: none


def test_model_gives_both_heads_at_the_input_size_and_auxiliary_stages():
    with seeded_torch(0):
        model = BlurSegNet("resnet18", decoder_channels=(16, 8, 8, 8, 8), in_channels=4, aux_stages=2)
    with torch.no_grad():
        out = model(torch.randn(2, 4, 45, 70))
    assert out.mask_logits.shape == out.intensity.shape == (2, 1, 45, 70)
    assert 0 <= float(out.intensity.min()) and float(out.intensity.max()) <= 1
    # the two stages before the last: 1/4 and 1/2 of the padded 64 x 96
    assert [tuple(a.shape[-2:]) for a in out.aux_logits] == [(16, 24), (32, 48)]


def test_user_encoder_weights_are_loaded_and_widened_to_the_frequency_channel(tmp_path):
    with seeded_torch(1):
        source = BlurSegNet("resnet18", decoder_channels=(8,) * 5, in_channels=3, aux_stages=0)
    state = {f"{k}": v for k, v in source.unet.encoder.state_dict().items()}
    state["fc.weight"] = torch.zeros(10, 512)  # a classifier's head: ignored
    torch.save(state, tmp_path / "encoder.pt")
    with seeded_torch(2):
        model = BlurSegNet("resnet18", decoder_channels=(8,) * 5, in_channels=4, aux_stages=0,
                           encoder_weights=tmp_path / "encoder.pt")
    loaded = model.unet.encoder.state_dict()
    assert torch.equal(loaded["layer4.1.conv2.weight"], state["layer4.1.conv2.weight"])
    # smp's rule for a 4th input: the RGB filters reused, all scaled by 3/4
    assert torch.allclose(loaded["conv1.weight"][:, :3], state["conv1.weight"] * 0.75)
    torch.save({"conv1.weight": torch.zeros(3, 3, 3, 3)}, tmp_path / "other.pt")
    with pytest.raises(BlurgenError, match="does not fit the encoder"):
        BlurSegNet("resnet18", decoder_channels=(8,) * 5, encoder_weights=tmp_path / "other.pt")
    with pytest.raises(BlurgenError, match="no such file"):
        BlurSegNet("resnet18", decoder_channels=(8,) * 5, encoder_weights=tmp_path / "missing.pt")
    with pytest.raises(BlurgenError, match="not a segmentation_models_pytorch encoder"):
        BlurSegNet("no-such-encoder", decoder_channels=(8,) * 5)


def test_the_loss_of_images_of_no_multiple_of_the_stride_pads_the_auxiliary_targets_like_the_input(tmp_path):
    data = make_composite(tmp_path / "data", "advanced", val_fraction=0.0)  # two 16 x 16 samples; stride 32
    config = resolve_config(BlurSegConfig, KIND, preset="demo", overrides=[
        "model.decoder_channels=[8, 8, 8, 8, 8]", "model.aux_stages=2", "train.batch_size=2", "train.workers=0",
        "train.epochs=1", "curriculum.mixed_from=0", "curriculum.advanced_from=0", "augment.hflip=0",
        "augment.brightness=0", "augment.contrast=0", "augment.scale=[1, 1]", "loss.seg=0", "loss.reg=0",
        "loss.prev=0", "loss.aux=1"])
    task = BlurSegTask(config, data)
    with seeded_torch(0):
        model = task.build_model()
    cpu = DistContext(torch.device("cpu"))
    batch = next(task.batches(0, 0, cpu))
    assert tuple(batch["image"].shape[1:3]) == (16, 16)
    total, parts, images = task.loss(model, batch, cpu, torch.Generator())
    # oracle: the network pads 16 -> 32 by repeating the edge (too small to mirror), so each aux
    # target is the mask padded so in NumPy, averaged over the aux map's cells by reshaping
    with torch.no_grad():
        aux = model(model_inputs(batch["image"].permute(0, 3, 1, 2).float() / 255, config)).aux_logits
    mask = np.pad(batch["blur_mask"].numpy().astype(np.float64), ((0, 0), (0, 16), (0, 16)), mode="edge")
    expected = []
    for logits in aux:
        h, w = logits.shape[-2:]
        target = mask.reshape(2, h, 32 // h, w, 32 // w).mean(axis=(2, 4))
        expected.append(float(mask_loss(logits, torch.from_numpy(target).float().unsqueeze(1), bce=config.loss.bce,
                                        dice=config.loss.dice, focal_tversky=config.loss.focal_tversky,
                                        alpha=config.loss.tversky_alpha, beta=config.loss.tversky_beta,
                                        gamma=config.loss.tversky_gamma, smooth=config.loss.smooth)))
    assert [tuple(a.shape[-2:]) for a in aux] == [(8, 8), (16, 16)] and images == 2
    assert parts["aux"] == pytest.approx(sum(expected) / 2, rel=1e-5)
    assert float(total.detach()) == pytest.approx(parts["aux"])  # the only loss switched on
