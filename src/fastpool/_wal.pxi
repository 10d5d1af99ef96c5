# Background WAL checkpoints for a pool.
#
# SQLite's automatic checkpoint runs inside COMMIT: the committing writer copies the log into
# the database and fsyncs while every other writer queues behind it. In a pool the writer's
# WAL hook only posts an event; this thread runs the PASSIVE checkpoints, on a connection of
# its own, beside the writers and readers. PASSIVE never rewinds the log, though, and under
# constant reads some reader always holds a snapshot in it, so it would grow without bound.
# Once a checkpoint finds the log past the threshold, the thread asks the pool for a RESTART,
# which the pool runs between two writers, holding the writer slot (restart_wal, below).

import sys
import threading


@cython.final
cdef class Checkpointer:
    """The pool's background WAL checkpointer (internal)."""

    def __cinit__(self):
        fp_notify_init(&self.events)
        fp_flag_store(&self.restart_wanted, 0)
        fp_flag_store(&self.restart_at, 0)
        fp_flag_store(&self.in_checkpoint, 0)
        fp_flag_store(&self.paused, 0)
        fp_counter_init(&self.runs)
        fp_counter_init(&self.errors)
        fp_counter_init(&self.writer_waits)
        fp_counter_init(&self.restarts)
        fp_flag_store(&self.litestream, 0)
        fp_counter_init(&self.litestream_waits)
        fp_counter_init(&self.litestream_timeouts)

    def __init__(self, Connection conn, int autocheckpoint):
        self.conn = conn
        self.autocheckpoint = autocheckpoint
        fp_flag_store(&self.restart_at, <uint32_t>autocheckpoint)
        self.thread = threading.Thread(
            target=self._run, name="fastpool-checkpointer", daemon=True)
        self.thread.start()

    def _run(self):
        # The GIL is taken back only here, by the thread's own saved state: at interpreter
        # exit that is the path on which CPython ends (or parks) a daemon thread safely. A
        # `with gil` block inside the loop would go through PyGILState_Ensure, which crashes
        # once finalization has torn the interpreter's thread bookkeeping down.
        cdef uint32_t bits
        while True:
            with nogil:
                bits = self.loop()
            if not bits & WRITER_HANDOFF:
                break
            # Before anything else, STOP included: the writer slot must go back.
            if self.handoff_restart is not None:
                if restart_handed_over(self, bits & STOP):
                    break
            elif litestream_wait(self, bits & STOP):
                break
        self.conn.close()

    cdef uint32_t loop(self) noexcept nogil:
        # Runs checkpoints until the pool stops (STOP) or hands this thread the writer slot
        # (WRITER_HANDOFF, maybe with STOP): both are _run's to act on, holding the GIL.
        cdef uint32_t bits
        cdef int rc, log, done
        cdef sqlite3 *db = self.conn.db
        while True:
            if fp_notify_wait(&self.events, -1, &bits) != FP_NOTIFY_OK:
                bits = STOP
            if bits & (WRITER_HANDOFF | STOP):
                return bits
            if bits & WAL_REWOUND:
                # Whoever rewound it, a reader that made RESTARTs back off is gone.
                fp_flag_store(&self.restart_at, <uint32_t>self.autocheckpoint)
            if not bits & WAL_FULL:
                continue
            if fp_flag_load(&self.litestream):
                # Litestream checkpoints this file itself; a PASSIVE run here would hold the
                # checkpoint lock its own needs, which then fails (it does not wait for it).
                continue
            if fp_flag_load(&self.restart_wanted):
                # The pool runs a RESTART between the next two writers; it does the whole
                # job, and a PASSIVE run now would hold the checkpoint lock it needs, so the
                # RESTART would fail and a hot writer would outrun every later attempt.
                continue
            log = done = -1
            self.enter_sqlite()
            rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done)
            self.leave_sqlite()
            fp_counter_add(&self.runs, 1)
            if rc == SQLITE_OK or rc & 0xFF == SQLITE_BUSY:     # BUSY: the pool's RESTART runs
                if log >= 0 and <uint32_t>log >= fp_flag_load(&self.restart_at):
                    fp_flag_store(&self.restart_wanted, 1)
            else:
                fp_counter_add(&self.errors, 1)

    # A fork() must not copy this connection into the child in the middle of a checkpoint
    # (SQLite's per-process locks and mutexes would stay taken there for good), and a
    # checkpoint the pool runs on request must not meet this one (it would fail with
    # SQLITE_BUSY): the pausing thread sets `paused` and waits for in_checkpoint to drop;
    # this thread, seeing the pause, stays out of SQLite until resumed. Both sides store,
    # fence, then load, so at least one of them sees the other. Not nested: a fork during
    # pool.checkpoint() resumes early, and that checkpoint may then meet this one, as any
    # checkpoint could before.

    cdef void enter_sqlite(self) noexcept nogil:
        while True:
            fp_flag_store_fenced(&self.in_checkpoint, 1)
            if not fp_flag_load(&self.paused):
                return
            fp_flag_store_fenced(&self.in_checkpoint, 0)
            fp_park_wake_all(&self.in_checkpoint)
            fp_park_wait(&self.paused, 1, -1)

    cdef void leave_sqlite(self) noexcept nogil:
        # Wakes a pausing thread, and a writer held back by the log's size (on_wal_commit).
        fp_flag_store_fenced(&self.in_checkpoint, 0)
        fp_park_wake_all(&self.in_checkpoint)

    cdef void pause(self) noexcept:
        fp_flag_store_fenced(&self.paused, 1)
        with nogil:
            while fp_flag_load(&self.in_checkpoint):
                fp_park_wait(&self.in_checkpoint, 1, -1)

    cdef void resume(self) noexcept:
        fp_flag_store_fenced(&self.paused, 0)
        fp_park_wake_all(&self.paused)

    cdef void restarted(self, int rc, int log) noexcept:
        # The pool's RESTART outcome.
        if rc == SQLITE_OK:
            fp_counter_add(&self.restarts, 1)
            fp_flag_store(&self.restart_at, <uint32_t>self.autocheckpoint)
        elif rc & 0xFF != SQLITE_BUSY:
            fp_counter_add(&self.errors, 1)
        elif log < 0:
            # It could not start: this thread's PASSIVE run held the checkpoint lock (SQLite
            # does not wait for that one). Try again between the next two writers.
            fp_flag_store(&self.restart_wanted, 1)
        else:
            # A reader outlasted the wait (a long query) and keeps its snapshot in the log. Ask
            # again once the log has grown by a quarter of the threshold, later by its excess,
            # but never by more than the threshold: a long reader then costs a brief writer
            # wait per threshold's worth of log, and readers that merely happened to be in the
            # log (frequent ones) cannot ratchet the next try out to a log of many times the
            # threshold (measured: 36 MiB with the uncapped doubling, reads cut by timeouts).
            fp_flag_store(&self.restart_at, <uint32_t>(log + min(
                self.autocheckpoint, max(self.autocheckpoint // 4, log - self.autocheckpoint))))

    cdef void take_writer(self, object gate) noexcept:
        # From the thread returning the writer, when restart_wal said so: this thread holds
        # the writer slot from now on, to wait for readers to leave the log or for Litestream,
        # and gives it back (the post orders the hand-over).
        self.handoff_gate = gate
        fp_notify_post(&self.events, WRITER_HANDOFF)

    cdef void stop(self) noexcept:
        fp_notify_post(&self.events, STOP)

    def join(self, timeout=None):
        """Stop the thread and wait for it (it closes its connection on the way out)."""
        self.stop()
        if sys.is_finalizing():
            # At interpreter exit this daemon thread can no longer take the GIL back (3.13
            # parks it for good), so it never returns from _run and a join would hang the
            # exit. Its connection's files close with the process; commits are already durable.
            return
        self.thread.join(timeout)

    cdef void abandon(self) noexcept:
        # After fork(), in the child: the thread does not exist here, and the handle is the
        # parent's.
        self.conn.abandon()

    def stats(self):
        return {"checkpoints": fp_counter_get(&self.runs),
                "wal_restarts": fp_counter_get(&self.restarts),
                "checkpoint_errors": fp_counter_get(&self.errors),
                "checkpoint_waits": fp_counter_get(&self.writer_waits),
                "litestream": bool(fp_flag_load(&self.litestream)),
                "litestream_waits": fp_counter_get(&self.litestream_waits),
                "litestream_wait_timeouts": fp_counter_get(&self.litestream_timeouts)}


cdef bint in_wal_mode(Connection writer) except -1:
    # Only a WAL database has a log to checkpoint (":memory:" through memdb has none).
    return writer.fetchone("PRAGMA journal_mode") == ("wal",)


cdef Checkpointer start_checkpointer(object opts, Connection writer):
    # A pool's checkpointer, on a connection of its own, attached to its writer; None when
    # the pool's options leave checkpoints to SQLite's COMMIT.
    if opts.autocheckpoint <= 0:
        return None
    conn = Connection(opts.path, pragmas=opts.writer_pragmas, statement_cache_size=0,
                      busy_timeout=opts.busy_timeout, autocheckpoint=0)
    ck = Checkpointer(conn, opts.autocheckpoint)
    writer.attach_checkpointer(ck)
    return ck


cdef bint restart_wal(PoolCore pool, Connection conn) noexcept:
    # Called holding the writer slot, between two writers, when the checkpointer found
    # the log past its threshold. True: the slot goes to the checkpointer thread, which
    # waits for readers to leave the log (restart_handed_over) or for Litestream's rewind
    # (_wal_litestream.pxi) with it, and then gives it back.
    # RESTART copies what is left of the log (little: the checkpointer's PASSIVE runs did
    # the bulk) and, once no reader is left in the log, makes the next commit rewind it to
    # its start. Idle readers' kept snapshots are ended here first, and readers coming back
    # while the writer is out end theirs (_snapshot.pxi).
    #
    # Tried here holding the GIL, not waiting for readers: point reads run with the GIL
    # held, so while this thread holds it, usually no reader is inside the log, and
    # nobody else can queue for the writer meanwhile. When a reader really holds a snapshot
    # (a reader transaction, a long query), the wait for it is the checkpointer thread's:
    # this thread may be an event loop's, whose own tasks hold those readers and cannot end
    # their reads while it waits (measured: the async soak's RESTARTs failed with 1-4 of
    # its leases in use, and its log grew past journal_size_limit), and a thread that
    # returns the writer should not wait for other threads' reads anyway.
    cdef Checkpointer ck = pool.checkpointer
    cdef sqlite3 *db = conn.db
    cdef int rc, log = -1, done = -1
    if ck is None or db == NULL:
        return False
    if fp_flag_load(&ck.litestream):
        return litestream_turn(ck, conn)
    if fp_flag_exchange(&ck.restart_wanted, 0) == 0:
        return False
    sweep_snapshots(pool)
    sqlite3_busy_handler(db, NULL, NULL)
    rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &done)
    sqlite3_busy_handler(db, on_busy, &conn.hooks)
    if rc & 0xFF == SQLITE_BUSY and log >= 0:
        ck.handoff_restart = conn
        return True
    ck.restarted(rc, log)
    return False


cdef bint restart_handed_over(Checkpointer ck, bint stopping) noexcept:
    # On the checkpointer thread, holding the writer slot that restart_wal handed over (the
    # writer connection is the slot holder's, so this thread's now): RESTART again, waiting
    # up to RESTART_WAIT_US for the readers to leave the log, then give the slot back, or
    # wait for Litestream with it if a reader that never leaves is Litestream's. True if the
    # pool stops.
    cdef Connection conn = ck.handoff_restart
    cdef sqlite3 *db = conn.db
    cdef int rc, log = -1, done = -1
    ck.handoff_restart = None
    if not stopping and db != NULL:
        conn.in_call = True     # a fork() meanwhile must not reuse this copy in the child
        with nogil:
            sqlite3_busy_handler(db, on_busy_brief, NULL)
            rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &done)
            sqlite3_busy_handler(db, on_busy, &conn.hooks)
        conn.in_call = False
        if rc & 0xFF == SQLITE_BUSY and log >= 0 and detect_litestream(ck, conn):
            if litestream_turn(ck, conn):
                return litestream_wait(ck, stopping)    # it gives the slot back
        else:
            ck.restarted(rc, log)
    gate, ck.handoff_gate = ck.handoff_gate, None
    (<WriterGate>gate).give_back(stopping, False)
    return stopping
