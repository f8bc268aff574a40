/* server.h - the policy protocol server: listeners, connections, bounded buffers,
 * idle timeouts, and the one reply per request.
 *
 * Owns every listening socket and connection and their libev watchers. A connection
 * has at most one request outstanding: its bytes are read into a POLICY_REQUEST_MAX
 * buffer, a complete block is parsed and handed to policy_check(); further input is
 * not parsed until the reply "action=...\n\n" has been written. Bad input (over-long
 * line or request, malformed request) is logged with the peer and a sanitised sample,
 * and the connection is closed. A connection closed while its check runs cancels the
 * check. Nothing is ever written but replies. */
#ifndef SERVER_H
#define SERVER_H

#include "config.h"

struct ev_loop;
struct policy;

#define SERVER_ERR_LEN 256

typedef struct server server_t;

typedef struct server_stats {
    unsigned long long accepted, requests, replies, bad_requests, overflows,
        idle_closed, errors_closed;
    unsigned connections, busy;
} server_stats_t;

/* Binds every listener of cfg (unix sockets get cfg's mode/owner/group; a stale
 * socket file is replaced) and starts accepting. NULL with err on failure. */
server_t *server_new(struct ev_loop *loop, const struct config *cfg, struct policy *policy,
                     char err[SERVER_ERR_LEN]);
/* Takes idle_timeout and max_connections from a reloaded config (listeners are kept:
 * changing them needs a restart, and the server logs that). */
void server_reconfigure(server_t *s, const struct config *cfg);
/* Stops accepting and closes idle connections; connections with a request in flight
 * close after their reply. done() is called once no connection is left. */
void server_drain(server_t *s, void (*done)(void *ctx), void *ctx);
void server_free(server_t *s);
void server_get_stats(const server_t *s, server_stats_t *out);

#endif
