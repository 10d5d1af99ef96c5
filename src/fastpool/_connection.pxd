# The connection unit (_hooks.pxi, _connection.pxi): the state SQLite's callbacks share
# with a connection, and the connection itself.

cdef class Cursor
cdef class Checkpointer


# The events a pool's writer posts to its checkpointer's wal_events (see on_wal_commit).
cdef enum:
    WAL_FULL = 1        # the writer's log passed wal_autocheckpoint pages
    WAL_REWOUND = 2     # ... and has been rewound since
    STOP = 4            # the pool is closing (or gone)
    WRITER_HANDOFF = 8  # the writer slot, handed over to wait for readers or Litestream
    SNAPSHOTS_KEPT = 16     # to a SnapshotSweeper: idle readers may keep snapshots


cdef struct Hooks:
    # State shared with the C callbacks SQLite calls from inside a step (progress, busy, WAL).
    PyThreadState *saved    # set once a callback has dropped the GIL during the current call
    int armed               # the current call entered holding the GIL: a callback may drop it
    int ticks               # progress-handler calls during the current call
    int busy_timeout_ms     # how long the busy handler sleeps in total before giving up
    int autocheckpoint      # WAL pages after which a commit checkpoints (0 = never)
    fp_notify *wal_events   # a pool's checkpointer to tell instead (NULL: checkpoint in COMMIT)
    int wal_full_posted     # WAL_FULL was posted and the log has not been rewound since
    fp_atomic_u32 *ckpt_running  # ... its in_checkpoint flag (see on_wal_commit)
    fp_atomic_u64 *ckpt_waits    # ... and its count of commits that waited for it
    int wal_pages           # the log's size in frames after this connection's last commit
    fp_xlock *xlock         # a pool's writer: its cross-process writer lock (else NULL) ...
    bint *xlock_held        # ... and the pool's flag saying it is held (the busy handler drops it)
    int commit_syncs        # this connection's commits fsync: drop the GIL for them (on_commit)


cdef class Connection:
    cdef sqlite3 *db
    cdef Hooks hooks
    cdef StatementCache cache
    cdef set active                 # statements held by open cursors
    # The claim word (csrc/fp_claim.h; enter, reset, close): the one claimant owns the
    # handle, its statements, cache, `active`, hooks and flags below until it stores 0
    # (leave). The snapshot sweep claims a pool reader between its holder's calls, for one
    # reset (FP_CLAIM_SWEEP); a holder's claim waits that out. Plain reads elsewhere are
    # atomic loads (C _Atomic), for checks only.
    cdef fp_atomic_u32 in_call      # a call is running: another thread or a callback must not enter
    cdef fp_atomic_u64 call_thread  # fastpool.dbapi: the thread whose call set in_call, or 0
    cdef readonly bint fatal        # hit an error after which the connection must not be reused
    cdef unsigned int epoch         # bumped when the connection is closed or reset for reuse
    cdef object row_factory
    cdef object pending_exc         # exception raised inside a user function during a step
    cdef readonly str path
    cdef readonly bint readonly
    cdef public bint reader_hint     # a pool reader: say "use pool.writer()" on write attempts
    cdef readonly bint autocommit    # False: PEP 249 implicit transactions (fastpool.connect)
    cdef Checkpointer checkpointer   # keeps alive what hooks.wal_events points into
    cdef bint guard_tx               # a pool writer's transaction: notice if SQLite ends it
    cdef bint tx_lost                # SQLite rolled that transaction back after an error
    cdef object file_key             # (st_dev, st_ino) counted in OPEN_FILES, or None
    # A pool reader's kept read snapshot (_snapshot.pxi): owned by the claimant of in_call
    # (its slot's holder, or the snapshot sweep for a moment).
    cdef sqlite3_stmt *snapshot      # PRAGMA schema_version, stepped while one is kept
    # ... and it is: a read transaction stays open (a C atomic: the holder looks at it
    # outside its claims)
    cdef fp_atomic_u32 snapshot_held
    # Lent in a lease that keeps snapshots: each call renews the kept one (enter). Set and
    # cleared by the slot's holder; in_lease is the hint the sweep reads.
    cdef fp_slot_counters *lease_counts  # the pool's reader counters, or NULL: not lent so
    cdef uint32_t lease_slot
    cdef fp_atomic_u32 in_lease
    cdef int snapshot_ok             # 1: may keep one; -1: never; 0: not checked yet
    cdef const unsigned char *snapshot_shm   # its -shm mapping (the writer's: _snapshot.pxi)
    cdef unsigned char snapshot_hdr[48]      # that header, read before the snapshot began
    cdef fp_atomic_u32 interrupted   # interrupt() since: the kept snapshot must go (C atomic)

    cdef void attach_checkpointer(self, Checkpointer ck) noexcept

    cdef int enter(self) except -1
    cdef void leave(self) noexcept
    cdef int step(self, Statement st) noexcept
    cdef int run_control(self, str sql) except -1
    cdef int end_transaction(self, bint commit) except -1
    cdef int raise_error(self, int rc) except -1
    cdef Statement statement_for(self, str sql)
    cdef int implicit_begin(self, Statement st) except -1
    cdef int run(self, Cursor cur, str sql, object params) except -1
    cdef int run_many(self, Cursor cur, str sql, object seq_of_params) except -1
    cdef object make_row(self, Statement st)
    cpdef object fetchone(self, str sql, object params=*)
    cpdef list fetchall(self, str sql, object params=*)
    cpdef Cursor execute(self, str sql, object params=*)
    cpdef Cursor executemany(self, str sql, object seq_of_params)
    cpdef bint reset(self)
    cpdef abandon(self)
    cpdef close(self)
