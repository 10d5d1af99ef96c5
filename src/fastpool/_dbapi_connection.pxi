# fastpool.dbapi.Connection: the sqlite3 module's connection on a core Connection (see
# _dbapi.pxd). Transactions follow the sqlite3 module: in the default (legacy) mode a
# transaction opens before INSERT/UPDATE/DELETE/REPLACE only, so reads outside one hold no
# snapshot; fastpool's one change is that such a transaction, and a written bare BEGIN,
# begin IMMEDIATE (immediate=False restores the sqlite3 module's deferred BEGIN).

import weakref

from cpython.pythread cimport PyThread_get_thread_ident

# Python 3.13's sqlite3 warns when a connection is collected without close().
cdef bint WARN_UNCLOSED = sys.version_info >= (3, 13)

cdef enum:
    LEGACY = -1
    AUTOCOMMIT_OFF = 0
    AUTOCOMMIT_ON = 1

cdef dict BEGIN_FOR = {"": None, "DEFERRED": "BEGIN DEFERRED", "IMMEDIATE": "BEGIN IMMEDIATE",
                       "EXCLUSIVE": "BEGIN EXCLUSIVE"}


cdef int autocommit_mode(object value) except -2:
    if value is True:
        return AUTOCOMMIT_ON
    if value is False:
        return AUTOCOMMIT_OFF
    if type(value) is int and value == LEGACY:
        return LEGACY
    raise ValueError("autocommit must be True, False, or sqlite3.LEGACY_TRANSACTION_CONTROL")


# No tp_clear: __dealloc__ needs the turn (a collected cycle must still give it back).
@cython.no_gc_clear
cdef class DBAPIConnection:
    """DBAPIConnection(database, *args, timeout=5.0, detect_types=0, isolation_level="",
                check_same_thread=True, factory=None, cached_statements=128, uri=False,
                autocommit=-1, readonly=False, pragmas=None, defensive=True,
                immediate=True)
--

    A connection of the sqlite3 module (``fastpool.dbapi.connect()`` makes these).

    Subclass it and pass ``factory=`` to ``connect()`` as with ``sqlite3``.
    """

    def __init__(self, database, *args, timeout=5.0, detect_types=0, isolation_level="",
                 check_same_thread=True, factory=None, cached_statements=128, uri=False,
                 autocommit=LEGACY, readonly=False, pragmas=None, defensive=True,
                 immediate=True):
        if args:
            given = positional_options(args)    # _dbapi_callbacks.pxi (3.13 deprecates them)
            timeout = given.get("timeout", timeout)
            detect_types = given.get("detect_types", detect_types)
            isolation_level = given.get("isolation_level", isolation_level)
            check_same_thread = given.get("check_same_thread", check_same_thread)
            cached_statements = given.get("cached_statements", cached_statements)
            uri = given.get("uri", uri)
        cdef int mode = autocommit_mode(autocommit)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
        if not 0 <= timeout <= 2_000_000:
            raise ValueError(f"timeout must be between 0 and 2000000 seconds, not {timeout!r}")
        if not isinstance(detect_types, int):
            raise TypeError(f"detect_types must be an int, not {type(detect_types).__name__}")
        if not isinstance(cached_statements, int):
            raise TypeError("cached_statements must be an int")
        if cached_statements < 0:
            raise ValueError("cached_statements must be >= 0")
        path = os.fspath(database)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not uri and path.startswith("file:"):
            path = "./" + path      # a plain file name, as sqlite3 treats it without uri=True
        self.set_isolation(isolation_level)
        self.leave_turn()       # a second __init__: the old database's turn, if held, goes
        # A second __init__ opens a new database; cursors of the old one keep it open until
        # they are done with it, as in the sqlite3 module.
        self.core = None
        self.core = Connection(path, readonly=bool(readonly), pragmas=pragmas or {},
                               statement_cache_size=cached_statements,
                               busy_timeout=float(timeout), row_factory=None,
                               autocommit=True, defensive=bool(defensive))
        self.turn = write_turn_for(self.core)     # _dbapi_turn.pxi
        self.turn_token = object()
        self.detect_types = detect_types
        self.same_thread = bool(check_same_thread)
        self.owner = PyThread_get_thread_ident()
        # A private in-memory database has no other connection to wait for: BEGIN there is
        # the sqlite3 module's, whatever `immediate` says.
        self.immediate = bool(immediate) and path not in (":memory:", "")
        self.text_factory = str
        self.keep = {}
        self.blobs = weakref.WeakSet()
        self.mode = mode
        if mode == AUTOCOMMIT_OFF:
            self.exec_sql("BEGIN")

    cdef int set_isolation(self, object level) except -1:
        if level is None:
            self.isolation = None
            self.begin_sql = None
            return 0
        if not isinstance(level, str):
            raise TypeError("isolation_level must be str or None")
        key = str.upper(level)
        if key not in BEGIN_FOR:
            raise ValueError("isolation_level string must be '', 'DEFERRED', 'IMMEDIATE', or "
                             "'EXCLUSIVE'")
        self.isolation = level
        self.begin_sql = BEGIN_FOR[key]
        return 0

    cdef int check_thread(self) except -1:
        cdef unsigned long me
        if self.same_thread:
            me = PyThread_get_thread_ident()
            if me != self.owner:
                raise ProgrammingError(
                    f"SQLite objects created in a thread can only be used in that same thread. "
                    f"The object was created in thread id {self.owner} and this is thread id "
                    f"{me}.")
        return 0

    cdef int check_open(self) except -1:
        if self.core is None:
            raise ProgrammingError("Base Connection.__init__ not called.")
        self.check_thread()
        if self.core.db == NULL:
            raise ProgrammingError("Cannot operate on a closed database.")
        return 0

    cdef int check(self) except -1:
        # check_open, and no other thread's call running on the handle (opened without
        # SQLite's mutex: it serves one thread at a time, check_same_thread=False or not).
        self.check_open()
        if self.core.in_call and self.core.call_thread != PyThread_get_thread_ident():
            raise InterfaceError(
                "the connection is running a call in another thread; a connection serves one "
                "thread at a time (open one per thread)")
        return 0

    cdef int exec_sql(self, str sql) except -1:
        # One transaction-control statement, inside or outside a call on the core.
        cdef Connection core = self.core
        cdef bytes text = sql.encode("utf-8")
        cdef int rc
        arm(&core.hooks)
        rc = sqlite3_exec(core.db, text, NULL, NULL, NULL)
        disarm(&core.hooks)
        if rc != SQLITE_OK:
            core.raise_error(rc)
        return 0

    cdef int take_turn(self) except -1:
        # Before a write transaction begins: this process's writers of the file, then other
        # processes' (_dbapi_turn.pxi), at most the busy timeout (then "database is locked").
        if self.turn is None or self.holds_turn or not sqlite3_get_autocommit(self.core.db):
            return 0
        (<WriteTurn>self.turn).take_for(self.core, self.turn_token)
        self.holds_turn = True
        return 0

    cdef void drop_turn(self, bint force) noexcept:
        # Once the write transaction has ended (or the connection closes), the next waiter's.
        if self.holds_turn and (force or self.core is None or self.core.db == NULL
                                or sqlite3_get_autocommit(self.core.db)):
            self.holds_turn = False
            (<WriteTurn>self.turn).give_back_from(self.core, self.turn_token)

    cdef void leave_turn(self) noexcept:
        # Closing (or opening another database): the turn goes back, and a user with it.
        self.drop_turn(True)
        if self.turn is not None:
            (<WriteTurn>self.turn).leave()
            self.turn = None

    def __dealloc__(self):
        self.leave_turn()

    cdef int begin_if_needed(self, Statement st) except -1:
        cdef Connection core = self.core
        if self.mode == LEGACY:
            if (self.isolation is None or st.readonly or not sqlite3_get_autocommit(core.db)
                    or not DML_KEYWORD.match(sqlite3_sql(st.handle).decode("utf-8"))):
                return 0
            if self.begin_sql is not None:
                if self.begin_sql != "BEGIN DEFERRED":
                    self.take_turn()
                self.exec_sql(self.begin_sql)
            elif self.immediate and not core.readonly:
                self.take_turn()
                self.exec_sql("BEGIN IMMEDIATE")
            else:
                self.exec_sql("BEGIN ")     # the sqlite3 module's text for isolation_level ""
        elif self.mode == AUTOCOMMIT_OFF and sqlite3_get_autocommit(core.db):
            self.exec_sql("BEGIN")
        return 0

    cdef int control(self, str sql) except -1:
        # One transaction-control statement as a call of its own (or nested in the call that
        # is running one of this connection's callbacks on this thread).
        cdef Hooks saved
        cdef int nested = dbapi_enter(self.core, &saved)
        try:
            self.exec_sql(sql)
        finally:
            dbapi_leave(self.core, nested, &saved)
            self.drop_turn(False)
        return 0

    cdef int end_transaction(self, str sql) except -1:
        self.check()
        if not sqlite3_get_autocommit(self.core.db):
            self.control(sql)
        if self.mode == AUTOCOMMIT_OFF:
            self.control("BEGIN")
        return 0

    # -- the sqlite3 module's API ----------------------------------------------------------

    def cursor(self, factory=DBAPICursor):
        """A new cursor (``factory``: a Cursor subclass, called with this connection)."""
        self.check()
        cur = factory(self)
        if not isinstance(cur, DBAPICursor):
            raise TypeError("factory must return a cursor, not " + type(cur).__name__)
        if self.row_factory is not None:
            (<DBAPICursor>cur).row_factory = self.row_factory
        return cur

    cdef DBAPICursor new_cursor(self):
        # cursor() with the default factory, made in C (the shortcuts' hot path).
        self.check()
        cdef DBAPICursor cur = DBAPICursor.__new__(DBAPICursor)
        cur.conn = self
        cur.row_factory = self.row_factory
        cur.initialized = True
        return cur

    def execute(self, sql, parameters=(), /):
        """Shortcut: a new cursor's ``execute(sql, parameters)``; returns the cursor."""
        cdef DBAPICursor cur = self.new_cursor()
        cur.run(sql_text(sql, "execute"), parameters, False)
        return cur

    def executemany(self, sql, parameters, /):
        """Shortcut: a new cursor's ``executemany(sql, parameters)``; returns the cursor."""
        return self.cursor().executemany(sql, parameters)

    def executescript(self, sql_script, /):
        """Shortcut: a new cursor's ``executescript(sql_script)``; returns the cursor."""
        return self.cursor().executescript(sql_script)

    def commit(self):
        """Commit the open transaction, if any."""
        if self.mode != AUTOCOMMIT_ON:
            self.end_transaction("COMMIT")
        else:
            self.check()

    def rollback(self):
        """Roll back the open transaction, if any."""
        if self.mode != AUTOCOMMIT_ON:
            self.end_transaction("ROLLBACK")
        else:
            self.check()

    def close(self):
        """Close the connection; an open transaction is rolled back, never committed."""
        if self.core is None:
            raise ProgrammingError("Base Connection.__init__ not called.")
        self.check_thread()
        if self.core.db == NULL:
            return
        for blob in list(self.blobs):
            blob.close()
        if self.mode == AUTOCOMMIT_OFF and not sqlite3_get_autocommit(self.core.db):
            self.control("ROLLBACK")
        self.core.close()
        self.leave_turn()
        self.keep.clear()

    def __call__(self, *args):
        """Prepare ``sql`` (checked as execute() would) and return the prepared statement."""
        self.check()
        if len(args) != 1:
            raise TypeError(f"Connection() takes exactly 1 argument ({len(args)} given)")
        sql = args[0]
        if not isinstance(sql, str):
            raise TypeError(f"argument must be str, not {type(sql).__name__}")
        try:
            st = prepare_statement(self.core, sql, False)
        except Error as exc:
            if lend_failure(exc, sql):
                return None
            raise
        return PreparedSQL(PREPARED_TOKEN, st)

    __signature__ = _CallSignature()

    def getconfig(self, op, /):
        """The boolean setting ``op`` (an SQLITE_DBCONFIG_* constant)."""
        return bool(db_config(self, op, -1))

    def setconfig(self, op, enable=True, /):
        """Turn the boolean setting ``op`` on or off; returns the new state."""
        return bool(db_config(self, op, 1 if enable else 0))

    def __del__(self):
        if (WARN_UNCLOSED and self.core is not None and self.core.db != NULL):
            warnings.warn(f"unclosed database in {self!r}", ResourceWarning, stacklevel=1)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        # Commit when the block ended normally (rolling back if the commit fails), else roll
        # back; the block's exception, if any, propagates.
        if not exc_info or exc_info[0] is None:
            try:
                self.commit()
            except BaseException:
                self.rollback()
                raise
        else:
            self.rollback()
        return False

    def interrupt(self):
        """Make the running statement stop with OperationalError (from any thread)."""
        if self.core is None:
            raise ProgrammingError("Base Connection.__init__ not called.")
        if self.core.db == NULL:
            raise ProgrammingError("Cannot operate on a closed database.")
        sqlite3_interrupt(self.core.db)

    # -- callbacks (_dbapi_callbacks.pxi) and extras (_dbapi_extras.pxi) --------------------

    def create_function(self, *args, deterministic=False, **kwargs):
        """create_function(name, narg, func, /, *, deterministic=False)

        Make ``func`` callable from SQL as ``name`` with ``narg`` arguments (-1: any)."""
        name, narg, func = positional_args("create_function", ("name", "narg", "func"),
                                           args, kwargs)
        if not isinstance(name, str):
            raise TypeError(f"create_function() argument 'name' must be str, not "
                            f"{type(name).__name__}")
        add_function(self, name, narg, func, deterministic)

    def create_aggregate(self, *args, **kwargs):
        """create_aggregate(name, n_arg, aggregate_class, /)

        Register an aggregate: ``aggregate_class()`` with ``step(*args)`` and ``finalize()``."""
        name, n_arg, aggregate_class = positional_args(
            "create_aggregate", ("name", "n_arg", "aggregate_class"), args, kwargs)
        if not isinstance(name, str):
            raise TypeError(f"create_aggregate() argument 'name' must be str, not "
                            f"{type(name).__name__}")
        add_aggregate(self, name, n_arg, aggregate_class, False)

    def create_window_function(self, name, num_params, aggregate_class, /):
        """Register an aggregate window function (``step``, ``inverse``, ``value``,
        ``finalize``); None removes it."""
        if not isinstance(name, str):
            raise TypeError(f"create_window_function() argument 1 must be str, not "
                            f"{type(name).__name__}")
        add_aggregate(self, name, num_params, aggregate_class, True)

    def create_collation(self, name, callback, /):
        """Register collation ``name``: ``callback(a, b)`` returns <0, 0 or >0; None removes."""
        if not isinstance(name, str):
            raise TypeError(f"create_collation() argument 1 must be str, not "
                            f"{type(name).__name__}")
        add_collation(self, name, callback)

    def set_authorizer(self, *args, **kwargs):
        """set_authorizer(authorizer_callback, /)

        Call ``authorizer_callback(action, arg1, arg2, db, source)`` as statements are
        prepared: SQLITE_OK, SQLITE_DENY or SQLITE_IGNORE. None removes it."""
        authorizer_callback, = positional_args("set_authorizer", ("authorizer_callback",),
                                               args, kwargs)
        set_authorizer(self, authorizer_callback)

    def set_progress_handler(self, *args, **kwargs):
        """set_progress_handler(progress_handler, /, n)

        Call ``progress_handler()`` every ``n`` VM instructions; a true result aborts."""
        if len(args) == 2:
            args, kwargs = args[:1], {**kwargs, "n": args[1]}
        if "n" not in kwargs:
            raise TypeError("set_progress_handler() missing required argument 'n'")
        n = kwargs.pop("n")
        progress_handler, = positional_args("set_progress_handler", ("progress_handler",),
                                            args, kwargs)
        set_progress(self, progress_handler, n)

    def set_trace_callback(self, *args, **kwargs):
        """set_trace_callback(trace_callback, /)

        Call ``trace_callback(sql)`` for each statement SQLite runs; None removes it."""
        trace_callback, = positional_args("set_trace_callback", ("trace_callback",), args,
                                          kwargs)
        set_trace(self, trace_callback)

    def enable_load_extension(self, enable, /):
        """Allow (or forbid again) load_extension(); off by default."""
        self.check()
        cdef int rc = sqlite3_enable_load_extension(self.core.db, 1 if enable else 0)
        if rc != SQLITE_OK:
            raise OperationalError("Error enabling load extension")

    def load_extension(self, name, /, *, entrypoint=None):
        """Load an SQLite extension (after enable_load_extension(True))."""
        load_extension_into(self, os.fsdecode(name), entrypoint)

    def backup(self, target, *, pages=-1, progress=None, name="main", sleep=0.250):
        """Copy database ``name`` into ``target`` (a Connection), ``pages`` at a time;
        ``progress(status, remaining, total)`` after each step."""
        if not isinstance(name, str):
            raise TypeError(f"backup() argument 'name' must be str, not {type(name).__name__}")
        run_backup(self, target, pages, progress, name, sleep)

    def blobopen(self, table, column, row, /, *, readonly=False, name="main"):
        """Open the BLOB at ``table.column``, rowid ``row``, as a Blob."""
        return open_blob(self, table, column, row, readonly, name)

    def serialize(self, *, name="main"):
        """The database ``name`` as bytes (what its file would hold)."""
        return serialize_db(self, name)

    def deserialize(self, data, /, *, name="main"):
        """Replace database ``name`` with the serialized bytes ``data``."""
        deserialize_db(self, data, name)

    def getlimit(self, category, /):
        """The run-time limit ``category`` (an SQLITE_LIMIT_* constant)."""
        return limit_of(self, category, -1)

    def setlimit(self, category, limit, /):
        """Set run-time limit ``category`` to ``limit`` (negative: unchanged); returns the old."""
        return limit_of(self, category, limit)

    def iterdump(self, *, filter=None):
        """The SQL text that recreates the database, statement by statement (``filter``: a
        LIKE pattern of the table and view names to dump)."""
        self.check()
        if DUMP_FUNCTION is None:
            raise NotSupportedError("iterdump() needs fastpool.dbapi imported")
        return DUMP_FUNCTION(self, filter=filter)

    def __getattr__(self, name):
        try:
            return DBAPI_ERRORS[name]
        except KeyError:
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute '{name}'") from None

    @property
    def isolation_level(self):
        """The BEGIN mode ('', 'DEFERRED', 'IMMEDIATE' or 'EXCLUSIVE'), or None for autocommit."""
        self.check_open()
        return self.isolation

    @isolation_level.setter
    def isolation_level(self, value):
        self.check()
        if value is None and not sqlite3_get_autocommit(self.core.db):
            self.end_transaction("COMMIT")
        self.set_isolation(value)

    @isolation_level.deleter
    def isolation_level(self):
        raise AttributeError("cannot delete attribute")

    @property
    def autocommit(self):
        """True, False, or LEGACY_TRANSACTION_CONTROL (-1, the default)."""
        self.check_open()
        return {AUTOCOMMIT_ON: True, AUTOCOMMIT_OFF: False}.get(self.mode, LEGACY)

    @autocommit.setter
    def autocommit(self, value):
        self.check()
        cdef int mode = autocommit_mode(value)
        self.mode = mode
        if mode == AUTOCOMMIT_ON and not sqlite3_get_autocommit(self.core.db):
            self.end_transaction("COMMIT")
        if mode == AUTOCOMMIT_OFF and sqlite3_get_autocommit(self.core.db):
            self.control("BEGIN")

    @property
    def in_transaction(self):
        """True while a transaction is open."""
        self.check_open()
        return not sqlite3_get_autocommit(self.core.db)

    @property
    def total_changes(self):
        """Rows inserted, updated or deleted since the connection opened."""
        self.check_open()
        return sqlite3_total_changes64(self.core.db)

    @property
    def path(self):
        """The database path or URI given to connect() (a fastpool addition)."""
        return self.core.path if self.core is not None else None
