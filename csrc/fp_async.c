/* fp_async.c - see fp_async.h for the contract. */
#include "fp_internal.h"
#include "fp_async.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/eventfd.h>
#endif

struct fp_cq {
    pthread_mutex_t lock;
    fp_cq_item *head, *tail;
    int signalled;      /* the descriptor was written since the consumer last cleared it */
    int read_fd;
    int write_fd;       /* == read_fd for an eventfd */
};

static int set_nonblocking_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    fl = fcntl(fd, F_GETFD);
    if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
        return -1;
    return 0;
}

fp_cq *fp_cq_new(void)
{
    fp_cq *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    if (pthread_mutex_init(&q->lock, NULL) != 0) {
        free(q);
        return NULL;
    }
#ifdef __linux__
    q->read_fd = q->write_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->read_fd < 0)
        goto fail;
#else
    int fds[2];
    if (pipe(fds) != 0)
        goto fail;
    q->read_fd = fds[0];
    q->write_fd = fds[1];
    if (set_nonblocking_cloexec(fds[0]) != 0 || set_nonblocking_cloexec(fds[1]) != 0) {
        close(fds[0]);
        close(fds[1]);
        goto fail;
    }
#endif
    (void)set_nonblocking_cloexec;
    return q;
fail:
    pthread_mutex_destroy(&q->lock);
    free(q);
    return NULL;
}

void fp_cq_free(fp_cq *q)
{
    if (q == NULL)
        return;
    close(q->read_fd);
    if (q->write_fd != q->read_fd)
        close(q->write_fd);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

int fp_cq_fd(const fp_cq *q)
{
    return q->read_fd;
}

static int signal_fd(fp_cq *q)
{
    ssize_t n;
#ifdef __linux__
    uint64_t one = 1;
    do {
        n = write(q->write_fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
#else
    char one = 1;
    do {
        n = write(q->write_fd, &one, 1);
    } while (n < 0 && errno == EINTR);
#endif
    /* EAGAIN: the counter or pipe is full, so the consumer will wake anyway. */
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        return -1;
    return 0;
}

int fp_cq_post(fp_cq *q, fp_cq_item *item)
{
    int wake;
    item->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->tail != NULL)
        q->tail->next = item;
    else
        q->head = item;
    q->tail = item;
    wake = !q->signalled;
    q->signalled = 1;
    pthread_mutex_unlock(&q->lock);
    return wake ? signal_fd(q) : 0;
}

fp_cq_item *fp_cq_take_all(fp_cq *q)
{
    fp_cq_item *items;
    char buf[64];
    ssize_t n;
    /* Clear the descriptor first: see "Lost wake-ups" in the header. */
    do {
        n = read(q->read_fd, buf, sizeof(buf));
    } while (n > 0 || (n < 0 && errno == EINTR));
    pthread_mutex_lock(&q->lock);
    items = q->head;
    q->head = q->tail = NULL;
    q->signalled = 0;
    pthread_mutex_unlock(&q->lock);
    return items;
}

int fp_cq_signalled(fp_cq *q)
{
    int signalled;
    pthread_mutex_lock(&q->lock);
    signalled = q->signalled;
    pthread_mutex_unlock(&q->lock);
    return signalled;
}

static void post_grant(fp_waiter *w)
{
    /* The grant was made under fp_slots' mutex; the node is ours to post, and
     * fp_slots never touches it again after this callback. */
    fp_async_waiter *aw = (fp_async_waiter *)w;
    (void)fp_cq_post(aw->cq, &aw->item);
}

void fp_async_waiter_init(fp_async_waiter *w, fp_cq *cq, uint64_t token)
{
    fp_waiter_init(&w->waiter, post_grant, NULL);
    w->item.next = NULL;
    w->item.token = token;
    w->cq = cq;
}

int64_t fp_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
