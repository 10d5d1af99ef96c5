# Group commit: a one-shot write (pool.execute, pool.executemany) that arrives while another
# is waiting for or using the writer joins a queue (csrc/fp_batch) instead of queueing for the
# writer itself. Whoever leads takes everything queued and runs it in one transaction: one
# BEGIN IMMEDIATE, one COMMIT, so one fsync for all of them with synchronous=full. Each caller
# returns only once the COMMIT holding its statement is done.
#
# What a caller observes is what it would have observed alone, in some serial order:
#   - its statement's own error: SQLite undoes a failed statement by itself (the statement
#     journal) and the transaction goes on; the caller gets the error, the others commit;
#   - an error that ends the whole transaction (SQLITE_FULL, I/O, ON CONFLICT ROLLBACK,
#     RAISE(ROLLBACK)), or a deferred foreign key left violated (alone it fails at COMMIT):
#     that caller gets its error, and the batch runs again from BEGIN without it;
#   - executemany: all its rows or none, in a savepoint of its own;
#   - rowcount, lastrowid and the rows of RETURNING are read right after its statement;
#   - a COMMIT that fails fails every caller of the batch, as it would have failed each.
# Only DML is grouped (INSERT, UPDATE, DELETE, REPLACE, WITH ...); DDL, PRAGMA, VACUUM,
# ATTACH, BEGIN and the like run alone, as they always did.

cdef enum:
    MAX_BATCH = 256     # jobs a leader takes at once: bounds the wait of the last of them
    # How long after one-shot writes last came from several threads their COMMITs still
    # drop the GIL where they do not fsync (several_threads_write): a few switch intervals.
    SHARED_WINDOW_NS = 20000000
    # What a leader waits per caller of the last group where COMMITs do not fsync: about
    # one GIL hand-off to a sleeping thread on this project's machines (7-13 us), with room.
    HANDOFF_NS = 15000

# Jobs whose caller gave up after the queue itself failed (a futex or mutex error: never seen)
# while the job may still be queued: kept alive here, since a leader may still take them.
# Only ever one add() or discard() at a time: the set's own lock makes each atomic.
cdef set ORPHANED_JOBS = set()


@cython.final
@cython.freelist(16)
cdef class WriteJob:
    """One caller's one-shot write, while it waits for a leader (internal)."""

    cdef fp_batch_job node
    cdef str sql
    cdef object params
    cdef bint many              # executemany: params is a list or tuple of parameter sets
    cdef Cursor cursor          # the outcome: a finished cursor ...
    cdef object error           # ... or the exception to raise in the caller

    cdef Cursor outcome(self):
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        if self.cursor is None:
            raise InternalError("a grouped write was marked done without an outcome")
        return self.cursor


cdef bint groupable(str sql) except -1:
    # DML by its first keyword (as is_dml decides for a prepared statement).
    cdef Py_ssize_t size
    cdef const char *p
    cdef int n = 0
    if sql is None:
        return False        # the alone path reports it
    try:
        p = PyUnicode_AsUTF8AndSize(sql, &size)
    except UnicodeEncodeError:
        return False        # a lone surrogate: the alone path reports it
    p = skip_blank(p)
    while (b'a' <= p[n] <= b'z') or (b'A' <= p[n] <= b'Z'):
        n += 1
    return (word_is(p, n, b"insert") or word_is(p, n, b"update") or word_is(p, n, b"delete")
            or word_is(p, n, b"replace") or word_is(p, n, b"with"))


cdef Cursor group_write(PoolCore pool, str sql, object params, bint many):
    # pool.execute / pool.executemany through the group: lead, or wait for a leader.
    cdef WriteJob job = WriteJob.__new__(WriteJob)
    cdef fp_batch *queue = pool.gate.batch_queue()
    cdef int64_t timeout = pool.timeout_ns
    cdef int64_t started
    cdef uint32_t state = 0
    cdef int rc
    job.sql = sql
    job.params = params
    job.many = many
    job.node.data = <void *>job
    rc = fp_batch_join(queue, &job.node)
    if rc == FP_BATCH_QUEUED:
        started = time.monotonic_ns()
        with nogil:
            rc = fp_batch_wait(&job.node, timeout, &state)
        if rc == FP_BATCH_TIMEOUT:
            if fp_batch_cancel(queue, &job.node, &state) != FP_BATCH_OK:
                state = FP_BATCH_QUEUED     # not withdrawn: it will be served, so wait for it
            if state == FP_BATCH_CANCELLED:
                pool.note_timeout()
                raise PoolTimeout(pool.timeout_message(WRITER, time.monotonic_ns() - started))
            if state != FP_BATCH_LEAD and state != FP_BATCH_DONE:
                with nogil:
                    rc = fp_batch_wait(&job.node, -1, &state)
            else:
                rc = FP_BATCH_OK
        if rc != FP_BATCH_OK:
            # The queue may still hold the job, and a leader may still take it and write to
            # it: keep it alive for that, then fail loudly.
            ORPHANED_JOBS.add(job)
            raise InternalError(f"the pool's group commit queue failed (code {rc})")
        if state == FP_BATCH_DONE:
            return job.outcome()
        if timeout > 0:         # led from here on: what is left of the caller's timeout
            timeout = max(0, timeout - (time.monotonic_ns() - started))
    elif rc != FP_BATCH_LEAD:
        raise InternalError(f"the pool's group commit queue failed (code {rc})")
    lead(pool, job, timeout)
    return job.outcome()


cdef int lead(PoolCore pool, WriteJob own, int64_t timeout_ns) except -1:
    # Take the writer, run the own job and what is queued, hand the lead on. Every taken job
    # gets an outcome, whatever happens here.
    cdef fp_batch *queue = pool.gate.batch_queue()
    cdef fp_batch_job *taken = NULL
    cdef fp_batch_job *it
    cdef Connection conn = None
    cdef list jobs = None
    cdef int rc, commit_syncs = 0
    try:
        pool.acquire(pool.gate.queue(), WRITER, timeout_ns)
        try:
            conn = pool.writer_connection(True)
            # Restored below, before the slot is given back: a lease's commits keep the GIL
            # where they do not fsync (_writer.pxi).
            commit_syncs = conn.hooks.commit_syncs
            if commit_syncs:
                gather(pool.gate, True)
            elif several_threads_write(pool.gate):
                conn.hooks.commit_syncs = 1
                gather(pool.gate, False)
            taken = fp_batch_take(queue, MAX_BATCH)
            if taken == NULL and not own.many:
                pool.gate.last_group = 1
                run_alone(conn, own)
            else:
                jobs = [own]
                it = taken
                while it != NULL:
                    jobs.append(<WriteJob>it.data)
                    it = it.next
                pool.gate.last_group = len(jobs)
                if len(jobs) > 1:
                    pool.gate.shared_ns = fp_monotonic_ns()
                run_together(pool.gate, conn, jobs)
                if len(jobs) > 1:
                    fp_counter_add(&pool.n_group_commits, 1)
                    fp_counter_add(&pool.n_grouped, len(jobs))
        finally:
            if conn is not None:     # (gate.connection gave the slot back if it failed)
                conn.hooks.commit_syncs = commit_syncs
                pool.end_lease(pool.lease(WRITER, 0, conn))
    except BaseException as exc:
        for job in jobs if jobs is not None else [own]:
            if (<WriteJob>job).cursor is None and (<WriteJob>job).error is None:
                (<WriteJob>job).error = exc if job is own or isinstance(exc, Exception) else (
                    InterfaceError(f"the thread running this write's group commit was "
                                   f"stopped ({type(exc).__name__}); nothing of it was "
                                   f"committed, run it again"))
    finally:
        if taken != NULL:
            # Without the GIL: the first caller woken can take it while the others are being
            # woken. (Alone, keep it: dropping it would hand it to another thread per write.)
            with nogil:
                fp_batch_done(taken)
                rc = fp_batch_step_down(queue)
        else:
            rc = fp_batch_step_down(queue)
        if rc != FP_BATCH_OK:
            # Nobody can lead after this: later one-shot writes queue until PoolTimeout.
            log.error("the pool's group commit queue failed to hand on the lead; one-shot "
                      "writes of pool %r will time out (pass group_commit=False)", pool.opts.path)
    return 0


cdef bint several_threads_write(WriterGate gate) noexcept:
    # Do one-shot writes come from several threads (a different leader than the last, or a
    # group, within SHARED_WINDOW_NS)? Then their COMMITs drop the GIL even where they do not
    # fsync: the others queue their writes meanwhile and the next leader takes them together.
    # Keeping it, groups would never form (the others get the GIL only between writes), and a
    # lone writing thread keeps it: dropping it there would wait, at each commit, for threads
    # running Python to give it back (up to the switch interval, 5 ms).
    cdef unsigned long me = PyThread_get_thread_ident()
    cdef int64_t now = fp_monotonic_ns()
    if me != gate.last_leader:
        if gate.last_leader != 0:
            gate.shared_ns = now
        gate.last_leader = me
    return gate.shared_ns != 0 and now - gate.shared_ns < SHARED_WINDOW_NS


cdef void gather(WriterGate gate, bint synced) noexcept:
    # The callers of the last group commit are on their way back as it ends (each with its
    # next write, in a busy service), but need the GIL in turn to get here: a leader that
    # would run alone waits for them (without the GIL, so that they can come), so that they
    # share this COMMIT instead of the next one (measured: bench_group_commit.py). At most as
    # long as the last COMMIT took where it fsyncs; else a GIL hand-off per caller. Nobody
    # came last time: no wait (a lone write pays nothing).
    cdef fp_batch *queue = gate.batch
    cdef uint32_t want = gate.last_group - 1 if gate.last_group > 1 else 0
    cdef int64_t timeout = gate.commit_ns if synced else want * HANDOFF_NS
    if want and fp_batch_queued(queue) < want:
        with nogil:
            fp_batch_gather(queue, want, timeout)   # best effort: a failure only means no wait


cdef int run_alone(Connection conn, WriteJob job) except -1:
    # Nobody to group with: the statement is its own transaction, as before group commit.
    try:
        cur = conn.execute(job.sql, job.params)
        cur.materialize()
        job.cursor = cur
    except Exception as exc:
        job.error = exc
    return 0


cdef int run_together(WriterGate gate, Connection conn, list jobs) except -1:
    # BEGIN IMMEDIATE, each job, COMMIT; from BEGIN again without a job that ended or spoilt
    # the whole transaction (see the top of this file).
    cdef WriteJob job, spoiler
    pending = jobs
    while pending:
        conn.enter()
        try:
            begin_write(conn)
        finally:
            conn.leave()
        spoiler = None
        for job in pending:
            job.cursor = None
            job.error = None
            if not run_in_batch(conn, job):
                spoiler = job
                break
        if spoiler is not None:
            conn.reset()            # a ROLLBACK, if the transaction is still open
            pending = [j for j in pending if j is not spoiler]
            continue
        started = time.monotonic_ns()
        try:
            conn.end_transaction(True)
            gate.commit_ns = time.monotonic_ns() - started
        except Exception as exc:
            conn.reset()
            for job in pending:
                job.cursor = None
                job.error = exc
        return 0
    return 0


cdef bint run_in_batch(Connection conn, WriteJob job) except -1:
    # Run one job inside the batch's transaction. False when it must leave the batch: it
    # ended the transaction, or left a deferred foreign key violated (its error is set).
    cdef int fks = 0, high = 0
    if job.many:
        conn.executescript("SAVEPOINT fastpool_group")
    try:
        cur = conn.executemany(job.sql, job.params) if job.many else conn.execute(job.sql,
                                                                                  job.params)
        cur.materialize()
    except Exception as exc:
        job.error = exc
        if sqlite3_get_autocommit(conn.db):
            return False
        if job.many:
            conn.executescript("ROLLBACK TO fastpool_group; RELEASE fastpool_group")
        return True
    sqlite3_db_status(conn.db, SQLITE_DBSTATUS_DEFERRED_FKS, &fks, &high, 0)
    if fks:
        job.error = error_for_code(SQLITE_CONSTRAINT_FOREIGNKEY,
                                   "FOREIGN KEY constraint failed")
        if not job.many:
            return False
        conn.executescript("ROLLBACK TO fastpool_group; RELEASE fastpool_group")
        return True
    if job.many:
        conn.executescript("RELEASE fastpool_group")
    job.cursor = cur
    return True
