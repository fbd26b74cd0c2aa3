"""Retrieval metrics (blurgen.train.retrieval_metrics): AP on hand-made rankings, the blockwise
search against a brute-force numpy oracle (with exact ties), and Table 4's range/std against the
paper's own figures."""
import numpy as np
import pytest
import torch

from blurgen.train.retrieval_metrics import (
    average_precision, per_database_level_table, query_average_precisions, spread, summarise, top_k,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# --- AP on hand-made rankings ---------------------------------------------------------------

def test_average_precision_on_known_rankings():
    ranking = [1, 0, 1, 0, 0, 1]  # positives at ranks 1, 3, 6: precisions 1/1, 2/3, 3/6
    assert average_precision(ranking) == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)
    # a fourth positive never retrieved in the list still counts in the denominator
    assert average_precision(ranking, num_positives=4) == pytest.approx((1 + 2 / 3 + 3 / 6) / 4)
    assert average_precision([1, 1, 0, 0]) == 1.0
    assert average_precision([0, 0, 0, 1]) == 0.25
    # AP@k: the first k ranks, divided by min(P, k) ...
    assert average_precision(ranking, k=3) == pytest.approx((1 + 2 / 3) / 3)
    assert average_precision(ranking, k=2) == pytest.approx(1 / 2)
    assert average_precision([0, 1, 0, 0], k=10) == pytest.approx(1 / 2)  # min(P = 1, 10) = 1
    # ... or by the positives retrieved within k (the authors' code), 0 when none is
    assert average_precision(ranking, k=3, normalise="retrieved") == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision([0, 0, 1], k=2, normalise="retrieved") == 0.0
    with pytest.raises(ValueError, match="without positives"):
        average_precision([0, 0, 0])
    with pytest.raises(ValueError, match="k must be at least 1"):
        average_precision(ranking, k=0)


@pytest.mark.parametrize("device", DEVICES)
def test_ties_rank_by_database_order(device):
    # integer descriptors: the dot products are exact. Similarities to q = (1, 0): d0 0, d1 1,
    # d2 1, d3 2. The ranking is d3, d1, d2, d0: d1 and d2 tie, d1 (lower index) first.
    q = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    db = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    labels_db = np.array([5, 7, 8, 5])
    # query 0 (label 7): its positive d1 at rank 2 -> 1/2; query 1 (label 8): d2 at rank 3 -> 1/3
    ap = query_average_precisions(q, db, np.array([7, 8]), labels_db, device=device)
    np.testing.assert_allclose(ap, [1 / 2, 1 / 3])
    ap_k = query_average_precisions(q, db, np.array([7, 8]), labels_db, k=2, device=device)
    np.testing.assert_allclose(ap_k, [1 / 2, 0.0])
    sims, idx = top_k(q, db, 3, device=device, database_block=1)
    assert idx.tolist() == [[3, 1, 2], [3, 1, 2]]
    assert sims.tolist() == [[2.0, 1.0, 1.0], [2.0, 1.0, 1.0]]


# --- against a brute-force oracle -----------------------------------------------------------

def oracle_ap(q: np.ndarray, db: np.ndarray, q_labels, db_labels, k=None, normalise="min") -> np.ndarray:
    """Brute force, written from the definition by counting rather than sorting: the rank of a
    positive j is 1 + #{i: s_i > s_j} + #{i < j: s_i = s_j}."""
    out = []
    for qi in range(len(q)):
        s = db.astype(np.float64) @ q[qi].astype(np.float64)
        positives = [j for j in range(len(db)) if db_labels[j] == q_labels[qi]]
        if not positives:
            out.append(np.nan)
            continue
        ranks = sorted(1 + int(np.sum(s > s[j])) + int(np.sum(s[:j] == s[j])) for j in positives)
        terms = [(i + 1) / r for i, r in enumerate(ranks) if k is None or r <= k]
        if k is None:
            out.append(sum(terms) / len(positives))
        elif normalise == "min":
            out.append(sum(terms) / min(len(positives), k))
        else:
            out.append(sum(terms) / len(terms) if terms else 0.0)
    return np.array(out)


def tied_data(seed: int, num_q: int = 9, num_db: int = 40, dim: int = 3):
    """Descriptors with entries in {-1, 0, 1}: many exactly equal similarities."""
    rng = np.random.default_rng(seed)
    q = rng.integers(-1, 2, (num_q, dim)).astype(np.float32)
    db = rng.integers(-1, 2, (num_db, dim)).astype(np.float32)
    q_labels = rng.integers(0, 6, num_q)
    q_labels[0] = 99  # a query without positives
    db_labels = rng.integers(0, 6, num_db)
    return q, db, q_labels, db_labels


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ap_matches_brute_force_with_ties_and_blocks_change_nothing(device, seed):
    q, db, ql, dl = tied_data(seed)
    tq, tdb = torch.from_numpy(q), torch.from_numpy(db)
    expected = oracle_ap(q, db, ql, dl)
    assert np.isnan(expected[0]) and not np.isnan(expected[1:]).any()
    unblocked = query_average_precisions(tq, tdb, ql, dl, device=device)
    # memory_bytes=1: one query per block
    blocked = query_average_precisions(tq, tdb, ql, dl, device=device, memory_bytes=1)
    np.testing.assert_allclose(unblocked, expected, rtol=1e-12)
    np.testing.assert_array_equal(blocked, unblocked)
    for k in (1, 5, 17, 100):
        for normalise in ("min", "retrieved"):
            expected_k = oracle_ap(q, db, ql, dl, k=k, normalise=normalise)
            whole = query_average_precisions(tq, tdb, ql, dl, k=k, normalise=normalise, device=device)
            pieces = query_average_precisions(tq, tdb, ql, dl, k=k, normalise=normalise, device=device,
                                              memory_bytes=1, database_block=3)
            np.testing.assert_allclose(whole, expected_k, rtol=1e-12, err_msg=f"k={k} {normalise}")
            np.testing.assert_array_equal(pieces, whole)


@pytest.mark.parametrize("device", DEVICES)
def test_top_k_matches_a_lexicographic_sort(device):
    q, db, _, _ = tied_data(4, num_q=6, num_db=50)
    sims = q.astype(np.float64) @ db.astype(np.float64).T
    for k in (1, 7, 50, 80):
        expected = [np.lexsort((np.arange(len(db)), -row))[:k] for row in sims]  # by -s, then index
        for block in (1, 6, 64):
            _, idx = top_k(torch.from_numpy(q), torch.from_numpy(db), k, database_block=block,
                           query_block=4, device=device)
            np.testing.assert_array_equal(idx.numpy(), np.array(expected), err_msg=f"k={k} block={block}")


def test_random_unit_descriptors_match_the_oracle():
    # the realistic case: L2-normalised float descriptors, many queries of few objects
    rng = np.random.default_rng(7)
    q = rng.normal(size=(12, 8)).astype(np.float32)
    db = rng.normal(size=(60, 8)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    db /= np.linalg.norm(db, axis=1, keepdims=True)
    ql, dl = rng.integers(0, 4, 12), rng.integers(0, 4, 60)
    np.testing.assert_allclose(
        query_average_precisions(torch.from_numpy(q), torch.from_numpy(db), ql, dl), oracle_ap(q, db, ql, dl),
        rtol=1e-9,
    )


# --- mAP summaries and the per-database-level table -----------------------------------------

def test_summarise_leaves_out_and_counts_queries_without_positives():
    summary = summarise(np.array([0.5, np.nan, 1.0, 0.25]), np.array([1, 1, 2, 2]))
    assert summary.map == pytest.approx((0.5 + 1.0 + 0.25) / 3)
    assert (summary.num_queries, summary.num_without_positives) == (3, 1)
    assert summary.per_level == pytest.approx({1: 0.5, 2: 0.625})
    assert summary.per_level_queries == {1: 1, 2: 2}
    assert np.isnan(summarise(np.array([np.nan])).map)


def test_spread_reproduces_the_papers_table_4():
    # Table 4 cells (rows: database BL, columns: query BL 1-6) with the paper's printed range/std
    delg = [[86.73, 84.17, 80.26, 72.48, 63.12, 50.08], [82.74, 86.22, 82.87, 76.68, 66.46, 50.00],
            [79.62, 83.43, 82.94, 78.46, 69.43, 52.86], [74.26, 78.91, 79.85, 78.05, 70.89, 55.12],
            [57.86, 61.72, 64.37, 65.36, 68.96, 56.05], [29.56, 28.94, 31.75, 34.06, 45.37, 53.86]]
    ours = [[95.09, 94.24, 91.54, 87.19, 80.91, 68.15], [93.07, 94.65, 92.18, 88.77, 82.03, 67.18],
            [91.70, 93.18, 92.32, 89.83, 83.41, 68.94], [88.12, 90.11, 90.09, 89.31, 84.37, 70.35],
            [73.87, 74.90, 76.04, 77.39, 83.06, 71.67], [43.43, 41.41, 42.89, 44.55, 58.13, 69.59]]
    for cells, (paper_range, paper_std) in ((delg, (57.79, 16.75)), (ours, (53.68, 15.65))):
        value_range, value_std = spread(np.array(cells))
        assert round(value_range, 2) == paper_range and round(value_std, 2) == paper_std
    assert spread(np.array([1.0, np.nan, 3.0])) == (2.0, 1.0)


def test_per_database_level_table_against_the_oracle_on_restricted_databases():
    q, db, ql, dl = tied_data(5, num_q=10, num_db=45)
    rng = np.random.default_rng(5)
    q_levels, db_levels = rng.integers(1, 4, 10), rng.integers(1, 4, 45)
    table = per_database_level_table(torch.from_numpy(q), torch.from_numpy(db), ql, dl, q_levels, db_levels)
    assert table.database_levels == [1, 2, 3] and table.query_levels == [1, 2, 3]
    for row, level in enumerate(table.database_levels):
        keep = db_levels == level
        ap = oracle_ap(q, db[keep], ql, dl[keep])
        assert table.all_queries[row] == pytest.approx(np.nanmean(ap))
        for col, q_level in enumerate(table.query_levels):
            chosen = ap[q_levels == q_level]
            chosen = chosen[~np.isnan(chosen)]
            if chosen.size:
                assert table.cells[row, col] == pytest.approx(chosen.mean())
            else:
                assert np.isnan(table.cells[row, col])
    finite = table.cells[~np.isnan(table.cells)]
    assert table.range == pytest.approx(finite.max() - finite.min())
    assert table.std == pytest.approx(np.sqrt(np.mean((finite - finite.mean()) ** 2)))
