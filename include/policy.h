/* policy.h - from one policy request to one action: skip rules, whitelists, the
 * per-message memo, the verdict cache, the SPF checks of HELO and MAIL FROM, and the
 * mapping of their results to a reply and a header.
 *
 * Owns the verdict cache, the instance memo (one evaluation and one header per
 * message: later requests of the same transaction answer DUNNO) and the jobs in
 * progress. The reply callback fires exactly once per policy_check, never before it
 * returns, and not after policy_cancel; its text is valid only during the callback.
 * A NULL text means an internal error: the server closes the connection rather than
 * invent a verdict. */
#ifndef POLICY_H
#define POLICY_H

#include "config.h"
#include "policy_proto.h"

struct ev_loop;
struct dns;
struct spf;
struct store;
struct reputation;

#define POLICY_NEW_ERR_LEN 256

typedef struct policy policy_t;
typedef struct policy_job policy_job_t;
/* action: what follows "action=" (e.g. "550 5.7.23 ...", "PREPEND Received-SPF: ..."). */
typedef void policy_reply_cb(void *ctx, const char *action);

typedef struct policy_stats {
    unsigned long long checks, skipped, whitelisted, memo_hits, cache_hits,
        results[7], actions[5];
    unsigned long long shared_hits,      /* verdicts found in Redis */
        shared_puts, reputation_refused;
} policy_stats_t;

policy_t *policy_new(struct ev_loop *loop, const struct config *cfg, struct dns *dns,
                     struct spf *spf, char err[POLICY_NEW_ERR_LEN]);
void policy_free(policy_t *p);
/* Shares verdicts through store (memory first, then Redis, then a check) and counts
 * and uses the reputation; both borrowed, either may be NULL. Without them policy
 * behaves as if there were no Redis. */
void policy_share(policy_t *p, struct store *store, struct reputation *rep);
/* Adopts a reloaded config (copied). The verdict cache is kept: verdicts do not
 * depend on the config, only the actions built from them. */
void policy_reconfigure(policy_t *p, const struct config *cfg);
/* req is borrowed until the callback or policy_cancel. conn_id names the connection
 * for the per-message memo. NULL only when out of memory. */
policy_job_t *policy_check(policy_t *p, unsigned long long conn_id,
                           const policy_request_t *req, policy_reply_cb *cb, void *ctx);
void policy_cancel(policy_job_t *job);
/* Forgets the connection's per-message memo. */
void policy_conn_closed(policy_t *p, unsigned long long conn_id);
void policy_get_stats(const policy_t *p, policy_stats_t *out);

#endif
