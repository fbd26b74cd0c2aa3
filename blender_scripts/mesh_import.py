"""Importing each object once per process: OBJ, glTF/GLB and PLY files into a rig the renders animate.

Each format goes through its own Blender importer, and the object coordinates are always the
file's own: OBJ and PLY are imported with no axis conversion; glTF's importer turns +Y up into
Blender's +Z up and places each mesh by its node tree, and both are folded back into the mesh
data (each mesh's vertices are moved by ``GLTF_TO_FILE @ matrix_world``), so a glTF's object
coordinates are its scene's coordinates as stored. A PLY's per-vertex colours (or the image its
``comment TextureFile`` names) become its material. The meshes are checked for the defects that
would render wrong (no faces, a missing material library, a texture that does not load: Cycles
would render it magenta) and hung below two empties: pivot (the trajectory's motion) -> base
(base rotation, scale, the normalisation's scale) -> meshes. The normalisation's centre is the
meshes' origin instead (:meth:`Rig.move_origin`): their vertices are moved by -centre, and
everything the rig hands back in file coordinates has the centre added back. Runs inside Blender.
"""

from __future__ import annotations

import os
import re

import bpy
import numpy as np
import mathutils

from trajectory_job import ItemError

# glTF stores +Y up; Blender's importer maps a point (x, y, z) to (x, -z, y). This is the inverse.
GLTF_TO_FILE = mathutils.Matrix(((1, 0, 0, 0), (0, 0, 1, 0), (0, -1, 0, 0), (0, 0, 0, 1)))
MESH_FORMATS = (".obj", ".gltf", ".glb", ".ply")


class Rig:
    """One imported mesh: pivot empty (motion) -> base empty (base rotation, scale) -> meshes.

    ``origin``: the point of the file's coordinates that is the meshes' origin (their vertices
    hold file coordinates minus ``origin``); (0, 0, 0) as imported, see :meth:`move_origin`.
    """

    def __init__(self, pivot, base, meshes):
        self.pivot, self.base, self.meshes = pivot, base, meshes
        self.origin = (0.0, 0.0, 0.0)

    def show(self, visible: bool) -> None:
        for obj in self.meshes:
            obj.hide_render = not visible

    def move_origin(self, centre) -> None:
        """Make ``centre`` (file coordinates) the meshes' origin: every vertex moves by -centre.

        Why: Cycles stores an object's motion as its decomposed transform at the motion steps
        and interpolates the translation linearly between them, which is exact only when the
        object's origin is the point it turns about (the pivot, the box centre). An origin far
        from it moves on an arc, which Cycles cuts into chords, and the whole mesh with it:
        pixels off the poses. Nothing moves for a centre that is the origin already (a
        normalised mesh stays the same bit for bit).
        """
        # the vector mathutils holds (single precision) is the one the vertices are moved by
        centre = tuple(mathutils.Vector(centre))
        if centre == self.origin:
            return
        shift = mathutils.Matrix.Translation(mathutils.Vector(self.origin) - mathutils.Vector(centre))
        for mesh in {obj.data for obj in self.meshes}:  # a mesh shared by several objects moves once
            mesh.transform(shift)
        self.origin = centre

    def triangles(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) float32 vertices in the file's coordinates and (F, 3) int32 triangles of all meshes.

        The meshes' own transforms are identity (the module doc), so their vertex coordinates
        plus ``origin`` are the file's; the parent rasterises these for the labels' exact coverage.
        """
        vertices, faces, offset = [], [], 0
        for obj in self.meshes:
            mesh = obj.data
            mesh.calc_loop_triangles()
            co = np.empty(len(mesh.vertices) * 3, np.float32)
            mesh.vertices.foreach_get("co", co)
            tri = np.empty(len(mesh.loop_triangles) * 3, np.int32)
            mesh.loop_triangles.foreach_get("vertices", tri)
            vertices.append(co.reshape(-1, 3))
            faces.append(tri.reshape(-1, 3) + offset)
            offset += len(mesh.vertices)
        return (self.to_file(np.concatenate(vertices)) if vertices else np.zeros((0, 3), np.float32),
                np.concatenate(faces) if faces else np.zeros((0, 3), np.int32))

    def to_file(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) float32 points in the meshes' coordinates -> the file's (origin added back)."""
        if not any(self.origin):  # untouched, so that normalised meshes stay the same bit for bit
            return points
        return (points.astype(np.float64) + np.asarray(self.origin)).astype(np.float32)


def _referenced_mtl_files(obj_path: str) -> list[str]:
    """Material libraries named by ``mtllib`` lines (regex over the bytes: OBJs can be huge)."""
    with open(obj_path, "rb") as fh:
        data = fh.read()
    names = []
    for match in re.finditer(rb"^[ \t]*mtllib[ \t]+(.+?)[ \t]*\r?$", data, re.M):
        names.append(match.group(1).decode("utf-8", "replace"))
    return [os.path.join(os.path.dirname(obj_path), n) for n in names]


def _cleanup(objects) -> None:
    meshes = {o.data for o in objects if o.type == "MESH"}
    materials = {m for me in meshes for m in me.materials if m is not None}
    images = {n.image for m in materials if m.node_tree for n in m.node_tree.nodes
              if n.type == "TEX_IMAGE" and n.image is not None}
    for o in objects:
        bpy.data.objects.remove(o)
    for collection, blocks in ((bpy.data.meshes, meshes), (bpy.data.materials, materials),
                               (bpy.data.images, images)):
        for block in blocks:
            collection.remove(block)


def _check_imported(path: str, objects) -> None:
    """Raise ItemError for the defects that would otherwise render wrong (no faces, pink, grey)."""
    meshes = [o for o in objects if o.type == "MESH"]
    if not meshes or sum(len(o.data.polygons) for o in meshes) == 0:
        raise ItemError("mesh has no faces")
    if path.lower().endswith(".obj"):
        for mtl in _referenced_mtl_files(path):
            if not os.path.isfile(mtl):
                raise ItemError(f"material library missing: {mtl}")
    for o in meshes:
        for mat in o.data.materials:
            if mat is None or mat.node_tree is None:
                continue
            for node in mat.node_tree.nodes:
                if node.type != "TEX_IMAGE":
                    continue
                image = node.image
                # The importer keeps a texture it could not read as an image of size 0 x 0
                # (has_data is still True); Cycles would render it magenta.
                if image is None or image.size[0] == 0 or image.size[1] == 0:
                    name = bpy.path.abspath(image.filepath) if image is not None else "(none)"
                    raise ItemError(f"texture failed to load: {os.path.normpath(name)}")


class MeshCache:
    """Each distinct mesh is imported once per process; a failed import is remembered too."""

    def __init__(self, scene):
        self.scene = scene
        self.rigs: dict[str, Rig] = {}
        self.failures: dict[str, str] = {}

    def get(self, path: str) -> Rig:
        key = os.path.abspath(path)
        if key in self.failures:
            raise ItemError(self.failures[key])
        if key not in self.rigs:
            try:
                self.rigs[key] = self._import(key)
            except ItemError as exc:
                self.failures[key] = str(exc)
                raise
        return self.rigs[key]

    def _import(self, path: str) -> Rig:
        if not os.path.isfile(path):
            raise ItemError(f"mesh file not found: {path}")
        suffix = os.path.splitext(path)[1].lower()
        if suffix not in MESH_FORMATS:
            raise ItemError(f"not a mesh format blurgen renders ({', '.join(MESH_FORMATS)}): {path}")
        before = set(bpy.data.objects)
        try:
            _import_file(path, suffix)
        except RuntimeError as exc:
            _cleanup([o for o in bpy.data.objects if o not in before])
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown error"
            raise ItemError(f"mesh failed to import: {first}") from None
        new = [o for o in bpy.data.objects if o not in before]
        try:
            _check_imported(path, new)
            if suffix in (".gltf", ".glb"):
                _bake_scene_transforms(new)
            elif suffix == ".ply":
                _ply_material(path, [o for o in new if o.type == "MESH"])
        except ItemError:
            _cleanup(new)
            raise
        pivot = bpy.data.objects.new("blurgen_pivot", None)
        pivot.rotation_mode = "AXIS_ANGLE"
        base = bpy.data.objects.new("blurgen_base", None)
        base.rotation_mode = "QUATERNION"
        base.parent = pivot  # assigning .parent keeps matrix_parent_inverse = identity
        self.scene.collection.objects.link(pivot)
        self.scene.collection.objects.link(base)
        meshes = [o for o in new if o.type == "MESH"]
        for o in new:
            if o.type != "MESH":
                bpy.data.objects.remove(o)
        for o in meshes:
            o.parent = base
            o.matrix_parent_inverse = mathutils.Matrix.Identity(4)
            o.matrix_basis = mathutils.Matrix.Identity(4)
            # Rigid motion only: skip Cycles' per-step check for deformation.
            o.cycles.use_deform_motion = False
        return Rig(pivot, base, meshes)


def _import_file(path: str, suffix: str) -> None:
    """Run the format's own importer (RuntimeError when it fails)."""
    if suffix == ".obj":
        # forward Y / up Z are Blender's own axes: no axis conversion, so object coordinates
        # stay the file's raw coordinates (ShapeNet's +Y up stays +Y).
        bpy.ops.wm.obj_import(filepath=path, forward_axis="Y", up_axis="Z", global_scale=1.0,
                              clamp_size=0.0, use_split_objects=False, use_split_groups=False,
                              validate_meshes=True)
    elif suffix == ".ply":
        bpy.ops.wm.ply_import(filepath=path, forward_axis="Y", up_axis="Z", global_scale=1.0,
                              use_scene_unit=False, merge_verts=False, import_colors="SRGB")
    else:  # glTF's importer has no axis option: _bake_scene_transforms undoes its conversion
        bpy.ops.import_scene.gltf(filepath=path, import_shading="NORMALS", merge_vertices=False,
                                  import_scene_as_collection=False)


def _bake_scene_transforms(objects) -> None:
    """Move each mesh's vertices into the glTF scene's own coordinates; leave it unplaced."""
    bpy.context.view_layer.update()  # matrix_world of the imported hierarchy
    identity = mathutils.Matrix.Identity(4)
    placed = [(o, GLTF_TO_FILE @ o.matrix_world) for o in objects if o.type == "MESH"]
    for o, to_file in placed:
        o.parent = None
        o.matrix_basis = identity
        if to_file == identity:
            continue
        if o.data.users > 1:  # one mesh placed by several nodes: each gets its own copy
            o.data = o.data.copy()
        o.data.transform(to_file)
        if to_file.determinant() < 0:  # a mirroring node: keep the faces wound outwards
            o.data.flip_normals()


def _ply_texture(path: str) -> str | None:
    """The image a PLY header names (``comment TextureFile NAME``), resolved beside the file."""
    with open(path, "rb") as fh:
        for _ in range(200):
            words = fh.readline().decode("latin-1").split()
            if not words or words[0] == "end_header":
                break
            if words[0] == "comment" and len(words) >= 3 and words[1].lower() == "texturefile":
                return os.path.join(os.path.dirname(path), " ".join(words[2:]).replace("\\", "/"))
    return None


def _ply_material(path: str, meshes) -> None:
    """A material from the PLY's texture (with its UVs) or its per-vertex colours, if it has either."""
    texture = _ply_texture(path)
    for o in meshes:
        if o.data.materials:
            continue
        mat = bpy.data.materials.new(f"blurgen_ply_{o.name}")
        if mat.node_tree is None:
            mat.use_nodes = True
        nodes, links = mat.node_tree.nodes, mat.node_tree.links
        bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
        if texture is not None and o.data.uv_layers:
            node = nodes.new("ShaderNodeTexImage")
            try:
                node.image = bpy.data.images.load(texture, check_existing=True)
            except RuntimeError:
                node.image = None
            if node.image is None or node.image.size[0] == 0:  # Cycles would render it magenta
                raise ItemError(f"texture failed to load: {os.path.normpath(texture)}")
            links.new(node.outputs["Color"], bsdf.inputs["Base Color"])
        elif o.data.color_attributes:
            node = nodes.new("ShaderNodeVertexColor")
            node.layer_name = o.data.color_attributes[0].name
            links.new(node.outputs["Color"], bsdf.inputs["Base Color"])
        else:
            bpy.data.materials.remove(mat)
            continue
        o.data.materials.append(mat)
