# fastpool's VFS: the process's default VFS (unix on Linux and macOS) with one change, to how
# a WAL file is written. SQLite appends a frame to the log in two writes, its 24-byte header
# and then its page; here the header waits and goes down joined to its page, one system call
# per frame instead of two (1.0-1.1 us of the writing thread's 19 us of CPU time for a
# single-row write transaction on this project's machines; one per page of a bigger one).
# What the file holds, and when, is unchanged for every reader of it:
# - only a write that its page is certain to follow waits: a frame header written where the
#   last page ended, the next frame's place. A header rewritten in place (the checksum pass
#   of a transaction that spilled) never waits, nor does frame 1's after the log restarts
#   (the log's own header before it is synced on its own);
# - every other call on the file (read, sync, truncate, size, close, a file control, a lock)
#   first writes what waits, and so does any write that does not continue it.
# So when SQLite publishes a commit in the WAL index nothing of it waits here, and a frame's
# bytes reach the file at the latest with its page, as before.
#
# And where SQLite syncs the log at every commit (synchronous=full or extra), the file is
# grown ahead of its frames, PREALLOCATE_BYTES of zeros at a time (see grow_ahead): an fsync
# of a page written over allocated blocks needs no journal commit of the file system (on this
# project's ext4 machines 90-120 us against 160-210 us for a page that grows the file), the
# reason PostgreSQL zero-fills its WAL segments. The zeros are never a frame to SQLite (a
# frame's page number is never 0, and its salts must match the log header's).
#
# Connections open through it unless their URI names a VFS (`vfs=unix`, `vfs=memdb`, ...).
# Every other file (database, journals) is the wrapped VFS's own object, untouched. The VFS
# is registered once, when fastpool._core is imported, around the default VFS of that moment.

cdef const char *FP_WAL_VFS_NAME = b"fastpool"
cdef enum:
    FRAME_HEADER_BYTES = 24     # before each page
    MIN_PAGE_BYTES = 512        # SQLite's smallest page size
    PREALLOCATE_BYTES = 1 << 20     # how far ahead a synced log is grown (~2 ms of fsync)
    ZEROS_BYTES = 1 << 16       # the zeros written per call while growing it
    SYNCED_COMMITS_TO_GROW = 2  # commits in a row, each synced right after: the log's policy

# The zeros a synced log is grown with (static storage: zero, and nothing writes to it).
cdef unsigned char zeros[ZEROS_BYTES]


cdef struct WalFile:
    sqlite3_file base           # pMethods: &wal_methods
    sqlite3_file *real          # the wrapped VFS's file: in this allocation, after this struct
    unsigned char *buffer       # what waits, then the page joined to it (sqlite3_malloc'd)
    sqlite3_int64 capacity
    sqlite3_int64 waiting_at    # the file offset of buffer[0]
    int waiting                 # bytes waiting in buffer (0: none)
    sqlite3_int64 last_end      # where the last write that reached the file ended (-1: none)
    bint last_was_page          # and whether it was a page (a frame's place follows it)
    sqlite3_int64 size_seen     # the file's size as this handle last knew it (-1: unknown)
    bint commit_unsynced        # a commit frame was written since the last sync
    int synced_commits          # commits in a row that were synced right after (capped)


# Set once, while the module is imported (one thread), before registering: read-only after.
cdef sqlite3_vfs *wrapped_vfs = NULL
cdef sqlite3_vfs wal_vfs
cdef sqlite3_io_methods wal_methods
cdef bint wal_vfs_registered = False
cdef fp_atomic_u64 frames_joined     # frames that went down as one write (statistics)
cdef fp_atomic_u64 writes_alone      # waiting bytes written alone (a call other than a page)
cdef fp_atomic_u64 bytes_preallocated   # zeros written ahead of a synced log's frames


cdef inline sqlite3_file *real_of(sqlite3_file *f) noexcept nogil:
    return (<WalFile *>f).real


cdef int write_through(WalFile *w, const void *data, int amount,
                       sqlite3_int64 offset) noexcept nogil:
    cdef int rc
    if offset + amount > w.size_seen and w.synced_commits >= SYNCED_COMMITS_TO_GROW:
        grow_ahead(w, offset + amount)
    rc = w.real.pMethods.xWrite(w.real, data, amount, offset)
    if rc == SQLITE_OK:
        w.last_end = offset + amount
        w.last_was_page = amount >= MIN_PAGE_BYTES
        if w.last_end > w.size_seen:
            w.size_seen = w.last_end
    else:
        w.last_end = -1
        w.size_seen = -1
    return rc


cdef void grow_ahead(WalFile *w, sqlite3_int64 end) noexcept nogil:
    # Zeros from the file's end to PREALLOCATE_BYTES past `end`, before a write that would
    # grow it. The size is read from the file, not from size_seen: another connection may
    # have appended frames since, and zeros must never land on them. Nobody else writes the
    # log meanwhile: SQLite writes it only under the WAL write lock, which this one holds.
    # Best effort: a failure leaves the write to grow the file as it would have.
    cdef sqlite3_int64 size = 0, target
    cdef int amount
    if w.real.pMethods.xFileSize(w.real, &size) != SQLITE_OK:
        return
    w.size_seen = size
    if end <= size:
        return
    target = (end + PREALLOCATE_BYTES - 1) // PREALLOCATE_BYTES * PREALLOCATE_BYTES
    while size < target:
        amount = <int>min(<sqlite3_int64>ZEROS_BYTES, target - size)
        if w.real.pMethods.xWrite(w.real, zeros, amount, size) != SQLITE_OK:
            w.size_seen = -1
            return
        size += amount
        fp_counter_add(&bytes_preallocated, amount)
    w.size_seen = size


cdef void note_frame_header(WalFile *w, const unsigned char *header) noexcept nogil:
    # A frame whose header holds the database size after it (bytes 4-7) ends a transaction.
    # Its commit, when nothing syncs the log before the next one, breaks the run of synced
    # commits that makes grow_ahead worth its zeros.
    if header[4] == 0 and header[5] == 0 and header[6] == 0 and header[7] == 0:
        return
    if w.commit_unsynced:
        w.synced_commits = 0
    w.commit_unsynced = True


cdef int flush_waiting(WalFile *w) noexcept nogil:
    # Writes what waits, alone: the call that came is not its page.
    cdef int amount = w.waiting
    if amount == 0:
        return SQLITE_OK
    w.waiting = 0
    fp_counter_add(&writes_alone, 1)
    return write_through(w, w.buffer, amount, w.waiting_at)


cdef bint room_for(WalFile *w, sqlite3_int64 size) noexcept nogil:
    cdef unsigned char *grown
    if size <= w.capacity:
        return True
    grown = <unsigned char *>sqlite3_realloc64(w.buffer, <sqlite3_uint64>size)
    if grown == NULL:
        return False
    w.buffer, w.capacity = grown, size
    return True


cdef inline bint may_wait(WalFile *w, int amount, sqlite3_int64 offset) noexcept nogil:
    # True for a write its page is certain to follow (see the top of this file).
    return amount == FRAME_HEADER_BYTES and w.last_was_page and offset == w.last_end


cdef int wal_write(sqlite3_file *f, const void *data, int amount,
                   sqlite3_int64 offset) noexcept nogil:
    cdef WalFile *w = <WalFile *>f
    cdef int rc, total
    if amount == FRAME_HEADER_BYTES:
        note_frame_header(w, <const unsigned char *>data)
    if w.waiting:
        if offset == w.waiting_at + w.waiting and room_for(w, w.waiting + amount):
            memcpy(w.buffer + w.waiting, data, amount)
            total = w.waiting + amount
            w.waiting = 0
            fp_counter_add(&frames_joined, 1)
            return write_through(w, w.buffer, total, w.waiting_at)
        rc = flush_waiting(w)
        if rc != SQLITE_OK:
            return rc
    if may_wait(w, amount, offset) and room_for(w, amount):
        memcpy(w.buffer, data, amount)
        w.waiting, w.waiting_at = amount, offset
        return SQLITE_OK
    return write_through(w, data, amount, offset)


cdef int wal_close(sqlite3_file *f) noexcept nogil:
    cdef WalFile *w = <WalFile *>f
    cdef int flushed = flush_waiting(w)
    cdef int rc = w.real.pMethods.xClose(w.real)
    sqlite3_free(w.buffer)
    w.buffer, w.capacity = NULL, 0
    return flushed if flushed != SQLITE_OK else rc


cdef int wal_read(sqlite3_file *f, void *data, int amount, sqlite3_int64 offset) noexcept nogil:
    cdef int rc = flush_waiting(<WalFile *>f)
    if rc != SQLITE_OK:
        return rc
    return real_of(f).pMethods.xRead(real_of(f), data, amount, offset)


cdef int wal_truncate(sqlite3_file *f, sqlite3_int64 size) noexcept nogil:
    cdef WalFile *w = <WalFile *>f
    cdef int rc = flush_waiting(w)
    if rc != SQLITE_OK:
        return rc
    w.last_end = -1
    rc = w.real.pMethods.xTruncate(w.real, size)
    w.size_seen = size if rc == SQLITE_OK else -1
    return rc


cdef int wal_sync(sqlite3_file *f, int flags) noexcept nogil:
    cdef WalFile *w = <WalFile *>f
    cdef int rc = flush_waiting(w)
    if rc != SQLITE_OK:
        return rc
    if w.commit_unsynced:       # a commit synced right after it: full or extra
        w.commit_unsynced = False
        if w.synced_commits < SYNCED_COMMITS_TO_GROW:
            w.synced_commits += 1
    return w.real.pMethods.xSync(w.real, flags)


cdef int wal_file_size(sqlite3_file *f, sqlite3_int64 *size) noexcept nogil:
    cdef int rc = flush_waiting(<WalFile *>f)
    if rc != SQLITE_OK:
        return rc
    return real_of(f).pMethods.xFileSize(real_of(f), size)


cdef int wal_lock(sqlite3_file *f, int level) noexcept nogil:
    cdef int rc = flush_waiting(<WalFile *>f)
    if rc != SQLITE_OK:
        return rc
    return real_of(f).pMethods.xLock(real_of(f), level)


cdef int wal_unlock(sqlite3_file *f, int level) noexcept nogil:
    cdef int rc = flush_waiting(<WalFile *>f)
    if rc != SQLITE_OK:
        return rc
    return real_of(f).pMethods.xUnlock(real_of(f), level)


cdef int wal_check_reserved_lock(sqlite3_file *f, int *out) noexcept nogil:
    cdef int rc = flush_waiting(<WalFile *>f)
    if rc != SQLITE_OK:
        return rc
    return real_of(f).pMethods.xCheckReservedLock(real_of(f), out)


cdef int wal_file_control(sqlite3_file *f, int op, void *arg) noexcept nogil:
    cdef int rc = flush_waiting(<WalFile *>f)
    if rc != SQLITE_OK:
        return rc
    return real_of(f).pMethods.xFileControl(real_of(f), op, arg)


cdef int wal_sector_size(sqlite3_file *f) noexcept nogil:
    return real_of(f).pMethods.xSectorSize(real_of(f))


cdef int wal_device_characteristics(sqlite3_file *f) noexcept nogil:
    return real_of(f).pMethods.xDeviceCharacteristics(real_of(f))


cdef int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
                  int *out_flags) noexcept nogil:
    # A WAL file gets a WalFile in front of the wrapped VFS's file; any other file is the
    # wrapped VFS's own object, opened straight into the space SQLite gave us.
    cdef WalFile *w
    cdef int rc
    if not (flags & SQLITE_OPEN_WAL):
        return wrapped_vfs.xOpen(wrapped_vfs, name, f, flags, out_flags)
    w = <WalFile *>f
    memset(w, 0, sizeof(WalFile))
    w.real = <sqlite3_file *>(<char *>f + sizeof(WalFile))
    w.last_end = -1
    w.size_seen = -1
    rc = wrapped_vfs.xOpen(wrapped_vfs, name, w.real, flags, out_flags)
    if w.real.pMethods != NULL:     # SQLite calls xClose when pMethods is set, even on failure
        w.base.pMethods = &wal_methods
    return rc


# The rest of the VFS is the wrapped one's, called with the wrapped VFS object.
cdef int vfs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir) noexcept nogil:
    return wrapped_vfs.xDelete(wrapped_vfs, name, sync_dir)


cdef int vfs_access(sqlite3_vfs *vfs, const char *name, int flags, int *out) noexcept nogil:
    return wrapped_vfs.xAccess(wrapped_vfs, name, flags, out)


cdef int vfs_full_pathname(sqlite3_vfs *vfs, const char *name, int size,
                           char *out) noexcept nogil:
    return wrapped_vfs.xFullPathname(wrapped_vfs, name, size, out)


cdef void *vfs_dl_open(sqlite3_vfs *vfs, const char *name) noexcept nogil:
    return wrapped_vfs.xDlOpen(wrapped_vfs, name)


cdef void vfs_dl_error(sqlite3_vfs *vfs, int size, char *out) noexcept nogil:
    wrapped_vfs.xDlError(wrapped_vfs, size, out)


cdef sqlite3_dl_symbol vfs_dl_sym(sqlite3_vfs *vfs, void *handle,
                                  const char *symbol) noexcept nogil:
    return wrapped_vfs.xDlSym(wrapped_vfs, handle, symbol)


cdef void vfs_dl_close(sqlite3_vfs *vfs, void *handle) noexcept nogil:
    wrapped_vfs.xDlClose(wrapped_vfs, handle)


cdef int vfs_randomness(sqlite3_vfs *vfs, int size, char *out) noexcept nogil:
    return wrapped_vfs.xRandomness(wrapped_vfs, size, out)


cdef int vfs_sleep(sqlite3_vfs *vfs, int microseconds) noexcept nogil:
    return wrapped_vfs.xSleep(wrapped_vfs, microseconds)


cdef int vfs_current_time(sqlite3_vfs *vfs, double *out) noexcept nogil:
    return wrapped_vfs.xCurrentTime(wrapped_vfs, out)


cdef int vfs_get_last_error(sqlite3_vfs *vfs, int size, char *out) noexcept nogil:
    return wrapped_vfs.xGetLastError(wrapped_vfs, size, out)


cdef int vfs_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out) noexcept nogil:
    return wrapped_vfs.xCurrentTimeInt64(wrapped_vfs, out)


cdef int vfs_set_system_call(sqlite3_vfs *vfs, const char *name,
                             sqlite3_syscall_ptr call) noexcept nogil:
    return wrapped_vfs.xSetSystemCall(wrapped_vfs, name, call)


cdef sqlite3_syscall_ptr vfs_get_system_call(sqlite3_vfs *vfs, const char *name) noexcept nogil:
    return wrapped_vfs.xGetSystemCall(wrapped_vfs, name)


cdef const char *vfs_next_system_call(sqlite3_vfs *vfs, const char *name) noexcept nogil:
    return wrapped_vfs.xNextSystemCall(wrapped_vfs, name)


cdef int register_wal_vfs() noexcept:
    # Builds fastpool's VFS around the default one and registers it (not as the default:
    # the stdlib's sqlite3, where it shares the library, keeps its own). Nothing registered,
    # and connections open on the default VFS, if there is none or it is too old to wrap.
    global wrapped_vfs, wal_vfs_registered
    cdef sqlite3_vfs *base = sqlite3_vfs_find(NULL)
    if base == NULL or base.iVersion < 1 or base.szOsFile <= 0:
        return 0
    if sqlite3_vfs_find(FP_WAL_VFS_NAME) != NULL:
        return 0                # another fastpool build in this process registered its own
    wrapped_vfs = base
    memset(&wal_methods, 0, sizeof(wal_methods))
    wal_methods.iVersion = 1
    wal_methods.xClose = wal_close
    wal_methods.xRead = wal_read
    wal_methods.xWrite = wal_write
    wal_methods.xTruncate = wal_truncate
    wal_methods.xSync = wal_sync
    wal_methods.xFileSize = wal_file_size
    wal_methods.xLock = wal_lock
    wal_methods.xUnlock = wal_unlock
    wal_methods.xCheckReservedLock = wal_check_reserved_lock
    wal_methods.xFileControl = wal_file_control
    wal_methods.xSectorSize = wal_sector_size
    wal_methods.xDeviceCharacteristics = wal_device_characteristics
    memset(&wal_vfs, 0, sizeof(wal_vfs))
    wal_vfs.iVersion = base.iVersion if base.iVersion < 3 else 3
    wal_vfs.szOsFile = <int>sizeof(WalFile) + base.szOsFile
    wal_vfs.mxPathname = base.mxPathname
    wal_vfs.zName = FP_WAL_VFS_NAME
    wal_vfs.xOpen = vfs_open
    wal_vfs.xDelete = vfs_delete
    wal_vfs.xAccess = vfs_access
    wal_vfs.xFullPathname = vfs_full_pathname
    wal_vfs.xDlOpen = vfs_dl_open
    wal_vfs.xDlError = vfs_dl_error
    wal_vfs.xDlSym = vfs_dl_sym
    wal_vfs.xDlClose = vfs_dl_close
    wal_vfs.xRandomness = vfs_randomness
    wal_vfs.xSleep = vfs_sleep
    wal_vfs.xCurrentTime = vfs_current_time
    wal_vfs.xGetLastError = vfs_get_last_error
    if wal_vfs.iVersion >= 2:
        wal_vfs.xCurrentTimeInt64 = vfs_current_time_int64
    if wal_vfs.iVersion >= 3:
        wal_vfs.xSetSystemCall = vfs_set_system_call
        wal_vfs.xGetSystemCall = vfs_get_system_call
        wal_vfs.xNextSystemCall = vfs_next_system_call
    fp_counter_init(&frames_joined)
    fp_counter_init(&writes_alone)
    fp_counter_init(&bytes_preallocated)
    if sqlite3_vfs_register(&wal_vfs, 0) == SQLITE_OK:
        wal_vfs_registered = True
    return 0


cdef inline const char *wal_vfs_name() noexcept nogil:
    # The VFS open_database passes to sqlite3_open_v2 (a URI's vfs= overrides it).
    return FP_WAL_VFS_NAME if wal_vfs_registered else NULL


def wal_vfs_counts():
    """What fastpool's VFS did in this process (internal; tests and benchmarks).

    A dict: ``vfs`` (its name, or None when connections open on the default VFS),
    ``frames_joined`` (WAL frames written with one system call, header and page together),
    ``writes_alone`` (waiting header bytes written by themselves because the call that
    came next was not their page: 0 when SQLite writes as this VFS expects) and
    ``bytes_preallocated`` (zeros written ahead of the frames of logs synced at each commit).
    """
    return {
        "vfs": FP_WAL_VFS_NAME.decode("ascii") if wal_vfs_registered else None,
        "frames_joined": fp_counter_get(&frames_joined),
        "writes_alone": fp_counter_get(&writes_alone),
        "bytes_preallocated": fp_counter_get(&bytes_preallocated),
    }


register_wal_vfs()
