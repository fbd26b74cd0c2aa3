"""What the retrieval task trains on each epoch: the balanced epoch draw and BLISS tuples.

Blur-retrieval paper, §5 Setup: "for the training objects, we take one image for each trajectory
while ensuring a balanced distribution of images across different blur levels"; the issue asks
for that draw anew every epoch, from the run's seed. §3.2 (BLISS): contrastive samples are
chosen by the query's blur level BL_q and a range r: "the selected positive and negative samples
therefore have blur levels within the range of BL_q - r to BL_q + r" (ranges S/M/L = 1/3/5, the
paper uses 5); one positive and five negatives per tuple (issue 10).

Everything works on small columns read once (``object_id``, ``trajectory_id``, ``blur_level``,
``window_count``), vectorised over images, so an epoch of 100k images is drawn in well under a
second. The readings of the paper's words are in ``docs/train.md``:

- balanced: levels are filled rarest first, each taking an equal share of the trajectories
  still unassigned (more only when trajectories have no other level left), see
  :func:`balanced_epoch`;
- BLISS positives: same object, another trajectory, level within ±r; negatives: other objects,
  level within ±r, distinct images; a query without a positive or with fewer allowed negatives
  than asked is skipped and counted, never padded (see :class:`Bliss`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch.utils.data

from blurgen.errors import BlurgenError

# The paper's contrastive blur-level ranges (§5, Table 5): S, M, L; L (5) is its choice.
BLISS_RANGES = {"S": 1, "M": 3, "L": 5}

# Sub-stream words of SeedSequence([seed, epoch, word]) so the draws never share a stream.
_EPOCH_STREAM = 0x45504F43  # "EPOC"
_BLISS_STREAM = 0x424C4953  # "BLIS"

COLUMN_FIELDS = ("object_id", "trajectory_id", "blur_level", "window_count")


@dataclass(frozen=True)
class RetrievalColumns:
    """The small per-image fields the samplers need, in dataset index order.

    ``object_code`` numbers the sorted distinct ``object_id`` strings (``objects[code]`` is the
    id): the ArcFace class of each image and the key BLISS compares.
    """

    objects: tuple[str, ...]
    object_code: np.ndarray  # int64 (N,)
    trajectory_id: np.ndarray  # int64 (N,)
    blur_level: np.ndarray  # int64 (N,)
    window_count: np.ndarray  # int64 (N,)

    @classmethod
    def from_values(cls, object_id: Sequence[str], trajectory_id: Sequence[int], blur_level: Sequence[int],
                    window_count: Sequence[int]) -> RetrievalColumns:
        objects, code = np.unique(np.asarray(list(object_id), dtype=object).astype(str), return_inverse=True)
        cols = [np.asarray(c, dtype=np.int64).reshape(-1) for c in (trajectory_id, blur_level, window_count)]
        if any(len(c) != len(code) for c in cols):
            raise BlurgenError("retrieval columns differ in length: " + ", ".join(
                str(n) for n in (len(code), *map(len, cols))))
        return cls(tuple(str(o) for o in objects), code.astype(np.int64).reshape(-1), *cols)

    @classmethod
    def from_dataset(cls, dataset: object) -> RetrievalColumns:
        """Read the columns of a :class:`blurgen.shards.ShardDataset` (each shard opened briefly)."""
        return cls.from_values(*(dataset.column(name) for name in COLUMN_FIELDS))  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.object_code)


def epoch_rng(seed: int, epoch: int, stream: int = _EPOCH_STREAM) -> np.random.Generator:
    """The generator of one epoch's draw: the same on every rank and every rerun."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, stream]))


def balanced_epoch(columns: RetrievalColumns, seed: int, epoch: int, *, sharp_only: bool = False) -> np.ndarray:
    """One image per trajectory, blur levels balanced, in a random order (global indices).

    ``sharp_only`` ("Ours-sharp") keeps only sharp images (``window_count == 0``); trajectories
    without one drop out. Balancing ("as even as the trajectories allow"): levels are visited
    from the rarest (fewest trajectories having an image of it; ties: lower level first); a level
    takes ``ceil(unassigned / levels left)`` trajectories drawn at random among the unassigned
    ones that have it, or all of them when fewer, and always every trajectory that has no other
    level left, so every trajectory gets exactly one image. When each trajectory's levels are
    1..m (more blur needs a longer window), this gives the most even histogram possible. The
    trajectory's image at its level is then drawn uniformly among its images of that level.
    """
    rng = epoch_rng(seed, epoch)
    rows = np.flatnonzero(columns.window_count == 0) if sharp_only else np.arange(len(columns))
    if len(rows) == 0:
        return rows.astype(np.int64)
    traj_values, traj = np.unique(columns.trajectory_id[rows], return_inverse=True)
    levels, level = np.unique(columns.blur_level[rows], return_inverse=True)
    traj, level = traj.reshape(-1), level.reshape(-1)
    n_traj, n_lev = len(traj_values), len(levels)
    has = np.zeros((n_traj, n_lev), dtype=bool)
    has[traj, level] = True

    assigned = np.full(n_traj, -1, dtype=np.int64)
    open_levels = np.ones(n_lev, dtype=bool)
    order = np.lexsort((np.arange(n_lev), has.sum(axis=0)))  # rarest first, then lower level
    for lev in order:
        free = assigned < 0
        candidates = free & has[:, lev]
        open_levels[lev] = False
        forced = candidates & ~(has[:, open_levels].any(axis=1))  # no other level left to them
        share = -(-int(free.sum()) // (int(open_levels.sum()) + 1))
        take = max(share, int(forced.sum()))
        # forced ones first (key -1), the others in a random order
        key = np.where(forced, -1.0, rng.random(n_traj))
        cand = np.flatnonzero(candidates)
        chosen = cand[np.argsort(key[cand], kind="stable")[:take]]
        assigned[chosen] = lev

    # one image of each (trajectory, assigned level): the first in a random order
    match = assigned[traj] == level
    pool, key = rows[match], rng.random(int(match.sum()))
    sort = np.lexsort((key, traj[match]))
    first = np.r_[True, traj[match][sort][1:] != traj[match][sort][:-1]]
    picked = pool[sort][first]
    return picked[rng.permutation(len(picked))]


def rank_share(items: np.ndarray, rank: int, world: int) -> np.ndarray:
    """Rank ``rank`` of ``world``'s part of one epoch's items: every ``world``-th item from
    ``rank``, after truncating the epoch to a multiple of ``world`` so all ranks step together
    (DDP needs equal lengths). The items dropped are the epoch's last, which are random."""
    if not 0 <= rank < world:
        raise BlurgenError(f"rank {rank} is not in 0..{world - 1}")
    usable = len(items) - len(items) % world
    return items[rank:usable:world]


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser (Steele et al. 2014): a bijective 64-bit mix, vectorised."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def index_uniforms(seed: int, epoch: int, index: np.ndarray, count: int) -> np.ndarray:
    """``count`` uniforms in [0, 1) per index that depend only on (seed, epoch, index).

    A counter-based generator (splitmix64 chained over the words, like SeedSequence mixes its
    entropy), so a query's tuple is the same whatever other queries an epoch holds or in which
    order they are drawn, and 100k queries cost a few vector operations.
    """
    base = np.random.SeedSequence([seed, epoch, _BLISS_STREAM]).generate_state(1, np.uint64)[0]
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps by design
        h = _splitmix64(np.full(len(index), base, np.uint64) ^ np.asarray(index, np.uint64))
        words = _splitmix64(h[:, None] ^ _splitmix64(np.arange(count, dtype=np.uint64))[None, :])
    return (words >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def _pick_skipping(lo: np.ndarray, hi: np.ndarray, holes: list[tuple[np.ndarray, np.ndarray]],
                   u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct positions drawn uniformly from ``[lo, hi)`` minus the ``holes`` (per row).

    ``holes`` are ``(start, end)`` arrays, ascending and disjoint within ``[lo, hi)`` per row.
    Row ``i`` gets ``u.shape[1]`` positions when that many are allowed. Rank ``v`` among the
    allowed is drawn in ``[0, allowed - j)`` and moved past the ranks already taken (ascending),
    which makes the j-th pick uniform over the ranks not yet taken; a rank becomes a position by
    stepping over each hole that starts at or before it. Returns (positions, allowed counts).
    """
    allowed = (hi - lo) - sum(end - start for start, end in holes)
    n, k = u.shape
    ranks = np.zeros((n, k), dtype=np.int64)
    for j in range(k):
        v = np.floor(u[:, j] * np.maximum(allowed - j, 0)).astype(np.int64)
        for taken in np.sort(ranks[:, :j], axis=1).T:
            v += v >= taken
        ranks[:, j] = v
    pos = lo[:, None] + ranks
    for start, end in holes:
        pos += np.where(pos >= start[:, None], (end - start)[:, None], 0)
    return pos, allowed


@dataclass
class BlissDraw:
    """One epoch's tuples: rows ``[query, positive, negative_1 .. negative_k]`` (global indices)
    and how many queries were skipped, by reason."""

    tuples: np.ndarray
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Bliss:
    """BLISS (§3.2): a positive and ``negatives`` negatives per query, by blur level.

    Positive: an image of the query's object from another trajectory (another trajectory so it
    differs in pose, motion and background, not only in blur), with a level within ±``r`` of the
    query's (the paper's §3.2 wording; ``positives_in_range=False`` lifts that). Negatives:
    distinct images of other objects with a level within ±``r``. Draws are uniform over the
    allowed sets and depend on (seed, epoch, query index) only. A query without an allowed
    positive, or with fewer allowed negatives than asked, is skipped and counted
    (``no_positive``, ``few_negatives``): repeating negatives would weight some pairs twice.
    """

    r: int = BLISS_RANGES["L"]
    negatives: int = 5
    positives_in_range: bool = True

    def __post_init__(self) -> None:
        if self.r < 0 or self.negatives < 1:
            raise BlurgenError(f"BLISS needs r >= 0 and at least one negative, got r={self.r}, "
                               f"negatives={self.negatives}")

    def draw(self, columns: RetrievalColumns, queries: np.ndarray, pool: np.ndarray, seed: int,
             epoch: int) -> BlissDraw:
        """Tuples for ``queries`` with positives and negatives taken from ``pool`` (global indices)."""
        queries = np.asarray(queries, np.int64).reshape(-1)
        pool = np.unique(np.asarray(pool, np.int64))
        if len(pool) == 0:
            return BlissDraw(np.zeros((0, 2 + self.negatives), np.int64),
                             {"no_positive": len(queries), "few_negatives": 0})
        obj, traj = columns.object_code, np.unique(columns.trajectory_id, return_inverse=True)[1].reshape(-1)
        both = np.concatenate([queries, pool])
        lmin = int(columns.blur_level[both].min())
        lev = columns.blur_level - lmin  # 0-based, so keys stay non-negative
        n_lev, n_obj, n_traj = int(lev[both].max()) + 1, len(columns.objects), int(traj.max()) + 1
        ql, qo, qt = lev[queries], obj[queries], traj[queries]
        lo_lev, hi_lev = np.maximum(ql - self.r, 0), np.minimum(ql + self.r, n_lev - 1)
        u = index_uniforms(seed, epoch, queries, 1 + self.negatives)

        # negatives: the pool sorted by (level, object); the allowed levels are one run of it,
        # and the query's object is a hole in each of those levels
        neg_key = (lev[pool] * n_obj + obj[pool]).astype(np.int64)
        neg_order = np.argsort(neg_key, kind="stable")
        neg_pos, neg_allowed = _pick_skipping(
            *_run_and_holes(neg_key[neg_order], lo_lev * n_obj, (hi_lev + 1) * n_obj,
                            [(d * n_obj + qo, (d >= lo_lev) & (d <= hi_lev)) for d in range(n_lev)]),
            u[:, 1:])

        # positives: the pool sorted by (object, level, trajectory); the query's object at the
        # allowed levels is one run, and the query's trajectory is a hole in each level of it
        p_lo, p_hi = (lo_lev, hi_lev) if self.positives_in_range else (0 * ql, 0 * ql + n_lev - 1)
        pos_key = ((obj[pool] * n_lev + lev[pool]) * n_traj + traj[pool]).astype(np.int64)
        pos_order = np.argsort(pos_key, kind="stable")
        pos_pos, pos_allowed = _pick_skipping(
            *_run_and_holes(pos_key[pos_order], (qo * n_lev + p_lo) * n_traj, (qo * n_lev + p_hi + 1) * n_traj,
                            [((qo * n_lev + d) * n_traj + qt, (d >= p_lo) & (d <= p_hi)) for d in range(n_lev)]),
            u[:, :1])

        no_positive = pos_allowed < 1
        few_negatives = ~no_positive & (neg_allowed < self.negatives)
        keep = ~(no_positive | few_negatives)
        tuples = np.concatenate([queries[keep, None], pool[pos_order][pos_pos[keep]],
                                 pool[neg_order][neg_pos[keep]]], axis=1)
        return BlissDraw(tuples, {"no_positive": int(no_positive.sum()),
                                  "few_negatives": int(few_negatives.sum())})


def _run_and_holes(keys: np.ndarray, lo_key: np.ndarray, hi_key: np.ndarray,
                   holes: list[tuple[np.ndarray, np.ndarray]]
                   ) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Positions in sorted ``keys`` of the run ``[lo_key, hi_key)`` and of each hole key's
    entries (empty where its mask is false), per query, for :func:`_pick_skipping`."""
    spans = []
    for key, inside in holes:
        start, end = np.searchsorted(keys, key, "left"), np.searchsorted(keys, key, "right")
        spans.append((np.where(inside, start, 0), np.where(inside, end, 0)))
    return np.searchsorted(keys, lo_key, "left"), np.searchsorted(keys, hi_key, "left"), spans


class RetrievalSampler(torch.utils.data.Sampler):
    """The retrieval task's sampler: ``set_epoch(e)``, then iterate this rank's items.

    Each epoch: :func:`balanced_epoch` (the same on every rank), then, with ``bliss``, one
    tuple per drawn query whose positives and negatives come from that epoch's draw (the paper's
    training set is one image per trajectory; so a positive is always another trajectory's),
    then :func:`rank_share`. Items are query indices (int) without ``bliss``, tuples of indices
    ``(query, positive, negatives...)`` with it: a dataset's ``__getitem__`` takes either.
    ``skipped`` holds the last drawn epoch's BLISS skip counts.
    """

    def __init__(self, columns: RetrievalColumns, seed: int, *, bliss: Bliss | None = None,
                 sharp_only: bool = False, rank: int = 0, world: int = 1) -> None:
        rank_share(np.zeros(0), rank, world)  # checks the rank
        self.columns, self.seed, self.bliss, self.sharp_only = columns, seed, bliss, sharp_only
        self.rank, self.world = rank, world
        self.epoch = 0
        self.skipped: dict[str, int] = {}
        self._cache: tuple[int, np.ndarray] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def epoch_items(self) -> np.ndarray:
        """This rank's items of the current epoch: (n,) query indices or (n, 2 + negatives) tuples."""
        if self._cache is None or self._cache[0] != self.epoch:
            draw = balanced_epoch(self.columns, self.seed, self.epoch, sharp_only=self.sharp_only)
            if self.bliss is not None:
                result = self.bliss.draw(self.columns, draw, draw, self.seed, self.epoch)
                draw, self.skipped = result.tuples, result.skipped
            self._cache = (self.epoch, rank_share(draw, self.rank, self.world))
        return self._cache[1]

    def __len__(self) -> int:
        return len(self.epoch_items())

    def __iter__(self) -> Iterator[int | tuple[int, ...]]:
        items = self.epoch_items()
        if items.ndim == 1:
            return iter(items.tolist())
        return iter(tuple(row) for row in items.tolist())
