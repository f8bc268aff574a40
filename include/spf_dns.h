/* spf_dns.h - the DNS layer we put under libspf2: it answers only from what one check
 * already knows and never touches the network.
 *
 * libspf2 resolves synchronously. This layer (an SPF_dns_server_t with our lookup,
 * get_spf and destroy) answers each lookup from the check's own set of fetched answers
 * (spf_dns_run_t) or the DNS module's cache; on a miss it notes (name, type), answers
 * "try again", and the engine (spf.c) fetches what is missing and replays the whole
 * evaluation. The layer also does what libspf2 1.2.10 does not: it counts DNS-querying
 * terms across include/redirect (10) and void lookups (2), refuses more than 10 MX
 * names, never lets SPF type 99 reach the network (RFC 7208 3.1), and keeps records
 * that could trigger CVE-2023-42118 away from libspf2's compiler. It never returns
 * NULL to libspf2 (which aborts on it). */
#ifndef SPF_DNS_H
#define SPF_DNS_H

/* libspf2's headers rely on these being included first. */
#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <spf2/spf.h>
#include "dns.h"

/* RFC 7208 4.6.4. */
#define SPF_DNS_MAX_TERMS 10
#define SPF_DNS_MAX_VOIDS 2
#define SPF_DNS_MAX_MX 10
/* Answers one check may hold: 10 terms, each mx with up to 10 exchanges, plus the
 * top-level record, %{p}, and exp=. */
#define SPF_DNS_MAX_KNOWN 160
/* Names one evaluation may ask for that are not known yet. libspf2 stops at the first
 * miss except for %{p} and exp=, so a handful is plenty; prefetches are the literal
 * targets of the records fetched (at most one per term). */
#define SPF_DNS_MAX_MISSES 8
#define SPF_DNS_MAX_PREFETCH 32
/* CVE-2023-42118 guard. libspf2 compiles each term into a 511-byte buffer
 * (SPF_MAX_MECH_LEN); a term of at most 255 bytes with at most 16 macros compiles to
 * at most 16*4 + 17*8 + 255 = 455 bytes, so it can never reach the underflow. */
#define SPF_DNS_TERM_MAX 255
#define SPF_DNS_TERM_MACROS_MAX 16
/* A record as long as four UDP-sized strings; real records stay under 512. */
#define SPF_DNS_RECORD_MAX 2048

typedef struct spf_dns_key {
    char name[DNS_NAME_MAX + 1];
    int type;
} spf_dns_key_t;

enum spf_dns_top {
    SPF_DNS_TOP_UNKNOWN,     /* not fetched yet */
    SPF_DNS_TOP_RECORD,      /* exactly one v=spf1 record */
    SPF_DNS_TOP_NONE,        /* no record (NXDOMAIN, NODATA, no v=spf1) */
    SPF_DNS_TOP_TEMP,        /* DNS error */
    SPF_DNS_TOP_PERM,        /* several records, or one we refuse */
};

/* Everything one check knows and what its last evaluation found missing. Owned by
 * the check (spf.c); the layer reads and writes it only between spf_dns_begin and
 * spf_dns_end. */
typedef struct spf_dns_run {
    struct dns *dns;
    int family;                              /* client's: AF_INET or AF_INET6 */
    size_t nknown;
    const dns_answer_t *known[SPF_DNS_MAX_KNOWN];   /* one reference each */

    /* Reset by spf_dns_begin for each evaluation. */
    size_t nmiss, nprefetch;
    spf_dns_key_t miss[SPF_DNS_MAX_MISSES];
    spf_dns_key_t prefetch[SPF_DNS_MAX_PREFETCH];
    unsigned records;                        /* get_spf calls: 1 + includes/redirects */
    unsigned terms, voids;
    enum spf_dns_top top;
    unsigned uses;                           /* SPF_USES_* seen in records fetched */
    int over_limit;                          /* a limit or guard tripped: permerror */
    char problem[128];                       /* why, for the verdict comment */
} spf_dns_run_t;

SPF_dns_server_t *spf_dns_new(void);
/* Starts one evaluation of run (resets its per-evaluation part). */
void spf_dns_begin(SPF_dns_server_t *layer, spf_dns_run_t *run);
void spf_dns_end(SPF_dns_server_t *layer);
/* Adds an answer to what the check knows (takes a reference). 0, or -1 when the
 * check already holds SPF_DNS_MAX_KNOWN answers. */
int spf_dns_run_add(spf_dns_run_t *run, const dns_answer_t *a);
const dns_answer_t *spf_dns_run_find(const spf_dns_run_t *run, const char *name, int type);
/* Drops every answer reference. */
void spf_dns_run_clear(spf_dns_run_t *run);

#endif
