/* header.c - Received-SPF (RFC 7208 9.1) and Authentication-Results (RFC 8601).
 *
 * Every value that came from the SMTP client is escaped here: the header must stay
 * one line of printable ASCII whose structure no HELO name or sender can change,
 * because the content filter downstream trusts the first such header it sees. */
#include "header.h"

#include <string.h>

/* Cap on one untrusted value inside a header, so a long sender cannot push the
 * fields after it out of HEADER_MAX. SMTP paths are at most 256 (RFC 5321 4.5.3.1.3). */
#define HEADER_VALUE_MAX 256

typedef struct hbuf {
    char *buf;
    size_t len, used;
    int overflow;
} hbuf_t;

/* Appends stop at the first byte that does not fit, and the header is refused: a cut
 * header would be a lie. No printf on this path: it runs for every message. */
static void put_char(hbuf_t *h, char ch)
{
    if (h->used + 1 >= h->len) {
        h->overflow = 1;
        return;
    }
    h->buf[h->used++] = ch;
    h->buf[h->used] = '\0';
}

static void put(hbuf_t *h, const char *s)
{
    size_t n = strlen(s);

    if (h->overflow || h->used + n >= h->len) {
        h->overflow = 1;
        return;
    }
    memcpy(h->buf + h->used, s, n + 1);
    h->used += n;
}

static int printable(unsigned char ch)
{
    return ch >= 0x20 && ch < 0x7f;
}

/* Text inside a comment: parentheses and backslashes quoted (RFC 5322 ccontent). */
static void put_comment_text(hbuf_t *h, const char *s)
{
    for (size_t i = 0; s[i] && i < HEADER_VALUE_MAX; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '(' || ch == ')' || ch == '\\')
            put_char(h, '\\');
        put_char(h, printable(ch) ? (char)ch : '?');
    }
}

static int is_atext(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-/=?^_`{|}~", ch));
}

/* RFC 5322 dot-atom: atext runs separated by single dots. */
static int is_dot_atom(const char *s)
{
    size_t run = 0;

    if (!*s)
        return 0;
    for (; *s; s++) {
        if (*s == '.') {
            if (run == 0)
                return 0;
            run = 0;
        } else if (is_atext((unsigned char)*s)) {
            run++;
        } else {
            return 0;
        }
    }
    return run > 0;
}

static void put_quoted(hbuf_t *h, const char *s)
{
    put_char(h, '"');
    for (size_t i = 0; s[i] && i < HEADER_VALUE_MAX; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            put_char(h, '\\');
        put_char(h, printable(ch) ? (char)ch : '?');
    }
    put_char(h, '"');
}

/* Our own key-value pair (RFC 7208 9.1 allows any key): a quoted string of letters,
 * digits, blanks and "./:-" only, so no DMARC filter's parser can lose its way in it. */
static void put_reputation(hbuf_t *h, const char *s)
{
    put(h, "; x-spf-reputation=\"");
    for (size_t i = 0; s[i] && i < HEADER_VALUE_MAX; i++) {
        unsigned char ch = (unsigned char)s[i];
        int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || strchr(" ./:-", ch);
        put_char(h, plain ? (char)ch : '?');
    }
    put_char(h, '"');
}

/* dot-atom where the value is one, else quoted-string (RFC 7208 9.1 key-value-pair). */
static void put_value(hbuf_t *h, const char *s)
{
    if (is_dot_atom(s) && strlen(s) <= HEADER_VALUE_MAX)
        put(h, s);
    else
        put_quoted(h, s);
}

static void put_default_comment(hbuf_t *h, const header_info_t *i)
{
    const char *from = i->envelope_from;

    put(h, i->receiver);
    put(h, ": ");
    switch (i->result) {
    case SPF_RES_PASS:
        put(h, "domain of ");
        put_comment_text(h, from);
        put(h, " designates ");
        put(h, i->client_ip);
        put(h, " as permitted sender");
        break;
    case SPF_RES_FAIL:
        put(h, "domain of ");
        put_comment_text(h, from);
        put(h, " does not designate ");
        put(h, i->client_ip);
        put(h, " as permitted sender");
        break;
    case SPF_RES_SOFTFAIL:
        put(h, "domain of transitioning ");
        put_comment_text(h, from);
        put(h, " does not designate ");
        put(h, i->client_ip);
        put(h, " as permitted sender");
        break;
    case SPF_RES_NEUTRAL:
        put(h, i->client_ip);
        put(h, " is neither permitted nor denied by domain of ");
        put_comment_text(h, from);
        break;
    case SPF_RES_NONE:
        put(h, "domain of ");
        put_comment_text(h, from);
        put(h, " does not provide an SPF record");
        break;
    case SPF_RES_TEMPERROR:
        put(h, "temporary error checking ");
        put_comment_text(h, from);
        break;
    case SPF_RES_PERMERROR:
        put(h, "permanent error in the SPF record of ");
        put_comment_text(h, from);
        break;
    }
}

int header_received_spf(char *buf, size_t len, const header_info_t *i)
{
    hbuf_t h = { buf, len, 0, 0 };

    put(&h, "Received-SPF: ");
    put(&h, spf_result_name(i->result));
    put(&h, " (");
    if (i->comment && *i->comment) {
        put(&h, i->receiver);
        put(&h, ": ");
        put_comment_text(&h, i->comment);
    } else {
        put_default_comment(&h, i);
    }
    put(&h, ") client-ip=");
    put(&h, i->client_ip);
    put(&h, "; envelope-from=");
    put_quoted(&h, i->envelope_from);
    put(&h, "; helo=");
    put_value(&h, i->helo ? i->helo : "");
    put(&h, "; receiver=");
    put_value(&h, i->receiver);
    if (i->mechanism && *i->mechanism) {
        put(&h, "; mechanism=");
        put_value(&h, i->mechanism);
    }
    if (i->problem && *i->problem) {
        put(&h, "; problem=");
        put_quoted(&h, i->problem);
    }
    if (i->reputation && *i->reputation)
        put_reputation(&h, i->reputation);
    put(&h, "; identity=");
    put(&h, spf_identity_name(i->identity));
    return h.overflow ? -1 : (int)h.used;
}

int header_auth_results(char *buf, size_t len, const char *authserv_id, const header_info_t *i)
{
    hbuf_t h = { buf, len, 0, 0 };

    put(&h, "Authentication-Results: ");
    put_value(&h, authserv_id);
    put(&h, "; spf=");
    put(&h, spf_result_name(i->result));
    if (i->comment && *i->comment) {
        put(&h, " (");
        put_comment_text(&h, i->comment);
        put(&h, ")");
    }
    if (i->identity == SPF_ID_HELO) {
        put(&h, " smtp.helo=");
        put_value(&h, i->helo && *i->helo ? i->helo : i->domain);
    } else {
        put(&h, " smtp.mailfrom=");
        put_value(&h, i->domain);
    }
    return h.overflow ? -1 : (int)h.used;
}
