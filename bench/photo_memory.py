"""What one photo's processing costs in memory: python bench/photo_memory.py [--json]

Each case runs in a fresh process of its own (so one case's heap never flatters the next): it crafts a PNG with
zlib (never allocated as an image), resets the kernel's peak-RSS mark (/proc/self/clear_refs), runs
services.photos' processing as the service's executor does, and reports, in MiB: the resident memory before
(idle), the peak above idle (VmHWM - idle), and what is still resident above idle after, without and with
malloc_trim. bench/run.py reports the largest accepted photo's row from the running service; docs/using/photos.md
keeps these figures.
"""

import argparse
import json
import os
import struct
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1024 * 1024
SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 6: 4}  # PNG colour type -> samples a pixel

# The largest images MAX_PHOTO_DECODE_BYTES (128 MiB) accepts, at 4 bytes a pixel as Pillow holds RGB(A):
# 5792 x 5792 = 33.5 Mpx; and the red team's 16-bit RGBA 6300 x 6300 (refused now: 8 bytes a pixel).
CASES = {
    "rgba8-5792": (5792, 5792, 8, 6),
    "rgb8-5792": (5792, 5792, 8, 2),
    "rgba16-4096": (4096, 4096, 16, 6),
    "rgba16-6300": (6300, 6300, 16, 6),
}


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def crafted_png(width: int, height: int, bit_depth: int, colour_type: int) -> bytes:
    """A complete PNG of width x height with a soft diagonal pattern (so the pixels are not all alike, and the
    alpha is partly see-through), built row by row with zlib."""
    sample = bit_depth // 8
    packer = zlib.compressobj(6)
    pieces = []
    for y in range(height):
        value = (y * 255 // max(1, height - 1)).to_bytes(1, "big") * sample
        pixel = value * CHANNELS[colour_type]
        pieces.append(packer.compress(b"\x00" + pixel * width))
    pieces.append(packer.flush())
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(pieces)) + chunk(b"IEND", b"")


def status_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def one(case: str, trim: bool) -> dict:
    """Run in the child: measure one case."""
    sys.path.insert(0, ROOT)
    from services import photos
    from settings import Settings

    settings = Settings.from_env({})
    data = crafted_png(*CASES[case])
    photos.process(crafted_png(64, 64, 8, 6), settings.max_photo_pixels, settings.max_photo_decode_bytes)  # warm
    photos.give_back_memory()
    idle = status_mib("VmRSS")
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM to the current RSS
    outcome = "accepted"
    # In a worker thread, as the service's executor runs it: glibc gives each thread's heap an arena of its own,
    # and what an arena keeps is what stayed resident in the service.
    run = photos.process_and_trim if trim else photos.process
    with ThreadPoolExecutor(1) as pool:
        try:
            pool.submit(run, data, settings.max_photo_pixels, settings.max_photo_decode_bytes).result()
        except photos.ApiError as error:
            outcome = f"refused {error.status}"
    peak = status_mib("VmHWM")
    return {
        "case": case,
        "file_kib": round(len(data) / 1024),
        "outcome": outcome,
        "idle_mib": round(idle, 1),
        "peak_above_idle_mib": round(peak - idle, 1),
        "after_above_idle_mib": round(status_mib("VmRSS") - idle, 1),
        "trimmed": trim,
    }


def measure(case: str, trim: bool = True) -> dict:
    """One case in a fresh Python process."""
    output = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--one", case] + ([] if trim else ["--no-trim"]),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", choices=sorted(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--no-trim", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    options = parser.parse_args()
    if options.one:
        print(json.dumps(one(options.one, not options.no_trim)))
        return 0
    results = [(measure(case, trim=False), measure(case)) for case in CASES]
    if options.json:
        for untrimmed, trimmed in results:
            print(json.dumps({**trimmed, "after_above_idle_untrimmed_mib": untrimmed["after_above_idle_mib"]}))
        return 0
    print("| image | file | outcome | peak above idle | resident above idle after: as is → with malloc_trim |")
    print("|---|---|---|---|---|")
    for untrimmed, r in results:
        print(
            f"| {r['case']} | {r['file_kib']} KiB | {r['outcome']} | {r['peak_above_idle_mib']} MiB "
            f"| {untrimmed['after_above_idle_mib']} → {r['after_above_idle_mib']} MiB |"
        )
    print(f"idle RSS {results[0][1]['idle_mib']} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
