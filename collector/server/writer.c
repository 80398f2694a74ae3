/*
 * The store's writer thread: group commit of SLS PutLogs batches. The loop
 * thread authenticates, decompresses and decodes a request, then queues it
 * here (srv_writer_submit); the writer stores every batch queued by then in
 * one transaction, a savepoint per batch (store_group_begin), so one
 * COMMIT and one WAL sync serve them all, and decoding the next requests
 * overlaps the SQLite work. Answers go back to the loop thread through an
 * eventfd: each batch's 200 is sent only after its group's COMMIT, so an
 * acknowledged batch is as durable as before.
 *
 * Locks: w->lock guards the queue, the done list, queued_bytes and stop;
 * s->store_lock guards the store (the writer holds it for a group, the loop
 * thread for its queries, OTLP batches, profiles and retention). Lock order:
 * store_lock, then w->lock (the writer never takes store_lock while holding
 * w->lock). libevent is only touched from the loop thread.
 */
#include "server.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Decoded batches waiting for the writer hold their decompressed bodies:
 * past this many bytes the loop waits for the writer (as it waited for
 * every commit before the writer existed), so memory stays bounded. */
#define QUEUE_MAX_BYTES (256u << 20)
/* Buffers of finished jobs kept for the next requests: each saves a
 * malloc and the page faults of a whole decompressed body. */
#define POOL_MAX_JOBS 8
#define POOL_KEEP_BYTES (8u << 20)

struct srv_writer {
  srv *s;
  pthread_t thread;
  bool started;
  pthread_mutex_t lock;
  pthread_cond_t wake; /* the writer: jobs queued, or stop */
  pthread_cond_t room; /* the loop: queued_bytes went down */
  srv_job *queue, **queue_tail;
  srv_job *done, **done_tail;
  size_t queued_bytes;
  bool stop;
  uint64_t notify_failures;
  int efd; /* written by the writer when done gets jobs */
  struct event *ev;
  srv_job *pool; /* loop thread only */
  int n_pool;
};

srv_job *srv_job_new(srv *s) {
  srv_writer *w = s->writer;
  srv_job *j = w->pool;
  if (j) {
    w->pool = j->next;
    w->n_pool--;
  } else if ((j = calloc(1, sizeof *j)) != NULL) {
    fnp_buf_init(&j->plain, s->lim.max_raw_bytes);
  } else {
    return NULL;
  }
  fnp_buf_reset(&j->plain);
  j->next = NULL;
  j->req = NULL;
  j->group = NULL;
  j->rc = 0;
  j->duplicate = false;
  j->err = (fnp_error){0};
  return j;
}

void srv_job_free(srv *s, srv_job *j) {
  if (j == NULL)
    return;
  export_sls_group_free(j->group);
  j->group = NULL;
  srv_writer *w = s->writer;
  if (w->n_pool < POOL_MAX_JOBS && j->plain.alloc <= POOL_KEEP_BYTES) {
    j->next = w->pool;
    w->pool = j;
    w->n_pool++;
    return;
  }
  fnp_buf_destroy(&j->plain);
  free(j);
}

/* Marks the jobs in [from, to) that had succeeded as failed: their group's
 * transaction is gone. */
static void fail_jobs(srv_job *from, srv_job *to, int rc,
                      const fnp_error *err) {
  for (srv_job *j = from; j != to; j = j->next) {
    if (j->rc < 0)
      continue;
    j->rc = rc;
    j->err = *err;
    j->duplicate = false;
  }
}

/* Stores a list of jobs in as few transactions as SQLite lets it: one,
 * unless an error rolled the transaction back, after which the rest go in a
 * new one. Under store_lock. */
static void store_jobs(srv *s, srv_job *jobs) {
  fnp_error err = {0};
  srv_job *first = jobs;
  int rc = store_group_begin(s->db, &err);
  for (srv_job *j = jobs; j; j = j->next) {
    if (rc < 0) {
      j->rc = rc;
      j->err = err;
      continue;
    }
    j->rc = srv_sls_store(s, j);
    if (!store_group_open(s->db)) {
      fnp_error lost = {0};
      fnp_fail(&lost, -EIO, "store: transaction rolled back: %s", j->err.msg);
      fail_jobs(first, j, j->rc < 0 ? j->rc : -EIO, &lost);
      store_group_rollback(s->db);
      first = j->next;
      if (first)
        rc = store_group_begin(s->db, &err);
    }
  }
  if (rc == 0 && first && (rc = store_group_commit(s->db, &err)) < 0)
    fail_jobs(first, NULL, rc, &err);
}

static size_t job_bytes(const srv_job *j) { return j->plain.alloc + 1; }

static void *writer_main(void *arg) {
  srv_writer *w = arg;
  srv *s = w->s;
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (w->queue == NULL && !w->stop)
      pthread_cond_wait(&w->wake, &w->lock);
    if (w->queue == NULL)
      break; /* stop, and everything queued was stored */
    srv_job *jobs = w->queue;
    w->queue = NULL;
    w->queue_tail = &w->queue;
    pthread_mutex_unlock(&w->lock);

    pthread_mutex_lock(&s->store_lock);
    store_jobs(s, jobs);
    pthread_mutex_unlock(&s->store_lock);

    pthread_mutex_lock(&w->lock);
    for (srv_job *j = jobs; j; j = j->next)
      w->queued_bytes -= job_bytes(j);
    *w->done_tail = jobs;
    while (*w->done_tail)
      w->done_tail = &(*w->done_tail)->next;
    pthread_cond_broadcast(&w->room);
    uint64_t one = 1;
    /* A failed write can only be a full counter (2^64-2): the loop has
     * a wake-up pending anyway and will find these jobs with it. */
    if (write(w->efd, &one, sizeof one) != sizeof one)
      w->notify_failures++;
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

void srv_store_lock(srv *s) { pthread_mutex_lock(&s->store_lock); }
void srv_store_unlock(srv *s) { pthread_mutex_unlock(&s->store_lock); }

void srv_writer_submit(srv *s, srv_job *j) {
  srv_writer *w = s->writer;
  pthread_mutex_lock(&w->lock);
  while (w->queued_bytes > QUEUE_MAX_BYTES && w->queue)
    pthread_cond_wait(&w->room, &w->lock);
  j->next = NULL;
  *w->queue_tail = j;
  w->queue_tail = &j->next;
  w->queued_bytes += job_bytes(j);
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->lock);
}

/* Loop thread: answers the jobs the writer finished. */
static void drain_done(srv *s) {
  srv_writer *w = s->writer;
  uint64_t n;
  if (read(w->efd, &n, sizeof n) < 0 && errno != EAGAIN)
    fprintf(stderr, "fnprof-collector: writer eventfd: %s\n", strerror(errno));
  pthread_mutex_lock(&w->lock);
  srv_job *jobs = w->done;
  w->done = NULL;
  w->done_tail = &w->done;
  pthread_mutex_unlock(&w->lock);
  while (jobs) {
    srv_job *next = jobs->next;
    srv_sls_answer(s, jobs);
    srv_job_free(s, jobs);
    jobs = next;
  }
}

static void on_done(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  drain_done(arg);
}

int srv_writer_start(srv *s, fnp_error *err) {
  srv_writer *w = calloc(1, sizeof *w);
  if (w == NULL)
    return fnp_fail(err, -ENOMEM, "writer: out of memory");
  w->s = s;
  w->queue_tail = &w->queue;
  w->done_tail = &w->done;
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->wake, NULL);
  pthread_cond_init(&w->room, NULL);
  s->writer = w;
  w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->efd < 0)
    return fnp_fail(err, -errno, "writer: eventfd: %s", strerror(errno));
  w->ev = event_new(s->base, w->efd, EV_READ | EV_PERSIST, on_done, s);
  if (w->ev == NULL || event_add(w->ev, NULL) != 0)
    return fnp_fail(err, -ENOMEM, "writer: cannot watch its eventfd");
  /* The writer takes no signals: SIGINT/SIGTERM belong to the loop. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int rc = pthread_create(&w->thread, NULL, writer_main, w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0)
    return fnp_fail(err, -rc, "writer: pthread_create: %s", strerror(rc));
  w->started = true;
  return 0;
}

void srv_writer_stop(srv *s) {
  srv_writer *w = s->writer;
  if (w == NULL)
    return;
  if (w->started) {
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    drain_done(s); /* answers what was committed before the stop */
  }
  if (w->ev)
    event_free(w->ev);
  if (w->efd >= 0)
    close(w->efd);
  while (w->pool) {
    srv_job *j = w->pool;
    w->pool = j->next;
    fnp_buf_destroy(&j->plain);
    free(j);
  }
  pthread_cond_destroy(&w->wake);
  pthread_cond_destroy(&w->room);
  pthread_mutex_destroy(&w->lock);
  free(w);
  s->writer = NULL;
}
