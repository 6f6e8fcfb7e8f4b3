"""Photos of reports: the real type is sniffed, size and dimensions are checked, damaged files and
decompression bombs are refused, and the stored copy is upright and carries no metadata at all."""

from __future__ import annotations

import hashlib
import secrets
import struct
import zlib
from io import BytesIO

import pytest
from PIL import ExifTags, Image
from PIL.PngImagePlugin import PngInfo

from participation.pworld import ParticipationWorld
from zhishe.core import clock
from zhishe.core.config import get_settings
from zhishe.core.errors import Invalid, NotFound, TooLarge
from zhishe.participation import photos
from zhishe.participation.models import Photo, Request

SECRET = "Secret Street 42"


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    exif[ExifTags.Base.Model] = "Model-X9"
    exif[ExifTags.Base.Orientation] = 6  # the camera was turned: rotate 90° clockwise to show
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (39.0, 54.0, 15.12)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (116.0, 24.0, 26.64)
    return exif


def _noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    bands = len(mode)
    return Image.frombytes(mode, size, secrets.token_bytes(size[0] * size[1] * bands))


def _jpeg_with_gps(size: tuple[int, int] = (40, 20)) -> bytes:
    out = BytesIO()
    image = Image.new("RGB", size, (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, size[0] // 2, size[1]))  # left half blue, right half red
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description>{SECRET}</rdf:Description></x:xmpmeta>'
    image.save(out, "JPEG", exif=_exif().tobytes(), comment=SECRET.encode(), xmp=xmp.encode(), quality=95)
    return out.getvalue()


def _jpeg_markers(data: bytes) -> list[int]:
    """The markers of a JPEG's header segments, up to the start of the scan."""
    assert data[:2] == b"\xff\xd8"
    markers, i = [], 2
    while i < len(data):
        assert data[i] == 0xFF
        marker = data[i + 1]
        markers.append(marker)
        if marker == 0xDA:  # start of scan: the pixels follow
            break
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        i += 2 + length
    return markers


def _png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, i = [], 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        chunks.append(data[i + 4 : i + 8])
        i += 12 + length
    return chunks


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (its CRC fixed up)."""
    out = BytesIO()
    Image.new("L", (1, 1)).save(out, "PNG")
    data = bytearray(out.getvalue())
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr) & 0xFFFFFFFF)
    return bytes(data)


def test_a_jpeg_with_a_gps_tag_is_stored_upright_without_any_metadata(settings_env):
    original = _jpeg_with_gps()
    before = Image.open(BytesIO(original))
    assert before.getexif().get_ifd(ExifTags.IFD.GPSInfo), "the test photo must carry a GPS tag"
    assert b"SpyCam" in original and SECRET.encode() in original

    photo = photos.clean(original)

    assert photo.content_type == "image/jpeg" and photo.extension == "jpg"
    after = Image.open(BytesIO(photo.data))
    assert after.format == "JPEG"
    assert not after.getexif(), "no EXIF at all"
    assert "exif" not in after.info and "xmp" not in after.info and "icc_profile" not in after.info
    for needle in (b"Exif", b"SpyCam", b"Model-X9", SECRET.encode(), b"xmpmeta", b"ICC_PROFILE"):
        assert needle not in photo.data, needle
    markers = _jpeg_markers(photo.data)
    assert not [m for m in markers if 0xE1 <= m <= 0xEF or m == 0xFE], [hex(m) for m in markers]
    # the orientation tag was applied to the pixels: 40x20 shown turned is 20 wide and 40 high
    assert (photo.width, photo.height) == after.size == (20, 40)
    top, bottom = after.convert("RGB").getpixel((10, 5)), after.convert("RGB").getpixel((10, 35))
    assert top[2] > 150 and top[0] < 100, "the blue half is on top after turning clockwise"
    assert bottom[0] > 150 and bottom[2] < 100
    assert photo.sha256 == hashlib.sha256(photo.data).hexdigest()


def test_a_png_loses_its_text_chunks_and_exif_but_keeps_its_pixels_and_transparency(settings_env):
    image = _noise((32, 24), "RGBA")
    info = PngInfo()
    info.add_text("Comment", SECRET)
    info.add_text("Location", "39.9042,116.4074", zip=True)
    info.add_itxt("Author", "居民 张三")
    out = BytesIO()
    image.save(out, "PNG", pnginfo=info, exif=_exif().tobytes())
    original = out.getvalue()
    assert {b"tEXt", b"zTXt", b"iTXt", b"eXIf"} <= set(_png_chunks(original))

    photo = photos.clean(original, field="photo2")

    assert photo.content_type == "image/png"
    chunks = set(_png_chunks(photo.data))
    assert chunks <= {b"IHDR", b"IDAT", b"IEND"}, chunks
    assert SECRET.encode() not in photo.data
    after = Image.open(BytesIO(photo.data))
    assert after.mode == "RGBA" and after.size == (24, 32)  # orientation 6 applied here too
    assert after.tobytes() == image.transpose(Image.Transpose.ROTATE_270).tobytes(), "lossless"


def test_a_webp_with_exif_is_stored_as_webp_without_it(settings_env):
    out = BytesIO()
    Image.new("RGB", (16, 16), (10, 120, 10)).save(out, "WEBP", exif=_exif().tobytes(), xmp=SECRET.encode())
    original = out.getvalue()
    assert b"EXIF" in original

    photo = photos.clean(original)

    assert photo.content_type == "image/webp" and photo.extension == "webp"
    assert b"EXIF" not in photo.data and b"XMP" not in photo.data and SECRET.encode() not in photo.data
    assert not Image.open(BytesIO(photo.data)).getexif()


def test_cmyk_and_grey_photos_are_accepted(settings_env):
    for mode in ("CMYK", "L"):
        out = BytesIO()
        _noise((20, 20), mode).save(out, "JPEG")
        photo = photos.clean(out.getvalue())
        assert Image.open(BytesIO(photo.data)).mode in {"RGB", "L"}


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n", "pdf"),
        (b"<html><script>alert(1)</script></html>", "html renamed .jpg"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "gif"),
        (b"\x00" * 64, "zeros"),
    ],
)
def test_something_that_is_not_a_jpeg_png_or_webp_is_refused_naming_the_field(settings_env, data, what):
    with pytest.raises(Invalid) as refused:
        photos.clean(data, field="photo3")
    assert refused.value.detail["field"] == "photo3", what
    assert "photo3" in refused.value.message and "JPEG" in refused.value.message


def test_a_real_gif_or_bmp_image_is_refused(settings_env):
    for fmt in ("GIF", "BMP", "TIFF"):
        out = BytesIO()
        Image.new("RGB", (4, 4)).save(out, fmt)
        with pytest.raises(Invalid, match="not a JPEG, PNG or WebP"):
            photos.clean(out.getvalue())


def test_an_empty_photo_is_refused(settings_env):
    with pytest.raises(Invalid) as refused:
        photos.clean(b"")
    assert refused.value.detail == {"field": "photo"}


def test_an_oversized_photo_is_refused_naming_the_limit(settings_env):
    limit = get_settings().participation_photo_bytes
    with pytest.raises(TooLarge) as refused:
        photos.clean(b"\xff\xd8\xff\xe0" + b"\x00" * limit, field="photo1")
    assert refused.value.detail["field"] == "photo1"
    assert refused.value.detail["limit_bytes"] == limit
    assert f"{limit:,}" in refused.value.message


def test_a_truncated_image_is_refused(settings_env):
    out = BytesIO()
    _noise((200, 150)).save(out, "JPEG", quality=95)
    whole = out.getvalue()
    photos.clean(whole)  # the whole file is fine
    with pytest.raises(Invalid, match="damaged or incomplete") as refused:
        photos.clean(whole[: len(whole) // 2])
    assert refused.value.detail == {"field": "photo"}
    png = BytesIO()
    _noise((100, 100)).save(png, "PNG")
    with pytest.raises(Invalid, match="damaged or incomplete"):
        photos.clean(png.getvalue()[:-400])


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (9_000, 9_000), (20_000, 10)])
def test_a_decompression_bomb_header_is_refused_before_decoding(settings_env, width, height):
    with pytest.raises(Invalid) as refused:
        photos.clean(_png_claiming(width, height), field="photo1")
    assert refused.value.detail["field"] == "photo1"
    # refused for its size, not because decoding ran out of data
    assert "damaged" not in refused.value.message
    assert "pixels" in refused.value.message or "far larger" in refused.value.message


def test_a_large_photo_is_scaled_down_for_storage(settings_env):
    out = BytesIO()
    Image.new("RGB", (photos.STORED_MAX_SIDE * 2, 1000), (1, 2, 3)).save(out, "JPEG")
    photo = photos.clean(out.getvalue())
    assert photo.width == photos.STORED_MAX_SIDE and photo.height == 500


def _request(pw: ParticipationWorld) -> Request:
    now = clock.now()
    row = Request(
        category_id=pw.categories["streetlight"].id,
        description="lamp out",
        token=secrets.token_hex(16),
        requested_at=now,
        updated_at=now,
        address="1号楼",
    )
    pw.session.add(row)
    pw.session.flush()
    return row


def test_store_writes_the_clean_copy_atomically_and_adds_the_row(pw: ParticipationWorld):
    request = _request(pw)
    original = _jpeg_with_gps()

    first = photos.store(session=pw.session, request_id=request.id, data=original)
    again = photos.store(session=pw.session, request_id=request.id, data=original)

    path = photos.path_of(first)
    assert path == get_settings().data_dir / "media" / "participation" / f"{first.sha256}.jpg"
    stored = path.read_bytes()
    assert b"SpyCam" not in stored and not Image.open(path).getexif()
    assert first.size == len(stored) and (first.width, first.height) == (20, 40)
    assert first.content_type == "image/jpeg" and first.request_id == request.id
    assert again.sha256 == first.sha256 and again.id != first.id
    assert not list(path.parent.glob("*.tmp")), "no temporary file is left behind"
    assert [p.id for p in photos.list_photos(session=pw.session, request_id=request.id)] == [
        first.id,
        again.id,
    ]
    assert photos.get_photo(session=pw.session, photo_id=first.id) is first


def test_store_refuses_a_bad_photo_and_writes_nothing(pw: ParticipationWorld):
    request = _request(pw)
    folder = photos.media_dir()
    before = set(folder.glob("*")) if folder.exists() else set()
    with pytest.raises(Invalid):
        photos.store(session=pw.session, request_id=request.id, data=b"<svg onload=alert(1)>", field="photo2")
    assert pw.session.query(Photo).count() == 0
    assert (set(folder.glob("*")) if folder.exists() else set()) == before


def test_an_unknown_photo_is_not_found(pw: ParticipationWorld):
    with pytest.raises(NotFound):
        photos.get_photo(session=pw.session, photo_id=999)
