"""The licences a release may carry: SPDX ids blurgen knows, with the names the card and the
Croissant file need.

A short fixed list rather than the whole SPDX registry (no network, and a data release is
almost always under one of these): a typo must fail loudly, not publish a release under a
licence id nobody recognises. Each entry gives the Hugging Face Hub's id for the card's front
matter (the Hub uses its own lower-case ids) and the SPDX page that Croissant's ``license``
points at. Add a line here for another licence.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from blurgen.errors import BlurgenError


@dataclass(frozen=True)
class License:
    spdx: str   # the SPDX identifier, e.g. "CC-BY-4.0"
    hub: str    # the Hugging Face Hub's id for the card's `license:` key
    name: str   # the full name, for people

    @property
    def url(self) -> str:
        """The licence's SPDX page (Croissant's ``license``)."""
        return f"https://spdx.org/licenses/{self.spdx}.html"


KNOWN_LICENSES = {lic.spdx: lic for lic in (
    License("CC-BY-4.0", "cc-by-4.0", "Creative Commons Attribution 4.0 International"),
    License("CC-BY-SA-4.0", "cc-by-sa-4.0", "Creative Commons Attribution Share Alike 4.0 International"),
    License("CC-BY-NC-4.0", "cc-by-nc-4.0", "Creative Commons Attribution Non Commercial 4.0 International"),
    License("CC-BY-NC-SA-4.0", "cc-by-nc-sa-4.0",
            "Creative Commons Attribution Non Commercial Share Alike 4.0 International"),
    License("CC-BY-ND-4.0", "cc-by-nd-4.0", "Creative Commons Attribution No Derivatives 4.0 International"),
    License("CC0-1.0", "cc0-1.0", "Creative Commons Zero v1.0 Universal"),
    License("PDDL-1.0", "pddl", "Open Data Commons Public Domain Dedication & License 1.0"),
    License("ODC-By-1.0", "odc-by", "Open Data Commons Attribution License v1.0"),
    License("ODbL-1.0", "odbl", "Open Data Commons Open Database License v1.0"),
    License("CDLA-Permissive-2.0", "cdla-permissive-2.0", "Community Data License Agreement Permissive 2.0"),
    License("CDLA-Sharing-1.0", "cdla-sharing-1.0", "Community Data License Agreement Sharing 1.0"),
    License("MIT", "mit", "MIT License"),
    License("Apache-2.0", "apache-2.0", "Apache License 2.0"),
    License("BSD-3-Clause", "bsd-3-clause", "BSD 3-Clause \"New\" or \"Revised\" License"),
)}


def get_license(spdx: str) -> License:
    """The known licence of an SPDX id (matched case-insensitively, as SPDX ids are); one line
    naming the known ids otherwise."""
    by_lower = {key.lower(): lic for key, lic in KNOWN_LICENSES.items()}
    lic = by_lower.get(str(spdx).strip().lower())
    if lic is not None:
        return lic
    close = difflib.get_close_matches(str(spdx), list(KNOWN_LICENSES), n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise BlurgenError(f"unknown licence id '{spdx}'{hint}; give an SPDX id blurgen knows: "
                       f"{', '.join(KNOWN_LICENSES)}")
