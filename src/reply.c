/* reply.c - refusing replies with RFC 7372 codes. */
#include "reply.h"

#include <stdio.h>

static int rank(enum action a)
{
    switch (a) {
    case ACTION_REJECT: return 4;
    case ACTION_DEFER: return 3;
    case ACTION_HOLD: return 2;
    case ACTION_PREPEND: return 1;
    default: return 0;
    }
}

enum action reply_stronger(enum action a, enum action b)
{
    return rank(b) > rank(a) ? b : a;
}

int reply_refusal(char *buf, size_t len, enum action a, const reply_verdict_t *v)
{
    char text[REPLY_MAX];
    int error = v->result == SPF_RES_PERMERROR || v->result == SPF_RES_TEMPERROR;
    int n;

    if (a != ACTION_REJECT && a != ACTION_DEFER && a != ACTION_HOLD)
        return -1;
    if (v->result == SPF_RES_FAIL && v->explanation && *v->explanation)
        snprintf(text, sizeof(text), "%s", v->explanation);
    else if (error)
        snprintf(text, sizeof(text), "SPF %s for %.253s: %.200s", spf_result_name(v->result),
                 v->domain, v->comment && *v->comment ? v->comment
                                                      : "the SPF record could not be evaluated");
    else
        snprintf(text, sizeof(text), "SPF %s: %s is not authorized to send for %.253s",
                 spf_result_name(v->result), v->client_ip, v->domain);
    if (a == ACTION_REJECT)
        n = snprintf(buf, len, "550 5.7.%d %.480s", error ? 24 : 23, text);
    else if (a == ACTION_DEFER)
        n = snprintf(buf, len, "451 4.7.%d %.480s", error ? 24 : 23, text);
    else
        n = snprintf(buf, len, "HOLD %.480s", text);
    if (n < 0)
        return -1;
    if ((size_t)n >= len)
        n = (int)len - 1;
    /* Explanations and domains come from DNS and the client: one line, printable. */
    for (int i = 0; i < n; i++)
        if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] > 0x7e)
            buf[i] = '?';
    return n;
}
