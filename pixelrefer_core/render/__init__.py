"""Making results visible: object thumbnails, overlay clips and the report's plot data (compute only).

- `colors`: one stable colour per object id (`object_color`, `hex_color`), used everywhere.
- `thumbnails`: `make_thumbnail(frame, mask, color)` -> crop with context and outline + reduced frame, JPEG.
- `held`: `HeldMasks` - which stored mask each object shows on every frame (masks held between samples).
- `draw`: `draw_overlay(frame, objects)` - tint, outline, box, id and caption of each object.
- `clip`: `render_clip(src, out, records, captions)` - the H.264 MP4 overlay clip, streamed in chunks.
- `plots`: trajectories and object counts over time, and SVG point strings.
"""

from pixelrefer_core.render.clip import ClipResult, render_clip
from pixelrefer_core.render.colors import hex_color, object_color
from pixelrefer_core.render.draw import OverlayObject, draw_overlay, label_text
from pixelrefer_core.render.held import HeldMasks, MaskRecord
from pixelrefer_core.render.images import decode_jpeg, encode_jpeg
from pixelrefer_core.render.plots import BoxRow, CountSeries, count_series, svg_points, trajectories
from pixelrefer_core.render.thumbnails import Thumbnail, ThumbnailConfig, context_box, make_thumbnail

__all__ = [
    "BoxRow",
    "ClipResult",
    "CountSeries",
    "HeldMasks",
    "MaskRecord",
    "OverlayObject",
    "Thumbnail",
    "ThumbnailConfig",
    "context_box",
    "count_series",
    "decode_jpeg",
    "draw_overlay",
    "encode_jpeg",
    "hex_color",
    "label_text",
    "make_thumbnail",
    "object_color",
    "render_clip",
    "svg_points",
    "trajectories",
]
