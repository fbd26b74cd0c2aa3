"""Video mode's parts: linear-light averaging, frame sources, window planning, scene cuts, and
bad inputs that must give one clear line."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from flowpairs_fixtures import H, W, moving_frames, write_folder, write_video

from blurgen.cli import main
from blurgen.config import resolve_config
from blurgen.errors import BlurgenError
from blurgen.flowpairs.averaging import RunningSum, average_frames, decode, encode
from blurgen.flowpairs.config import KIND, FlowpairsConfig
from blurgen.flowpairs.plan import make_plan
from blurgen.splits import split_sources
from blurgen.flowpairs.video import (TruncatedVideo, cover_crop_box, find_sources, probe, read_frames,
                                     resize_frame)
from blurgen.flowpairs.windows import (Window, anchors, cut_distance, cut_feature, has_cut, plan_windows,
                                       window_lengths)


def srgb_decode(s):  # IEC 61966-2-1, written out here independently of blurgen.color
    return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4


def srgb_encode(l):
    return 12.92 * l if l <= 0.0031308 else 1.055 * l ** (1 / 2.4) - 0.055


def frame(value, shape=(2, 3, 3)):
    return np.full(shape, value, np.uint8)


# ----------------------------------------------------------------------------- averaging


@pytest.mark.parametrize("codes, expected", [
    ((0, 255), 188),        # linear 0.5 -> sRGB 0.7354 -> 187.5 -> 188
    ((0, 0, 255), 156),     # linear 1/3 -> sRGB 0.6134 -> 156.4
    ((100, 200), 160),      # (0.1274 + 0.5776) / 2 = 0.3525 -> sRGB 0.6282 -> 160.2
    ((7, 7, 7, 7, 7, 7, 7), 7),  # a static pixel stays as it is
])
def test_srgb_averaging_matches_hand_computed_values(codes, expected):
    by_hand = 255 * srgb_encode(sum(srgb_decode(c / 255) for c in codes) / len(codes))
    assert math.floor(by_hand + 0.5) == expected
    assert (average_frames([frame(c) for c in codes]) == expected).all()


def test_linear_light_differs_from_averaging_srgb_codes():
    # code_mean: what averaging the codes themselves (the bug blurgen avoids) gives, by hand
    for codes, code_mean, linear in (((0, 255), 128, 188), ((0, 0, 255), 85, 156), ((100, 200), 150, 160)):
        got = average_frames([frame(c) for c in codes])[0, 0, 0]
        assert got == linear and got != code_mean


def test_gamma22_averaging():
    # 0.5 ** (1 / 2.2) * 255 = 186.1; ((100/255)^2.2 + (200/255)^2.2) / 2 -> 159.0
    assert (average_frames([frame(0), frame(255)], "gamma22") == 186).all()
    by_hand = 255 * (((100 / 255) ** 2.2 + (200 / 255) ** 2.2) / 2) ** (1 / 2.2)
    assert (average_frames([frame(100), frame(200)], "gamma22") == math.floor(by_hand + 0.5)).all()


def test_decode_encode_round_trip_every_code():
    codes = np.arange(256, dtype=np.uint8)
    for transfer in ("srgb", "gamma22"):
        assert np.array_equal(encode(decode(codes, transfer), transfer), codes)


def test_running_sum_windows_are_bit_identical_to_direct_averages():
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (16, 20, 3), dtype=np.uint8) for _ in range(40)]
    for begin in (0, 5):  # a task may start its running sum anywhere before a window
        running = RunningSum()
        snaps = {}
        for k in range(begin, 40):
            snaps[k] = running.snapshot()
            running.add(frames[k])
            for n in (1, 7, 13):
                a = k - n + 1
                if a >= begin:
                    assert np.array_equal(running.mean_since(snaps[a], n), average_frames(frames[a:k + 1]))
        assert snaps[begin] is None  # an empty sum: mean_since(None, n) averages everything added
    assert RunningSum().snapshot() is None


def test_running_sum_refuses_other_sizes_and_types():
    running = RunningSum()
    running.add(frame(1))
    with pytest.raises(ValueError, match="shape"):
        running.add(frame(1, (3, 3, 3)))
    with pytest.raises(ValueError, match="uint8"):
        average_frames([np.zeros((2, 2, 3), np.float32)])


# ----------------------------------------------------------------------------- windows


def test_default_windows_tile_the_video_without_overlap():
    # 7 frames, stride 7: anchors 3, 10, 17, 24 (window 21..27 fits in 30 frames, 28..34 does not)
    assert plan_windows(30, [7], stride=7) == [Window(0, 7), Window(7, 7), Window(14, 7), Window(21, 7)]
    w = Window(7, 7)
    assert (w.middle, w.last, w.stop) == (10, 13, 14)
    assert Window(4, 8).middle == 7  # even length: the earlier middle frame


def test_windows_of_several_lengths_share_their_middle_frame():
    windows = plan_windows(20, [1, 3, 7], stride=7)
    assert windows == sorted([Window(3, 1), Window(2, 3), Window(0, 7),
                              Window(10, 1), Window(9, 3), Window(7, 7)])
    assert {w.middle for w in windows} == {3, 10}


def test_one_length_per_anchor_and_max_per_source():
    drawn = plan_windows(100, [1, 5, 9], stride=10, per_anchor="one", draw=lambda k: k % 3)
    # anchors 4, 14, .., 94: the longest window (9) fits from frame 0 to frame 99
    assert [w.length for w in drawn] == [1, 5, 9, 1, 5, 9, 1, 5, 9, 1]
    assert [w.middle for w in drawn] == [4 + 10 * k for k in range(10)]
    kept = anchors(100, 9, 10, max_count=3)
    assert kept == [(0, 4), (4, 44), (9, 94)]  # evenly spread; k is the index on the full grid
    assert window_lengths([7], [2, 5]) == (2, 3, 4, 5)
    assert window_lengths([9, 3, 3], None) == (3, 9)


def test_cut_feature_distance_and_windows_across_cuts():
    a, b = frame(10, (8, 8, 3)), frame(250, (8, 8, 3))
    assert cut_distance(cut_feature(a), cut_feature(a)) == 0.0
    assert cut_distance(cut_feature(a), cut_feature(b)) == 1.0
    frames = moving_frames(12, dx=2, cut_at=6)
    d = [cut_distance(cut_feature(p), cut_feature(q)) for p, q in zip(frames, frames[1:])]
    assert d[5] > 0.35 and max(d[:5] + d[6:]) < 0.1  # motion is not a cut; the cut is
    assert has_cut([5], Window(0, 7)) and has_cut([5], Window(5, 2))
    assert not has_cut([5], Window(6, 7)) and not has_cut([5], Window(0, 5))


def test_split_is_by_source_and_fills_each_split():
    ids = [f"v{i}" for i in range(10)]
    split = split_sources(0, ids, 0.2, 0.1)
    assert sorted(split.values()).count("val") == 2 and list(split.values()).count("test") == 1
    assert split == split_sources(0, ids, 0.2, 0.1) and split != split_sources(1, ids, 0.2, 0.1)
    small = split_sources(0, ["a", "b", "c"], 0.1, 0.1)
    assert sorted(small.values()) == ["test", "train", "val"]
    assert split_sources(0, ["a"], 0.1, 0.1) == {"a": "train"}


# ----------------------------------------------------------------------------- sources


def test_video_frames_decode_exactly_with_a_step(tmp_path):
    frames = moving_frames(10)
    path = write_video(tmp_path / "clip.avi", frames)
    source = probe(0, "clip.avi", path, "video")
    assert (source.frame_count, source.width, source.height, source.fps) == (10, W, H, 240.0)
    got = list(read_frames(source, 1, 4, step=2))
    assert [k for k, _ in got] == [1, 2, 3]
    for k, f in got:
        assert np.array_equal(f, frames[2 * k])


def test_sources_are_found_recursively_in_natural_order(tmp_path):
    frames = moving_frames(11)
    write_folder(tmp_path / "root" / "seq" / "a", frames)   # frame0.png .. frame10.png
    write_video(tmp_path / "root" / "clip.avi", frames[:3])
    (tmp_path / "root" / "notes.txt").write_text("ignored")
    found = find_sources(tmp_path / "root")
    assert [(sid, kind) for sid, _, kind in found] == [("clip.avi", "video"), ("seq/a", "frames")]
    source = probe(1, *found[1])
    assert source.files[:3] == ("frame0.png", "frame1.png", "frame2.png") and source.files[-1] == "frame10.png"
    assert source.fps is None
    assert all(np.array_equal(f, frames[k]) for k, f in read_frames(source, 0, 11))


def test_resize_covers_and_crops_without_stretching():
    assert cover_crop_box(200, 100, 50, 50) == (50, 0, 150, 100)
    assert cover_crop_box(100, 200, 50, 25) == (0, 75, 100, 125)
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 100:] = 255  # right half white
    out = resize_frame(image, (4, 2))
    assert out.shape == (2, 4, 3)
    assert (out[:, :2] == 0).all() and (out[:, 2:] == 255).all()
    # a 2x2 block of 0 and 255 shrinks to the linear mean, 188, not 128
    checker = np.zeros((2, 2, 3), np.uint8)
    checker[0, 0] = checker[1, 1] = 255
    assert (resize_frame(checker, (1, 1)) == 188).all()


# ----------------------------------------------------------------------------- bad inputs


def run(*args):
    return CliRunner().invoke(main, list(args))


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("blurgen: error: "), result.output
    return lines[0]


def test_truncated_video_is_one_line_or_counted(tmp_path):
    path = write_video(tmp_path / "v" / "clip.avi", moving_frames(28))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # the header still says 28 frames
    line = one_line_error(run("flowpairs", "video", "--videos", str(tmp_path / "v"), "--out", str(tmp_path / "o")))
    assert "clip.avi: decoding stopped at frame" in line and "container says 28 frames" in line
    assert "video.truncated=skip" in line
    result = run("flowpairs", "video", "--videos", str(tmp_path / "v"), "--out", str(tmp_path / "o2"),
                 "--set", "video.truncated=skip", "--set", "windows.max_flow=null")
    assert result.exit_code == 0, result.output
    assert "truncated 2" in result.output  # windows 14..20 and 21..27 lie beyond what decodes
    assert result.output.startswith("2 flow pairs")


def test_read_frames_raises_truncated_after_the_frames_that_decode(tmp_path):
    path = write_video(tmp_path / "clip.avi", moving_frames(20))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    source = probe(0, "clip.avi", path, "video")
    got = []
    with pytest.raises(TruncatedVideo) as info:
        for k, f in read_frames(source, 0, 20):
            got.append(k)
    assert 0 < len(got) < 20 and info.value.decoded == len(got)


@pytest.mark.parametrize("make, message", [
    (lambda d: _empty_video(d), "video has no frames"),
    (lambda d: (d / "junk.mp4").write_bytes(b"not a video" * 50), "OpenCV cannot open this video"),
    (lambda d: (d / "frames").mkdir() or (d / "frames" / "a.png").write_bytes(b"nope"),
     "cannot read this frame image"),
])
def test_unusable_sources_give_one_line(tmp_path, make, message):
    (tmp_path / "v").mkdir()
    make(tmp_path / "v")
    line = one_line_error(run("flowpairs", "video", "--videos", str(tmp_path / "v"), "--out", str(tmp_path / "o")))
    assert message in line


def _empty_video(folder: Path) -> None:
    import cv2

    writer = cv2.VideoWriter(str(folder / "empty.avi"), cv2.VideoWriter_fourcc(*"FFV1"), 240, (W, H))
    writer.release()


def test_no_sources_and_missing_videos_option(tmp_path):
    (tmp_path / "v").mkdir()
    assert "no videos or frame folders in" in one_line_error(
        run("flowpairs", "video", "--videos", str(tmp_path / "v"), "--out", str(tmp_path / "o")))
    assert "video mode needs the videos: give --videos DIR" in one_line_error(
        run("flowpairs", "video", "--out", str(tmp_path / "o")))


def test_frames_of_different_sizes_give_one_line(tmp_path):
    frames = moving_frames(8)
    frames[5] = frames[5][:40]
    write_folder(tmp_path / "v" / "seq", frames)
    line = one_line_error(run("flowpairs", "video", "--videos", str(tmp_path / "v"), "--out", str(tmp_path / "o")))
    assert "frame5.png: frame is 64x40, the folder's first frame 64x48" in line


def test_sources_of_different_sizes_need_video_size(tmp_path):
    write_video(tmp_path / "v" / "a.avi", moving_frames(8))
    write_video(tmp_path / "v" / "b.avi", moving_frames(8, w=32, h=32))
    line = one_line_error(run("flowpairs", "video", "--videos", str(tmp_path / "v"), "--out", str(tmp_path / "o")))
    assert "sources differ in size (a.avi is 64x48, b.avi 32x32): set video.size=[W,H]" in line


def test_unknown_fps_gives_one_line_when_needed(tmp_path):
    write_folder(tmp_path / "v" / "seq", moving_frames(16))
    line = one_line_error(run("flowpairs", "video", "--videos", str(tmp_path / "v"), "--out", str(tmp_path / "o"),
                              "--set", "video.target_fps=120"))
    assert "frame rate unknown (frame folders carry no frame rate) but video.target_fps is set" in line
    assert "video.fps=RATE" in line
    # with the rate given, 240 -> 120 fps keeps every second frame
    config = resolve_config(FlowpairsConfig, KIND, overrides={
        "mode": "video", "video": {"videos": str(tmp_path / "v"), "fps": 240.0, "target_fps": 120.0}})
    plan = make_plan(config)
    assert plan.steps == [2] and plan.fps == [120.0]
    assert [item.window for item in plan.items] == [Window(0, 7)]  # 8 kept frames: one window
    bad = resolve_config(FlowpairsConfig, KIND, overrides={
        "mode": "video", "video": {"videos": str(tmp_path / "v"), "fps": 240.0, "target_fps": 100.0}})
    with pytest.raises(BlurgenError, match="240 fps is not a whole multiple of video.target_fps 100"):
        make_plan(bad)


def test_sources_shorter_than_a_window_are_counted(tmp_path):
    write_video(tmp_path / "v" / "long.avi", moving_frames(14))
    write_video(tmp_path / "v" / "short.avi", moving_frames(5))
    config = resolve_config(FlowpairsConfig, KIND,
                            overrides={"mode": "video", "video": {"videos": str(tmp_path / "v")}})
    plan = make_plan(config)
    assert plan.skipped_sources == {"shorter than the longest window": 1}
    assert [(i.source, i.window) for i in plan.items] == [(0, Window(0, 7)), (0, Window(7, 7))]


def test_video_size_brings_sources_to_one_size(tmp_path):
    write_video(tmp_path / "v" / "a.avi", moving_frames(8))
    write_video(tmp_path / "v" / "b.avi", moving_frames(8, w=48, h=48))
    result = run("flowpairs", "video", "--videos", str(tmp_path / "v"), "--out", str(tmp_path / "o"),
                 "--set", "video.size=[32,24]", "--set", "flow.consistency=false", "--set", "split.val=0",
                 "--set", "split.test=0")
    assert result.exit_code == 0, result.output
    from blurgen.shards import ShardDataset

    samples = list(ShardDataset(tmp_path / "o"))
    assert len(samples) == 2
    for s in samples:
        assert s["image"].shape == (24, 32, 3) and s["flow_fwd"].shape == (24, 32, 2)
        assert s["flow_valid"].all()  # no consistency check: everything counts as valid
    # a.avi (64x48) is only scaled by 1/2: its frames are the linear-light 2x2 means
    a = next(s for s in samples if s["source"] == "a.avi")
    assert np.array_equal(a["first"], resize_frame(moving_frames(1)[0], (32, 24)))
