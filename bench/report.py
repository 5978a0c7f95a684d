"""Turning measures into the table (markdown) and the profile summaries."""

import re
import statistics

from abuse import abuse_rows
from system import NOISY


def combine_slices(parts: list) -> dict:
    """One result from interleaved slices: throughput from all requests over all the time; latency
    percentiles are the median of the slices' (wrk gives percentiles, not histograms), max the max."""
    requests = sum(p["requests"] for p in parts)  # the successful answers only (bench/load.py)
    seconds = sum(p["seconds"] for p in parts)
    errors = {key: sum(p["errors"][key] for p in parts) for key in parts[0]["errors"]}

    def median(key):
        return round(statistics.median(p[key] for p in parts), 2)

    return {
        "requests": requests,
        "answers": sum(p["answers"] for p in parts),
        "seconds": round(seconds, 3),
        "rps": round(requests / seconds, 1),
        "connections": parts[0]["connections"],
        "p50_ms": median("p50_ms"),
        "p90_ms": median("p90_ms"),
        "p99_ms": median("p99_ms"),
        "max_ms": max(p["max_ms"] for p in parts),
        "mean_ms": round(sum(p["mean_ms"] * p["requests"] for p in parts) / max(1, requests), 2),
        "errors": errors,
        "failed": sum(p["failed"] for p in parts),
        "other_cpu_share": round(statistics.mean(p["other_cpu_share"] for p in parts), 3),
        "slices": [p["rps"] for p in parts],
    }


def summarise_profile(path: str, top: int = 25) -> dict:
    """The functions py-spy saw most, by own time and by time including callees, from its raw output."""
    own, inclusive, total = {}, {}, 0
    with open(path) as raw:
        for line in raw:
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack or not count.isdigit():
                continue
            count = int(count)
            total += count
            # "function (file.py:123)" -> "function (file.py)": one entry per function, whatever the line.
            frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
            own[frames[-1]] = own.get(frames[-1], 0) + count
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + count

    def ranked(counts):
        best = sorted(counts.items(), key=lambda item: -item[1])
        return [{"function": name, "percent": round(100 * n / total, 1)} for name, n in best[:top]]

    if not total:
        return {"samples": 0, "own": [], "inclusive": []}
    # The frames every sample passes through (run.py, the event loop, the thread pool) say nothing.
    plumbing = ("(asyncio/", "(threading.py)", "(concurrent/futures/", "(run.py)", "<module>")
    deep = {name: n for name, n in inclusive.items() if not any(p in name for p in plumbing)}
    return {"samples": total, "own": ranked(own), "inclusive": ranked(deep)}


# ---- the table ----------------------------------------------------------------------------------


def rows(result: dict) -> list:
    raw, bcrypt = result["raw"], result["bcrypt"]
    n_users = result["settings"]["users"]
    out = []

    def latency(r):
        return f"p50 {r['p50_ms']:g} ms, p99 {r['p99_ms']:g} ms"

    def add(measure, value, baseline=None, ratio=None, target=None, met=None, key=None, **extra):
        row = {
            "measure": measure,
            "value": value,
            "baseline": baseline,
            "ratio": ratio,
            "target": target,
            "met": met,
            "key": key,
        }
        row.update(extra)
        out.append(row)

    def rps_row(key, measure, baseline_key=None, target_ratio=None, target_text=None):
        r = raw.get(key)
        if r is None:
            if result["service"]:  # {} with --only-scale, None with --only-photos
                add(measure, None, target=target_text, key=key, skipped=True)
            return
        base = raw.get(baseline_key) if baseline_key else None
        ratio = round(r["rps"] / base["rps"], 3) if base else None
        met = None
        if target_ratio is not None and ratio is not None:
            met = ratio >= target_ratio and not r["failed"]
        add(
            measure,
            r["rps"],
            base["rps"] if base else None,
            ratio,
            target_text,
            met,
            key=key,
            unit="req/s",
            p50_ms=r["p50_ms"],
            p99_ms=r["p99_ms"],
            failed=r["failed"],
            latency=latency(r),
            baseline_latency=latency(base) if base else None,
            noise=max(r.get("other_cpu_share", 0), base.get("other_cpu_share", 0) if base else 0),
        )

    rps_row("bare", 'bare baseline: Tornado writing {"status": "ok"}, req/s', target_text="baseline")
    rps_row(
        "minimal",
        f"minimal baseline: JWT + session + user via Motor, user JSON ({n_users} users), req/s",
        target_text="baseline",
    )
    rps_row("health", "GET /health, req/s", "bare", 0.70, "≥ 70% of bare")
    rps_row("users_user", "GET /users/user (bearer), req/s", "minimal", 0.75, "≥ 75% of minimal")
    rps_row("organisations", "GET /api/organisations (bearer), req/s", target_text="reported")
    rps_row("users_list", "GET /users?limit=10 (admin), req/s", target_text="reported")
    rps_row("refresh", "POST /auth/refresh-tokens, req/s", target_text="reported")

    if bcrypt:
        add(
            f"bcrypt cost {bcrypt['rounds']}, one check (this process, median)",
            round(bcrypt["seconds"] * 1000, 1),
            target="reported",
            key="bcrypt",
            unit="ms",
        )
        add(
            f"bcrypt cost {bcrypt['rounds']}, {bcrypt['cores']} threads in one process, checks/s",
            bcrypt["parallel_per_s"],
            bcrypt["ceiling_per_s"],
            round(bcrypt["parallel_per_s"] / bcrypt["ceiling_per_s"], 3),
            "reported (what the cores deliver together)",
            key="bcrypt_parallel",
            unit="checks/s",
        )
    login = raw.get("login")
    if login:
        ceiling = bcrypt["ceiling_per_s"]
        ratio = round(login["rps"] / ceiling, 3)
        add(
            f"POST /auth/login at BCRYPT_ROUNDS={bcrypt['rounds']}, logins/s",
            login["rps"],
            ceiling,
            ratio,
            f"≥ 80% of the bcrypt ceiling ({bcrypt['cores']} cores ÷ {bcrypt['seconds'] * 1000:.0f} ms)",
            ratio >= 0.80 and not login["failed"],
            key="login",
            unit="logins/s",
            p50_ms=login["p50_ms"],
            p99_ms=login["p99_ms"],
            failed=login["failed"],
            latency=latency(login),
            noise=login.get("other_cpu_share", 0),
        )
    probe = raw.get("health_under_logins")
    if probe:
        logins = raw["logins_during_probe"]
        add(
            f"GET /health p99 while {logins['connections']} logins run concurrently, ms",
            probe["p99_ms"],
            target="≤ 20 ms",
            met=probe["p99_ms"] <= 20 and not probe["failed"],
            key="health_under_logins",
            unit="ms",
            p50_ms=probe["p50_ms"],
            max_ms=probe["max_ms"],
            failed=probe["failed"],
            latency=f"p50 {probe['p50_ms']:g} ms, max {probe['max_ms']:g} ms; {logins['rps']:g} logins/s meanwhile",
            noise=probe.get("other_cpu_share", 0),
        )
    large = raw.get("users_user_large")
    if large:
        base = raw.get("users_user")
        add(
            f"GET /users/user with {result['settings']['large_users']:,} users seeded, req/s",
            large["rps"],
            base["rps"] if base else None,
            round(large["rps"] / base["rps"], 3) if base else None,
            f"reported (baseline: the same with {n_users} users)",
            key="users_user_large",
            unit="req/s",
            p50_ms=large["p50_ms"],
            p99_ms=large["p99_ms"],
            failed=large["failed"],
            latency=latency(large),
            noise=large.get("other_cpu_share", 0),
        )
    scale_rows(result, add, latency)
    if (result["service"] or {}).get("rss_mib") is not None:
        add(
            f"resident memory of the service after the run ({n_users} users), MiB",
            result["service"]["rss_mib"],
            target="reported",
            key="rss",
            unit="MiB",
        )
    if result.get("large") and result["large"].get("rss_mib") is not None:
        add(
            f"resident memory with {result['large']['users']:,} users, MiB",
            result["large"]["rss_mib"],
            target="reported",
            key="rss_large",
            unit="MiB",
        )
    photo_rows(result, add)
    abuse_rows(result, add)
    return out


def scale_rows(result: dict, add, latency) -> None:
    """The embedded store at each size, each read compared with the same read at the smallest size."""
    raw, sizes = result["raw"], result["settings"].get("scale") or []
    for key, path in (("users_user", "GET /users/user"), ("organisations", "GET /api/organisations")):
        smallest = raw.get(f"scale_{key}_{sizes[0]}") if sizes else None
        for size in sizes:
            r = raw.get(f"scale_{key}_{size}")
            if r is None:
                continue
            ratio = round(r["rps"] / smallest["rps"], 3) if smallest and smallest["rps"] else None
            alone = raw.get(f"solo_{key}_{size}")
            text = latency(r) if r["requests"] else "no request finished within wrk's run"
            if alone:
                text += f"; one request alone {alone['median_ms']:g} ms"
            add(
                f"{path}, embedded store with {size:,} user{'s' if size != 1 else ''}, req/s",
                r["rps"],
                smallest["rps"] if smallest else None,
                ratio,
                f"reported (baseline: {sizes[0]:,} user{'s' if sizes[0] != 1 else ''})",
                key=f"scale_{key}_{size}",
                unit="req/s",
                p50_ms=r["p50_ms"],
                p99_ms=r["p99_ms"],
                failed=r["failed"],
                latency=text,
                noise=r.get("other_cpu_share", 0),
            )


def photo_rows(result: dict, add) -> None:
    """The rows of bench/photos.py's measures, when they ran."""
    raw, photos = result["raw"], result.get("photos")
    upload = raw.get("photo_upload")
    if not upload:
        return
    size = f"{photos['photo_bytes'] / 1e6:.1f} MB 4000x3000 JPEG"
    add(
        f"PUT /users/:id with a {size}, one at a time, ms",
        upload["p50_ms"],
        target="p50 ≤ 250 ms",
        met=upload["p50_ms"] <= 250,
        key="photo_upload",
        unit="ms",
        latency=f"p90 {upload['p90_ms']:g} ms, max {upload['max_ms']:g} ms, {upload['count']} uploads",
        noise=upload.get("other_cpu_share", 0),
    )
    add(
        "peak resident memory above idle during those uploads, MiB",
        upload["rss_above_idle_mib"],
        target="≤ 120 MiB",
        met=upload["rss_above_idle_mib"] <= 120,
        key="photo_rss",
        unit="MiB",
        latency=f"idle {photos['idle_rss_mib']:g} MiB, peak {upload['peak_rss_mib']:g} MiB",
    )
    alone = raw.get("health_before_uploads")
    if alone:
        add(
            "GET /health p99 just before, nothing else running in the service, ms",
            alone["p99_ms"],
            target="reported (what the machine gives)",
            key="health_before_uploads",
            unit="ms",
            latency=f"p50 {alone['p50_ms']:g} ms, max {alone['max_ms']:g} ms",
            noise=alone.get("other_cpu_share", 0),
        )
    probe, uploads = raw.get("health_under_uploads"), raw.get("uploads_during_probe")
    if probe:
        add(
            f"GET /health p99 while {uploads['clients']} photo uploads run concurrently, ms",
            probe["p99_ms"],
            target="≤ 20 ms",
            met=probe["p99_ms"] <= 20 and not probe["failed"] and not uploads["failures"],
            key="health_under_uploads",
            unit="ms",
            failed=probe["failed"] + len(uploads["failures"]),
            latency=f"p50 {probe['p50_ms']:g} ms, max {probe['max_ms']:g} ms; {uploads['uploads_per_s']:g} "
            f"uploads/s meanwhile, upload p50 {uploads['p50_ms']:g} ms",
            noise=probe.get("other_cpu_share", 0),
        )
        add(
            f"peak resident memory above idle while {uploads['clients']} uploads run, MiB",
            uploads["rss_above_idle_mib"],
            target="reported",
            key="photo_rss_concurrent",
            unit="MiB",
            latency=f"peak {uploads['peak_rss_mib']:g} MiB",
        )


def fmt_number(value, unit=None) -> str:
    if value is None:
        return "–"
    if unit in ("req/s", "logins/s") and value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"


def markdown(result: dict, table_rows: list) -> str:
    m = result["machine"]
    lines = [
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, {m['os']}; Python {m['python']}, "
        f"Tornado {m['tornado']}, {m['wrk']}; commit {m['commit'] or 'unknown'}; {result['generated_at']}. "
        f"wrk -t1, {result['settings']['connections']} connections, {result['settings']['duration_s']:g} s per measure "
        f"(each baseline interleaved with its measure in {result['settings']['slices']} slices). "
        f"Other processes used {result['noise']['other_cpu_share']:.0%} of the machine during the run."
        + (
            f" Embedded-store scaling: {result['settings'].get('scale_duration_s')} s per measure, "
            f"{result['settings']['connections']} seeded users logged in (all of them in a smaller store)."
            if result["settings"].get("scale")
            else ""
        ),
        "",
        "| measure | value | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in table_rows:
        if row.get("skipped"):
            lines.append(f"| {row['measure']} | not measured (route not present) | – | – | {row['target']} | – |")
            continue
        value = f"{fmt_number(row['value'], row.get('unit'))} {row.get('unit', '')}".strip()
        if row.get("latency"):
            value += f" ({row['latency']})"
        if row.get("failed"):
            value += f", **{row['failed']} failed**"
        if row.get("noise", 0) > NOISY:
            value += f", other processes took {row['noise']:.0%} of the machine meanwhile"
        baseline = fmt_number(row["baseline"], row.get("unit"))
        ratio = f"{row['ratio'] * 100:.1f}%" if row["ratio"] is not None else "–"
        met = "–" if row["met"] is None else ("yes" if row["met"] else "**no**")
        lines.append(f"| {row['measure']} | {value} | {baseline} | {ratio} | {row['target'] or '–'} | {met} |")
    if result["notes"]:
        lines += ["", "Notes: " + "; ".join(result["notes"])]
    return "\n".join(lines) + "\n"
