"""The acceptance lines printed after a real run of the suites: the targets set for the
connection core (bench_connection.py) and the pool (bench_pool.py), checked against the
medians they recorded."""

from __future__ import annotations

from typing import Any

from _suite import SIDE_BY_SIDE


def acceptance_report(results: dict[str, dict[str, Any]]) -> list[str]:
    """The connection's and the pool's targets, checked against ``results`` (keys as recorded
    by the suites: ``point_select/fastpool`` etc.; the ``side-by-side/...`` measurement of the
    same key is used when present). Lines for items whose data is missing are left out."""
    lines: list[str] = []

    def get(key: str, metric: str) -> float | None:
        # Prefer the side-by-side (interleaved) measurement when the run has one.
        entry = results.get(f"{SIDE_BY_SIDE}/{key}", results.get(key))
        return None if entry is None else entry.get(metric)

    def line(ok: bool, text: str) -> None:
        lines.append(f"[{'PASS' if ok else 'FAIL'}] {text}")

    if any(key.startswith(SIDE_BY_SIDE) for key in results):
        lines.append("(from the side-by-side tests where they ran: contestants interleaved)")

    fp, sq = get("point_select/fastpool", "ops_per_s"), get("point_select/sqlite3", "ops_per_s")
    if fp and sq:
        line(
            fp / sq >= 1.5,
            f"point select (Connection.fetchone vs sqlite3): {fp:,.0f} vs "
            f"{sq:,.0f} ops/s = {fp / sq:.2f}x (target >= 1.5x)",
        )

    # fastpool.dbapi against sqlite3, the same code on both (bench_dbapi.py).
    for key, what, target in (
        ("dbapi_point_select", "point select", 1.5),
        ("dbapi_fetchall_1000", "fetchall of 1,000 rows", 1.3),
    ):
        fp, sq = get(f"{key}/fastpool.dbapi", "ops_per_s"), get(f"{key}/sqlite3", "ops_per_s")
        if fp and sq:
            libraries = "SQLite {} vs {}".format(
                get(f"{key}/fastpool.dbapi", "sqlite"), get(f"{key}/sqlite3", "sqlite")
            )
            line(
                fp / sq >= target,
                f"{what} (fastpool.dbapi vs sqlite3, same code, {libraries}): {fp:,.0f} vs "
                f"{sq:,.0f} ops/s = {fp / sq:.2f}x (target >= {target}x)",
            )
    ours, theirs = (
        results.get("dbapi_rmw_8_threads/fastpool.dbapi"),
        results.get("dbapi_rmw_8_threads/sqlite3"),
    )
    if ours and theirs:
        line(
            ours["errors"] == 0 and ours["lost_updates"] == 0,
            f"8-thread BEGIN/SELECT/UPDATE/COMMIT: fastpool.dbapi {ours['errors']} errors, "
            f"{ours['lost_updates']} lost, {ours['commits_per_s']:,} commits/s; sqlite3 "
            f"{theirs['errors']} errors, {theirs['lost_updates']} lost of "
            f"{theirs['transactions']}, {theirs['commits_per_s']:,} commits/s (target: 0 and 0)",
        )

    fp = get("checkout/fastpool", "ns_per_op")
    loop = get("checkout/empty-loop", "ns_per_op")
    qcm = get("checkout/queue-contextmanager", "ns_per_op")
    qraw = get("checkout/queue-get-put", "ns_per_op")
    if fp:
        net = f", {fp - loop:.0f} ns without the {loop:.0f} ns loop" if loop else ""
        lock = get("checkout/with-lock", "ns_per_op")
        nothing = get("checkout/with-nothing", "ns_per_op")
        ref = f"; a bare 'with threading.Lock()' costs {lock:.0f} ns here" if lock else ""
        if nothing:
            ref += f", 'with' on an empty Python context manager {nothing:.0f} ns"
        line(fp <= 200, f"checkout+return: {fp:.0f} ns/op{net} (target <= 200 ns{ref})")
        if qcm:
            line(
                qcm / fp >= 10,
                f"checkout+return vs queue.Queue pool (context manager): "
                f"{qcm:.0f} / {fp:.0f} ns = {qcm / fp:.1f}x (target >= 10x)",
            )
        if qraw:
            lines.append(
                f"[info] checkout+return vs a bare queue.get()+put() (no context manager, so "
                f"no pool: nothing is returned on error): {qraw:.0f} / {fp:.0f} ns = "
                f"{qraw / fp:.1f}x"
            )

    # Single-row transactions are one statement each: their idiomatic form is the one-shot
    # pool.execute, which holds the writer only inside one C call. The lease form ('with
    # pool.writer()') is reported beside it. There the writer is held across Python code, so a
    # GIL switch (every 5 ms among busy threads) can pause its holder; the others queue, and
    # strict FIFO hand-off keeps them queued (each hand-off wakes a parked thread) until the
    # queue drains, which under a write-only load may not happen within a round.
    sq_c = get("writers8/sqlite3", "commits_per_s")
    for name, form in (
        ("writers8/fastpool-oneshot", "one-shot pool.execute"),
        ("writers8/fastpool", "'with pool.writer()' leases"),
    ):
        fp_c, locked = get(name, "commits_per_s"), get(name, "locked_errors")
        if not (fp_c and sq_c):
            continue
        line(
            locked == 0,
            f"8 writers ({form}): 'database is locked' errors = {locked} "
            f"(sqlite3 per-thread: {get('writers8/sqlite3', 'locked_errors')})",
        )
        text = (
            f"8 writers ({form}): {fp_c:,.0f} vs {sq_c:,.0f} commits/s = {fp_c / sq_c:.2f}x, "
            f"write p99 {(get(name, 'write_p99_us') or float('nan')) / 1e3:.3f} ms "
            f"({get(name, 'pool_waits')} checkouts waited)"
        )
        if name.endswith("oneshot"):
            line(fp_c / sq_c >= 1.2, text + " (target >= 1.2x)")
        else:
            lines.append("[info] " + text)

    # The mix's single-row updates: the same two forms, as for the 8 writers above.
    one, lease = "mix16/fastpool-oneshot", "mix16/fastpool"
    sw = get("mix16/sqlite3", "write_p99_us")
    fw = get(one, "write_p99_us")
    if fw is not None and sw is not None:
        line(
            fw <= 1000,
            f"16-thread 90/10 mix: write p99 {fw / 1e3:.3f} ms with one-shot pool.execute "
            f"(sqlite3 {sw / 1e3:.3f} ms; target <= 1 ms; {get(one, 'pool_waits')} checkouts "
            f"waited)",
        )
    lw = get(lease, "write_p99_us")
    if lw is not None and sw is not None:
        lines.append(
            f"[info] 16-thread 90/10 mix with 'with pool.writer()' leases: write p99 "
            f"{lw / 1e3:.3f} ms ({sw / lw:.1f}x lower than sqlite3; "
            f"{get(lease, 'pool_waits')} checkouts waited)"
        )
    for name in (one, lease):
        fr, sr = get(name, "read_p99_us"), get("mix16/sqlite3", "read_p99_us")
        if fr is not None and sr is not None:
            line(
                fr <= sr,
                f"16-thread 90/10 mix ({name.split('/')[1]}): read p99 {fr:.1f} us vs sqlite3 "
                f"{sr:.1f} us (target: no worse)",
            )

    # Group commit (bench_group_commit.py): 8 threads of one-shot inserts.
    for sync, target in (("normal", 3), ("full", 10)):
        key = f"group_commit_{sync}"
        fp_c, sq_c = get(f"{key}/fastpool", "commits_per_s"), get(f"{key}/sqlite3", "commits_per_s")
        if fp_c and sq_c:
            alone = get(f"{key}/fastpool-alone", "commits_per_s")
            floor = get(f"{key}/fastpool-1-thread", "commits_per_s")
            extra = f"; each alone {alone:,.0f}" if alone else ""
            what = "the GIL-bound floor" if sync == "normal" else "an fsync a write"
            if floor:
                extra += f"; one thread {floor:,.0f} = {floor / sq_c:.2f}x ({what})"
            free = get(f"{key}/fastpool-free-commits", "commits_per_s")
            if free:
                extra += (
                    f"; grouped with free commits {free:,.0f} = {free / sq_c:.2f}x (the "
                    f"floor of callers who wait for another thread's commit)"
                )
            threads = get(f"{key}/fastpool-free-commits", "threads")
            if sync == "full" and floor and free and threads:
                # N threads make groups of at most N: a group's cycle is about one commit's
                # time alone (its fsync) and then N callers' turns, one by one.
                cycle = threads / (1 / floor + threads / free)
                extra += (
                    f"; that cycle, one commit alone and then {threads:.0f} writes at the "
                    f"free-commits rate: {cycle:,.0f} = {cycle / sq_c:.2f}x"
                )
            line(
                fp_c / sq_c >= target,
                f"8 threads of one-shot inserts, synchronous={sync}, group commit: {fp_c:,.0f} "
                f"vs {sq_c:,.0f} commits/s = {fp_c / sq_c:.2f}x (target >= {target}x{extra})",
            )

    fo, so = get("reads4/fastpool", "ops_per_s"), get("reads4/sqlite3", "ops_per_s")
    fp99, sp99 = get("reads4/fastpool", "read_p99_us"), get("reads4/sqlite3", "read_p99_us")
    if fo and so:
        line(
            fo / so >= 3,
            f"4-thread point reads: {fo:,.0f} vs {so:,.0f} ops/s = {fo / so:.2f}x (target >= 3x)",
        )
    if fp99 and sp99:
        line(
            fp99 <= sp99 / 2,
            f"4-thread point reads: p99 {fp99:.1f} us vs {sp99:.1f} us = "
            f"{fp99 / sp99:.2f} of sqlite3's (target <= 0.5)",
        )
    return lines
