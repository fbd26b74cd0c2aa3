"""Parametric object templates for the demo set: one per ShapeNet category.

Each template builds a recognisable object of its category from a handful of parts whose
proportions it draws from the rng, so objects within a category are alike but not equal, and
categories differ in shape. Axes follow ShapeNetCore v2: +y up, the front facing -z.
Meshes come out normalised like ShapeNet's (bounding box centred, diagonal 1) with UVs.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from blurgen.assets.mesh_build import (Mesh, box, concat, hexahedron, normalise, revolve,
                                       rot_x, rot_z, tapered_box, tube)

# Revolved parts built about +y, turned so their axis points along -z (noses) or +x (wheels).
_Y_TO_MINUS_Z = rot_x(-90.0)
_Y_TO_X = rot_z(-90.0)


@dataclasses.dataclass(frozen=True)
class Template:
    """A category: its ShapeNet synset id and names, and the builder of one object."""

    name: str
    synset: str
    taxonomy_name: str  # ShapeNet's taxonomy.json "name" (comma-separated synonyms)
    build: Callable[[np.random.Generator], Mesh]


def _panel(root: np.ndarray, tip: np.ndarray, chords: tuple[float, float],
           thickness: tuple[float, float], thick_axis: int) -> Mesh:
    """A tapered slab from a root section to a tip section (wings, fins); chords run along z.

    ``root``/``tip`` are the leading-edge centres of the sections.
    """
    corners = np.zeros((8, 3))
    (span_axis,) = {0, 1} - {thick_axis}  # chords run along z, so span and thickness share x/y
    for s, centre in enumerate((np.asarray(root, float), np.asarray(tip, float))):
        for c in (0, 1):
            for t in (0, 1):
                p = centre.copy()
                p[2] += c * chords[s]
                p[thick_axis] += (t - 0.5) * thickness[s]
                bits = [0, 0, 0]
                bits[span_axis], bits[thick_axis], bits[2] = s, t, c
                corners[bits[0] + 2 * bits[1] + 4 * bits[2]] = p
    return hexahedron(corners)


# ----------------------------------------------------------------------------- templates


def airplane(rng: np.random.Generator) -> Mesh:
    """Fuselage of revolution, swept tapered wings, tailplane, fin, optional engine nacelles."""
    length = 1.0
    radius = length * rng.uniform(0.045, 0.075)
    nose = length * rng.uniform(0.1, 0.18)
    tail = length * rng.uniform(0.25, 0.35)
    t = np.linspace(0.0, 1.0, 7)[1:]
    profile = [(0.0, -length / 2), (radius * 0.22, -length / 2 + 0.005)]
    profile += [(radius * (0.22 + 0.78 * np.sin(a * np.pi / 2)), -length / 2 + tail * a) for a in t]
    profile += [(radius, length / 2 - nose)]
    profile += [(radius * np.sqrt(max(0.0, 1 - a * a)), length / 2 - nose + nose * a) for a in t[:-1]]
    profile += [(0.0, length / 2)]
    parts = [revolve(np.array(profile), 24).transformed(_Y_TO_MINUS_Z)]

    span = length * rng.uniform(0.8, 1.15)
    chord = length * rng.uniform(0.14, 0.22)
    tip_chord = chord * rng.uniform(0.3, 0.6)
    sweep = length * rng.uniform(0.02, 0.2)
    wing_z = -length * rng.uniform(0.02, 0.12) - chord / 2
    wing_y = radius * rng.choice([-0.55, 0.55])
    dihedral = span * rng.uniform(0.0, 0.06)
    tail_span = span * rng.uniform(0.3, 0.4)
    for side in (-1, 1):
        parts.append(_panel([0.0, wing_y, wing_z], [side * span / 2, wing_y + dihedral, wing_z + sweep],
                            (chord, tip_chord), (radius * 0.35, radius * 0.15), thick_axis=1))
        # Tailplane near the tail (+z), a smaller wing.
        parts.append(_panel([0.0, radius * 0.3, length / 2 - chord * 0.9],
                            [side * tail_span / 2, radius * 0.35, length / 2 - chord * 0.9 + sweep * 0.5],
                            (chord * 0.55, chord * 0.25), (radius * 0.2, radius * 0.1), thick_axis=1))
    fin_h = radius * rng.uniform(2.5, 4.0)
    parts.append(_panel([0.0, radius * 0.5, length / 2 - chord * 1.1],
                        [0.0, radius + fin_h, length / 2 - chord * 1.1 + chord * 0.7],
                        (chord * 0.8, chord * 0.35), (radius * 0.2, radius * 0.1), thick_axis=0))
    if rng.random() < 0.6:
        nl, nr = chord * 1.1, radius * 0.42
        nacelle = revolve(np.array([(0.0, 0.0), (nr * 0.85, 0.0), (nr, nl * 0.15), (nr, nl * 0.8),
                                    (nr * 0.6, nl), (0.0, nl)]), 16).transformed(_Y_TO_MINUS_Z)
        for side in (-1, 1):
            parts.append(nacelle.transformed(None, (side * span * 0.28, wing_y - nr * 1.3,
                                                    wing_z + sweep * 0.5 + nl * 0.8)))
    return concat(parts)


def bottle(rng: np.random.Generator) -> Mesh:
    """Body, rounded shoulder, neck, lip and cap as one closed surface of revolution."""
    r = rng.uniform(0.16, 0.26)
    body_h = rng.uniform(0.45, 0.65)
    shoulder_h = rng.uniform(0.1, 0.22)
    neck_r = r * rng.uniform(0.3, 0.45)
    neck_h = rng.uniform(0.1, 0.2)
    profile = [(0.0, 0.0), (r * 0.92, 0.0), (r, 0.025)]
    profile += [(r, body_h * a) for a in (0.35, 0.7, 1.0)]
    for a in np.linspace(0.0, 1.0, 7)[1:]:
        # Cosine shoulder: tangent to the body at its bottom and to the neck at its top.
        profile.append((neck_r + (r - neck_r) * 0.5 * (1 + np.cos(np.pi * a)), body_h + shoulder_h * a))
    top = body_h + shoulder_h + neck_h
    profile += [(neck_r, top - neck_h * 0.3), (neck_r * 1.15, top - neck_h * 0.25),
                (neck_r * 1.15, top), (0.0, top)]
    return revolve(np.array(profile), 32)


def car(rng: np.random.Generator) -> Mesh:
    """Lower body with a sloping hood, tapered cabin, four wheels."""
    length = 1.0
    width = length * rng.uniform(0.38, 0.46)
    wheel_r = length * rng.uniform(0.08, 0.105)
    body_h = length * rng.uniform(0.13, 0.19)
    bottom = wheel_r * 0.55
    hood_drop = body_h * rng.uniform(0.15, 0.4)
    corners = np.zeros((8, 3))
    for i in range(8):
        ix, iy, iz = i & 1, (i >> 1) & 1, (i >> 2) & 1
        y = bottom + iy * (body_h - (hood_drop if iz == 0 else 0.0))
        corners[i] = ((ix - 0.5) * width, y, (iz - 0.5) * length)
    parts = [hexahedron(corners)]
    cab_len = length * rng.uniform(0.4, 0.55)
    cab_h = length * rng.uniform(0.11, 0.16)
    cab_z = length * rng.uniform(0.0, 0.12)
    parts.append(tapered_box((0.0, bottom + body_h + cab_h / 2, cab_z), (width * 0.9, cab_h, cab_len),
                             width * 0.74, cab_len * rng.uniform(0.5, 0.75), (0.0, cab_len * 0.08)))
    ww = width * rng.uniform(0.15, 0.2)
    tyre = revolve(np.array([(0.0, -ww / 2), (wheel_r * 0.6, -ww / 2), (wheel_r * 0.93, -ww / 2),
                             (wheel_r, -ww * 0.3), (wheel_r, ww * 0.3), (wheel_r * 0.93, ww / 2),
                             (wheel_r * 0.6, ww / 2), (0.0, ww / 2)]), 20).transformed(_Y_TO_X)
    axle = length / 2 - wheel_r * rng.uniform(1.3, 1.7)
    for sx in (-1, 1):
        for sz in (-1, 1):
            parts.append(tyre.transformed(None, (sx * (width / 2 - ww * 0.3), wheel_r, sz * axle)))
    return concat(parts)


def chair(rng: np.random.Generator) -> Mesh:
    """Seat, four slightly tapered legs, a tilted backrest, sometimes armrests."""
    seat_w, seat_d = rng.uniform(0.4, 0.52), rng.uniform(0.4, 0.5)
    seat_h, seat_t = rng.uniform(0.42, 0.5), rng.uniform(0.04, 0.07)
    leg = rng.uniform(0.03, 0.05)
    parts = [box((0.0, seat_h - seat_t / 2, 0.0), (seat_w, seat_t, seat_d))]
    for sx in (-1, 1):
        for sz in (-1, 1):
            parts.append(tapered_box((sx * (seat_w / 2 - leg), (seat_h - seat_t) / 2, sz * (seat_d / 2 - leg)),
                                     (leg * 0.75, seat_h - seat_t, leg * 0.75), leg, leg))
    back_h, back_t = rng.uniform(0.35, 0.55), rng.uniform(0.03, 0.05)
    tilt = back_h * np.tan(np.radians(rng.uniform(3.0, 15.0)))
    parts.append(tapered_box((0.0, seat_h + back_h / 2, seat_d / 2 - back_t / 2), (seat_w, back_h, back_t),
                             seat_w * rng.uniform(0.85, 1.05), back_t, (0.0, tilt)))
    if rng.random() < 0.4:
        arm_h = rng.uniform(0.18, 0.25)
        for sx in (-1, 1):
            parts.append(box((sx * (seat_w / 2 - leg / 2), seat_h + arm_h, 0.0), (leg, leg, seat_d * 0.9)))
            parts.append(box((sx * (seat_w / 2 - leg / 2), seat_h + arm_h / 2, -seat_d * 0.4), (leg, arm_h, leg)))
    return concat(parts)


def mug(rng: np.random.Generator) -> Mesh:
    """Hollow cylindrical body with wall thickness, and a handle swept along an elliptic arc."""
    height = 1.0
    r = height * rng.uniform(0.3, 0.45)
    r_top = r * rng.uniform(0.92, 1.1)
    wall, floor = r * 0.08, height * 0.06
    profile = [(0.0, 0.0), (r * 0.9, 0.0), (r, 0.04 * height), (r + (r_top - r) * 0.5, height * 0.5),
               (r_top, height), (r_top - wall, height), (r + (r_top - r) * 0.5 - wall, height * 0.5),
               (r - wall, floor), (0.0, floor)]
    parts = [revolve(np.array(profile), 32)]
    y_top, y_bot = height * rng.uniform(0.72, 0.85), height * rng.uniform(0.18, 0.3)
    reach = r * rng.uniform(0.45, 0.7)
    angle = np.linspace(np.pi / 2, -np.pi / 2, 16)
    attach = r * 0.95
    path = np.stack([attach + reach * np.cos(angle),
                     (y_top + y_bot) / 2 + (y_top - y_bot) / 2 * np.sin(angle), np.zeros_like(angle)], axis=1)
    parts.append(tube(path, r * rng.uniform(0.07, 0.11), 12))
    return concat(parts)


def table(rng: np.random.Generator) -> Mesh:
    """Rectangular top, four legs, sometimes an apron and a lower shelf."""
    length, depth = rng.uniform(1.0, 1.6), rng.uniform(0.6, 0.95)
    height, top_t = rng.uniform(0.65, 0.78), rng.uniform(0.03, 0.06)
    leg, inset = rng.uniform(0.04, 0.08), rng.uniform(0.02, 0.08)
    parts = [box((0.0, height - top_t / 2, 0.0), (length, top_t, depth))]
    lx, lz = length / 2 - inset - leg / 2, depth / 2 - inset - leg / 2
    for sx in (-1, 1):
        for sz in (-1, 1):
            parts.append(box((sx * lx, (height - top_t) / 2, sz * lz), (leg, height - top_t, leg)))
    if rng.random() < 0.6:
        apron = height * 0.1
        y = height - top_t - apron / 2
        parts += [box((0.0, y, sz * lz), (2 * lx, apron, leg * 0.4)) for sz in (-1, 1)]
        parts += [box((sx * lx, y, 0.0), (leg * 0.4, apron, 2 * lz)) for sx in (-1, 1)]
    if rng.random() < 0.3:
        parts.append(box((0.0, height * 0.2, 0.0), (2 * lx, top_t * 0.7, 2 * lz)))
    return concat(parts)


def lamp(rng: np.random.Generator) -> Mesh:
    """Round base, thin pole, open conical shade with a wall thickness."""
    base_r, base_h = rng.uniform(0.12, 0.2), rng.uniform(0.03, 0.06)
    pole_r, pole_h = rng.uniform(0.012, 0.02), rng.uniform(0.45, 0.7)
    parts = [revolve(np.array([(0.0, 0.0), (base_r, 0.0), (base_r, base_h), (base_r * 0.6, base_h * 1.4),
                               (0.0, base_h * 1.4)]), 32),
             revolve(np.array([(0.0, base_h), (pole_r, base_h), (pole_r, pole_h), (0.0, pole_h)]), 12)]
    shade_b, shade_t = rng.uniform(0.16, 0.26), rng.uniform(0.07, 0.14)
    shade_h, e = rng.uniform(0.18, 0.3), 0.006
    y0 = pole_h - shade_h * rng.uniform(0.3, 0.6)
    # Closed loop: up the outside, across the top rim, down the inside, across the bottom rim.
    parts.append(revolve(np.array([(shade_b, y0), (shade_t, y0 + shade_h), (shade_t - e, y0 + shade_h),
                                   (shade_b - e, y0), (shade_b, y0)]), 32))
    return concat(parts)


def sofa(rng: np.random.Generator) -> Mesh:
    """Base, seat cushions, backrest, two arms, short legs."""
    length, depth = rng.uniform(1.5, 2.2), rng.uniform(0.8, 0.95)
    leg_h, base_h = rng.uniform(0.05, 0.1), rng.uniform(0.2, 0.28)
    arm_w, arm_h = rng.uniform(0.12, 0.22), rng.uniform(0.55, 0.7)
    back_t, back_h = rng.uniform(0.15, 0.25), rng.uniform(0.75, 0.95)
    parts = [box((0.0, leg_h + base_h / 2, 0.0), (length, base_h, depth)),
             box((0.0, leg_h + back_h / 2, depth / 2 - back_t / 2), (length, back_h, back_t))]
    for sx in (-1, 1):
        parts.append(box((sx * (length / 2 - arm_w / 2), leg_h + arm_h / 2, -back_t / 2),
                         (arm_w, arm_h, depth - back_t)))
        for sz in (-1, 1):
            parts.append(box((sx * (length / 2 - 0.06), leg_h / 2, sz * (depth / 2 - 0.06)), (0.05, leg_h, 0.05)))
    n = int(rng.integers(2, 4))
    inner = length - 2 * arm_w
    cushion_h = rng.uniform(0.08, 0.14)
    for i in range(n):
        x = -inner / 2 + inner * (i + 0.5) / n
        parts.append(box((x, leg_h + base_h + cushion_h / 2, -back_t / 2),
                         (inner / n * 0.97, cushion_h, depth - back_t)))
    return concat(parts)


TEMPLATES: tuple[Template, ...] = (
    Template("airplane", "02691156", "airplane,aeroplane,plane", airplane),
    Template("bottle", "02876657", "bottle", bottle),
    Template("car", "02958343", "car,auto,automobile,machine,motorcar", car),
    Template("chair", "03001627", "chair", chair),
    Template("mug", "03797390", "mug", mug),
    Template("table", "04379243", "table", table),
    Template("lamp", "03636649", "lamp", lamp),
    Template("sofa", "04256520", "sofa,couch,lounge", sofa),
)


def build_object(template: Template, rng: np.random.Generator) -> Mesh:
    """One object of a template, normalised like ShapeNet (centred, bounding-box diagonal 1)."""
    return normalise(template.build(rng))
