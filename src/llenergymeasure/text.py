"""Text from outside (a server's answer, a result file, a baseline cache) made safe to print.

Such text can carry terminal escape sequences (ESC [ ... m, OSC 8 links, OSC 52 clipboard writes)
or bidirectional overrides that make a line read as something it is not. ``printable`` removes
every control character except newline and tab, and the Unicode format characters that reorder
text; what is left is shown as it is.
"""

from __future__ import annotations

import re

# The bidirectional marks, embeddings, overrides and isolates (a character class's body).
BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# C0 controls but tab and newline, DEL, C1 controls, and BIDI.
_UNPRINTABLE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI}]")


def printable(text: str) -> str:
    """``text`` without control characters (newline and tab stay)."""
    return _UNPRINTABLE.sub("", text)
