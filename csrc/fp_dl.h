/*
 * fp_dl.h - which loaded object a function lives in.
 *
 * fastpool asks whether the SQLite it calls is the one the stdlib's sqlite3 module calls:
 * two copies of SQLite must never open one file in one process.
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

/* Whether `symbol`, as the object at `path` (NULL: the main program) and its dependencies
 * resolve it, is `ours`: FP_DL_SAME, FP_DL_DIFFERENT, or FP_DL_UNKNOWN when the object
 * cannot be loaded or does not see the symbol. The object is loaded for the question only
 * (a module Python has not imported is unloaded again, its initialiser never run). */
int fp_dl_same_symbol(const char *path, const char *symbol, const void *ours);

#endif /* FP_DL_H */
