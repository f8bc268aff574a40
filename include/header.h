/* header.h - the trace headers we prepend: Received-SPF (RFC 7208 9.1) and
 * Authentication-Results (RFC 8601).
 *
 * Owns their syntax and the escaping of untrusted values (HELO names and envelope
 * senders come from the SMTP client): the result is one line of printable ASCII that
 * a DMARC filter can parse and that no client input can break or extend. */
#ifndef HEADER_H
#define HEADER_H

#include <stddef.h>
#include "verdict.h"

/* The longest header we produce; Postfix's PREPEND takes one logical line. */
#define HEADER_MAX 1024

typedef struct header_info {
    enum spf_result result;
    enum spf_identity identity;
    const char *client_ip;       /* canonical text */
    const char *helo;            /* as given, may be "" */
    const char *envelope_from;   /* "local@domain" (mailfrom) or "postmaster@helo" */
    const char *domain;          /* the domain the result is about */
    const char *receiver;
    const char *comment;         /* free text, will be escaped into a comment */
    const char *mechanism;       /* may be "" */
    const char *problem;         /* errors: what was wrong, may be "" */
    const char *reputation;      /* x-spf-reputation value, NULL or "" for none */
} header_info_t;

/* "Received-SPF: pass (comment) client-ip=...; envelope-from=\"...\"; helo=...;
 * receiver=...; [x-spf-reputation=\"...\";] identity=mailfrom". The reputation is a
 * quoted string without ';' or '=' (other bytes become '?'), so OpenDMARC's parser,
 * which ends a pair at any ';' even inside quotes, still reads identity= and
 * envelope-from=. Returns the length, or -1 if it would not fit in len (nothing usable
 * written). */
int header_received_spf(char *buf, size_t len, const header_info_t *h);
/* "Authentication-Results: authserv-id; spf=pass smtp.mailfrom=domain" (or
 * smtp.helo= for the HELO identity). */
int header_auth_results(char *buf, size_t len, const char *authserv_id,
                        const header_info_t *h);

#endif
