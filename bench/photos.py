"""The photo measures of bench/run.py: what one upload costs, and what the IOLoop feels while 8 run.

A phone-like 4000x3000 JPEG of 3-5 MB (noise, so it does not compress away; EXIF orientation 6 and
GPS, as phones write them) is uploaded with PUT /users/:id as multipart:
  1. one at a time, --photo-uploads times: the upload's latency (p50, p90, max) and the service's
     peak resident memory above its idle level (VmHWM, reset before the phase: Linux's clear_refs);
  2. 8 clients uploading back to back for --duration seconds while wrk probes /health on 2
     connections (as health_under_logins does): /health p99, uploads/s, and the peak memory again.
The service runs at BCRYPT_ROUNDS=4: seeding only, the measures never hash.
"""

import http.client
import io
import os
import statistics
import threading
import time

import seed
from load import ErrorAnswers, parse_wrk, run_wrk, wrk_command
from system import WRK_DIR, NoiseWatch, rss_mib

CONCURRENT_UPLOADS = 8
BOUNDARY = "bench-photo-boundary-5c2a"


def camera_jpeg() -> bytes:
    """4000x3000 noise over a smooth colour field, JPEG quality 85 (about 4 MB), sideways with GPS."""
    from PIL import ExifTags, Image

    width, height = 4000, 3000
    field = Image.frombytes("RGB", (200, 150), os.urandom(200 * 150 * 3)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    grain = Image.merge("RGB", [Image.effect_noise((width, height), 60) for _ in range(3)])
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(
        {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (51.0, 30.0, 12.5)}
    )
    out = io.BytesIO()
    Image.blend(field, grain, 0.22).save(out, "JPEG", quality=85, exif=exif.tobytes())
    return out.getvalue()


def multipart_body(data: bytes) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="photo.jpg"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n".encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


class Uploader:
    """One keep-alive connection uploading one user's photo."""

    def __init__(self, port: int, user: dict, body: bytes):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.path = f"/users/{user['id']}"
        self.headers = {
            "Authorization": f"Bearer {user['access']}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        }
        self.body = body

    def upload(self) -> float:
        """Seconds one upload took; raises unless it was a 200."""
        started = time.perf_counter()
        self.connection.request("PUT", self.path, body=self.body, headers=self.headers)
        response = self.connection.getresponse()
        answer = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise seed.SeedError(f"PUT {self.path}: {response.status} {answer[:200]!r}")
        return elapsed

    def close(self) -> None:
        self.connection.close()


def reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux 4.0+, needs the rights to write clear_refs)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


class RssSampler:
    """The highest VmRSS seen every 5 ms: the fallback where VmHWM cannot be reset."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, rss_mib(pid), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mib(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


class PeakMemory:
    """The peak resident memory of a process during a `with` block."""

    def __init__(self, pid: int):
        self.pid = pid

    def __enter__(self):
        self.exact = reset_peak(self.pid)
        self.sampler = RssSampler(self.pid)
        return self

    def __exit__(self, *exc) -> None:
        sampled = self.sampler.stop()
        self.mib = max(sampled, rss_mib(self.pid, "VmHWM")) if self.exact else sampled


def percentile(values: list, fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def latency_ms(seconds: list) -> dict:
    ms = [s * 1000 for s in seconds]
    return {
        "count": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p90_ms": round(percentile(ms, 0.9), 1),
        "max_ms": round(max(ms), 1),
    }


def photo_run(bench) -> dict:
    """The photo measures on a service of their own; fills bench.raw["photo_*"] and returns the summary."""
    o = bench.o
    process, port = bench.start_service("photos", rounds=4)
    out = {"pid": process.pid}
    uploaders = []
    try:
        client = seed.Client(port)
        seed.login(client, seed.ADMIN_EMAIL, wait_seconds=30)  # the service is up and its indexes made
        users = seed.register_users(client, 9000, CONCURRENT_UPLOADS, concurrency=4)
        bench.say("making a 4000x3000 camera JPEG")
        photo = camera_jpeg()
        out["photo_bytes"] = len(photo)
        body = multipart_body(photo)
        uploaders = [Uploader(port, user, body) for user in users]
        time.sleep(1.0)
        idle = rss_mib(process.pid)
        out["idle_rss_mib"] = round(idle, 1)
        bench.say(
            f"measure photo_upload: {o.photo_uploads} uploads of {len(photo) / 1e6:.1f} MB, one at a time "
            f"(service idle at {idle:.0f} MiB)"
        )
        watch = NoiseWatch(process.pid)
        with PeakMemory(process.pid) as memory:
            times = [uploaders[0].upload() for _ in range(o.photo_uploads)]
        sequential = {
            **latency_ms(times),
            "peak_rss_mib": round(memory.mib, 1),
            "rss_above_idle_mib": round(memory.mib - idle, 1),
            "exact_peak": memory.exact,
            "other_cpu_share": watch.share(),
        }
        bench.raw["photo_upload"] = sequential
        print(
            f"  upload p50 {sequential['p50_ms']} ms, p90 {sequential['p90_ms']} ms, max {sequential['max_ms']} ms;"
            f" peak RSS {sequential['rss_above_idle_mib']} MiB above idle",
            flush=True,
        )
        health_alone(bench, f"http://127.0.0.1:{port}", process.pid)
        health_under_uploads(bench, f"http://127.0.0.1:{port}", uploaders, process.pid, idle)
        out["rss_mib"] = round(rss_mib(process.pid), 1)
    finally:
        for uploader in uploaders:
            uploader.close()
        out["exit_code"] = bench.processes.stop(process)
    return out


def health_alone(bench, base: str, pid: int) -> None:
    """/health probed exactly as below with no upload running: what the machine gives right now."""
    o = bench.o
    bench.say(f"measure health_before_uploads: /health probed by 2 connections for {o.duration} s, nothing else")
    watch = NoiseWatch(pid)
    probe = run_wrk(f"{base}/health", "probe.lua", [10], connections=2, duration=o.duration)
    probe["other_cpu_share"] = watch.share()
    bench.raw["health_before_uploads"] = probe
    print(f"  /health p50 {probe['p50_ms']} ms, p99 {probe['p99_ms']} ms, max {probe['max_ms']} ms", flush=True)


def health_under_uploads(bench, base: str, uploaders: list, pid: int, idle: float) -> None:
    o = bench.o
    bench.say(
        f"measure health_under_uploads: /health probed by 2 connections while {len(uploaders)} clients "
        f"upload back to back for {o.duration} s"
    )
    stop, times, failures = threading.Event(), [], []

    def keep_uploading(uploader: Uploader) -> None:
        while not stop.is_set():
            try:
                times.append(uploader.upload())
            except (seed.SeedError, OSError, http.client.HTTPException) as error:
                failures.append(repr(error))
                return

    watch = NoiseWatch(pid)
    started = time.monotonic()
    with PeakMemory(pid) as memory:
        threads = [threading.Thread(target=keep_uploading, args=(u,), daemon=True) for u in uploaders]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # every uploader has a request in flight
        probe_process = bench.processes.start(
            wrk_command(f"{base}/health", "probe.lua", [10], 2, o.duration, 10), cwd=WRK_DIR, capture=True
        )
        stdout, _ = probe_process.communicate(timeout=o.duration + 60)
        bench.processes.stop(probe_process)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    elapsed = time.monotonic() - started
    probe = parse_wrk(stdout, 2, f"{base}/health")
    probe["other_cpu_share"] = watch.share()
    uploads = {
        **latency_ms(times or [0.0]),
        "uploads_per_s": round(len(times) / elapsed, 2),
        "clients": len(uploaders),
        "failures": failures,
        "peak_rss_mib": round(memory.mib, 1),
        "rss_above_idle_mib": round(memory.mib - idle, 1),
        "exact_peak": memory.exact,
    }
    bench.raw["health_under_uploads"] = probe
    bench.raw["uploads_during_probe"] = uploads
    if failures:  # an upload refused is no upload done: the measure means nothing (bench/load.py)
        raise ErrorAnswers(f"health_under_uploads: {len(failures)} uploads failed: {failures[:3]}")
    print(
        f"  /health p50 {probe['p50_ms']} ms, p99 {probe['p99_ms']} ms, max {probe['max_ms']} ms; "
        f"uploads meanwhile {uploads['uploads_per_s']}/s (p50 {uploads['p50_ms']} ms), "
        f"peak RSS {uploads['rss_above_idle_mib']} MiB above idle",
        flush=True,
    )
