# fastpool.dbapi.Row: the sqlite3 module's row_factory row (access by index, by column name
# case-insensitively, keys(), equality with rows of the same description).


cdef class DBAPIRow:
    """DBAPIRow(cursor, data, /)
--

    A row of the sqlite3 module: ``Row(cursor, values)``, set ``row_factory = Row``.
    """

    cdef tuple data
    cdef tuple description

    def __cinit__(self, cursor, data, /):
        if not isinstance(cursor, DBAPICursor):
            raise TypeError(f"argument 1 must be sqlite3.Cursor, not {type(cursor).__name__}")
        if type(data) is not tuple:
            raise TypeError(f"argument 2 must be tuple, not {type(data).__name__}")
        self.data = <tuple>data
        self.description = (<DBAPICursor>cursor)._description

    def keys(self):
        """The column names, in order."""
        if self.description is None:
            return []
        return [column[0] for column in self.description]

    def __len__(self):
        return len(self.data)

    def __iter__(self):
        return iter(self.data)

    def __getitem__(self, key):
        cdef Py_ssize_t i
        if isinstance(key, str):
            if self.description is not None:
                folded = (<str>key).lower() if (<str>key).isascii() else key
                for i, column in enumerate(self.description):
                    name = column[0]
                    if name == key or (name.isascii() and name.lower() == folded):
                        return self.data[i]
            raise IndexError("No item with that key")
        if isinstance(key, slice):
            return self.data[key]
        if hasattr(key, "__index__"):
            index = key.__index__()
            if not -len(self.data) <= index < len(self.data):
                raise IndexError("tuple index out of range")
            return PySequence_GetItem(self.data, index)    # negative: from the end
        raise IndexError("Index must be int or string")

    def __hash__(self):
        return hash(self.description) ^ hash(self.data)

    def __richcmp__(self, other, int op):
        if not isinstance(other, DBAPIRow) or (op != 2 and op != 3):
            return NotImplemented
        same = ((<DBAPIRow>other).description == self.description
                and (<DBAPIRow>other).data == self.data)
        return same if op == 2 else not same
