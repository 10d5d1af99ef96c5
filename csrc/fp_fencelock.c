/* fp_fencelock.c - see fp_fencelock.h for the contract. */
#include "fp_internal.h"
#include "fp_fencelock.h"

#include <errno.h>

#if defined(__linux__)
#include <fcntl.h>
#endif

#if defined(__linux__) && defined(F_OFD_SETLK)

#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int ofd_lock(int fd, int64_t offset, short type)
{
    struct flock fl = {0};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)offset;
    fl.l_len = 1;
    fl.l_pid = 0;       /* required to be 0 for OFD locks */
    return fcntl(fd, F_OFD_SETLK, &fl);
}

int fp_fencelock_acquire(const char *path, int64_t offset, int64_t timeout_ns, int *fd_out)
{
    int64_t deadline, left, nap = 1000000;
    struct timespec ts;
    int fd, saved;

    *fd_out = -1;
    fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return FP_FENCELOCK_ERROR;
    deadline = timeout_ns < 0 ? INT64_MAX : now_ns() + timeout_ns;
    for (;;) {
        if (ofd_lock(fd, offset, F_WRLCK) == 0) {
            *fd_out = fd;
            return FP_FENCELOCK_OK;
        }
        if (errno != EAGAIN && errno != EACCES && errno != EINTR)
            break;
        left = deadline == INT64_MAX ? nap : deadline - now_ns();
        if (left <= 0) {
            close(fd);
            return FP_FENCELOCK_TIMEOUT;
        }
        if (left > nap)
            left = nap;
        ts.tv_sec = left / 1000000000;
        ts.tv_nsec = left % 1000000000;
        nanosleep(&ts, NULL);   /* EINTR only shortens one nap */
        if (nap < 16000000)
            nap *= 2;
    }
    saved = errno;
    close(fd);
    errno = saved;
    return FP_FENCELOCK_ERROR;
}

int fp_fencelock_release(int fd, int64_t offset)
{
    return ofd_lock(fd, offset, F_UNLCK) == 0 ? FP_FENCELOCK_OK : FP_FENCELOCK_ERROR;
}

#else /* no OFD locks (not Linux, or headers too old) */

int fp_fencelock_acquire(const char *path, int64_t offset, int64_t timeout_ns, int *fd_out)
{
    (void)path;
    (void)offset;
    (void)timeout_ns;
    *fd_out = -1;
    return FP_FENCELOCK_UNSUPPORTED;
}

int fp_fencelock_release(int fd, int64_t offset)
{
    (void)fd;
    (void)offset;
    return FP_FENCELOCK_UNSUPPORTED;
}

#endif
