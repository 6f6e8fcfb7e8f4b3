"""Photos of reports: checked, turned upright and stored without metadata.

A photo is accepted only when its bytes (not the name or header the client sent) are a JPEG, PNG
or WebP image no larger than ``participation_photo_bytes`` and no larger than ``MAX_SIDE`` pixels
on a side. It is decoded in full (a truncated or damaged file is refused), turned by its EXIF
orientation, and encoded again from its pixels alone, so the stored copy carries no EXIF (GPS,
camera, time), XMP, ICC profile or text chunks. Stored files are named by the SHA-256 of the
cleaned bytes under ``<data_dir>/media/participation/``.
"""

from __future__ import annotations

import os
import uuid
import warnings
from dataclasses import dataclass
from hashlib import sha256
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.config import get_settings
from zhishe.core.errors import Invalid, NotFound, TooLarge
from zhishe.core.i18n import T
from zhishe.participation.models import Photo

__all__ = [
    "ALLOWED",
    "MAX_PIXELS",
    "MAX_SIDE",
    "STORED_MAX_SIDE",
    "CleanPhoto",
    "clean",
    "get_photo",
    "list_photos",
    "media_dir",
    "path_of",
    "store",
    "store_clean",
]

ALLOWED = {"image/jpeg", "image/png", "image/webp"}
#: Largest width or height accepted, in pixels.
MAX_SIDE = 12_000
#: Largest number of pixels accepted (a 48-megapixel phone photo fits): anything larger is refused
#: before it is decoded, so a small file that claims a huge picture cannot exhaust memory.
MAX_PIXELS = 50_000_000
#: Stored photos are scaled down to at most this many pixels on their longer side.
STORED_MAX_SIDE = 4096

#: Pillow format -> (content type, file extension).
_FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
_EXTENSIONS = {content_type: ext for content_type, ext in _FORMATS.values()}


@dataclass(frozen=True)
class CleanPhoto:
    """A checked photo, encoded again without metadata."""

    data: bytes
    content_type: str
    width: int
    height: int
    sha256: str

    @property
    def extension(self) -> str:
        """The file extension of the stored copy (jpg, png or webp)."""
        return _EXTENSIONS[self.content_type]


def _sniff(data: bytes) -> str | None:
    """The Pillow format the bytes start like, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _decode(data: bytes, fmt: str, field: str) -> Image.Image:
    """Open and fully decode the image, refusing bombs and damaged files."""
    unreadable = Invalid(
        T("{field} could not be read as an image: the file is damaged or incomplete", field=field),
        detail={"field": field},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(BytesIO(data), formats=[fmt])
            width, height = image.size
            if width < 1 or height < 1:
                raise unreadable
            if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
                raise Invalid(
                    T(
                        "{field} is {width}×{height} pixels; the largest accepted is {side} pixels a side "
                        "and {pixels} pixels in all",
                        field=field,
                        width=width,
                        height=height,
                        side=MAX_SIDE,
                        pixels=f"{MAX_PIXELS:,}",
                    ),
                    detail={"field": field, "width": width, "height": height},
                )
            image.seek(0)  # the first frame of an animated image
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise Invalid(
                T("{field} claims to be far larger than any photo; it was refused", field=field),
                detail={"field": field},
            ) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError):
            raise unreadable from None
    return image


def _pixels_only(image: Image.Image) -> Image.Image:
    """A new image holding only the pixels (upright), in RGB, RGBA or L: no info, EXIF or profile."""
    try:
        upright = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError):
        upright = image  # a damaged EXIF block: keep the pixels as they are
    has_alpha = upright.mode in {"RGBA", "LA", "PA", "RGBa", "La"} or (
        upright.mode == "P" and "transparency" in upright.info
    )
    if upright.mode.startswith("I"):  # 16-bit grey (PNG): scale down to 8 bits
        upright = upright.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    mode = "RGBA" if has_alpha else ("L" if upright.mode in {"1", "L"} else "RGB")
    converted = upright.convert(mode)
    if max(converted.size) > STORED_MAX_SIDE:
        converted.thumbnail((STORED_MAX_SIDE, STORED_MAX_SIDE), Image.Resampling.LANCZOS)
    fresh = Image.new(mode, converted.size)
    fresh.paste(converted)
    return fresh


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = BytesIO()
    if fmt == "JPEG":
        if image.mode == "RGBA":
            flat = Image.new("RGB", image.size, (255, 255, 255))
            flat.paste(image, mask=image.getchannel("A"))
            image = flat
        image.save(out, "JPEG", quality=88, optimize=True)
    elif fmt == "PNG":
        image.save(out, "PNG", optimize=False, compress_level=6)
    else:
        image.save(out, "WEBP", quality=85, method=4)
    return out.getvalue()


def clean(data: bytes, *, field: str = "photo") -> CleanPhoto:
    """Check a photo and encode it again without metadata; Invalid or TooLarge name ``field``."""
    limit = get_settings().participation_photo_bytes
    if not data:
        raise Invalid(T("{field} is empty", field=field), detail={"field": field})
    if len(data) > limit:
        raise TooLarge(
            T(
                "{field} is {size} bytes; the largest photo accepted is {limit} bytes",
                field=field,
                size=f"{len(data):,}",
                limit=f"{limit:,}",
            ),
            detail={"field": field, "limit_bytes": limit, "size": len(data)},
        )
    fmt = _sniff(data)
    if fmt is None:
        raise Invalid(
            T("{field} is not a JPEG, PNG or WebP image", field=field),
            detail={"field": field, "allowed": sorted(ALLOWED)},
        )
    image = _decode(data, fmt, field)
    try:
        encoded = _encode(_pixels_only(image), fmt)
    except (OSError, ValueError) as exc:
        raise Invalid(
            T("{field} could not be read as an image: the file is damaged or incomplete", field=field),
            detail={"field": field},
        ) from exc
    finally:
        image.close()
    with Image.open(BytesIO(encoded)) as check:
        width, height = check.size
    content_type = _FORMATS[fmt][0]
    return CleanPhoto(
        data=encoded,
        content_type=content_type,
        width=width,
        height=height,
        sha256=sha256(encoded).hexdigest(),
    )


def media_dir() -> Path:
    """The folder the cleaned photos are stored in."""
    return get_settings().data_dir / "media" / "participation"


def store(
    *, session: Session, request_id: int, data: bytes, update_id: int | None = None, field: str = "photo"
) -> Photo:
    """Clean a photo, write it to the media folder (atomically) and add its row (flushed)."""
    photo = clean(data, field=field)
    return store_clean(session=session, request_id=request_id, photo=photo, update_id=update_id, field=field)


def store_clean(
    *,
    session: Session,
    request_id: int,
    photo: CleanPhoto,
    update_id: int | None = None,
    field: str = "photo",
) -> Photo:
    """Store a photo already cleaned by ``clean``: the file (atomically) and its row (flushed).

    ``field`` names the photo as ``clean`` did; nothing here can refuse it any more."""
    folder = media_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{photo.sha256}.{photo.extension}"
    if not target.exists():  # the same cleaned bytes are stored once
        temporary = folder / f".{photo.sha256}.{uuid.uuid4().hex}.tmp"
        try:
            with temporary.open("wb") as handle:
                handle.write(photo.data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
    row = Photo(
        request_id=request_id,
        update_id=update_id,
        sha256=photo.sha256,
        content_type=photo.content_type,
        size=len(photo.data),
        width=photo.width,
        height=photo.height,
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    return row


def path_of(photo: Photo) -> Path:
    """Where a stored photo's bytes are."""
    return media_dir() / f"{photo.sha256}.{_EXTENSIONS.get(photo.content_type, 'bin')}"


def get_photo(*, session: Session, photo_id: int) -> Photo:
    """The photo row ``photo_id`` (who may see it is decided by its request)."""
    photo = session.get(Photo, photo_id)
    if photo is None:
        raise NotFound(T("photo {id} does not exist", id=photo_id), detail={"photo_id": photo_id})
    return photo


def list_photos(*, session: Session, request_id: int, update_id: int | None = None) -> list[Photo]:
    """A request's photos in the order they were added (only those of one update when given)."""
    query = select(Photo).where(Photo.request_id == request_id)
    if update_id is not None:
        query = query.where(Photo.update_id == update_id)
    return list(session.scalars(query.order_by(Photo.id)))
