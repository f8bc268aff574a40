/* store.h - the Redis every MX host shares: the only module that talks to Redis.
 *
 * Owns one hiredis async connection on the daemon's libev loop (and, with Sentinel, a
 * short-lived connection to a sentinel to learn the master), its handshake (AUTH,
 * SELECT, ROLE with Sentinel, SCRIPT LOAD of the registered scripts, PING), the
 * reconnection with exponential backoff, the commands in flight and their deadlines,
 * the key layout and the wire format of shared verdicts.
 *
 * Redis is never on a request's path for longer than [redis] timeout: every read has a
 * deadline; past it the callback gets "no answer" and the late reply, when it comes, is
 * dropped. Reads are refused at once (NULL, no callback) while Redis is down or
 * max_pending commands are unanswered, so callers go on with memory and DNS. Writes
 * are fire-and-forget: queued, never waited for, dropped (and counted) when they
 * cannot be sent. A connection that answers nothing for connect_timeout past a
 * command's deadline is dropped and opened again. Outages are logged once when they
 * start and once when they end, and counted in store_stats.
 *
 * Read callbacks fire exactly once per read that was started (value, missing key,
 * timeout, error, disconnect, or store_free), never before the read call returns, and
 * not at all after store_cancel. Values are valid only during the callback.
 *
 * Keys: the configured prefix, then
 *   d:<type>:<name>                          a DNS answer (dns_answer_pack format)
 *   v:<ip>|<domain>[|l=<local>][|h=<helo>]   an SPF verdict (store_verdict_pack format)
 *   r:d:<domain>  r:i:<ip>  r:n:<network>    reputation counters (reputation.h)
 * and every key is written with an expiry (SET ... PX, or by a script that sets one). */
#ifndef STORE_H
#define STORE_H

#include <stddef.h>
#include "config.h"

struct ev_loop;
struct dns_shared;

#define STORE_ERR_LEN 256
/* The longest key: prefix (CONFIG_PREFIX_LEN), kind, client IP, domain, a local part
 * of at most 255 bytes and a HELO name of at most 255 bytes, with separators. */
#define STORE_KEY_MAX 1024
/* Keys one MGET may ask for: two identities with four verdict keys each, three
 * reputations, and room to spare. */
#define STORE_MGET_MAX 16
/* Scripts one store loads at each connection (the reputation update is one). */
#define STORE_SCRIPTS_MAX 4
/* Arguments one EVALSHA may carry: sha, numkeys, keys and arguments. */
#define STORE_EVAL_ARGS_MAX 256
/* Key kinds, after the prefix. */
#define STORE_KIND_DNS "d:"
#define STORE_KIND_VERDICT "v:"
#define STORE_KIND_REPUTATION "r:"

typedef struct store store_t;
typedef struct store_req store_req_t;

typedef struct store_value {
    const char *data;         /* NULL: no such key */
    size_t len;
} store_value_t;

/* values NULL: Redis gave no answer (down, timeout, error reply, store_free). */
typedef void store_mget_cb(void *ctx, const store_value_t *values, size_t n);
/* data NULL: no such key, or no answer. */
typedef void store_get_cb(void *ctx, const void *data, size_t len);

typedef struct store_stats {
    unsigned long long connects,       /* handshakes completed */
        outages,                       /* times a working connection was lost */
        failed_attempts,               /* connection attempts that did not complete */
        commands,                      /* sent, handshakes included */
        replies, timeouts,             /* reads past their deadline */
        late,                          /* replies to reads that had timed out */
        errors,                        /* error replies */
        refused,                       /* reads refused: down or too many pending */
        dropped;                       /* writes not sent: down or too many pending */
    unsigned pending;                  /* sent, not answered yet */
    int up;                            /* 1 while commands can be sent */
} store_stats_t;

/* Takes what it needs from cfg ([redis]); cfg must name an address or sentinels.
 * Starts connecting on the next loop turn. NULL with err on bad settings. */
store_t *store_new(struct ev_loop *loop, const struct config *cfg, char err[STORE_ERR_LEN]);
/* Ends reads in flight with "no answer", closes the connections, frees. */
void store_free(store_t *s);
int store_up(const store_t *s);
void store_get_stats(const store_t *s, store_stats_t *out);
/* "host:port" of the Redis in use (the master, with Sentinel), "" when none. */
const char *store_server(const store_t *s);

/* The key prefix + kind + name (namelen bytes, any bytes) in buf. Returns its length,
 * or 0 when it would not fit in len. */
size_t store_key(const store_t *s, char *buf, size_t len, const char *kind, const char *name,
                 size_t namelen);

/* MGET of n (1 to STORE_MGET_MAX) keys of keylens bytes: one command, one round trip.
 * NULL when it cannot be sent now (no callback then). */
store_req_t *store_mget(store_t *s, size_t n, const char *const *keys, const size_t *keylens,
                        store_mget_cb *cb, void *ctx);
/* GET of one key. */
store_req_t *store_get(store_t *s, const char *key, size_t keylen, store_get_cb *cb, void *ctx);
/* Its callback will not fire. */
void store_cancel(store_req_t *r);

/* SET key value PX ttl (seconds, at least 1 ms). 0 when queued, -1 when dropped. */
int store_set(store_t *s, const char *key, size_t keylen, const void *value, size_t len,
              double ttl);
/* Registers a Lua script; it is loaded at every connection. Call before the loop runs
 * after store_new. Returns its number, or -1 when STORE_SCRIPTS_MAX are registered. */
int store_script_add(store_t *s, const char *body);
/* EVALSHA of script with nkeys keys and nargs arguments, fire-and-forget (a script
 * Redis lost is loaded again, that call is dropped). 0 when queued, -1 when dropped. */
int store_eval(store_t *s, int script, size_t nkeys, const char *const *keys,
               const size_t *keylens, size_t nargs, const char *const *args,
               const size_t *arglens);

/* Fills sh with functions that make the store the DNS module's shared answer cache
 * (keys under d:, temporary errors kept [redis] error_ttl seconds at most). */
void store_dns_shared(store_t *s, struct dns_shared *sh);

/* A verdict as shared between hosts. Under the short key v:<ip>|<domain> either the
 * verdict itself (uses 0) or a marker saying which longer key holds it (uses: the
 * SPF_USES_* bits; texts empty). */
typedef struct store_verdict {
    int result;               /* enum spf_result */
    unsigned uses;
    double expires;           /* ev_now time (seconds since the epoch) */
    const char *explanation;
    size_t explanation_len;
    const char *comment;
    size_t comment_len;
} store_verdict_t;

/* Longest texts a shared verdict carries: what policy.c keeps. */
#define STORE_VERDICT_TEXT_MAX 1024
/* The packed form: "V1", result, uses, expiry in ms, then each text with its length. */
#define STORE_VERDICT_FIXED_LEN (2 + 1 + 1 + 8 + 2 + 2)
#define STORE_VERDICT_MAX (STORE_VERDICT_FIXED_LEN + 2 * STORE_VERDICT_TEXT_MAX)

/* Packs v into buf; returns the length, or 0 when a text is longer than
 * STORE_VERDICT_TEXT_MAX or buf is too small. */
size_t store_verdict_pack(char *buf, size_t len, const store_verdict_t *v);
/* Reads data (len bytes) into v, whose texts then point into data (not NUL-terminated).
 * 0, or -1 for anything but one well-formed verdict (wrong magic, result out of range,
 * unknown uses bits, lengths that do not add up, control bytes in a text). */
int store_verdict_unpack(store_verdict_t *v, const void *data, size_t len);

#endif
