/* fp_xlock.c - see fp_xlock.h for the contract. */
#include "fp_internal.h"
#include "fp_xlock.h"

#include <errno.h>
#include <stdlib.h>

#if defined(__linux__)

#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define XLOCK_MAGIC 0x6b6c7066u     /* "fplk" */
#define XLOCK_WAITERS 0x80000000u
#define XLOCK_MAP_SIZE 4096

struct xlock_page {
    uint32_t magic;                 /* written (under an fcntl lock) once the word is set up */
    _Atomic uint32_t word;          /* 0: free; else owner pid | XLOCK_WAITERS */
};

struct fp_xlock {
    struct xlock_page *page;
    uint64_t takeovers;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A shared (not PRIVATE) futex: the word lives in a file mapping seen by
 * other processes, and the kernel keys the wait queue on inode and offset. */
static long futex_shared(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
#if defined(SYS_futex_time64) && !defined(SYS_futex)
    return syscall(SYS_futex_time64, (void *)word, op, val, ts, NULL, 0);
#else
    return syscall(SYS_futex, (void *)word, op, val, ts, NULL, 0);
#endif
}

int fp_xlock_open(const char *path, fp_xlock **out)
{
    struct flock fl = {0};
    struct stat st;
    struct xlock_page *page;
    fp_xlock *lock;
    int fd, saved;

    *out = NULL;
    lock = calloc(1, sizeof *lock);
    if (lock == NULL)
        return FP_XLOCK_ERROR;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        goto fail;
    /* Setting the page up is short, so a plain blocking record lock is enough to keep two
     * processes from doing it at once; the kernel drops it if this process dies. */
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    while (fcntl(fd, F_SETLKW, &fl) != 0) {
        if (errno != EINTR)
            goto fail_fd;
    }
    if (fstat(fd, &st) != 0)
        goto fail_fd;
    if (st.st_size < XLOCK_MAP_SIZE && ftruncate(fd, XLOCK_MAP_SIZE) != 0)
        goto fail_fd;
    page = mmap(NULL, XLOCK_MAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (page == MAP_FAILED)
        goto fail_fd;
    if (page->magic != XLOCK_MAGIC) {
        atomic_store(&page->word, 0);
        page->magic = XLOCK_MAGIC;
    }
    fl.l_type = F_UNLCK;
    fcntl(fd, F_SETLK, &fl);        /* closing the descriptor drops it anyway */
    close(fd);
    lock->page = page;
    *out = lock;
    return FP_XLOCK_OK;

fail_fd:
    saved = errno;
    close(fd);
    errno = saved;
fail:
    saved = errno;
    free(lock);
    errno = saved;
    return FP_XLOCK_ERROR;
}

static int owner_is_gone(uint32_t value)
{
    pid_t pid = (pid_t)(value & ~XLOCK_WAITERS);
    return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
}

int fp_xlock_acquire(fp_xlock *lock, int64_t timeout_ns)
{
    _Atomic uint32_t *word = &lock->page->word;
    uint32_t me = (uint32_t)getpid(), v = 0;
    int64_t deadline, left, slice;
    struct timespec ts;
    long rc;

    if (atomic_compare_exchange_strong(word, &v, me))
        return FP_XLOCK_OK;
    deadline = timeout_ns < 0 ? INT64_MAX : now_ns() + timeout_ns;
    for (;;) {
        v = atomic_load(word);
        if (v == 0) {
            /* Taken after a wait, others may still sleep: keep the bit so our release
             * wakes the next one. */
            if (atomic_compare_exchange_strong(word, &v, me | XLOCK_WAITERS))
                return FP_XLOCK_OK;
            continue;
        }
        if (!(v & XLOCK_WAITERS)) {
            if (!atomic_compare_exchange_strong(word, &v, v | XLOCK_WAITERS))
                continue;
            v |= XLOCK_WAITERS;
        }
        left = deadline == INT64_MAX ? FP_XLOCK_PROBE_NS : deadline - now_ns();
        if (left <= 0)
            return FP_XLOCK_TIMEOUT;
        slice = left < FP_XLOCK_PROBE_NS ? left : FP_XLOCK_PROBE_NS;
        ts.tv_sec = slice / 1000000000;
        ts.tv_nsec = slice % 1000000000;
        rc = futex_shared(word, FUTEX_WAIT, v, &ts);
        if (rc != 0 && errno == ETIMEDOUT && slice == FP_XLOCK_PROBE_NS && owner_is_gone(v)) {
            /* Its owner was killed while holding it. Only one waiter wins this exchange. */
            if (atomic_compare_exchange_strong(word, &v, me | XLOCK_WAITERS)) {
                lock->takeovers++;
                return FP_XLOCK_OK;
            }
        } else if (rc != 0 && errno != ETIMEDOUT && errno != EAGAIN && errno != EINTR) {
            return FP_XLOCK_ERROR;
        }
    }
}

int fp_xlock_release(fp_xlock *lock)
{
    _Atomic uint32_t *word = &lock->page->word;
    uint32_t me = (uint32_t)getpid();
    uint32_t v = atomic_load(word);
    for (;;) {
        if ((v & ~XLOCK_WAITERS) != me) {
            errno = EPERM;
            return FP_XLOCK_ERROR;
        }
        if (atomic_compare_exchange_weak(word, &v, 0))
            break;
    }
    if ((v & XLOCK_WAITERS) && futex_shared(word, FUTEX_WAKE, 1, NULL) < 0)
        return FP_XLOCK_ERROR;
    return FP_XLOCK_OK;
}

uint64_t fp_xlock_takeovers(const fp_xlock *lock)
{
    return lock->takeovers;
}

void fp_xlock_close(fp_xlock *lock)
{
    if (lock == NULL)
        return;
    munmap(lock->page, XLOCK_MAP_SIZE);
    free(lock);
}

#else /* not Linux */

int fp_xlock_open(const char *path, fp_xlock **out)
{
    (void)path;
    *out = NULL;
    return FP_XLOCK_UNSUPPORTED;
}

int fp_xlock_acquire(fp_xlock *lock, int64_t timeout_ns)
{
    (void)lock;
    (void)timeout_ns;
    return FP_XLOCK_UNSUPPORTED;
}

int fp_xlock_release(fp_xlock *lock)
{
    (void)lock;
    return FP_XLOCK_UNSUPPORTED;
}

uint64_t fp_xlock_takeovers(const fp_xlock *lock)
{
    (void)lock;
    return 0;
}

void fp_xlock_close(fp_xlock *lock)
{
    (void)lock;
}

#endif
