# Kept read snapshots: a one-shot read, or a reader lease's statement, reuses its reader's last
# read transaction while nothing has committed since.
#
# Beginning and ending a read transaction in WAL mode takes and drops a shared lock on a
# read mark of the -shm file: two fcntl() calls, about half of what a point read costs.
# A pool reader (one-shots: pool.fetchone/fetchall, AsyncPool's inline reads; a lease's
# statements outside the holder's own transaction and with no cursor mid-read) keeps a
# `PRAGMA schema_version` statement stepped and not reset, so the read transaction outlives
# the query. The next read on that reader compares the WAL-index header (the first 48
# bytes of -shm, which every commit in any process rewrites) with the copy it read just
# before that transaction began: equal, no commit came in between, and the old snapshot is
# the newest; otherwise it ends the transaction and begins another. The header is read
# before the transaction begins, so it is never newer than the snapshot: a difference may
# make a needless new transaction, never a stale read.
#
# A kept snapshot pins the log (no WAL restart in any process while it is held), so one is
# given up: on return while the writer is checked out
# (the RESTART and the rewind it waits for need the readers out of the log); for every idle
# reader (sweep_snapshots) when the writer is checked out while the log is past the
# threshold or fully checkpointed, so that the checkpoint can copy all of it and the commit
# rewind it (snapshots_in_the_way), and before the pool's RESTART (restart_wal); by the
# pool's sweeper thread, SNAPSHOT_IDLE_NS after no sweep ran, for every idle reader, so an
# idle process never holds another's log; and on any error, interrupt(), reset and close.
# A sweep also takes readers in use between their holders' calls (a lease held across other
# work), claiming the connection's word for one reset (csrc/fp_claim.h): a holder that calls
# meanwhile waits that out; a reader in a call, or lent in a lease, is swept again later. The
# sweep needs the GIL (it resets Connections), so it has a thread of its own: the
# checkpointer, which must never wait for the GIL while writers fill the log, does not.
#
# Only where it is safe: a pool in WAL mode, readers on the default VFS in normal locking
# mode (so -shm is a shared mapping every process writes), and no attached database (its
# commits do not show in the main header: an authorizer notes any ATTACH, which turns
# snapshots off for that connection). A connection in WAL mode stays in it while open:
# leaving WAL needs every other connection closed.
#
# Threads: a Connection's snapshot fields belong to the claimant of its word (the holder of its
# reader slot for a call, or a sweep holding its free slot or its word); `snapshot_held` and
# `in_lease` are C atomics the holder and the sweep read outside a claim, `interrupted` one
# any thread may set; the sweeper's flags are C atomics.

import sys
import threading
import weakref

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* A copy of 48 bytes of -shm that a writer (any process, any thread) may be rewriting:
       SQLite's own protocol tolerates that race (two copies that must agree), so this read
       is one ThreadSanitizer is told not to watch (word loads, no intercepted memcpy). */
    __attribute__((no_sanitize_thread))
    static void fp_shm_copy48(const volatile unsigned char *from, unsigned char *to) {
        const volatile uint64_t *words = (const volatile uint64_t *)from;
        uint64_t copy[6];
        for (int i = 0; i < 6; i++)
            copy[i] = words[i];
        memcpy(to, copy, 48);
    }

    /* fastpool: copy the WAL-index header out of a connection's mapped -shm (region 0), as
       SQLite's readers do: both copies, with a barrier between them, must agree and say
       initialised. 1 and the header in out, else 0. */
    static int fp_wal_header(const volatile unsigned char *shm, unsigned char *out) {
        unsigned char second[48];
        fp_shm_copy48(shm, out);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        fp_shm_copy48(shm + 48, second);
        return memcmp(out, second, 48) == 0 && out[12] == 1;
    }

    /* Whether the checkpoints have copied the whole log into the database: the checkpoint
       info's nBackfill (offset 96 of -shm) equals the header's mxFrame (offset 16), so the
       next commit may rewind the log. A hint read of words other connections write (any
       error costs a sweep, or delays one), so without barriers, and unwatched by TSan. */
    __attribute__((no_sanitize_thread))
    static int fp_wal_backfilled(const volatile unsigned char *shm) {
        const volatile uint32_t *words = (const volatile uint32_t *)shm;
        return words[16 / 4] == words[96 / 4];
    }

    /* The start of a WAL connection's -shm mapping, or NULL. Mapped for as long as the
       connection keeps its log open, i.e. until it closes; bExtend=0 never creates it. */
    static const volatile unsigned char *fp_wal_index(sqlite3 *db) {
        sqlite3_file *f = NULL;
        void volatile *p = NULL;
        if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK
                || f == NULL || f->pMethods == NULL || f->pMethods->iVersion < 2)
            return NULL;
        if (f->pMethods->xShmMap(f, 0, 32768, 0, &p) != SQLITE_OK)
            return NULL;
        return (const volatile unsigned char *)p;
    }
    """
    int fp_wal_header(const unsigned char *shm, unsigned char *out) nogil
    const unsigned char *fp_wal_index(sqlite3 *db) nogil
    int fp_wal_backfilled(const unsigned char *shm) nogil
    enum: SQLITE_ATTACH


# How long an idle reader may keep its snapshot when nothing in this process writes.
cdef int64_t SNAPSHOT_IDLE_NS = 50_000_000


@cython.final
cdef class SnapshotSweeper:
    """A pool's thread that ends idle readers' kept snapshots (internal)."""

    def __cinit__(self):
        fp_notify_init(&self.events)
        fp_flag_store(&self.kept, 0)
        fp_flag_store(&self.last_sweep_ms, 0)

    def __init__(self, pool_ref):
        self.pool_ref = pool_ref
        self.thread = threading.Thread(target=self._run, name="fastpool-snapshot-sweeper",
                                       daemon=True)
        self.thread.start()

    def _run(self):
        # The GIL is taken back only by the thread's own saved state (see Checkpointer._run:
        # a `with gil` block here crashed a process exiting while a long query kept the
        # sweeps coming).
        cdef bint sweep
        while True:
            with nogil:
                sweep = self.wait_for_sweep()
            if not sweep:
                return
            pool = self.pool_ref()
            if pool is not None and not (<PoolCore>pool).is_closed:
                sweep_snapshots(<PoolCore>pool)
            pool = None

    cdef bint wait_for_sweep(self) noexcept nogil:
        # True once a sweep is due: SNAPSHOT_IDLE_NS after kept snapshots were first
        # noticed, later if a writer's checkout swept meanwhile. False when the pool stops.
        cdef uint32_t bits, ago
        cdef int rc
        cdef int64_t sweep_at = -1, now = 0
        while True:
            if sweep_at < 0 and fp_flag_load(&self.kept):
                sweep_at = fp_monotonic_ns() + SNAPSHOT_IDLE_NS
            if sweep_at >= 0:
                now = fp_monotonic_ns()
                if now >= sweep_at:
                    ago = <uint32_t>(now // 1000000) - fp_flag_load(&self.last_sweep_ms)
                    if ago >= SNAPSHOT_IDLE_NS // 1000000:
                        return True
                    sweep_at = now + (SNAPSHOT_IDLE_NS // 1000000 - ago) * 1000000
                    continue
            rc = fp_notify_wait(&self.events, sweep_at - now if sweep_at >= 0 else -1, &bits)
            if rc == FP_NOTIFY_TIMEOUT:
                continue
            if rc != FP_NOTIFY_OK or bits & STOP:
                return False

    cdef void note_kept(self) noexcept:
        # A reader went back to the pool keeping a snapshot.
        if not fp_flag_load(&self.kept):
            fp_flag_store(&self.kept, 1)
            fp_notify_post(&self.events, SNAPSHOTS_KEPT)

    cdef void stop(self) noexcept:
        fp_notify_post(&self.events, STOP)

    def join(self, timeout=None):
        """Stop the thread and wait for it."""
        self.stop()
        if not sys.is_finalizing():     # see Checkpointer.join
            self.thread.join(timeout)


cdef bint start_snapshots(PoolCore pool, Connection writer) except -1:
    # Whether one-shot reads of this pool may keep snapshots (the per-connection condition
    # is allow_snapshot's); if so, its sweeper thread runs.
    if not pool.wal or uri_vfs_choice(writer) is not None:
        return False
    try:
        ref = weakref.ref(pool)
    except TypeError:
        return False        # a bare PoolCore (fastpool.Pool has a weakref slot)
    pool.sweeper = SnapshotSweeper(ref)
    return True


cdef int note_attach(void *snapshot_ok, int action, const char *a, const char *b,
                     const char *c, const char *d) noexcept nogil:
    # A reader's authorizer: an ATTACH turns its snapshots off for good (prepare time, in
    # the thread holding the reader's slot).
    if action == SQLITE_ATTACH:
        (<int *>snapshot_ok)[0] = -1
    return SQLITE_OK


cdef bytes first_text(sqlite3 *db, const char *sql):
    # The first column of the first row as text (b"" if none), outside the statement cache.
    cdef sqlite3_stmt *stmt = NULL
    cdef const char *text
    cdef bytes value = b""
    if sqlite3_prepare_v3(db, sql, -1, 0, &stmt, NULL) == SQLITE_OK and stmt != NULL:
        if sqlite3_step(stmt) == SQLITE_ROW:
            text = <const char *>sqlite3_column_text(stmt, 0)
            if text != NULL:
                value = text
    sqlite3_finalize(stmt)
    return value


cdef void allow_snapshot(Connection conn) noexcept:
    # Once per reader connection: may it keep snapshots? It then has the statement that
    # holds one, and the -shm mapping (the PRAGMA's read mapped it).
    cdef sqlite3_stmt *stmt = NULL
    cdef const unsigned char *shm
    conn.snapshot_ok = -1
    if (first_text(conn.db, b"PRAGMA journal_mode") != b"wal"
            or first_text(conn.db, b"PRAGMA locking_mode") != b"normal"
            or first_text(conn.db, b"SELECT max(seq) >= 2 FROM pragma_database_list") != b"0"):
        return
    shm = fp_wal_index(conn.db)
    if shm == NULL:
        return
    if sqlite3_prepare_v3(conn.db, b"PRAGMA schema_version", -1, SQLITE_PREPARE_PERSISTENT,
                          &stmt, NULL) != SQLITE_OK:
        sqlite3_finalize(stmt)
        return
    if sqlite3_set_authorizer(conn.db, note_attach, &conn.snapshot_ok) != SQLITE_OK:
        sqlite3_finalize(stmt)
        return
    conn.snapshot = stmt
    conn.snapshot_shm = shm
    conn.snapshot_ok = 1


cdef inline bint snapshot_current(Connection conn) noexcept:
    cdef unsigned char now[48]
    return (not fp_flag_exchange(&conn.interrupted, 0)
            and fp_wal_header(conn.snapshot_shm, now)
            and memcmp(now, conn.snapshot_hdr, 48) == 0)


cdef void use_snapshot(PoolCore pool, Connection conn, uint32_t slot) noexcept:
    # Before a one-shot read, holding the reader's slot: reuse the kept snapshot if it is the
    # newest, else begin one to keep (or go without). Claimed like a call: beginning a read
    # transaction can meet a busy lock (a WAL recovery elsewhere), and the busy handler then
    # sleeps without the GIL; and the sweep may be ending the kept one right now.
    if conn.lease_counts != NULL or (conn.snapshot_ok == 0 and not pool.snapshots):
        return      # lent (AsyncPool's read after a wait): its call renews it (enter)
    if fp_claim_call(&conn.in_call) != FP_CLAIM_FREE:
        return      # not reachable for a slot's holder; then it goes without
    renew_snapshot(conn, pool.reader_counts, slot)
    fp_flag_store(&conn.in_call, FP_CLAIM_FREE)


cdef void renew_snapshot(Connection conn, fp_slot_counters *counts, uint32_t slot) noexcept:
    # Under the connection's claim, outside any transaction: keep the snapshot if nothing
    # committed since it began, else end it and begin the newest.
    cdef int rc
    if conn.snapshot_ok <= 0:
        drop_snapshot(conn)     # an ATTACH since it was taken
        if conn.snapshot_ok == 0 and conn.db != NULL:
            allow_snapshot(conn)
        return
    if fp_flag_load(&conn.snapshot_held):
        if snapshot_current(conn):
            fp_slot_counter_add(counts, slot, COUNT_SNAPSHOT_REUSES, 1)
            return
        drop_snapshot(conn)
    fp_flag_store(&conn.interrupted, 0)
    if not fp_wal_header(conn.snapshot_shm, conn.snapshot_hdr):
        return
    arm(&conn.hooks)
    rc = sqlite3_step(conn.snapshot)
    disarm(&conn.hooks)
    if rc == SQLITE_ROW:
        fp_flag_store(&conn.snapshot_held, 1)
    else:
        sqlite3_reset(conn.snapshot)


cdef inline void drop_snapshot(Connection conn) noexcept:
    # End the kept read transaction: under the connection's claim, or with the connection
    # out of everyone's reach (its closer, a sweep holding its free slot).
    if fp_flag_load(&conn.snapshot_held):
        fp_flag_store(&conn.snapshot_held, 0)
        sqlite3_reset(conn.snapshot)


cdef void give_up_snapshot(Connection conn) noexcept:
    # drop_snapshot() from the slot's holder between calls: claimed, since the sweep may be
    # ending it right now (it then has). A call running here (not the holder's) keeps it.
    if not fp_flag_load(&conn.snapshot_held):
        return
    if fp_claim_call(&conn.in_call) != FP_CLAIM_FREE:
        return
    drop_snapshot(conn)
    fp_flag_store(&conn.in_call, FP_CLAIM_FREE)


cdef void lend_snapshot(PoolCore pool, Connection conn, uint32_t slot) noexcept:
    # A reader lent in a lease: with kept snapshots on, each of the lease's calls renews the
    # kept one (Connection.enter), and the sweeper is told, so that one left idle in a lease
    # held across other work ends too; else the lease starts with none.
    cdef SnapshotSweeper sweeper = pool.sweeper
    if not pool.snapshots or sweeper is None:
        give_up_snapshot(conn)
        return
    conn.lease_counts = pool.reader_counts
    conn.lease_slot = slot
    fp_flag_store(&conn.in_lease, 1)
    sweeper.note_kept()


cdef inline void unlend_snapshot(Connection conn) noexcept:
    if conn.lease_counts != NULL:
        conn.lease_counts = NULL
        fp_flag_store(&conn.in_lease, 0)


cdef void finalize_snapshot(Connection conn) noexcept:
    # Before the handle closes.
    fp_flag_store(&conn.snapshot_held, 0)
    conn.snapshot_ok = -1
    conn.snapshot_shm = NULL
    if conn.snapshot != NULL:
        sqlite3_finalize(conn.snapshot)
        conn.snapshot = NULL


cdef void returning_snapshot(PoolCore pool, Connection conn) noexcept:
    # A reader going back to the pool with a snapshot: give it up while the writer is out
    # (see above), else make sure the sweeper ends it if it stays idle.
    cdef SnapshotSweeper sweeper = pool.sweeper
    if (sweeper is None or pool.gate.busy() or conn.fatal or conn.db == NULL
            or conn.snapshot_ok != 1):
        give_up_snapshot(conn)
    else:
        sweeper.note_kept()


cdef bint snapshots_in_the_way(PoolCore pool, Connection writer) noexcept:
    # Holding the writer slot: whether idle readers should give up their kept snapshots now.
    # Only when some reader kept one and either the log is past the threshold (the
    # checkpointer is copying it) or the checkpoints have caught up with it, so that this
    # writer's commit can rewind it if no reader is in the log. Sweeping at every writer
    # checkout put up to four resets on the writer's path: the 16-thread mix's read p99 was
    # 22-38 us against 13-14 with this test (2026-12-04, builds alternating). Sweeping only
    # when caught up let stale idle snapshots stop the checkpointer short (at their read
    # marks): the bundled SQLite's log then reached the 4000-frame backpressure cap in 3 of
    # 12 runs of test_pool_wal's load (6-8 MiB otherwise). Otherwise kept snapshots end at
    # their readers' next use, at the pool's RESTART (which sweeps), or by the sweeper.
    cdef SnapshotSweeper sweeper = pool.sweeper
    if sweeper is None or not fp_flag_load(&sweeper.kept) or writer.db == NULL:
        return False
    if writer.hooks.wal_full_posted:
        # The log is past the threshold: the checkpointer is copying it, and stale idle
        # snapshots would stop it short of the end (their read marks).
        return True
    if writer.snapshot_shm == NULL:
        writer.snapshot_shm = fp_wal_index(writer.db)
        if writer.snapshot_shm == NULL:
            return True     # not mapped yet: cannot tell
    return fp_wal_backfilled(writer.snapshot_shm)


cdef void sweep_snapshots(PoolCore pool) noexcept:
    # Give up the snapshots of idle readers: take every free reader slot without waiting,
    # drop its snapshot, give the slots back; then claim each reader in use between its
    # holder's calls (a lease held across other work) and drop its snapshot too. A reader
    # whose call runs now, or lent in a lease that may keep one again, has the sweep come
    # back later. One sweep at a time (a writer's thread and the sweeper's may both try).
    cdef uint32_t slot, i, j, n = 0
    cdef bint again = False
    cdef Connection c
    cdef SnapshotSweeper sweeper = pool.sweeper
    if sweeper is None or not fp_flag_load(&sweeper.kept):
        return
    if fp_flag_exchange(&pool.sweeping, 1):
        return
    fp_flag_store_fenced(&sweeper.kept, 0)
    # The slots it holds count as idle in stats() (counted before they are taken, until
    # after they are back): without a GIL, a stats() meanwhile would show readers in use.
    while n < pool.nreaders:
        fp_flag_store(&pool.sweep_held, n + 1)
        if fp_slots_try_acquire(pool.reader_slots, &slot) != FP_SLOTS_OK:
            break
        pool.sweep_taken[n] = slot
        n += 1
        conn = pool.readers[slot]
        if conn is not None:
            drop_snapshot(<Connection>conn)
    for slot in range(pool.nreaders):
        for j in range(n):
            if pool.sweep_taken[j] == slot:
                break
        else:
            conn = pool.readers[slot]
            if conn is None:
                continue
            c = <Connection>conn
            if fp_flag_load(&c.in_lease):
                again = True
            if not fp_flag_load(&c.snapshot_held):
                continue
            if fp_claim_sweep(&c.in_call):
                if c.db != NULL:
                    drop_snapshot(c)
                fp_claim_release_sweep(&c.in_call)
            else:
                again = True
    for i in range(n):
        fp_slots_release(pool.reader_slots, pool.sweep_taken[i])
    fp_flag_store(&pool.sweep_held, 0)
    fp_flag_store(&sweeper.last_sweep_ms, <uint32_t>(fp_monotonic_ns() // 1000000))
    fp_flag_store(&pool.sweeping, 0)
    if again:
        sweeper.note_kept()
