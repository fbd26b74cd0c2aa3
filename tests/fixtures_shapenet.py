"""A small ShapeNetCore v2 tree with known defects, for the scanner tests.

``make_shapenet_tree(root)`` writes the tree and returns what the scanner must find:
``{asset_id: (vertices, faces, textured, broken_reason_or_None)}``. Synsets: airplane (2 good
textured models), chair (3 good textured, plus one of each defect), telephone (4 good textured:
the most, so it wins any ranking it is not excluded from).
"""

from __future__ import annotations

import json
from pathlib import Path

AIRPLANE, CHAIR, TELEPHONE = "02691156", "03001627", "04401088"

TAXONOMY = [
    {"synsetId": AIRPLANE, "name": "airplane,aeroplane,plane", "children": ["02690373"], "numInstances": 5},
    {"synsetId": "02690373", "name": "airliner", "children": [], "numInstances": 1},
    {"synsetId": CHAIR, "name": "chair", "children": [], "numInstances": 8},
    {"synsetId": TELEPHONE, "name": "telephone,phone,telephone set", "children": [], "numInstances": 4},
]


def obj_text(vertices: int, faces: int, crlf: bool = False, tabs: bool = False, mtllib: str | None = "model_normalized.mtl") -> str:
    """An OBJ with exactly ``vertices`` v lines and ``faces`` f lines, plus lines that must not count."""
    sep = "\t" if tabs else " "
    lines = ["# ShapeNet-like fixture: v 1 2 3 in a comment does not count"]
    if mtllib:
        lines.append(f"mtllib {mtllib}")
    lines += [f"v{sep}{i}.0 {i % 3}.5 -{i}.25" for i in range(vertices)]
    lines += [f"vt 0.{i} 0.5" for i in range(vertices)]
    lines += ["vn 0 1 0" for _ in range(min(vertices, 3))]
    lines += ["g part", "usemtl material_0", "s off"]
    n = max(vertices, 3)
    lines += [f"f{sep}{i % n + 1}/1 {(i + 1) % n + 1}/2 {(i + 2) % n + 1}/3" for i in range(faces)]
    newline = "\r\n" if crlf else "\n"
    return newline.join(lines) + newline


def _model(root: Path, synset: str, model_id: str, vertices: int, faces: int, *, textured: bool = True,
           textures: tuple[str, ...] = ("texture0.jpg",), present: tuple[str, ...] | None = None,
           mtl: bool = True, obj: str | bytes | None = None) -> Path:
    folder = root / synset / model_id
    models = folder / "models"
    models.mkdir(parents=True)
    content = obj if obj is not None else obj_text(vertices, faces)
    if isinstance(content, bytes):
        (models / "model_normalized.obj").write_bytes(content)
    else:
        (models / "model_normalized.obj").write_text(content, newline="")
    if mtl:
        maps = "".join(f"map_Kd ../images/{t}\n" for t in textures) if textured else ""
        (models / "model_normalized.mtl").write_text(f"newmtl material_0\nKd 0.8 0.8 0.8\n{maps}")
    if textured:
        (folder / "images").mkdir()
        for t in textures if present is None else present:
            (folder / "images" / t).write_bytes(b"\xff\xd8fixture")
    return folder


def make_shapenet_tree(root: Path) -> dict[str, tuple[int, int, bool, str | None]]:
    """Write the fixture tree below ``root``; return the expected scan per asset id."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "taxonomy.json").write_text(json.dumps(TAXONOMY))
    (root / "README.txt").write_text("not a category")
    expect: dict[str, tuple[int, int, bool, str | None]] = {}

    def add(synset: str, model_id: str, v: int, f: int, textured: bool, broken: str | None, **kw) -> None:
        _model(root, synset, model_id, v, f, textured=textured, **kw)
        expect[f"{synset}_{model_id}"] = (v, f, textured, broken)

    add(AIRPLANE, "a_fine", 8, 12, True, None)
    add(AIRPLANE, "a_crlf", 5, 4, True, None, obj=obj_text(5, 4, crlf=True))
    add(AIRPLANE, "a_untextured", 4, 2, False, None)

    add(CHAIR, "c_fine1", 10, 16, True, None)
    add(CHAIR, "c_fine2", 7, 9, True, None, obj=obj_text(7, 9, tabs=True))
    add(CHAIR, "c_fine3", 3, 1, True, None, textures=("texture0.jpg", "bump.png"))
    add(CHAIR, "c_missing_tex", 6, 8, True, "textures missing (1 of 2)",
        textures=("texture0.jpg", "texture1.png"), present=("texture0.jpg",))
    add(CHAIR, "c_empty", 0, 0, True, "empty OBJ (no faces)", obj="# exported with no geometry\nmtllib model_normalized.mtl\n")
    add(CHAIR, "c_no_mtl", 4, 4, True, "MTL missing (model_normalized.mtl)", mtl=False)
    add(CHAIR, "c_binary", 0, 0, True, "unparsable OBJ (binary data)", obj=b"\x00\x01\x02glTF\x00binary")
    add(CHAIR, "c_huge", 30, 500, True, "huge mesh (500 faces)")
    (root / CHAIR / "c_no_obj" / "models").mkdir(parents=True)
    expect[f"{CHAIR}_c_no_obj"] = (0, 0, False, "no OBJ (models/model_normalized.obj)")

    for i in range(4):
        add(TELEPHONE, f"t_fine{i}", 4, 2, True, None)
    return expect


MAX_FACES = 100  # what the tests pass as max_faces, so that c_huge is flagged
