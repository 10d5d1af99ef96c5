/* fp_dl.c - see fp_dl.h for the contract. */
#include "fp_internal.h"
#include "fp_dl.h"

#if defined(__linux__) || defined(__APPLE__) || defined(__FreeBSD__)

#include <dlfcn.h>
#include <stddef.h>

int fp_dl_same_object(const void *a, const void *b)
{
    Dl_info ia, ib;
    /* dladdr returns 0 when the address is in no loaded object it knows. */
    if (dladdr(a, &ia) == 0 || dladdr(b, &ib) == 0 || ia.dli_fbase == NULL)
        return FP_DL_UNKNOWN;
    return ia.dli_fbase == ib.dli_fbase ? FP_DL_SAME : FP_DL_DIFFERENT;
}

int fp_dl_same_symbol(const char *path, const char *symbol, const void *ours)
{
    void *handle, *theirs;
    /* RTLD_LOCAL: nothing of the object joins the global scope; dlclose() drops our
     * reference, so an object nobody else loaded goes away again. */
    handle = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
    if (handle == NULL)
        return FP_DL_UNKNOWN;
    theirs = dlsym(handle, symbol);
    dlclose(handle);
    if (theirs == NULL)
        return FP_DL_UNKNOWN;
    return theirs == ours ? FP_DL_SAME : FP_DL_DIFFERENT;
}

#else

int fp_dl_same_symbol(const char *path, const char *symbol, const void *ours)
{
    (void)path;
    (void)symbol;
    (void)ours;
    return FP_DL_UNKNOWN;
}

int fp_dl_same_object(const void *a, const void *b)
{
    (void)a;
    (void)b;
    return FP_DL_UNKNOWN;
}

#endif
