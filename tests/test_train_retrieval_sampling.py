"""The retrieval epoch draw (paper §5 Setup) and BLISS (§3.2), against hand-made column sets and
brute-force allowed sets written here with plain loops."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from blurgen.errors import BlurgenError
from blurgen.train.retrieval_sampling import (
    Bliss,
    RetrievalColumns,
    RetrievalSampler,
    balanced_epoch,
    rank_share,
)


def columns_from(trajectories: list[tuple[str, list[int]]], *, sharp_first: bool = False) -> RetrievalColumns:
    """One row per (trajectory, level) listed; trajectory t is ``trajectories[t]``: (object, levels).
    With ``sharp_first`` the first image of each trajectory has window_count 0."""
    obj, traj, lev, wc = [], [], [], []
    for t, (o, levels) in enumerate(trajectories):
        for k, level in enumerate(levels):
            obj.append(o)
            traj.append(100 + 7 * t)  # ids need not be dense
            lev.append(level)
            wc.append(k if sharp_first else k + 1)
    return RetrievalColumns.from_values(obj, traj, lev, wc)


def level_histogram(cols: RetrievalColumns, picked: np.ndarray) -> dict[int, int]:
    return dict(sorted(Counter(int(cols.blur_level[i]) for i in picked).items()))


def assert_one_per_trajectory(cols: RetrievalColumns, picked: np.ndarray, expected_trajectories: set[int]) -> None:
    trajs = [int(cols.trajectory_id[i]) for i in picked]
    assert sorted(trajs) == sorted(expected_trajectories)


# ---------------------------------------------------------------- balanced epoch draw

NESTED = ([(f"o{t % 3}", [1, 1]) for t in range(4)]            # level 1 only (two images of it)
          + [(f"o{t % 3}", [1, 2, 2]) for t in range(4)]       # levels 1..2
          + [(f"o{t % 3}", [1, 2, 3, 3, 1]) for t in range(4)])  # levels 1..3


@pytest.mark.parametrize("seed,epoch", [(0, 0), (0, 1), (5, 3), (123, 29)])
def test_nested_levels_give_an_exactly_even_histogram(seed, epoch):
    # rarest first: level 3 takes ceil(12/3) = 4 (all four), level 2 ceil(8/2) = 4, level 1 the 4 left
    cols = columns_from(NESTED)
    picked = balanced_epoch(cols, seed, epoch)
    assert level_histogram(cols, picked) == {1: 4, 2: 4, 3: 4}
    assert_one_per_trajectory(cols, picked, set(cols.trajectory_id.tolist()))


def test_remainders_go_to_the_first_level_visited():
    # ten trajectories with levels 1..3: a tie in rarity, lower level first: ceil(10/3)=4, ceil(6/2)=3, 3
    cols = columns_from([("a", [3, 2, 1])] * 10)
    for epoch in range(5):
        assert level_histogram(cols, balanced_epoch(cols, 1, epoch)) == {1: 4, 2: 3, 3: 3}


def test_trajectories_with_no_other_level_are_always_taken():
    # level 1 (5 trajectories, all with only level 1) is visited first with a share of
    # ceil(11/3) = 4, but leaving one out would leave it without an image: all 5 are taken,
    # then levels 2 and 3 split the 6 others 3/3
    cols = columns_from([("a", [1])] * 5 + [("b", [2, 3])] * 6)
    for epoch in range(5):
        picked = balanced_epoch(cols, 2, epoch)
        assert level_histogram(cols, picked) == {1: 5, 2: 3, 3: 3}
        assert_one_per_trajectory(cols, picked, set(cols.trajectory_id.tolist()))


def test_the_draw_is_fixed_by_seed_and_epoch_and_changes_with_them():
    cols = columns_from([(f"o{t % 5}", [1, 2, 3, 4][: 1 + t % 4] * 2) for t in range(60)])
    first = balanced_epoch(cols, 7, 3)
    assert np.array_equal(balanced_epoch(cols, 7, 3), first)
    assert not np.array_equal(balanced_epoch(cols, 7, 4), first)
    assert not np.array_equal(balanced_epoch(cols, 8, 3), first)
    # not only the order: which image of a trajectory is taken changes across epochs too
    assert len({tuple(sorted(balanced_epoch(cols, 7, e).tolist())) for e in range(6)}) > 1


def test_sharp_only_takes_the_sharp_image_of_each_trajectory_that_has_one():
    trajectories = [(f"o{t % 4}", [1, 2, 3]) for t in range(8)]
    cols = columns_from(trajectories, sharp_first=True)
    wc = cols.window_count.copy()
    wc[cols.trajectory_id == 100 + 7 * 2] = 5  # trajectory 2 lost its sharp image
    cols = RetrievalColumns(cols.objects, cols.object_code, cols.trajectory_id, cols.blur_level, wc)
    for epoch in range(3):
        picked = balanced_epoch(cols, 0, epoch, sharp_only=True)
        assert all(cols.window_count[i] == 0 for i in picked)
        assert_one_per_trajectory(cols, picked, {100 + 7 * t for t in range(8) if t != 2})


def test_ranks_partition_the_epoch_without_overlap():
    cols = columns_from([(f"o{t % 5}", [1, 2, 3][: 1 + t % 3]) for t in range(23)])
    whole = list(RetrievalSampler(cols, 4))
    for world in (2, 3, 4):
        parts = []
        for rank in range(world):
            sampler = RetrievalSampler(cols, 4, rank=rank, world=world)
            sampler.set_epoch(0)
            parts.append(list(sampler))
        assert len({len(p) for p in parts}) == 1 == len({len(sampler)} | {len(parts[0])})
        flat = [i for p in parts for i in p]
        assert len(flat) == len(set(flat)) == 23 - 23 % world
        assert sorted(flat) == sorted(whole[: 23 - 23 % world])  # the same epoch, split
    with pytest.raises(BlurgenError):
        rank_share(np.arange(4), 2, 2)


def test_set_epoch_changes_what_the_sampler_yields():
    cols = columns_from([(f"o{t % 5}", [1, 2, 3]) for t in range(30)])
    sampler = RetrievalSampler(cols, 1)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first


# ---------------------------------------------------------------- BLISS

def brute_allowed(cols: RetrievalColumns, q: int, pool: list[int], r: int, positives_in_range: bool = True):
    """Allowed positives and negatives of query q by the rules, one image at a time."""
    obj = [cols.objects[c] for c in cols.object_code]
    pos, neg = set(), set()
    for i in pool:
        near = abs(int(cols.blur_level[i]) - int(cols.blur_level[q])) <= r
        if obj[i] == obj[q] and cols.trajectory_id[i] != cols.trajectory_id[q] and (near or not positives_in_range):
            pos.add(i)
        if obj[i] != obj[q] and near:
            neg.add(i)
    return pos, neg


def synthetic_columns(seed: int) -> RetrievalColumns:
    rng = np.random.default_rng(seed)
    trajectories = []
    for t in range(40):
        start = int(rng.integers(1, 9))
        levels = rng.integers(start, start + 3, size=int(rng.integers(1, 4)))
        trajectories.append((f"obj-{t % 8}", sorted(levels.tolist())))
    trajectories.append(("solo", [2, 3]))  # one trajectory: never a positive
    return columns_from(trajectories)


@pytest.mark.parametrize("r,positives_in_range", [(1, True), (3, True), (5, True), (1, False)])
def test_bliss_draws_only_allowed_images_and_reaches_all_of_them(r, positives_in_range):
    cols = synthetic_columns(r)
    pool = np.arange(len(cols))
    bliss = Bliss(r=r, positives_in_range=positives_in_range)
    allowed = {q: brute_allowed(cols, q, list(pool), r, positives_in_range) for q in pool.tolist()}
    expect_kept = sorted(q for q, (p, n) in allowed.items() if p and len(n) >= 5)
    assert 0 < len(expect_kept) < len(pool)  # the column set exercises both outcomes
    seen_pos = {q: set() for q in expect_kept}
    seen_neg = {q: set() for q in expect_kept}
    for epoch in range(150):
        draw = bliss.draw(cols, pool, pool, seed=3, epoch=epoch)
        assert draw.tuples.shape == (len(expect_kept), 7)
        assert sorted(draw.tuples[:, 0].tolist()) == expect_kept
        assert draw.skipped == {"no_positive": sum(1 for p, _ in allowed.values() if not p),
                                "few_negatives": sum(1 for p, n in allowed.values() if p and len(n) < 5)}
        for q, p, *negs in draw.tuples.tolist():
            ok_pos, ok_neg = allowed[q]
            assert p in ok_pos
            assert set(negs) <= ok_neg and len(set(negs)) == 5  # distinct, other objects, in range
            seen_pos[q].add(p)
            seen_neg[q].update(negs)
    # uniform over the allowed sets reaches each of their members
    assert all(seen_pos[q] == allowed[q][0] for q in expect_kept)
    assert all(seen_neg[q] == allowed[q][1] for q in expect_kept)


def test_bliss_negatives_are_uniform_over_the_allowed_set():
    # query: object a, level 5; allowed negatives: the six images of b..g at levels 4..6 (r=1);
    # five of six are drawn, so each appears with probability 5/6
    trajectories = [("a", [5]), ("a", [5])] + [(o, [lv]) for o, lv in zip("bcdefg", [4, 5, 6, 4, 5, 6])]
    trajectories += [("h", [1]), ("h", [9])]  # out of range
    cols = columns_from(trajectories)
    counts = Counter()
    epochs = 1200
    for epoch in range(epochs):
        (row,) = Bliss(r=1).draw(cols, np.array([0]), np.arange(len(cols)), 11, epoch).tuples
        assert row[1] == 1
        counts.update(row[2:].tolist())
    assert sorted(counts) == [2, 3, 4, 5, 6, 7]
    # binomial(1200, 5/6): sd 12.9; 4.5 sd either side
    assert all(abs(c - epochs * 5 / 6) < 58 for c in counts.values())


def test_a_query_s_tuple_depends_only_on_seed_epoch_and_its_index():
    cols = synthetic_columns(5)
    pool = np.arange(len(cols))
    full = Bliss(r=5).draw(cols, pool, pool, 9, 2).tuples
    rows = {row[0]: row for row in full.tolist()}
    for q in list(rows)[::7]:
        (alone,) = Bliss(r=5).draw(cols, np.array([q]), pool, 9, 2).tuples.tolist()
        assert alone == rows[q]
    assert not np.array_equal(Bliss(r=5).draw(cols, pool, pool, 9, 3).tuples, full)


def test_the_sampler_yields_bliss_tuples_of_the_epoch_draw():
    cols = columns_from([(f"o{t % 6}", [1, 2, 3, 4]) for t in range(36)])
    sampler = RetrievalSampler(cols, 5, bliss=Bliss(r=5))
    sampler.set_epoch(2)
    items = list(sampler)
    draw = balanced_epoch(cols, 5, 2)
    assert [it[0] for it in items] == draw.tolist()  # every query kept, in the epoch's order
    assert all(len(it) == 7 and set(it[1:]) <= set(draw.tolist()) for it in items)
    assert sampler.skipped == {"no_positive": 0, "few_negatives": 0}


def test_bad_bliss_settings_are_refused():
    with pytest.raises(BlurgenError):
        Bliss(r=-1)
    with pytest.raises(BlurgenError):
        Bliss(negatives=0)
