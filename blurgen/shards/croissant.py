"""``croissant.json``: the release in Croissant JSON-LD (conformsTo 1.0).

The dataset's name, description, licence, creator, citation and version, and every shard as a
``cr:FileObject`` with its relative ``contentUrl``, ``encodingFormat`` ``application/x-hdf5``,
size and sha256 (plus ``data/manifest.json``). Croissant describes records only for formats its
tools can read (CSV, JSON, Parquet, images...), not HDF5 datasets, so there are no record sets:
the card describes the fields. ``mlcroissant validate --jsonld croissant.json`` accepts the file
(the tests run it).
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from blurgen.shards.card import ReleaseFile
from blurgen.shards.licenses import License
from blurgen.shards.publish_config import PublishConfig

CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
HDF5_MEDIA_TYPE = "application/x-hdf5"

# The standard @context of Croissant 1.0 (the spec's; the validator warns on any other).
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "sc": "https://schema.org/",
    "samplingRate": "cr:samplingRate",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
    "equivalentProperty": "cr:equivalentProperty",
}


def file_object(path: str, media_type: str, nbytes: int, sha256: str, description: str) -> dict[str, Any]:
    """One file of the release as a ``cr:FileObject`` (its path doubles as its id and name)."""
    return {"@type": "cr:FileObject", "@id": path, "name": path, "description": description,
            "contentUrl": path, "encodingFormat": media_type, "contentSize": f"{nbytes} B", "sha256": sha256}


def croissant_document(name: str, description: str, licence: License, config: PublishConfig,
                       citation: str, files: Sequence[ReleaseFile],
                       manifest: tuple[str, int, str]) -> dict[str, Any]:
    """The JSON-LD document. ``manifest`` is ``(path, bytes, sha256)`` of ``data/manifest.json``."""
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": name,
        "description": description,
        "license": licence.url,
        "version": config.version,
        "citeAs": citation,
        "keywords": ["motion blur", "blurgen", *config.tags],
    }
    if config.url:
        doc["url"] = config.url
    if config.creator:
        doc["creator"] = {"@type": "sc:Person", "name": config.creator}
    if config.date_published:
        doc["datePublished"] = config.date_published
    m_path, m_bytes, m_sha = manifest
    doc["distribution"] = [
        file_object(m_path, "application/json", m_bytes, m_sha, "the shards' manifest: samples, sizes, sha256"),
        *(file_object(f.path, HDF5_MEDIA_TYPE, f.bytes, f.sha256,
                      f"set {f.set_name}, split {f.split}: {f.samples} samples") for f in files),
    ]
    return doc


def croissant_text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
