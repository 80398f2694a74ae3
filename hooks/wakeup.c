/*
 * wakeup.c - a worker thread (export.c, agent_ctl.c) telling the loop it
 * has news: an eventfd the loop watches. libevent does this itself
 * (event_active from another thread) only with its locking on
 * (evthread_use_pthreads), and that took and released the base's lock
 * around every event operation of every request; with this, only the loop
 * thread ever touches libevent.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

static void wakeup_read(evutil_socket_t fd, short what, void *arg) {
  sc_wakeup *w = arg;
  uint64_t n;
  (void)fd;
  (void)what;
  /* The count says nothing: the callback looks at what is done. */
  if (read(w->fd, &n, sizeof(n)) == (ssize_t)sizeof(n))
    w->cb(-1, EV_READ, w->arg);
}

int sc__wakeup_init(sc_wakeup *w, struct event_base *base, event_callback_fn cb,
                    void *arg) {
  w->cb = cb;
  w->arg = arg;
  w->ev = NULL;
  w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->fd < 0)
    return -errno;
  w->ev = event_new(base, w->fd, EV_READ | EV_PERSIST, wakeup_read, w);
  if (w->ev == NULL || event_add(w->ev, NULL) < 0) {
    if (w->ev)
      event_free(w->ev);
    w->ev = NULL;
    close(w->fd);
    return -ENOMEM;
  }
  return 0;
}

void sc__wakeup_signal(sc_wakeup *w) {
  uint64_t one = 1;
  /* Only a counter at its maximum refuses, and then a wake-up is due. */
  if (write(w->fd, &one, sizeof(one)) < 0)
    return;
}

/* Safe on a zeroed sc_wakeup never initialized (ev NULL). */
void sc__wakeup_destroy(sc_wakeup *w) {
  if (w->ev == NULL)
    return;
  event_free(w->ev);
  close(w->fd);
  w->ev = NULL;
}
