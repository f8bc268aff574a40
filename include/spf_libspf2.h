/* spf_libspf2.h - the libspf2 SPF engine (engine = libspf2), for sites that want it.
 *
 * Owns the libspf2 server, our DNS layer under it (spf_dns.h) and its checks. A check
 * runs libspf2 against spf_dns, which answers only from what the check already knows;
 * each evaluation that hits unknown names records them, the DNS module fetches them
 * (with the literal targets of every record seen and the addresses of MX exchanges,
 * in parallel), and the evaluation is replayed from the start. Our parser guards it:
 * a record spf_record_parse rejects is a permerror and never reaches libspf2.
 * Callbacks as spf.h says. */
#ifndef SPF_LIBSPF2_H
#define SPF_LIBSPF2_H

#include "spf.h"

struct ev_loop;
struct dns;

typedef struct spf_libspf2 spf_libspf2_t;
typedef struct spf_libspf2_check spf_libspf2_check_t;

spf_libspf2_t *spf_libspf2_new(struct ev_loop *loop, struct dns *dns, const spf_options_t *opt,
                               char err[SPF_ERR_LEN]);
/* Ends pending checks with a temperror callback, then frees. */
void spf_libspf2_free(spf_libspf2_t *s);
void spf_libspf2_reconfigure(spf_libspf2_t *s, const spf_options_t *opt);
/* q is borrowed for the call only. NULL only when out of memory. */
spf_libspf2_check_t *spf_libspf2_check(spf_libspf2_t *s, const spf_query_t *q, spf_cb *cb,
                                       void *ctx);
void spf_libspf2_cancel(spf_libspf2_check_t *c);
unsigned spf_libspf2_pending(const spf_libspf2_t *s);

#endif
