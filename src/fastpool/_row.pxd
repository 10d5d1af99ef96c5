# The row unit (_row.pxi).

cdef class Row:
    cdef tuple _values
    cdef tuple _names
    cdef dict _index
