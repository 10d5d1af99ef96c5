# Loading SQLite extensions: the one loader (fastpool.dbapi's load_extension() calls it too),
# and the load of a VFS extension for fastpool.ReplicaPool, which enables loading through the
# C API for that one call (SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION: SQL's load_extension() stays
# off) on a private in-memory connection, closed right after.

import os


cdef int load_extension_c(sqlite3 *db, str path, object entrypoint) except -1:
    cdef char *errmsg = NULL
    cdef bytes c_path = os.fsencode(path)
    cdef bytes c_entry = None if entrypoint is None else str(entrypoint).encode("utf-8")
    cdef const char *entry = NULL
    if c_entry is not None:
        entry = c_entry
    cdef int rc = sqlite3_load_extension(db, c_path, entry, &errmsg)
    if rc != SQLITE_OK:
        message = (<bytes>errmsg).decode("utf-8", "replace") if errmsg != NULL else "error"
        sqlite3_free(errmsg)
        raise OperationalError(message)
    return 0


def load_vfs_extension(str path, str vfs_name, object entrypoint=None):
    """Load the extension at ``path`` that registers the VFS ``vfs_name`` (internal).

    Returns False when that VFS is registered already (nothing loaded), True once loaded.
    Extensions such as Litestream's also register an auto-extension that makes every later
    sqlite3_open fail for any other VFS; auto-extensions are reset after the load (fastpool
    registers none; the VFS's PRAGMAs do not need it).
    """
    cdef bytes c_name = vfs_name.encode("utf-8")
    cdef int rc, state = 0
    if sqlite3_vfs_find(c_name) != NULL:
        return False
    cdef Connection conn = Connection(":memory:", statement_cache_size=0)
    try:
        rc = sqlite3_db_config(conn.db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, &state)
        if rc != SQLITE_OK:
            conn.raise_error(rc)
        try:
            load_extension_c(conn.db, path, entrypoint)
        finally:
            rc = sqlite3_db_config(conn.db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, &state)
            sqlite3_reset_auto_extension()
        if rc != SQLITE_OK:
            conn.raise_error(rc)
    finally:
        conn.close()
    if sqlite3_vfs_find(c_name) == NULL:
        raise OperationalError(f"{path} loaded but registered no VFS named {vfs_name!r}")
    return True
