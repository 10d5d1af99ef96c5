/*
 * fp_dl.h - which loaded object a function lives in.
 *
 * fastpool asks whether the SQLite it calls was compiled into its own extension (a wheel's
 * bundled copy) or comes from a shared libsqlite3 that other modules of the process (the
 * stdlib's sqlite3) may share: two copies of SQLite must never open one file in one process.
 *
 * Pure C11 plus dladdr(3) (POSIX-ish: glibc, musl, macOS). Elsewhere: FP_DL_UNKNOWN.
 */
#ifndef FP_DL_H
#define FP_DL_H

#define FP_DL_DIFFERENT 0
#define FP_DL_SAME      1
#define FP_DL_UNKNOWN (-1)

/* FP_DL_SAME when the code at a and b belongs to one loaded object (executable or shared
 * library), FP_DL_DIFFERENT when not, FP_DL_UNKNOWN when the loader cannot tell. */
int fp_dl_same_object(const void *a, const void *b);

#endif /* FP_DL_H */
