"""Background scanner: sizes, too-small and unreadable images, exact and near duplicates, CLI."""

from __future__ import annotations

import itertools

import cv2
import pytest
from click.testing import CliRunner

from blurgen.assets.backgrounds_scan import DEFAULT_MAX_DISTANCE, dhash, hamming, near_duplicate_groups, scan_backgrounds, scan_image
from blurgen.assets.demo_backgrounds import make_background
from blurgen.assets.image_header import header_size
from blurgen.assets.manifest import AssetManifest
from blurgen.cli import main
from blurgen.errors import BlurgenError
from blurgen.rng import item_rng


def _write(path, rgb, *params):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), list(params))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("bgs")
    images = [make_background(item_rng(7, i, 0), 400, 300) for i in range(3)]
    _write(root / "a" / "0001.png", images[0])
    _write(root / "a" / "0002.png", images[0], cv2.IMWRITE_PNG_COMPRESSION, 9)  # same pixels, other bytes
    _write(root / "a" / "0003.jpg", images[0], cv2.IMWRITE_JPEG_QUALITY, 70)  # re-encoded: near
    _write(root / "b" / "0004.jpg", images[1], cv2.IMWRITE_JPEG_QUALITY, 90)
    _write(root / "b" / "0005.webp", images[2], cv2.IMWRITE_WEBP_QUALITY, 90)
    _write(root / "b" / "small.jpg", cv2.resize(images[2], (200, 150)))
    (root / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    (root / "b" / "notes.txt").write_text("ignored")
    return root


def test_scan_flags_sizes_and_duplicates(folder):
    scan = scan_backgrounds(folder)
    m = scan.manifest
    assert m.ids() == ["a/0001", "a/0002", "a/0003", "b/0004", "b/0005", "b/broken", "b/small"]
    meta = {i: m.get(i)["metadata"] for i in m.ids()}
    assert all((meta[i]["width"], meta[i]["height"]) == (400, 300) for i in ["a/0001", "a/0003", "b/0004", "b/0005"])
    assert (meta["b/small"]["width"], meta["b/small"]["height"]) == (200, 150)
    assert meta["b/small"]["broken"] == "too small (200x150 < 320x240)"
    assert meta["b/broken"]["broken"].startswith("unreadable")
    assert (meta["a/0002"]["duplicate_of"], meta["a/0002"]["duplicate_kind"]) == ("a/0001", "exact")
    assert (meta["a/0003"]["duplicate_of"], meta["a/0003"]["duplicate_kind"]) == ("a/0001", "near")
    assert meta["a/0001"]["duplicate_of"] is None and meta["b/0004"]["duplicate_of"] is None
    assert [(g.keep, [d[:2] for d in g.duplicates]) for g in scan.groups] == \
        [("a/0001", [("a/0002", "exact"), ("a/0003", "near")])]
    assert m.filter(usable=True).ids() == ["a/0001", "b/0004", "b/0005"]
    assert m.get("b/0005")["path"] == "b/0005.webp" and m.get("a/0001")["category"] == "background"
    assert m.path_of("b/0004").is_file()


def test_header_size_agrees_with_decoder(folder):
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".png", ".jpg", ".webp") and path.name != "broken.jpg":
            image = cv2.imread(str(path))
            assert header_size(path.read_bytes()) == (image.shape[1], image.shape[0]), path.name
    assert header_size(b"GIF89a....") is None
    assert header_size((folder / "b" / "broken.jpg").read_bytes()) is None


def test_reduced_decode_gives_the_same_hash_as_a_full_decode(folder):
    path = folder / "b" / "0004.jpg"
    full = dhash(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
    # Thumbnails from DCT-reduced and full decodes differ a little; a few unstable bits are
    # what the duplicate threshold allows for.
    assert hamming(int(scan_image(path)["dhash"], 16), full) <= DEFAULT_MAX_DISTANCE


def _components(n: int, pairs: set[tuple[int, int]]) -> list[list[int]]:
    """Connected components (2+ members, sorted) of the graph on 0..n-1 with edges ``pairs``, by
    repeated flooding: the brute-force oracle of the scanner's banded union-find."""
    neighbours = {i: set() for i in range(n)}
    for i, j in pairs:
        neighbours[i].add(j)
        neighbours[j].add(i)
    seen, groups = set(), []
    for start in range(n):
        if start in seen or not neighbours[start]:
            continue
        group, todo = set(), [start]
        while todo:
            i = todo.pop()
            if i not in group:
                group.add(i)
                todo.extend(neighbours[i] - group)
        seen |= group
        groups.append(sorted(group))
    return groups


def test_near_duplicate_groups_match_brute_force():
    rng = item_rng(3, 0)
    base = [int(x) for x in rng.integers(0, 2 ** 63, 40)]
    flips = [(int(rng.integers(0, 64)), int(rng.integers(0, 64))) for _ in range(10)]
    # hashes 40..49 are near copies of 0..9 (two bits flipped), 50 an exact copy of 11, 51 unreadable
    hashes = base + [h ^ (1 << a) ^ (1 << b) for h, (a, b) in zip(base, flips)] + [base[11], None]
    for d in (0, 2, 4, 9):
        pairs = {(i, j) for i, j in itertools.combinations(range(len(hashes)), 2)
                 if hashes[i] is not None and hashes[j] is not None and hamming(hashes[i], hashes[j]) <= d}
        assert sorted(near_duplicate_groups(hashes, d)) == _components(len(hashes), pairs)
    # Which images group: each near copy with its original, the exact copy with its original
    # (also at distance 0), and no two of the 40 unrelated hashes.
    same_bit = [i for i, (a, b) in enumerate(flips) if a == b]  # flipped twice: an exact copy
    assert sorted(near_duplicate_groups(hashes, 0)) == sorted([[i, 40 + i] for i in same_bit] + [[11, 50]])
    assert sorted(near_duplicate_groups(hashes, 2)) == sorted([[i, 40 + i] for i in range(10)] + [[11, 50]])
    assert min(hamming(a, b) for a, b in itertools.combinations(base, 2)) > 9


def test_errors(tmp_path):
    with pytest.raises(BlurgenError, match="background folder not found"):
        scan_backgrounds(tmp_path / "absent")
    with pytest.raises(BlurgenError, match="no images"):
        scan_backgrounds(tmp_path)


def test_cli_scan_backgrounds(folder, tmp_path):
    out = tmp_path / "bg.json"
    runner = CliRunner()
    result = runner.invoke(main, ["assets", "scan-backgrounds", "--root", str(folder), "--out", str(out),
                                  "--min-width", "100", "--min-height", "100", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert "keep a/0001: a/0002 (exact, d=0), a/0003 (near" in result.output
    m = AssetManifest.load(out)
    # Now large enough to count, the downsized copy of 0005 is its near duplicate.
    assert m.get("b/small")["metadata"]["broken"] is None
    assert m.problem("b/small") == "duplicate of b/0005" and m.problem("a/0002") == "duplicate of a/0001"
    missing = runner.invoke(main, ["assets", "scan-backgrounds", "--root", str(tmp_path / "x"), "--out", str(out)])
    assert missing.exit_code == 2 and missing.output.count("\n") == 1
    assert "background folder not found" in missing.output
