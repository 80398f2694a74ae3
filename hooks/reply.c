/*
 * reply.c - the answers the sidecar makes up itself, in the platform's shapes.
 * Limits (reference A.5): {"ErrorCode":"InvalidArgument",...} with 400, as
 * FC's front answers. A function that dies mid-request: FC's custom-runtime
 * message, "Process exited unexpectedly before completing request (duration:
 * Nms, maxMemoryUsage: N.NNMB)", with x-fc-status: 404 (the contract's
 * failure value) and the unhandled error type; event invocations get 404
 * (failure, as the contract says), HTTP invocations 502 as FC's HTTP trigger
 * shows them.
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "internal.h"

#define ERROR_TYPE_UNHANDLED "UnhandledInvocationError"

static void send_json(sc_req *req, int status, const char *reason,
                      const fnp_buf *body) {
  struct evkeyvalq *h = sc__req_out_headers(req);
  struct evbuffer *out = evbuffer_new();
  sc__hdr_add_str(h, "Content-Type", "application/json");
  if (out && evbuffer_add(out, body->data, body->len) == 0) {
    sc__req_reply(req, status, reason, out);
  } else {
    sc__req_reply(req, 500, "Internal Server Error", NULL);
  }
  if (out)
    evbuffer_free(out);
}

static const char *reason_for(int status) {
  switch (status) {
  case 400:
    return "Bad Request";
  case 404:
    return "Not Found";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  default:
    return "Error";
  }
}

void sc__reply_error(sc_req *req, int http_status, const char *code,
                     const char *message) {
  fnp_buf b;
  int rc;
  fnp_buf_init(&b, 4096);
  rc = fnp_buf_append(&b, "{\"ErrorCode\":", 13);
  if (rc == 0)
    rc = sc__json_str(&b, code, strlen(code));
  if (rc == 0)
    rc = fnp_buf_append(&b, ",\"ErrorMessage\":", 16);
  if (rc == 0)
    rc = sc__json_str(&b, message, strlen(message));
  if (rc == 0)
    rc = fnp_buf_append(&b, "}", 1);
  if (rc < 0)
    b.len = 0;
  send_json(req, http_status, reason_for(http_status), &b);
  fnp_buf_destroy(&b);
}

void sc__reply_crash(sc_call *call) {
  struct evkeyvalq *h = sc__req_out_headers(call->req);
  int64_t ms = (sc__mono_ns() - call->start_mono_ns) / 1000000;
  int status = call->kind == SC_HTTP ? 502 : 404;
  char msg[256];
  fnp_buf b;
  int rc;
  snprintf(msg, sizeof(msg),
           "Process exited unexpectedly before completing request "
           "(duration: %lldms, maxMemoryUsage: %.2fMB)",
           (long long)ms, (double)call->max_rss / (1024.0 * 1024.0));
  fnp_buf_init(&b, 1024);
  rc = fnp_buf_append(&b, "{\"errorMessage\":", 16);
  if (rc == 0)
    rc = sc__json_str(&b, msg, strlen(msg));
  if (rc == 0)
    rc = fnp_buf_printf(&b, ",\"errorType\":\"%s\"}", ERROR_TYPE_UNHANDLED);
  if (rc < 0)
    b.len = 0;
  sc__hdr_add_str(h, "x-fc-status", "404");
  sc__hdr_add_str(h, "x-fc-error-type", ERROR_TYPE_UNHANDLED);
  call->status = status;
  call->error_type = ERROR_TYPE_UNHANDLED;
  call->bytes_out = b.len;
  send_json(call->req, status, reason_for(status), &b);
  call->req = NULL;
  fnp_buf_destroy(&b);
}
