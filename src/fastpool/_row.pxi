@cython.final
cdef class Row:
    """Row(names, values)
--

    A result row with access by position and by column name.

    ``row[0]``, ``row["name"]`` (exact match first, then case-insensitive), ``row.keys()``,
    ``len(row)``, iteration over values, ``tuple(row)``. Rows are equal when their column
    names and values are equal. Select it with ``row_factory=fastpool.Row``.
    """

    def __init__(self, names, values):
        names = tuple(names)
        values = tuple(values)
        if len(names) != len(values):
            raise ValueError(
                f"Row needs one name per value: {len(names)} names, {len(values)} values")
        for name in names:
            if type(name) is not str:
                raise TypeError(f"Row column names must be str, not {type(name).__name__}")
        self._names = names
        self._values = values
        self._index = {name: i for i, name in reversed(list(enumerate(names)))}

    def __getitem__(self, key):
        if type(key) is str:
            i = self._index.get(key)
            if i is None:
                folded = (<str>key).casefold()
                for j, name in enumerate(self._names):
                    if (<str>name).casefold() == folded:
                        i = j
                        break
                else:
                    raise KeyError(f"no column named {key!r}; the columns are {list(self._names)}")
            return self._values[i]
        return self._values[key]

    def keys(self):
        """Return the column names, in order."""
        return list(self._names)

    def __len__(self):
        return len(self._values)

    def __iter__(self):
        return iter(self._values)

    def __contains__(self, value):
        return value in self._values

    def __eq__(self, other):
        if type(other) is not Row:
            return NotImplemented
        return self._names == (<Row>other)._names and self._values == (<Row>other)._values

    def __hash__(self):
        return hash((self._names, self._values))

    def __repr__(self):
        fields = ", ".join([f"{name}={value!r}" for name, value in zip(self._names, self._values)])
        return f"Row({fields})"

    def __reduce__(self):
        return (Row, (self._names, self._values))


cdef inline Row make_row_object(tuple names, dict index, tuple values):
    cdef Row row = Row.__new__(Row)
    row._names = names
    row._index = index
    row._values = values
    return row
