"""What an uploaded photo becomes: decoded whole by Pillow off the IOLoop, turned upright, every piece of
metadata dropped, at most 512 px, JPEG when opaque and PNG when see-through; anything else a 422 that
stores nothing. Every image here is made in the test with Pillow and sent through HTTP."""

import asyncio
import io
import resource
import struct
import threading

import pytest
from bson import ObjectId
from PIL import Image, ImageCms
from PIL.PngImagePlugin import PngInfo

from services import photos as photos_service
from settings import Settings, SettingsError
from tests.helpers import error_fields
from tests.users_fixtures import (
    BLUE,
    PNG_SIGNATURE,
    RED,
    camera_jpeg,
    encoded,
    jpeg_markers,
    opened,
    photo_form,
    png_bomb,
    sign_up,
    stored,
)

NOT_AN_IMAGE = {"file": "must be a JPEG, PNG, WebP or GIF image"}
TOO_MANY_PIXELS = {"file": "must be at most 40000000 pixels (width × height)"}
GREEN = (0, 255, 0)
# What a JPEG of these photos may carry before its pixels: JFIF (APP0), quantisation and Huffman
# tables, the frame header. No APP1 (EXIF, XMP), APP2 (ICC), APP13 (IPTC) or COM (comment).
PIXELS_ONLY = {0xE0, 0xDB, 0xC4, 0xC0}


async def upload(api, account, data: bytes, **fields):
    return await api.put(f"/users/{account.id}", token=account.token, **photo_form(data, **fields))


async def served_sizes(api, account, data: bytes) -> dict:
    """Upload data; every size as served on the public URL, by size."""
    response = await upload(api, account, data)
    assert response.code == 200, response
    url = response.json["profilePhotoUrl"]
    out = {}
    for size in (64, 128, 256, 512):
        served = await api.get(f"{url}&size={size}")
        assert served.code == 200
        out[size] = served
    return out


def close_to(colour, expected, slack: int = 40) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(colour, expected, strict=False))


@pytest.mark.gen_test(timeout=60)
async def test_a_camera_photo_comes_back_small_upright_and_without_metadata(api, store):
    ada = await sign_up(api)
    original = camera_jpeg()  # 4000x3000 stored sideways, red where its top-left quadrant is
    assert b"SpyCam" in original and jpeg_markers(original).count(0xE1) == 2
    for size, served in (await served_sizes(api, ada, original)).items():
        assert served.headers["Content-Type"] == "image/jpeg"
        picture = opened(served.body)
        assert picture.format == "JPEG" and picture.mode == "RGB"
        # Turned 90 degrees clockwise, as orientation 6 says: portrait now, the red quadrant top right.
        assert picture.size == (size * 3 // 4, size), size
        width, height = picture.size
        assert close_to(picture.getpixel((width * 3 // 4, height // 4)), RED)
        for x, y in ((width // 4, height // 4), (width // 4, height * 3 // 4), (width * 3 // 4, height * 3 // 4)):
            assert close_to(picture.getpixel((x, y)), BLUE), (size, x, y)
        assert len(picture.getexif()) == 0
        assert not {"exif", "xmp", "icc_profile", "comment", "XML:com.adobe.xmp"} & set(picture.info)
        assert set(jpeg_markers(served.body)) <= PIXELS_ONLY
        for secret in (b"Exif", b"SpyCam", b"SERIAL-0042", b"SECRET-XMP", b"taken at home", b"http://ns.adobe"):
            assert secret not in served.body
    # Nothing of the upload is kept beside the renditions: no original bytes, no metadata.
    photo = await store.photos.find_one({"_id": ObjectId(ada.id)})
    assert set(photo) == {"_id", "version", "contentType", "updatedAt", "renditions"}
    assert all(set(r) == {"data", "width", "height"} for r in photo["renditions"].values())
    assert max(len(r["data"]) for r in photo["renditions"].values()) < 100_000


@pytest.mark.gen_test(timeout=30)
async def test_transparency_is_kept_and_png_text_dropped(api):
    ada = await sign_up(api)
    image = Image.new("RGBA", (600, 300), (0, 0, 0, 0))
    image.paste((0, 255, 0, 255), (300, 0, 600, 300))
    text = PngInfo()
    text.add_text("Author", "SECRET-AUTHOR")
    text.add_text("Location", "SECRET-PLACE", zip=True)
    for size, served in (await served_sizes(api, ada, encoded(image, "PNG", pnginfo=text))).items():
        assert served.headers["Content-Type"] == "image/png"
        picture = opened(served.body)
        assert picture.format == "PNG" and picture.mode == "RGBA" and picture.size == (size, size // 2)
        assert picture.getpixel((size // 8, size // 4))[3] == 0  # see-through stays see-through
        assert picture.getpixel((size * 7 // 8, size // 4)) == (0, 255, 0, 255)
        assert not {"Author", "Location", "exif", "icc_profile"} & set(picture.info)
        assert b"SECRET" not in served.body and b"tEXt" not in served.body and b"zTXt" not in served.body
    # A profile that cannot be applied is dropped all the same (the PNG encoder would copy it over).
    served = (await served_sizes(api, ada, encoded(image, "PNG", icc_profile=b"not a profile")))[512]
    assert "icc_profile" not in opened(served.body).info and b"iCCP" not in served.body


@pytest.mark.gen_test(timeout=30)
async def test_see_through_palettes_stay_see_through_and_unused_alpha_becomes_a_jpeg(api):
    ada = await sign_up(api)
    palette = Image.new("P", (80, 40), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0])
    palette.paste(1, (40, 0, 80, 40))
    for data in (encoded(palette, "GIF", transparency=0), encoded(palette, "PNG", transparency=0)):
        served = (await served_sizes(api, ada, data))[512]
        picture = opened(served.body)
        assert served.headers["Content-Type"] == "image/png" and picture.mode == "RGBA"
        assert picture.getpixel((10, 10))[3] == 0 and picture.getpixel((70, 10)) == (255, 0, 0, 255)
    opaque = Image.new("RGBA", (80, 40), (255, 0, 0, 255))
    served = (await served_sizes(api, ada, encoded(opaque, "PNG")))[512]
    assert served.headers["Content-Type"] == "image/jpeg" and opened(served.body).mode == "RGB"


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("image_format", ["GIF", "WEBP", "PNG"])
async def test_an_animation_keeps_its_first_frame(api, image_format):
    ada = await sign_up(api)
    red, green, blue = (Image.new("RGB", (100, 80), colour) for colour in (RED, GREEN, BLUE))
    data = encoded(red, image_format, save_all=True, append_images=[green, blue], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    served = (await served_sizes(api, ada, data))[512]
    picture = opened(served.body)
    assert served.headers["Content-Type"] == "image/jpeg" and getattr(picture, "n_frames", 1) == 1
    assert picture.size == (100, 80) and close_to(picture.getpixel((50, 40)), RED)


@pytest.mark.gen_test(timeout=30)
async def test_other_modes_and_formats_are_redrawn_as_they_look(api):
    ada = await sign_up(api)
    grey16 = Image.new("I;16", (60, 40), 32768)
    cmyk = Image.new("CMYK", (60, 40), (0, 255, 255, 0))  # red in ink
    second = Image.new("RGB", (60, 40), BLUE)
    cases = [
        (encoded(Image.new("L", (60, 40), 128), "JPEG"), "L", lambda p: abs(p - 128) <= 3),
        (encoded(grey16, "PNG"), "L", lambda p: abs(p - 128) <= 3),
        (encoded(Image.new("1", (60, 40), 1), "PNG"), "RGB", lambda p: close_to(p, (255, 255, 255))),
        (encoded(cmyk, "JPEG"), "RGB", lambda p: close_to(p, RED)),
        (encoded(Image.new("RGB", (60, 40), RED), "WEBP"), "RGB", lambda p: close_to(p, RED)),
        # A phone's Multi-Picture JPEG: the first picture.
        (
            encoded(Image.new("RGB", (60, 40), RED), "MPO", save_all=True, append_images=[second]),
            "RGB",
            lambda p: close_to(p, RED),
        ),
        # A profile that cannot be read: the pixels kept, the profile dropped.
        (
            encoded(Image.new("RGB", (60, 40), RED), "JPEG", icc_profile=b"not a profile"),
            "RGB",
            lambda p: close_to(p, RED),
        ),
    ]
    for data, mode, looks_right in cases:
        served = (await served_sizes(api, ada, data))[512]
        picture = opened(served.body)
        assert served.headers["Content-Type"] == "image/jpeg" and picture.mode == mode, mode
        assert picture.size == (60, 40) and looks_right(picture.getpixel((30, 20))), (mode, picture.getpixel((30, 20)))
        assert "icc_profile" not in picture.info


def swapped_primaries_profile() -> bytes:
    """Pillow's sRGB profile with the red and green primaries swapped: under it, stored (255, 0, 0) is green."""
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    entries = {}
    for index in range(struct.unpack(">I", profile[128:132])[0]):
        signature, offset, size = struct.unpack(">4sII", profile[132 + 12 * index : 144 + 12 * index])
        entries[signature] = (index, offset, size)
    (red_index, *red), (green_index, *green) = entries[b"rXYZ"], entries[b"gXYZ"]
    struct.pack_into(">4sII", profile, 132 + 12 * red_index, b"rXYZ", *green)
    struct.pack_into(">4sII", profile, 132 + 12 * green_index, b"gXYZ", *red)
    profile[84:100] = bytes(16)  # the profile id (an MD5), now stale: zero means "not computed"
    return bytes(profile)


@pytest.mark.gen_test(timeout=30)
async def test_a_colour_profile_is_applied_before_it_is_dropped(api):
    ada = await sign_up(api)
    # As a phone's Display P3 photo: the pixels mean what the profile says, and sRGB is what is served.
    data = encoded(Image.new("RGB", (60, 40), RED), "JPEG", quality=95, icc_profile=swapped_primaries_profile())
    picture = opened((await served_sizes(api, ada, data))[512].body)
    assert close_to(picture.getpixel((30, 20)), GREEN) and "icc_profile" not in picture.info


def truncated_jpeg() -> bytes:
    data = camera_jpeg(800, 600)
    return data[: len(data) // 2]


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize(
    "data, errors",
    [
        (PNG_SIGNATURE + b"<html><script>alert(document.cookie)</script></html>", NOT_AN_IMAGE),
        (PNG_SIGNATURE + encoded(Image.new("RGB", (8, 8)), "PNG")[8:-30], NOT_AN_IMAGE),  # no last chunks
        (b"\xff\xd8\xff\xe0" + b"<svg onload=alert(1)>", NOT_AN_IMAGE),
        (b"GIF89a<script>alert(1)</script>", NOT_AN_IMAGE),
        (b"RIFF\x1a\x00\x00\x00WEBPVP8 " + b"\x00" * 14, NOT_AN_IMAGE),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", NOT_AN_IMAGE),
        (encoded(Image.new("RGB", (8, 8)), "BMP"), NOT_AN_IMAGE),  # a real image, of a format not accepted
        (encoded(Image.new("RGB", (8, 8)), "TIFF"), NOT_AN_IMAGE),
        ("truncated", NOT_AN_IMAGE),
        ("bomb", TOO_MANY_PIXELS),
    ],
    ids=[
        "png-header-then-html",
        "png-cut-short",
        "jpeg-magic-then-svg",
        "gif-magic-then-script",
        "webp-header-only",
        "svg",
        "bmp",
        "tiff",
        "truncated-jpeg",
        "bomb-20000x20000",
    ],
)
async def test_anything_that_does_not_decode_whole_is_422_and_nothing_is_stored(api, services, store, data, errors):
    data = {"truncated": truncated_jpeg, "bomb": lambda: png_bomb(20000, 20000)}.get(data, lambda: data)()
    ada = await sign_up(api)
    kept = (await upload(api, ada, encoded(Image.new("RGB", (8, 8), RED), "PNG"))).json["profilePhotoUrl"]
    before_user = await stored(services, ada.id)
    before_photo = await store.photos.find_one({"_id": ObjectId(ada.id)})
    response = await upload(api, ada, data, name="Changed Name", filename="photo.jpg", content_type="image/jpeg")
    assert error_fields(response) == errors
    assert await stored(services, ada.id) == before_user  # the name not changed either
    assert await store.photos.find_one({"_id": ObjectId(ada.id)}) == before_photo
    assert await store.photos.count_documents({}) == 1
    assert (await api.get(kept)).code == 200


@pytest.mark.heavy
@pytest.mark.gen_test(timeout=60)
async def test_a_bomb_under_pillows_own_limit_is_refused_from_its_header_without_decoding(api, services, store):
    ada = await sign_up(api)
    bomb = png_bomb(7000, 6000, rgb=True)  # 42 Mpx: 120 kB that Pillow would decode into 168 MB
    assert len(bomb) < 200_000 and 7000 * 6000 < Image.MAX_IMAGE_PIXELS
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, the process's high-water mark
    assert error_fields(await upload(api, ada, bomb)) == TOO_MANY_PIXELS
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 100 * 1024
    assert await store.photos.count_documents({}) == 0
    assert "photoVersion" not in await stored(services, ada.id)


@pytest.mark.parametrize("value", ["9999", "80000001", "lots"])
def test_max_photo_pixels_is_bounded_below_pillows_own_bomb_guard(value):
    assert Settings.from_env({}).max_photo_pixels == 40_000_000
    assert Settings.from_env({"MAX_PHOTO_PIXELS": "80000000"}).max_photo_pixels < Image.MAX_IMAGE_PIXELS
    with pytest.raises(SettingsError, match="MAX_PHOTO_PIXELS"):
        Settings.from_env({"MAX_PHOTO_PIXELS": value})


class TestMaxPhotoPixels:
    @pytest.fixture
    def settings_env(self):
        return {"MAX_PHOTO_PIXELS": "1000000"}

    @pytest.mark.gen_test(timeout=30)
    async def test_the_setting_is_the_limit(self, api, services):
        ada = await sign_up(api)
        assert (await upload(api, ada, encoded(Image.new("RGB", (1000, 1000)), "PNG"))).code == 200
        assert error_fields(await upload(api, ada, encoded(Image.new("RGB", (1001, 1000)), "PNG"))) == {
            "file": "must be at most 1000000 pixels (width × height)"
        }
        assert error_fields(await upload(api, ada, png_bomb(1000, 1001))) == {
            "file": "must be at most 1000000 pixels (width × height)"
        }


@pytest.mark.gen_test(timeout=60)
async def test_decoding_runs_in_the_executor_while_the_ioloop_answers(api, services, monkeypatch):
    ada = await sign_up(api)
    real_process = photos_service.process
    started, release = threading.Event(), threading.Event()
    threads = []

    def held_process(*args):
        # The real work, held until the test has seen the IOLoop answer. Were it run on the IOLoop, the
        # wait would block /health and the test would fail when it runs out, not hang.
        threads.append(threading.current_thread().name)
        started.set()
        release.wait(20)
        return real_process(*args)

    monkeypatch.setattr(photos_service, "process", held_process)
    uploading = asyncio.ensure_future(upload(api, ada, camera_jpeg()))
    while not started.is_set():
        await asyncio.sleep(0.01)
    health = await api.get("/health")
    assert health.code == 200 and not uploading.done() and not release.is_set()
    release.set()
    response = await uploading
    assert response.code == 200, response
    assert len(threads) == 1 and threads[0].startswith("cpu_"), threads
    assert opened((await api.get(response.json["profilePhotoUrl"])).body).size == (384, 512)
