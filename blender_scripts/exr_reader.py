"""Reading the EXR files Cycles writes, with numpy: no Blender needed (the tests run it without).

The scene set-up asks for uncompressed, 32-bit float, scanline RGBA EXRs; numpy reads those
directly (about 1 ms at 320x240, against about 9 ms through ``bpy.data.images.load`` and
``Image.pixels``: a tenth of a low-sample render). Any other EXR gives None and the caller falls
back to Blender's own loader. Layout (OpenEXR file format, "Reading and writing image files"):
magic and version, a header of ``name\\0 type\\0 size value`` attributes ended by an empty name,
an offset table of one uint64 per scanline, then per scanline: y (int32), byte count (int32),
and one row per channel in the channel list's (alphabetical) order.
"""

from __future__ import annotations

import numpy as np

MAGIC = b"\x76\x2f\x31\x01"
FLOAT = 2  # channel pixel type: 0 uint, 1 half, 2 float
NO_COMPRESSION = 0


def parse_uncompressed_exr(data: bytes, width: int, height: int) -> np.ndarray | None:
    """RGBA float32 (H, W, 4), rows top to bottom, from an uncompressed float scanline EXR of
    ``width`` x ``height``; None when the file is any other kind of EXR (or not an EXR)."""
    # version 2 with flags: tiled (bit 9), deep (11) or multi-part (12) files are not the simple
    # layout read here (long names, bit 10, are fine)
    if len(data) < 9 or data[:4] != MAGIC or data[4] != 2 or data[5] & (0x02 | 0x08 | 0x10):
        return None
    attrs, pos = _header(data)
    if attrs is None:
        return None
    channels = _channels(attrs.get("channels", b""))
    window = np.frombuffer(attrs.get("dataWindow", b"\0" * 16), dtype="<i4")
    if (attrs.get("compression", b"\xff")[:1] != bytes([NO_COMPRESSION]) or sorted(channels) != channels
            or [c for c, _ in channels] != ["A", "B", "G", "R"] or any(t != FLOAT for _, t in channels)
            or len(window) != 4 or tuple(window) != (0, 0, width - 1, height - 1)):
        return None
    line = 8 + 4 * 4 * width  # per scanline: y (int32), byte count (int32), A, B, G, R rows
    first = int.from_bytes(data[pos:pos + 8], "little")  # the offset table's first entry
    if first + line * height > len(data):
        return None
    block = np.frombuffer(data, dtype=np.uint8, count=line * height, offset=first).reshape(height, line)
    planes = block[:, 8:].copy().view("<f4").reshape(height, 4, width)  # A, B, G, R per row
    return np.ascontiguousarray(planes[:, [3, 2, 1, 0], :].transpose(0, 2, 1)).astype(np.float32)


def _header(data: bytes) -> tuple[dict[str, bytes] | None, int]:
    """The header's attributes by name (raw values), and where the offset table starts."""
    pos, attrs = 8, {}
    try:
        while data[pos] != 0:  # name\0 type\0 size value, ended by an empty name
            name_end = data.index(b"\0", pos)
            type_end = data.index(b"\0", name_end + 1)
            size = int.from_bytes(data[type_end + 1:type_end + 5], "little")
            attrs[data[pos:name_end].decode("latin-1")] = data[type_end + 5:type_end + 5 + size]
            pos = type_end + 5 + size
    except (IndexError, ValueError):  # ran off the end: a truncated header
        return None, pos
    return attrs, pos + 1


def _channels(raw: bytes) -> list[tuple[str, int]]:
    """(name, pixel type) of each channel in a chlist attribute."""
    channels, i = [], 0
    while i < len(raw) and raw[i] != 0:  # name\0 pixel_type(int32) pLinear, reserved, x/y sampling
        end = raw.index(b"\0", i)
        channels.append((raw[i:end].decode("latin-1"), int.from_bytes(raw[end + 1:end + 5], "little")))
        i = end + 17
    return channels
