/* reply.h - the text of a refusing reply: RFC 7372 enhanced status codes, the SPF
 * explanation, and nothing untrusted that could end the line early.
 *
 * X.7.23 "SPF validation failed" for fail/softfail/neutral/none/pass refused by local
 * policy, X.7.24 "SPF validation error" for permerror and temperror; 550 for reject,
 * 451 for defer, and Postfix's HOLD with the same text. Never a bare REJECT, which
 * Postfix would turn into 554. */
#ifndef REPLY_H
#define REPLY_H

#include <stddef.h>
#include "verdict.h"

/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with its CRLF. */
#define REPLY_MAX 510

typedef struct reply_verdict {
    enum spf_result result;
    const char *domain;        /* the domain the result is about */
    const char *client_ip;
    const char *explanation;   /* fail: the expanded explanation, else "" */
    const char *comment;       /* errors: what went wrong, may be "" */
} reply_verdict_t;

/* Writes the action text for a (ACTION_REJECT, ACTION_DEFER or ACTION_HOLD) into buf
 * (at least REPLY_MAX + 1 bytes); every byte outside printable ASCII becomes '?'.
 * Returns the length, or -1 for another action. */
int reply_refusal(char *buf, size_t len, enum action a, const reply_verdict_t *v);

/* The stronger of two actions: reject > defer > hold > prepend > dunno. */
enum action reply_stronger(enum action a, enum action b);

#endif
