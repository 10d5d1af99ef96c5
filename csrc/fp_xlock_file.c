/* fp_xlock_file.c - opening the side file of the cross-process writer lock: create or open,
 * validate, set the page up, take a token, map it (fp_xlock_open; fp_xlock.h is the
 * contract, fp_xlock.c the lock itself). */
#if defined(__linux__) && !defined(_FILE_OFFSET_BITS)
#  define _FILE_OFFSET_BITS 64      /* token byte locks sit past 4 GiB, also on 32-bit builds */
#endif
#include "fp_internal.h"
#include "fp_xlock.h"

#include <errno.h>
#include <stdlib.h>

#if defined(__linux__)

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fp_xlock_internal.h"

#define XLOCK_SETUP_WAIT_NS (2LL * 1000 * 1000 * 1000)
#define XLOCK_OPEN_FLAGS (O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)

static int ofd_lock(int fd, int cmd, short type, off_t start, off_t len)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);      /* l_pid must be 0 for OFD locks */
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = start;
    fl.l_len = len;
    for (;;) {
        if (fcntl(fd, cmd, &fl) == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t random_seed(const void *salt)
{
    uint64_t seed = 0;
#if defined(SYS_getrandom)
    if (syscall(SYS_getrandom, &seed, sizeof seed, 1 /* GRND_NONBLOCK */) == (long)sizeof seed)
        return seed;
#endif
    /* No getrandom: uniqueness is still checked by the byte lock itself. */
    return mix64((uint64_t)now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)salt);
}

static int write_all(int fd, const void *buf, size_t len, off_t off)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

static int read_u32(int fd, off_t off, uint32_t *out)
{
    ssize_t n;
    do
        n = pread(fd, out, sizeof *out, off);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    if (n != (ssize_t)sizeof *out) {
        errno = EIO;
        return -1;
    }
    return 0;
}

/* Give the page real blocks (a sparse page faults with SIGBUS on a full disk). */
static int allocate_page(int fd, off_t size)
{
    static const unsigned char zeros[XLOCK_MAP_SIZE];
    int rc = posix_fallocate(fd, 0, XLOCK_MAP_SIZE);
    if (rc == 0)
        return 0;
    if (rc != EOPNOTSUPP && rc != EINVAL) {
        errno = rc;
        return -1;
    }
    /* No fallocate on this filesystem: write zeros past the end (never over the content). */
    if (size < XLOCK_MAP_SIZE)
        return write_all(fd, zeros + size, (size_t)(XLOCK_MAP_SIZE - size), size);
    return 0;
}

/* The side file passed fstat: is it one this lock may use? (the caller holds the setup lock)
 * Sets it up (writing only into an empty file or one with our magic) and returns
 * FP_XLOCK_OK, FP_XLOCK_REFUSED or FP_XLOCK_ERROR with errno. */
static int check_and_setup(int fd, off_t size)
{
    uint32_t magic = XLOCK_MAGIC;
    if (size == 0) {
        /* New (or emptied): the magic first, so a setup killed half-way leaves a file that
         * is recognisably ours. */
        if (write_all(fd, &magic, sizeof magic, 0) != 0)
            goto undo;
        if (allocate_page(fd, (off_t)sizeof magic) != 0)
            goto undo;
        return FP_XLOCK_OK;
    }
    if (size < (off_t)sizeof magic) {
        errno = EBADMSG;
        return FP_XLOCK_REFUSED;
    }
    if (read_u32(fd, 0, &magic) != 0)
        return FP_XLOCK_ERROR;
    if (magic != XLOCK_MAGIC && magic != XLOCK_MAGIC_V1) {
        errno = EBADMSG;
        return FP_XLOCK_REFUSED;
    }
    if (allocate_page(fd, size) != 0)
        return FP_XLOCK_ERROR;
    if (magic == XLOCK_MAGIC_V1) {
        /* A version-1 page: ours. Its word (byte 4) stays for version-1 processes; ours at
         * byte 64 was never used by them (zero in a page they set up). */
        magic = XLOCK_MAGIC;
        if (write_all(fd, &magic, sizeof magic, 0) != 0)
            return FP_XLOCK_ERROR;
    }
    return FP_XLOCK_OK;

undo: {
        int saved = errno;
        /* Leave it empty, as found; if even that fails, a short file is refused or
         * completed by the next opener. */
        if (ftruncate(fd, 0) != 0) {
            /* nothing more to do */
        }
        errno = saved;
        return FP_XLOCK_ERROR;
    }
}

/* Take a byte lock at TOKEN_BASE + token for a token nobody holds and that is not in the word. */
static int pick_token(fp_xlock *lock)
{
    uint64_t state = random_seed(lock);
    uint32_t current = 0;
    if (read_u32(lock->fd, XLOCK_WORD_OFFSET, &current) != 0)
        return -1;
    current &= XLOCK_TOKEN_MASK;
    for (int tries = 0; tries < 64; tries++) {
        state = mix64(state);
        uint32_t token = (uint32_t)(state & XLOCK_TOKEN_MASK);
        if (token == 0 || token == current)
            continue;
        if (ofd_lock(lock->fd, F_OFD_SETLK, F_WRLCK, FP_XLOCK_TOKEN_BASE + token, 1) == 0) {
            lock->token = token;
            return 0;
        }
        if (errno != EAGAIN && errno != EACCES)
            return -1;
    }
    errno = EAGAIN;
    return -1;
}

static int setup_lock(int fd)
{
    const struct timespec nap = {0, 1000 * 1000};
    int64_t deadline = now_ns() + XLOCK_SETUP_WAIT_NS;
    for (;;) {
        if (ofd_lock(fd, F_OFD_SETLK, F_WRLCK, 0, XLOCK_MAP_SIZE) == 0)
            return 0;
        if (errno != EAGAIN && errno != EACCES)
            return -1;
        if (now_ns() >= deadline) {
            errno = EAGAIN;
            return -1;
        }
        if (nanosleep(&nap, NULL) != 0 && errno != EINTR)
            return -1;
    }
}

int fp_xlock_open(const char *path, unsigned int mode, int64_t uid, int64_t gid,
                  fp_xlock **out)
{
    struct stat st;
    fp_xlock *lock;
    void *page;
    int rc = FP_XLOCK_ERROR, saved, created = 0, setup_locked = 0;

    *out = NULL;
    mode &= 0777;
    lock = calloc(1, sizeof *lock);
    if (lock == NULL)
        return FP_XLOCK_ERROR;
    lock->fd = -1;
    for (int tries = 0;; tries++) {
        lock->fd = open(path, XLOCK_OPEN_FLAGS | O_CREAT | O_EXCL, (mode_t)mode);
        if (lock->fd >= 0) {
            created = 1;
            break;
        }
        if (errno != EEXIST)
            goto fail;
        lock->fd = open(path, XLOCK_OPEN_FLAGS);
        if (lock->fd >= 0)
            break;
        if (errno == ELOOP || errno == EISDIR) {
            rc = FP_XLOCK_REFUSED;
            goto fail;
        }
        if (errno != ENOENT || tries >= 8)
            goto fail;
        /* removed between the two opens: create it again */
    }
    if (created) {
        /* As SQLite does for -wal and -shm: the database file's mode whatever the umask,
         * and as root its owner, so the service that owns the database can open it. */
        if (fchmod(lock->fd, (mode_t)mode) != 0)
            goto fail;
        if (geteuid() == 0 && uid >= 0 && gid >= 0 && fchown(lock->fd, (uid_t)uid, (gid_t)gid) != 0)
            goto fail;
    }
    if (fstat(lock->fd, &st) != 0)
        goto fail;
    rc = FP_XLOCK_REFUSED;
    if (!S_ISREG(st.st_mode)) {
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        goto fail;
    }
    if (st.st_nlink != 1) {
        errno = EMLINK;
        goto fail;
    }
    if (st.st_uid != geteuid() && (uid < 0 || st.st_uid != (uid_t)uid)) {
        errno = EPERM;
        goto fail;
    }
    rc = FP_XLOCK_ERROR;
    /* Setting the page up is short: a lock on it keeps two processes from doing it at once
     * (it conflicts with version 1's whole-file POSIX lock too) and the kernel drops it if
     * this process dies. Waited for at most XLOCK_SETUP_WAIT_NS: anyone who can open the
     * file could hold a lock on it for ever, and that must not hang the pool's creation. */
    if (setup_lock(lock->fd) != 0)
        goto fail;
    setup_locked = 1;
    if (fstat(lock->fd, &st) != 0)
        goto fail;
    rc = check_and_setup(lock->fd, st.st_size);
    if (rc != FP_XLOCK_OK)
        goto fail;
    rc = FP_XLOCK_ERROR;
    if (pick_token(lock) != 0)
        goto fail;
    page = mmap(NULL, XLOCK_MAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, lock->fd, 0);
    if (page == MAP_FAILED)
        goto fail;
    lock->page = page;
    setup_locked = 0;
    if (ofd_lock(lock->fd, F_OFD_SETLK, F_UNLCK, 0, XLOCK_MAP_SIZE) != 0)
        goto fail;
    *out = lock;
    return FP_XLOCK_OK;

fail:
    saved = errno;
    if (setup_locked && ofd_lock(lock->fd, F_OFD_SETLK, F_UNLCK, 0, XLOCK_MAP_SIZE) != 0) {
        /* closing the descriptor below drops it anyway */
    }
    if (lock->page != NULL && munmap(lock->page, XLOCK_MAP_SIZE) != 0) {
        /* nothing to do: the mapping goes with the process */
    }
    if (lock->fd >= 0 && close(lock->fd) != 0) {
        /* the descriptor is gone either way (Linux closes it even on EINTR) */
    }
    free(lock);
    errno = saved;
    return rc;
}

#else /* not Linux */

int fp_xlock_open(const char *path, unsigned int mode, int64_t uid, int64_t gid,
                  fp_xlock **out)
{
    (void)path;
    (void)mode;
    (void)uid;
    (void)gid;
    *out = NULL;
    return FP_XLOCK_UNSUPPORTED;
}

#endif
