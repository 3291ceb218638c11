"""Checking and encoding one image; runs in the worker processes, so it imports little."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image


def encode_image(payload: str | bytes | None) -> tuple[bytes | None, str | None]:
    """(JPEG bytes, None) for a readable image, (None, reason) otherwise.

    `payload` is a file path or the encoded image. JPEGs in RGB or greyscale are kept byte for
    byte; anything else (PNG, CMYK JPEG, palette images) is re-encoded as an RGB JPEG. Every
    image is decoded to the end, so a truncated file is caught.
    """
    try:
        data = Path(payload).read_bytes() if isinstance(payload, str) else payload
        if not data:
            return None, "empty image"
        with Image.open(io.BytesIO(data)) as image:
            if image.format == "JPEG" and image.mode in ("RGB", "L"):
                # only checked, not used: decoding at 1/8 scale still reads every coded block
                image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
                return data, None
            image.load()
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=95)
            return out.getvalue(), None
    except FileNotFoundError:
        return None, "file not found"
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        return None, " ".join(f"unreadable image ({type(exc).__name__}: {exc})".split())
