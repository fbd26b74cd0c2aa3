"""Asset manifests in Kubric's shape, loaded, validated and written by one class.

A manifest is JSON::

    {"name": str, "version": str, "data_dir": str,
     "assets": {id: {"category": str, "path": str, "license": str, "metadata": {...}}}}

``path`` is relative to ``data_dir``; a relative ``data_dir`` is relative to the manifest
file's folder, so a manifest and its data can be moved together. The scanners put the
usability of an asset in its metadata: ``broken`` (``null`` or the reason it cannot be used)
and, for backgrounds, ``duplicate_of`` (the id of the copy that is kept). Loaders call
:meth:`AssetManifest.problem` or ``filter(usable=True)`` and skip such assets with the reason.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Mapping

from blurgen.atomic import atomic_write_text
from blurgen.errors import BlurgenError
from blurgen.resources import assets_manifest_dir

ASSET_KEYS = ("category", "path", "license", "metadata")
TOP_KEYS = ("name", "version", "data_dir", "assets")


def problem_of(metadata: Mapping[str, Any]) -> str | None:
    """Why an asset with this metadata must be skipped, or None when it is usable."""
    if metadata.get("broken"):
        return str(metadata["broken"])
    if metadata.get("duplicate_of"):
        return f"duplicate of {metadata['duplicate_of']}"
    return None


@dataclasses.dataclass
class AssetManifest:
    """A named, versioned set of assets below one data folder.

    ``source`` is the file the manifest was loaded from (None for one built in memory); it
    anchors a relative ``data_dir``.
    """

    name: str
    version: str
    data_dir: str
    assets: dict[str, dict[str, Any]]
    source: Path | None = None

    # ------------------------------------------------------------------ loading and saving

    @classmethod
    def from_dict(cls, data: Any, source: Path | None = None) -> "AssetManifest":
        """Validate a parsed manifest; every refusal is one line naming the asset id and key."""
        where = f"manifest {source}" if source else "manifest"
        if not isinstance(data, Mapping):
            raise BlurgenError(f"{where}: expected a JSON object, got {type(data).__name__}")
        _check_keys(data, TOP_KEYS, where)
        for key in ("name", "version", "data_dir"):
            if not isinstance(data[key], str):
                raise BlurgenError(f"{where}: '{key}' must be a string, got {data[key]!r}")
        if not isinstance(data["assets"], Mapping):
            raise BlurgenError(f"{where}: 'assets' must be an object of id -> asset")
        assets: dict[str, dict[str, Any]] = {}
        for asset_id, entry in data["assets"].items():
            assets[asset_id] = _check_asset(asset_id, entry, where)
        return cls(data["name"], data["version"], data["data_dir"], assets, source)

    @classmethod
    def load(cls, path: str | Path, data_dir: str | Path | None = None) -> "AssetManifest":
        """Read and validate a manifest file; ``data_dir`` overrides the one it names."""
        path = Path(path)
        if not path.is_file():
            raise BlurgenError(f"manifest not found: {path}")
        try:
            data = json.loads(path.read_text("utf-8"))
        except json.JSONDecodeError as exc:
            raise BlurgenError(f"manifest {path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
        manifest = cls.from_dict(data, source=path.resolve())
        if data_dir is not None:
            manifest.data_dir = str(data_dir)
        return manifest

    @classmethod
    def builtin(cls, name: str, data_dir: str | Path | None = None) -> "AssetManifest":
        """A manifest shipped with blurgen (``assets_manifest/<name>.json``)."""
        names = builtin_names()
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise BlurgenError(f"no built-in manifest '{name}'{hint}; available: {', '.join(names)}")
        return cls.load(assets_manifest_dir() / f"{name}.json", data_dir=data_dir)

    def to_dict(self) -> dict[str, Any]:
        """The manifest as plain JSON data (without ``source``)."""
        return {"name": self.name, "version": self.version, "data_dir": self.data_dir,
                "assets": self.assets}

    def to_json(self) -> str:
        """Canonical text: sorted keys, indent 2, trailing newline, so equal manifests are equal bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    def save(self, path: str | Path) -> Path:
        """Write atomically (temporary file in the same folder, then rename); returns the path."""
        path = Path(path)
        self.from_dict(self.to_dict())  # never write a manifest that would not load
        atomic_write_text(path, self.to_json())
        self.source = path.resolve()
        return path

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self.assets)

    def __contains__(self, asset_id: object) -> bool:
        return asset_id in self.assets

    def ids(self, category: str | None = None) -> list[str]:
        """Asset ids in sorted order, optionally of one category."""
        return sorted(i for i, a in self.assets.items() if category is None or a["category"] == category)

    def categories(self) -> list[str]:
        """The distinct categories, sorted."""
        return sorted({a["category"] for a in self.assets.values()})

    def get(self, asset_id: str) -> dict[str, Any]:
        """One asset's entry; an unknown id is a BlurgenError with the closest known id."""
        try:
            return self.assets[asset_id]
        except KeyError:
            close = difflib.get_close_matches(asset_id, list(self.assets), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise BlurgenError(f"unknown asset id '{asset_id}' in manifest '{self.name}'{hint}") from None

    def root(self) -> Path:
        """The absolute data folder (a relative ``data_dir`` is anchored at the manifest's folder)."""
        data_dir = Path(self.data_dir).expanduser()
        if not data_dir.is_absolute():
            base = self.source.parent if self.source is not None else Path.cwd()
            data_dir = base / data_dir
        return Path(os.path.normpath(data_dir.absolute()))

    def path_of(self, asset_id: str) -> Path:
        """Absolute path of an asset's file."""
        return self.root() / self.get(asset_id)["path"]

    def problem(self, asset_id: str) -> str | None:
        """Why the asset must be skipped (broken, duplicate), or None when it is usable."""
        return problem_of(self.get(asset_id)["metadata"])

    def filter(
        self,
        categories: Iterable[str] | None = None,
        ids: Iterable[str] | None = None,
        usable: bool | None = None,
        where: Callable[[str, dict[str, Any]], bool] | None = None,
    ) -> "AssetManifest":
        """A new manifest with the assets that pass every given test.

        ``categories``/``ids``: keep only these; ``usable=True``: drop assets with a
        :meth:`problem` (``False``: keep only those); ``where(id, entry)``: any other test.
        """
        cats = set(categories) if categories is not None else None
        keep = set(ids) if ids is not None else None
        out: dict[str, dict[str, Any]] = {}
        for asset_id, entry in self.assets.items():
            if cats is not None and entry["category"] not in cats:
                continue
            if keep is not None and asset_id not in keep:
                continue
            if usable is not None and (problem_of(entry["metadata"]) is None) != usable:
                continue
            if where is not None and not where(asset_id, entry):
                continue
            out[asset_id] = entry
        return AssetManifest(self.name, self.version, self.data_dir, out, self.source)


def builtin_names() -> list[str]:
    """Names of the manifests shipped in ``assets_manifest/``."""
    return sorted(p.stem for p in assets_manifest_dir().glob("*.json"))


def _check_keys(data: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in allowed:
        if key not in data:
            raise BlurgenError(f"{where}: missing key '{key}'")
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise BlurgenError(f"{where}: unknown key '{key}'{hint}; allowed: {', '.join(allowed)}")


def _check_asset(asset_id: Any, entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(asset_id, str) or not asset_id.strip():
        raise BlurgenError(f"{where}: asset ids must be non-empty strings, got {asset_id!r}")
    here = f"{where}: asset '{asset_id}'"
    if not isinstance(entry, Mapping):
        raise BlurgenError(f"{here}: expected an object with keys {', '.join(ASSET_KEYS)}")
    _check_keys(entry, ASSET_KEYS, here)
    for key in ("category", "path", "license"):
        if not isinstance(entry[key], str) or not entry[key]:
            raise BlurgenError(f"{here}: '{key}' must be a non-empty string, got {entry[key]!r}")
    if not isinstance(entry["metadata"], Mapping):
        raise BlurgenError(f"{here}: 'metadata' must be an object, got {entry['metadata']!r}")
    rel = PurePosixPath(entry["path"])
    # Paths stay inside data_dir so that a manifest cannot point a loader anywhere on the disk.
    if rel.is_absolute() or ".." in rel.parts or "\\" in entry["path"]:
        raise BlurgenError(f"{here}: 'path' must be a relative POSIX path inside data_dir, got {entry['path']!r}")
    return dict(entry)
