# Checkpoints when Litestream replicates the database (docs/scale-out.md, "Checkpoints").
#
# `litestream replicate` keeps a read transaction open on the file between its own
# checkpoints, so that nobody checkpoints frames it has not copied yet: the pool's RESTART
# then never succeeds, and the log, no longer rewound, grows for as long as writes come in.
# Litestream checkpoints the file itself (PASSIVE, after a sync once the log passed its
# min-checkpoint-page-count), then writes a row of its own, and that write rewinds the log,
# but only if the checkpoint copied the whole log, which under constant writes it never does.
#
# So once the pool sees it (a RESTART that a reader outlasted, on a file with Litestream's
# `_litestream_seq` table), the checkpointer thread stops its own PASSIVE runs (they would
# hold the checkpoint lock Litestream's run needs, and SQLite makes that one fail, not wait).
#
# When the log reaches 1.75x the size journal_size_limit allows, the writer's return hands
# the writer slot to the checkpointer thread, which waits with it for Litestream's next
# checkpoint to rewind the log (with no new frames coming in, that checkpoint copies the
# whole log) and then gives it back; the returning thread, maybe an event loop's, goes on.
# Not earlier: Litestream decides to TRUNCATE on the log size its previous sync reached, so
# it rewinds a busy log at best every second sync (2 s by default), and writers that stopped
# at 1x sat out most of each such cycle (bench/litestream_writes.py; docs/scale-out.md has
# the numbers); the quarter left below the 2x bound takes the transaction in flight. The
# writers then wait at most LITESTREAM_WAIT_MS; when the log was not rewound by then they go
# on, and the next wait
# comes after the log grew by another limit's size.

cdef enum:
    LITESTREAM_WAIT_MS = 5000   # longest the writers wait for Litestream's checkpoint
    LITESTREAM_NAP_US = 1000    # how often the wait looks at the WAL header
    LITESTREAM_MIN_PAGES = 1024  # Litestream checkpoints only past 1000 pages by default


cdef bint detect_litestream(Checkpointer ck, Connection conn) noexcept:
    # Holding the writer slot, between two writers: is this file replicated by Litestream?
    # It creates _litestream_seq (and _litestream_lock) when it starts replicating a file.
    cdef long long limit, page
    try:
        if conn.fetchone("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                         "name = '_litestream_seq'") is None:
            return False
        limit = conn.fetchone("PRAGMA journal_size_limit")[0]
        page = conn.fetchone("PRAGMA page_size")[0]
    except Exception:
        return False    # the writer is broken: its return discards it, nothing to do here
    if limit <= 0:
        limit = 64 * 1024 * 1024
    ck.litestream_pages = max(LITESTREAM_MIN_PAGES, <int>(limit // max(page, 512)))
    ck.litestream_next = first_wait(ck)
    name = sqlite3_db_filename(conn.db, b"main")
    ck.litestream_wal = (name if name != NULL else b"") + b"-wal"
    fp_flag_store(&ck.litestream, 1)
    return True


cdef inline int first_wait(Checkpointer ck) noexcept:
    # The log size (frames) at which the writers stop for Litestream (above).
    return ck.litestream_pages + ck.litestream_pages * 3 // 4


cdef bint litestream_turn(Checkpointer ck, Connection conn) noexcept:
    # Holding the writer slot, between two writers, on a file Litestream replicates. True:
    # the writers must wait for Litestream's rewind; the caller hands the slot to the
    # checkpointer thread, which waits (litestream_wait) so that the thread returning the
    # writer, maybe an event loop's, goes on.
    cdef sqlite3 *db = conn.db
    cdef int rc, log = -1, done = -1
    cdef int pages = conn.hooks.wal_pages
    if pages < ck.litestream_pages:
        ck.litestream_next = first_wait(ck)     # rewound since: back to the first size
        return False
    if pages < ck.litestream_next:
        return False
    # Litestream may have stopped (its read transaction with it): then a RESTART succeeds
    # at once, and the pool checkpoints on its own again.
    sqlite3_busy_handler(db, NULL, NULL)
    rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &done)
    sqlite3_busy_handler(db, on_busy, &conn.hooks)
    if rc == SQLITE_OK:
        fp_flag_store(&ck.litestream, 0)
        ck.restarted(rc, log)
        return False
    if rc & 0xFF != SQLITE_BUSY:
        fp_counter_add(&ck.errors, 1)
        return False
    fp_counter_add(&ck.litestream_waits, 1)
    ck.litestream_next = pages + ck.litestream_pages    # if it times out (else reset)
    return True


cdef bint litestream_wait(Checkpointer ck, bint stopping) noexcept:
    # On the checkpointer thread, holding the writer slot that litestream_turn's caller
    # handed over: wait for the rewind, then give the slot back. True if the pool stops.
    cdef const char *wal = ck.litestream_wal
    cdef bint rewound = False
    if not stopping:
        with nogil:
            rewound = wait_for_rewind(ck, wal, &stopping)
    if rewound:
        ck.litestream_next = first_wait(ck)
    elif not stopping:
        if fp_counter_get(&ck.litestream_timeouts) == 0:
            warn_litestream_slow(ck.litestream_pages)
        fp_counter_add(&ck.litestream_timeouts, 1)
    gate, ck.handoff_gate = ck.handoff_gate, None
    (<WriterGate>gate).give_back(stopping, False)
    return stopping


cdef void warn_litestream_slow(int pages) noexcept:
    # Once per pool: Litestream rewinds a log that readers keep busy only with its TRUNCATE
    # checkpoint, which it runs past truncate-page-n (by default ~500 MB of log).
    try:
        log.warning("fastpool: Litestream did not rewind the WAL within %d ms while the writers "
                    "waited; set truncate-page-n to at most %d in litestream.yml (half the "
                    "log size journal_size_limit allows) so that its next sync does "
                    "(docs/scale-out.md)", LITESTREAM_WAIT_MS, pages // 2)
    except BaseException:
        pass


cdef bint wait_for_rewind(Checkpointer ck, const char *wal, bint *stopping) noexcept nogil:
    # Waits until the log was rewound: the WAL file was truncated, or its header's checkpoint
    # sequence number (bytes 12-15, up by one each time the log starts again) changed. False
    # after LITESTREAM_WAIT_MS, or when the pool stops meanwhile (*stopping set). The naps
    # are waits on the thread's events; others than STOP that come meanwhile are posted
    # again for its loop.
    cdef unsigned char before[32]
    cdef unsigned char now[32]
    cdef uint32_t bits, others = 0
    cdef bint rewound = False
    cdef int64_t deadline = fp_monotonic_ns() + <int64_t>LITESTREAM_WAIT_MS * 1000000
    cdef int fd = posix_open(wal, O_RDONLY)
    if fd < 0:
        return False
    if pread(fd, before, 32, 0) == 32:
        while not rewound and fp_monotonic_ns() < deadline:
            if fp_notify_wait(&ck.events, LITESTREAM_NAP_US * 1000, &bits) == FP_NOTIFY_OK:
                if bits & STOP:
                    stopping[0] = True
                    break
                others |= bits
            # Truncated (Litestream's TRUNCATE checkpoint), or begun anew.
            rewound = (pread(fd, now, 32, 0) != 32
                       or memcmp(before + 12, now + 12, 4) != 0)
    posix_close(fd)
    if others:
        fp_notify_post(&ck.events, others)
    return rewound
