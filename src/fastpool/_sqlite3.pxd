# Declarations of the SQLite C API that fastpool uses. Declarations only: this file and
# _csrc.pxd are the only doors from the Cython core to C.

from libc.stdint cimport int64_t, uint64_t

cdef extern from "sqlite3.h" nogil:
    ctypedef struct sqlite3
    ctypedef struct sqlite3_stmt
    ctypedef struct sqlite3_value
    ctypedef struct sqlite3_context
    ctypedef int64_t sqlite3_int64
    ctypedef uint64_t sqlite3_uint64
    ctypedef void (*sqlite3_destructor_type)(void *)

    enum:
        SQLITE_TXN_NONE
        SQLITE_TXN_READ
        SQLITE_TXN_WRITE

    enum:
        SQLITE_OK
        SQLITE_ERROR
        SQLITE_INTERNAL
        SQLITE_BUSY
        SQLITE_LOCKED
        SQLITE_NOMEM
        SQLITE_READONLY
        SQLITE_INTERRUPT
        SQLITE_IOERR
        SQLITE_CORRUPT
        SQLITE_FULL
        SQLITE_CANTOPEN
        SQLITE_TOOBIG
        SQLITE_MISUSE
        SQLITE_RANGE
        SQLITE_NOTADB
        SQLITE_ABORT_ROLLBACK
        SQLITE_CONSTRAINT_FOREIGNKEY
        SQLITE_READONLY_DBMOVED
        SQLITE_ROW
        SQLITE_DONE

        SQLITE_OPEN_READONLY
        SQLITE_OPEN_READWRITE
        SQLITE_OPEN_CREATE
        SQLITE_OPEN_URI
        SQLITE_OPEN_NOMUTEX
        SQLITE_OPEN_PRIVATECACHE
        SQLITE_OPEN_WAL

        SQLITE_PREPARE_PERSISTENT

        SQLITE_DBCONFIG_DEFENSIVE

        SQLITE_INTEGER
        SQLITE_FLOAT
        SQLITE_TEXT
        SQLITE_BLOB
        SQLITE_NULL

        SQLITE_UTF8
        SQLITE_DETERMINISTIC
        SQLITE_DIRECTONLY

        SQLITE_DBSTATUS_DEFERRED_FKS

        SQLITE_STMTSTATUS_VM_STEP
        SQLITE_STMTSTATUS_REPREPARE

        SQLITE_CHECKPOINT_PASSIVE
        SQLITE_CHECKPOINT_FULL
        SQLITE_CHECKPOINT_RESTART
        SQLITE_CHECKPOINT_TRUNCATE

        SQLITE_LIMIT_LENGTH
        SQLITE_LIMIT_VARIABLE_NUMBER
        SQLITE_LIMIT_WORKER_THREADS
        SQLITE_LIMIT_SQL_LENGTH
        SQLITE_DENY
        SQLITE_IGNORE
        SQLITE_TRACE_STMT
        SQLITE_DESERIALIZE_FREEONCLOSE
        SQLITE_DESERIALIZE_RESIZEABLE
        SQLITE_SERIALIZE_NOCOPY
        SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION

    sqlite3_destructor_type SQLITE_TRANSIENT
    sqlite3_destructor_type SQLITE_STATIC

    const char *sqlite3_libversion()
    int sqlite3_libversion_number()
    int sqlite3_threadsafe()
    const char *sqlite3_compileoption_get(int n)

    int sqlite3_open_v2(const char *filename, sqlite3 **db, int flags, const char *zVfs)
    int sqlite3_close_v2(sqlite3 *db)
    int sqlite3_extended_result_codes(sqlite3 *db, int onoff)
    int sqlite3_extended_errcode(sqlite3 *db)
    const char *sqlite3_errmsg(sqlite3 *db)
    const char *sqlite3_errstr(int rc)
    int sqlite3_get_autocommit(sqlite3 *db)
    int sqlite3_txn_state(sqlite3 *db, const char *zSchema)
    ctypedef int (*sqlite3_exec_callback)(void *, int, char **, char **) noexcept
    int sqlite3_exec(sqlite3 *db, const char *sql, sqlite3_exec_callback callback, void *arg,
                     char **errmsg)
    sqlite3_int64 sqlite3_last_insert_rowid(sqlite3 *db)
    sqlite3_int64 sqlite3_changes64(sqlite3 *db)
    sqlite3_int64 sqlite3_total_changes64(sqlite3 *db)
    void sqlite3_interrupt(sqlite3 *db)
    int sqlite3_limit(sqlite3 *db, int id, int newVal)
    int sqlite3_db_readonly(sqlite3 *db, const char *zDbName)
    const char *sqlite3_db_filename(sqlite3 *db, const char *zDbName)
    const char *sqlite3_uri_parameter(const char *zFilename, const char *zParam)
    int sqlite3_uri_boolean(const char *zFilename, const char *zParam, int bDefault)
    int sqlite3_db_config(sqlite3 *db, int op, ...)
    int sqlite3_sleep(int ms)

    void sqlite3_progress_handler(sqlite3 *db, int n, int (*cb)(void *) noexcept, void *arg)
    int sqlite3_busy_handler(sqlite3 *db, int (*cb)(void *, int) noexcept, void *arg)
    void *sqlite3_wal_hook(sqlite3 *db,
                           int (*cb)(void *, sqlite3 *, const char *, int) noexcept, void *arg)
    void *sqlite3_commit_hook(sqlite3 *db, int (*cb)(void *) noexcept, void *arg)
    int sqlite3_db_status(sqlite3 *db, int op, int *pCur, int *pHiwtr, int resetFlg)
    int sqlite3_wal_checkpoint_v2(sqlite3 *db, const char *zDb, int eMode, int *pnLog, int *pnCkpt)

    int sqlite3_prepare_v3(sqlite3 *db, const char *zSql, int nByte, unsigned int prepFlags,
                           sqlite3_stmt **ppStmt, const char **pzTail)
    int sqlite3_step(sqlite3_stmt *stmt)
    int sqlite3_reset(sqlite3_stmt *stmt)
    int sqlite3_clear_bindings(sqlite3_stmt *stmt)
    int sqlite3_finalize(sqlite3_stmt *stmt)
    int sqlite3_stmt_readonly(sqlite3_stmt *stmt)
    int sqlite3_stmt_busy(sqlite3_stmt *stmt)
    int sqlite3_stmt_status(sqlite3_stmt *stmt, int op, int resetFlg)
    sqlite3_stmt *sqlite3_next_stmt(sqlite3 *db, sqlite3_stmt *stmt)
    const char *sqlite3_sql(sqlite3_stmt *stmt)

    int sqlite3_bind_parameter_count(sqlite3_stmt *stmt)
    const char *sqlite3_bind_parameter_name(sqlite3_stmt *stmt, int i)
    int sqlite3_bind_null(sqlite3_stmt *stmt, int i)
    int sqlite3_bind_int64(sqlite3_stmt *stmt, int i, sqlite3_int64 v)
    int sqlite3_bind_double(sqlite3_stmt *stmt, int i, double v)
    int sqlite3_bind_text64(sqlite3_stmt *stmt, int i, const char *v, sqlite3_uint64 n,
                            sqlite3_destructor_type d, unsigned char encoding)
    int sqlite3_bind_blob64(sqlite3_stmt *stmt, int i, const void *v, sqlite3_uint64 n,
                            sqlite3_destructor_type d)

    int sqlite3_column_count(sqlite3_stmt *stmt)
    int sqlite3_data_count(sqlite3_stmt *stmt)
    const char *sqlite3_column_name(sqlite3_stmt *stmt, int i)
    const char *sqlite3_column_decltype(sqlite3_stmt *stmt, int i)
    const char *sqlite3_column_decltype(sqlite3_stmt *stmt, int i)
    int sqlite3_column_type(sqlite3_stmt *stmt, int i)
    sqlite3_int64 sqlite3_column_int64(sqlite3_stmt *stmt, int i)
    double sqlite3_column_double(sqlite3_stmt *stmt, int i)
    const unsigned char *sqlite3_column_text(sqlite3_stmt *stmt, int i)
    const void *sqlite3_column_blob(sqlite3_stmt *stmt, int i)
    int sqlite3_column_bytes(sqlite3_stmt *stmt, int i)

    int sqlite3_create_function_v2(sqlite3 *db, const char *name, int nArg, int eTextRep,
                                   void *pApp,
                                   void (*xFunc)(sqlite3_context *, int, sqlite3_value **),
                                   void (*xStep)(sqlite3_context *, int, sqlite3_value **),
                                   void (*xFinal)(sqlite3_context *),
                                   void (*xDestroy)(void *))
    void *sqlite3_user_data(sqlite3_context *ctx)
    int sqlite3_value_type(sqlite3_value *v)
    sqlite3_int64 sqlite3_value_int64(sqlite3_value *v)
    double sqlite3_value_double(sqlite3_value *v)
    const unsigned char *sqlite3_value_text(sqlite3_value *v)
    const void *sqlite3_value_blob(sqlite3_value *v)
    int sqlite3_value_bytes(sqlite3_value *v)
    void sqlite3_result_null(sqlite3_context *ctx)
    void sqlite3_result_int64(sqlite3_context *ctx, sqlite3_int64 v)
    void sqlite3_result_double(sqlite3_context *ctx, double v)
    void sqlite3_result_text64(sqlite3_context *ctx, const char *v, sqlite3_uint64 n,
                               sqlite3_destructor_type d, unsigned char encoding)
    void sqlite3_result_blob64(sqlite3_context *ctx, const void *v, sqlite3_uint64 n,
                               sqlite3_destructor_type d)
    void sqlite3_result_error(sqlite3_context *ctx, const char *msg, int n)
    void sqlite3_result_error_nomem(sqlite3_context *ctx)
    void sqlite3_result_error_toobig(sqlite3_context *ctx)

    # The sqlite3-module surface (fastpool.dbapi): aggregates, windows, collations, hooks,
    # backup, blobs, serialization, extensions.
    void *sqlite3_aggregate_context(sqlite3_context *ctx, int nBytes)
    int sqlite3_create_window_function(sqlite3 *db, const char *name, int nArg, int eTextRep,
                                       void *pApp,
                                       void (*xStep)(sqlite3_context *, int, sqlite3_value **),
                                       void (*xFinal)(sqlite3_context *),
                                       void (*xValue)(sqlite3_context *),
                                       void (*xInverse)(sqlite3_context *, int,
                                                        sqlite3_value **),
                                       void (*xDestroy)(void *))
    int sqlite3_create_collation_v2(sqlite3 *db, const char *name, int eTextRep, void *arg,
                                    int (*cmp)(void *, int, const void *, int,
                                               const void *) noexcept,
                                    void (*destroy)(void *) noexcept)
    int sqlite3_set_authorizer(sqlite3 *db,
                               int (*cb)(void *, int, const char *, const char *,
                                         const char *, const char *) noexcept,
                               void *arg)
    int sqlite3_trace_v2(sqlite3 *db, unsigned int mask,
                         int (*cb)(unsigned int, void *, void *, void *) noexcept, void *arg)
    char *sqlite3_expanded_sql(sqlite3_stmt *stmt)
    void sqlite3_free(void *p)
    void *sqlite3_malloc64(sqlite3_uint64 n)
    void *sqlite3_realloc64(void *p, sqlite3_uint64 n)
    int sqlite3_complete(const char *sql)
    int sqlite3_enable_load_extension(sqlite3 *db, int onoff)
    int sqlite3_load_extension(sqlite3 *db, const char *file, const char *proc, char **errmsg)
    # fastpool.ReplicaPool: a VFS an extension registers (its own auto-extension cancelled;
    # sqlite3_vfs_find is declared with the VFS below).
    void sqlite3_reset_auto_extension()
    ctypedef struct sqlite3_backup
    sqlite3_backup *sqlite3_backup_init(sqlite3 *dest, const char *destName, sqlite3 *source,
                                        const char *sourceName)
    int sqlite3_backup_step(sqlite3_backup *b, int nPage)
    int sqlite3_backup_finish(sqlite3_backup *b)
    int sqlite3_backup_remaining(sqlite3_backup *b)
    int sqlite3_backup_pagecount(sqlite3_backup *b)
    ctypedef struct sqlite3_blob
    int sqlite3_blob_open(sqlite3 *db, const char *zDb, const char *zTable,
                          const char *zColumn, sqlite3_int64 iRow, int flags,
                          sqlite3_blob **ppBlob)
    int sqlite3_blob_close(sqlite3_blob *b)
    int sqlite3_blob_bytes(sqlite3_blob *b)
    int sqlite3_blob_read(sqlite3_blob *b, void *z, int n, int iOffset)
    int sqlite3_blob_write(sqlite3_blob *b, const void *z, int n, int iOffset)
    unsigned char *sqlite3_serialize(sqlite3 *db, const char *zSchema, sqlite3_int64 *piSize,
                                     unsigned int mFlags)
    int sqlite3_deserialize(sqlite3 *db, const char *zSchema, unsigned char *pData,
                            sqlite3_int64 szDb, sqlite3_int64 szBuf, unsigned int mFlags)
    int sqlite3_errcode(sqlite3 *db)
    void sqlite3_result_value(sqlite3_context *ctx, sqlite3_value *v)


# The VFS and file objects, whole: fastpool's VFS (_wal_vfs.pxi) wraps the default one.
cdef extern from *:
    """
    typedef void (*fp_sqlite3_dl_symbol)(void);  /* what sqlite3_vfs.xDlSym returns */
    """
    ctypedef void (*sqlite3_dl_symbol "fp_sqlite3_dl_symbol")() noexcept nogil

cdef extern from "sqlite3.h" nogil:
    ctypedef struct sqlite3_io_methods
    ctypedef struct sqlite3_file:
        const sqlite3_io_methods *pMethods
    ctypedef struct sqlite3_io_methods:
        int iVersion
        int (*xClose)(sqlite3_file *) noexcept nogil
        int (*xRead)(sqlite3_file *, void *, int, sqlite3_int64) noexcept nogil
        int (*xWrite)(sqlite3_file *, const void *, int, sqlite3_int64) noexcept nogil
        int (*xTruncate)(sqlite3_file *, sqlite3_int64) noexcept nogil
        int (*xSync)(sqlite3_file *, int) noexcept nogil
        int (*xFileSize)(sqlite3_file *, sqlite3_int64 *) noexcept nogil
        int (*xLock)(sqlite3_file *, int) noexcept nogil
        int (*xUnlock)(sqlite3_file *, int) noexcept nogil
        int (*xCheckReservedLock)(sqlite3_file *, int *) noexcept nogil
        int (*xFileControl)(sqlite3_file *, int, void *) noexcept nogil
        int (*xSectorSize)(sqlite3_file *) noexcept nogil
        int (*xDeviceCharacteristics)(sqlite3_file *) noexcept nogil
        # Versions 2 and 3 (shared memory, memory mapping) are the database file's: a file
        # fastpool's VFS wraps (a WAL) declares version 1 and never gets these.

    ctypedef void (*sqlite3_syscall_ptr)() noexcept nogil
    ctypedef struct sqlite3_vfs:
        int iVersion
        int szOsFile
        int mxPathname
        sqlite3_vfs *pNext
        const char *zName
        void *pAppData
        int (*xOpen)(sqlite3_vfs *, const char *, sqlite3_file *, int, int *) noexcept nogil
        int (*xDelete)(sqlite3_vfs *, const char *, int) noexcept nogil
        int (*xAccess)(sqlite3_vfs *, const char *, int, int *) noexcept nogil
        int (*xFullPathname)(sqlite3_vfs *, const char *, int, char *) noexcept nogil
        void *(*xDlOpen)(sqlite3_vfs *, const char *) noexcept nogil
        void (*xDlError)(sqlite3_vfs *, int, char *) noexcept nogil
        sqlite3_dl_symbol (*xDlSym)(sqlite3_vfs *, void *, const char *) noexcept nogil
        void (*xDlClose)(sqlite3_vfs *, void *) noexcept nogil
        int (*xRandomness)(sqlite3_vfs *, int, char *) noexcept nogil
        int (*xSleep)(sqlite3_vfs *, int) noexcept nogil
        int (*xCurrentTime)(sqlite3_vfs *, double *) noexcept nogil
        int (*xGetLastError)(sqlite3_vfs *, int, char *) noexcept nogil
        int (*xCurrentTimeInt64)(sqlite3_vfs *, sqlite3_int64 *) noexcept nogil
        int (*xSetSystemCall)(sqlite3_vfs *, const char *, sqlite3_syscall_ptr) noexcept nogil
        sqlite3_syscall_ptr (*xGetSystemCall)(sqlite3_vfs *, const char *) noexcept nogil
        const char *(*xNextSystemCall)(sqlite3_vfs *, const char *) noexcept nogil

    sqlite3_vfs *sqlite3_vfs_find(const char *zVfsName)
    int sqlite3_vfs_register(sqlite3_vfs *vfs, int makeDflt)
