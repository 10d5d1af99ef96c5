/*
 * fp_internal.h - private helpers shared by the fastpool C sources.
 *
 * Must be the FIRST include of every .c file in csrc/: the feature-test macros
 * below only work if they are defined before any system header is seen (a .c
 * may define a macro of its own above it, as fp_xlock.c and fp_xlock_file.c
 * do).  The sources are built with -std=c11 (setup.py, tests/test_c_*.py),
 * which hides POSIX otherwise.
 * Not part of the public API; never include it from a public header.
 */
#ifndef FP_INTERNAL_H
#define FP_INTERNAL_H

#if defined(__linux__)
#  ifndef _GNU_SOURCE
#    define _GNU_SOURCE /* syscall(), SYS_futex */
#  endif
#elif defined(__APPLE__)
#  ifndef _DARWIN_C_SOURCE
#    define _DARWIN_C_SOURCE /* pthread_cond_timedwait_relative_np */
#  endif
#elif !defined(_POSIX_C_SOURCE)
#  define _POSIX_C_SOURCE 200809L /* clock_gettime, posix_memalign, condattr_setclock */
#endif

#include <stdint.h>

/* Separation used for hot atomics.  128 rather than 64 because x86's
 * adjacent-line prefetcher and Apple/POWER's 128-byte lines make 64 too
 * small to stop false sharing; the memory cost is a few hundred bytes. */
#ifndef FP_CACHE_LINE
#  define FP_CACHE_LINE 128
#endif

/* Hint to the CPU that we are in a spin loop: lets the sibling hyperthread
 * run and avoids the memory-order-violation pipeline flush on loop exit. */
static inline void fp_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause" ::: "memory");
#elif defined(__aarch64__) || (defined(__arm__) && defined(__ARM_ARCH) && __ARM_ARCH >= 7)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

#endif /* FP_INTERNAL_H */
