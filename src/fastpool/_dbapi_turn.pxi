# Fair waiting for the write lock between fastpool.dbapi connections of one process: a
# per-file FIFO turn that a connection takes before it begins a write transaction (BEGIN
# IMMEDIATE/EXCLUSIVE) and gives back as soon as the transaction has ended. Waiters are served
# in arrival order, sleeping on a condition (the GIL released), instead of SQLite's busy
# handler polling with its growing back-off. Across processes SQLite's lock still decides.

import threading
from collections import deque
from time import monotonic as _monotonic


cdef class WriteTurn:
    """The FIFO turn to write one database file (internal)."""

    cdef object cond
    cdef object waiting         # tokens in arrival order
    cdef object holder          # the token holding the turn, or None

    def __cinit__(self):
        self.cond = threading.Condition()
        self.waiting = deque()
        self.holder = None

    cdef bint take(self, object token, double timeout) except -1:
        # Wait (at most timeout seconds) for the turn; False when the wait timed out.
        cdef double deadline
        with self.cond:
            if self.holder is None and not self.waiting:
                self.holder = token
                return True
            self.waiting.append(token)
            deadline = _monotonic() + timeout
            try:
                while self.holder is not None or self.waiting[0] is not token:
                    left = deadline - _monotonic()
                    if left <= 0:
                        return False
                    self.cond.wait(left)
                self.waiting.popleft()
                self.holder = token
                return True
            finally:
                if self.holder is not token:
                    self.waiting.remove(token)
                    self.cond.notify_all()

    cdef void give_back(self, object token) noexcept:
        with self.cond:
            if self.holder is token:
                self.holder = None
                self.cond.notify_all()


cdef dict WRITE_TURNS = {}      # file identity (st_dev, st_ino) -> WriteTurn
cdef object WRITE_TURNS_LOCK = threading.Lock()


cdef WriteTurn write_turn_for(object file_key):
    if file_key is None:
        return None     # a private in-memory database: nobody to wait for
    with WRITE_TURNS_LOCK:
        turn = WRITE_TURNS.get(file_key)
        if turn is None:
            turn = WRITE_TURNS[file_key] = WriteTurn()
        return turn
