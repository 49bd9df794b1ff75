"""One colour per object, the same in every overlay clip, thumbnail outline, timeline bar and plot.

The colour depends on the object id alone (hue stepped by the golden ratio, so neighbouring ids differ
strongly and no id ever needs a table), which keeps it stable across re-renders, re-built reports and
trackings of the same video.
"""

from __future__ import annotations

import colorsys

__all__ = ["RGB", "hex_color", "object_color"]

RGB = tuple[int, int, int]
_GOLDEN = 0.618033988749895
_SATURATION, _VALUE = 0.80, 0.95


def object_color(object_id: int) -> RGB:
    """RGB (0-255) colour of object `object_id` (any int, negative ones too)."""
    hue = (0.07 + int(object_id) * _GOLDEN) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, _SATURATION, _VALUE)
    return (round(r * 255), round(g * 255), round(b * 255))


def hex_color(rgb: RGB) -> str:
    """'#rrggbb' of an RGB triple (what HTML and SVG use)."""
    return "#{:02x}{:02x}{:02x}".format(*(max(0, min(255, int(c))) for c in rgb))
