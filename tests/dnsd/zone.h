/* zone.h - the test DNS server's data: one zone file, and the answers it gives.
 *
 * Zone file grammar, one record per line:
 *
 *     name TYPE TTL DATA      TYPE: A AAAA MX PTR CNAME TXT SPF
 *     name TIMEOUT            no answer at all for types the name has no record of
 *     name SERVFAIL           SERVFAIL for types the name has no record of
 *
 * A '#' where a token would start begins a comment. Names are case-insensitive,
 * may end with '.', "." is the root, "*.x" is a wildcard; a name may contain any
 * printable byte except space, and \DDD (decimal) or \X (the byte X) for anything
 * else. DATA: A and AAAA an address, MX "PREF NAME", PTR and CNAME a name, TXT and SPF
 * one or more "quoted" strings with \" \\ \DDD escapes, each split into 255-byte
 * character-strings on the wire.
 *
 * Answers: records of the asked type in file order; a CNAME is returned and followed
 * inside the zone; a name with no record of the type gets NODATA if it or a name
 * below it exists, else NXDOMAIN (wildcards as in RFC 4592); both carry the SOA of
 * the root with TTL and minimum neg_ttl.
 *
 * zone_load returns a zone the caller frees with zone_free; zone_answer borrows it. */
#ifndef ZONE_H
#define ZONE_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"

/* Longest zone file line: room for a TXT record that fills a whole TCP message. */
#define ZONE_LINE_MAX (2 * MSG_MAX)
/* Longest CNAME chain followed; more is a loop or a mistake, answered SERVFAIL. */
#define ZONE_CNAME_CHAIN_MAX 8
/* Largest TTL (RFC 2181 8). */
#define ZONE_TTL_MAX 2147483647UL
/* Room for "FILE:LINE: reason" with a long path and a quoted sample of the line. */
#define ZONE_ERR_LEN 1024

typedef struct zone zone_t;

enum zone_outcome {
    ZONE_REPLY, /* the reply is in the buffer */
    ZONE_SILENT /* TIMEOUT: send nothing */
};

/* Reads path. On error returns NULL with "FILE:LINE: reason" (or "FILE: reason") in
 * err. */
zone_t *zone_load(const char *path, uint32_t neg_ttl, char *err, size_t errlen);
void zone_free(zone_t *z);
size_t zone_names(const zone_t *z);

/* Builds the reply to query q (parsed from m by msg_parse_query, MSG_QUERY) in b,
 * whose capacity should be MSG_MAX. */
enum zone_outcome zone_answer(const zone_t *z, const unsigned char *m,
                              const struct msg_query *q, struct msg_buf *b);

#endif
