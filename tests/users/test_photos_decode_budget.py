"""Found by the abuse review of many accounts from one address: photos under the pixel cap still ate memory. A 308 KB
16-bit RGBA PNG of 6300×6300 (39.7 Mpx, under MAX_PHOTO_PIXELS) was accepted, and the process's peak memory went from 59
MB to 581 MB.

Now the decoded size (width × height × bytes per pixel, from the header: 16-bit RGBA is 8 bytes a pixel) is
checked against MAX_PHOTO_DECODE_BYTES before a single pixel is decoded, and decodes run one at a time.
"""

import asyncio
import struct
import threading
import time
import zlib

import pytest
from PIL import ImageFile

from services import photos as photos_service
from settings import MIB, Settings, SettingsError
from tests.helpers import error_fields, sign_up
from tests.users_fixtures import PNG_SIGNATURE, opened, photo_form, png_chunk, stored

TOO_LARGE_DECODED = {"file": "must decode to at most 128 MiB (width × height × bytes per pixel)"}
RGBA, GREY = 6, 0


def png(width: int, height: int, bit_depth: int, colour_type: int, rows: bool = True) -> bytes:
    """A PNG crafted with zlib, never allocated as an image: complete (every row, zeros: see-through black) or,
    with rows=False, a header followed by an empty IDAT (what a decoder would fail on, if it ever ran)."""
    channels = {GREY: 1, RGBA: 4}[colour_type]
    data = b""
    if rows:
        row = b"\x00" * (1 + width * channels * bit_depth // 8)
        packer = zlib.compressobj(9)
        data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", data or zlib.compress(b""))
        + png_chunk(b"IEND", b"")
    )


def upload(api, account, data: bytes):
    return api.put(f"/users/{account.id}", token=account.token, **photo_form(data))


@pytest.fixture
def decodes(monkeypatch) -> list:
    """Each image Pillow decodes (its load still runs): a load with tiles left to read is a decode."""
    calls = []
    load = ImageFile.ImageFile.load

    def counted(image):
        if image.tile:
            calls.append(image.size)
        return load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counted)
    return calls


@pytest.mark.gen_test(timeout=30)
async def test_the_red_team_png_is_refused_from_its_header_before_decoding(api, services, store, decodes):
    ada = await sign_up(api)
    bomb = png(6300, 6300, 16, RGBA, rows=False)  # 39.7 Mpx claimed: 317 MB decoded at 8 bytes a pixel
    assert len(bomb) < 100 and 6300 * 6300 < services.settings.max_photo_pixels
    before = await stored(services, ada.id)
    response = await upload(api, ada, bomb)
    assert response.code == 422 and error_fields(response) == TOO_LARGE_DECODED
    assert decodes == []  # refused before Pillow decoded anything
    assert await stored(services, ada.id) == before
    assert await store.photos.count_documents({}) == 0


class TestTheBudgetIsTheSetting:
    """1 MiB: a 400×400 image decodes into 1.28 MB at 8 bytes a pixel (16-bit RGBA), 640 kB at 4 (8-bit RGBA)."""

    @pytest.fixture
    def settings_env(self):
        return {"MAX_PHOTO_DECODE_BYTES": str(MIB)}

    @pytest.mark.gen_test(timeout=30)
    async def test_the_header_s_bit_depth_counts(self, api, store, decodes):
        ada = await sign_up(api)
        refused = await upload(api, ada, png(400, 400, 16, RGBA))  # complete and valid: it would decode
        assert error_fields(refused) == {"file": "must decode to at most 1 MiB (width × height × bytes per pixel)"}
        assert decodes == [] and await store.photos.count_documents({}) == 0
        accepted = await upload(api, ada, png(400, 400, 8, RGBA))
        assert accepted.code == 200, accepted
        assert decodes == [(400, 400)]
        assert opened((await api.get(accepted.json["profilePhotoUrl"])).body).size == (400, 400)

    @pytest.mark.gen_test(timeout=30)
    async def test_an_8_bit_image_counts_as_pillow_holds_it(self, api, store):
        ada = await sign_up(api)
        # 16-bit grey is 2 bytes a pixel: 700×700 is 980 kB, under 1 MiB; 1-bit is held in a byte a pixel.
        assert (await upload(api, ada, png(700, 700, 16, GREY))).code == 200
        assert (await upload(api, ada, png(1000, 1000, 1, GREY))).code == 200
        assert error_fields(await upload(api, ada, png(1100, 1000, 1, GREY))) == {
            "file": "must decode to at most 1 MiB (width × height × bytes per pixel)"
        }


@pytest.mark.gen_test(timeout=30)
async def test_a_large_image_shrunk_in_strips_keeps_its_transparency_and_colours(api):
    # 4100×2050, left half see-through, right half opaque red: shrunk by 4 in strips, then to 512×256.
    width, height = 4100, 2050
    row = b"\x00" + b"\x00\x00\x00\x00" * (width // 2) + b"\xff\x00\x00\xff" * (width // 2)
    packer = zlib.compressobj(9)
    rows = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, RGBA, 0, 0, 0)
    data = PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")
    ada = await sign_up(api)
    response = await upload(api, ada, data)
    assert response.code == 200, response
    served = opened((await api.get(response.json["profilePhotoUrl"])).body)
    assert served.format == "PNG" and served.size == (512, 256)
    assert served.getpixel((10, 128))[3] == 0
    assert served.getpixel((500, 128)) == (255, 0, 0, 255)


@pytest.mark.gen_test(timeout=60)
async def test_decodes_run_one_at_a_time(api, services, monkeypatch):
    accounts = [await sign_up(api, f"user{n}@example.com") for n in range(2)]
    real_process = photos_service.process
    running, most, release = [0], [0], threading.Event()

    def held_process(*args):
        running[0] += 1
        most[0] = max(most[0], running[0])
        try:
            release.wait(20)
            return real_process(*args)
        finally:
            running[0] -= 1

    monkeypatch.setattr(photos_service, "process", held_process)
    uploads = [asyncio.ensure_future(upload(api, account, png(64, 64, 8, RGBA))) for account in accounts]
    deadline = time.monotonic() + 10
    while running[0] == 0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # time for the second upload to reach the executor, were it allowed to
    assert running[0] == 1
    release.set()
    assert [response.code for response in await asyncio.gather(*uploads)] == [200, 200]
    assert most[0] == 1
    for account in accounts:
        assert "photoVersion" in await stored(services, account.id)


def test_the_budget_has_a_default_and_bounds():
    assert Settings.from_env({}).max_photo_decode_bytes == 128 * MIB
    for bad in ("1000", str(1024 * MIB + 1), "big"):
        with pytest.raises(SettingsError, match="MAX_PHOTO_DECODE_BYTES"):
            Settings.from_env({"MAX_PHOTO_DECODE_BYTES": bad})
