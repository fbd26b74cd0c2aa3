"""Scanning many files in batches, in order, on one core or several, behind one progress bar.

Every scanner (ShapeNet models, mesh folders, background images) reduces each file to a small
record; this runs its per-batch function over the files with joblib when ``jobs != 1`` and yields
the records in input order as batches finish, so the bar moves and nothing but the records is
held.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Sequence


def scan_in_batches(scan_batch: Callable[[Sequence[Any]], list[Any]], items: Sequence[Any], *,
                    batch_size: int, jobs: int, progress: bool, desc: str, unit: str) -> Iterator[Any]:
    """``scan_batch(batch)`` over consecutive batches of ``items``; one record per item, in order.

    ``scan_batch`` must be picklable for ``jobs != 1`` (a module-level function, or a
    ``functools.partial`` of one).
    """
    from tqdm import tqdm

    batches = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
    if jobs == 1:
        results: Iterable[list[Any]] = (scan_batch(b) for b in batches)
    else:
        from joblib import Parallel, delayed

        # An ordered generator: results stream back as batches finish.
        results = Parallel(n_jobs=jobs, return_as="generator")(delayed(scan_batch)(b) for b in batches)
    with tqdm(total=len(items), unit=unit, desc=desc, disable=not progress) as bar:
        for records in results:
            yield from records
            bar.update(len(records))
