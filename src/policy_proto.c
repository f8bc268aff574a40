/* policy_proto.c - finding and parsing one SMTPD access policy request block.
 *
 * Grammar (Postfix SMTPD_POLICY_README; "\r\n" is accepted wherever "\n" is):
 *
 *     block = *(attribute "\n") "\n"
 *     attribute = name "=" value      name: 1+ bytes, no "="; value: any bytes but NUL
 *
 * The scanner looks at each byte once: it keeps the offset it has reached and where
 * the current line began, so a caller that appends bytes and scans again costs only
 * the new bytes. A line is measured without its "\n" (a "\r" before it counts), and
 * may be POLICY_LINE_MAX bytes; a block, with its final empty line, may be
 * POLICY_REQUEST_MAX bytes. Both are reported as soon as the bytes seen prove them
 * too long, without waiting for a newline that a hostile peer may never send. On
 * POLICY_SCAN_READY the scanner resets itself: the caller drops the block from its
 * buffer and scans what follows as a new block.
 *
 * The parser copies values into req->storage; storage[0] stays "" and every absent
 * field points at it. Each value copy (value plus NUL) is smaller than its line
 * ("name=" and "\n" are at least 3 bytes), so a block that fits POLICY_REQUEST_MAX
 * always fits storage, repeats included.
 *
 * BUGS: names are matched case-sensitively, as Postfix sends them; a client that
 * upper-cases them gets its attributes ignored and a "missing request=" error. */
#include "policy_proto.h"

#include <stdio.h>
#include <string.h>

/* How much of a peer's request= value an error message repeats: enough to recognise
 * it in a log line, short enough that err never truncates the rest of the text. */
#define POLICY_ERR_SAMPLE 48

static const char policy_request_name[] = "smtpd_access_policy";

static const struct {
    const char *name;
    size_t len;
    size_t offset;
} policy_fields[] = {
/* Lengths are compile-time: this table is searched for every attribute line. */
#define POLICY_FIELD(f) {#f, sizeof(#f) - 1, offsetof(policy_request_t, f)}
    POLICY_FIELD(request),
    POLICY_FIELD(protocol_state),
    POLICY_FIELD(protocol_name),
    POLICY_FIELD(client_address),
    POLICY_FIELD(client_name),
    POLICY_FIELD(reverse_client_name),
    POLICY_FIELD(helo_name),
    POLICY_FIELD(sender),
    POLICY_FIELD(recipient),
    POLICY_FIELD(recipient_count),
    POLICY_FIELD(queue_id),
    POLICY_FIELD(instance),
    POLICY_FIELD(sasl_method),
    POLICY_FIELD(sasl_username),
    POLICY_FIELD(policy_context),
    POLICY_FIELD(server_address),
    POLICY_FIELD(server_port),
#undef POLICY_FIELD
};

void policy_scanner_reset(policy_scanner_t *s)
{
    s->scanned = 0;
    s->line_start = 0;
}

/* A line (without its "\n") that ends a block: nothing, or a lone "\r". */
static int policy_line_is_empty(const char *line, size_t len)
{
    return len == 0 || (len == 1 && line[0] == '\r');
}

enum policy_scan policy_proto_scan(policy_scanner_t *s, const char *buf, size_t len,
                                   size_t *block_len)
{
    while (s->scanned < len) {
        size_t avail = len - s->scanned;
        const char *nl = memchr(buf + s->scanned, '\n', avail);
        size_t end = nl ? (size_t)(nl - buf) : len;    /* end of the bytes we judge */

        if (end - s->line_start > POLICY_LINE_MAX)
            return POLICY_SCAN_TOO_LONG;
        if (!nl) {
            s->scanned = len;
            break;
        }
        if (policy_line_is_empty(buf + s->line_start, end - s->line_start)) {
            *block_len = end + 1;
            policy_scanner_reset(s);
            return POLICY_SCAN_READY;
        }
        s->scanned = end + 1;
        s->line_start = end + 1;
        /* The block's last byte would have to be the next line's "\n": if even the
         * smallest such line (a lone "\n") does not fit, no block can end in time. */
        if (s->scanned >= POLICY_REQUEST_MAX)
            return POLICY_SCAN_TOO_LONG;
    }
    /* Bytes without a newline count too: a block whose unfinished line already
     * fills the cap can never be terminated within it. */
    if (s->scanned >= POLICY_REQUEST_MAX)
        return POLICY_SCAN_TOO_LONG;
    return POLICY_SCAN_MORE;
}

/* Copies at most POLICY_ERR_SAMPLE bytes of src as printable ASCII ('?' for the
 * rest), "..." when cut. dst holds POLICY_ERR_SAMPLE + 4 bytes. */
static void policy_err_sample(char *dst, const char *src, size_t len)
{
    size_t n = len > POLICY_ERR_SAMPLE ? POLICY_ERR_SAMPLE : len;
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (n < len) {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    dst[n] = '\0';
}

static const char **policy_field(policy_request_t *req, const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof(policy_fields) / sizeof(policy_fields[0]); i++) {
        if (policy_fields[i].len == len && memcmp(policy_fields[i].name, name, len) == 0)
            return (const char **)((char *)req + policy_fields[i].offset);
    }
    return NULL;
}

int policy_proto_parse(policy_request_t *req, const char *block, size_t len,
                       char err[POLICY_ERR_LEN])
{
    size_t pos = 0, used = 1, nattr = 0, lineno = 0, i;
    char sample[POLICY_ERR_SAMPLE + 4];

    if (len > POLICY_REQUEST_MAX) {
        snprintf(err, POLICY_ERR_LEN, "request longer than %d bytes", POLICY_REQUEST_MAX);
        return -1;
    }
    req->storage[0] = '\0';
    for (i = 0; i < sizeof(policy_fields) / sizeof(policy_fields[0]); i++)
        *(const char **)((char *)req + policy_fields[i].offset) = req->storage;

    for (;;) {
        const char *line = block + pos, *nl, *eq;
        size_t linelen, namelen, valuelen;
        const char **field;
        int has_nul;

        if (pos == len) {
            snprintf(err, POLICY_ERR_LEN, "request not ended by an empty line");
            return -1;
        }
        lineno++;
        nl = memchr(line, '\n', len - pos);
        if (!nl) {
            snprintf(err, POLICY_ERR_LEN, "line %zu: no newline at the end", lineno);
            return -1;
        }
        linelen = (size_t)(nl - line);
        /* Names are short: a byte loop finds the '=' sooner than a library scan
         * starts; the value gets memchr's wide scan for a NUL. */
        eq = NULL;
        has_nul = 0;
        for (const char *p = line; p < nl; p++) {
            if (*p == '=') {
                eq = p;
                has_nul = memchr(p, '\0', (size_t)(nl - p)) != NULL;
                break;
            }
            if (*p == '\0')
                has_nul = 1;
        }
        pos += linelen + 1;
        if (policy_line_is_empty(line, linelen)) {
            if (pos != len) {
                snprintf(err, POLICY_ERR_LEN, "line %zu: data after the empty line", lineno);
                return -1;
            }
            break;
        }
        if (line[linelen - 1] == '\r')
            linelen--;
        if (has_nul) {
            snprintf(err, POLICY_ERR_LEN, "NUL byte in line %zu", lineno);
            return -1;
        }
        if (++nattr > POLICY_ATTR_MAX) {
            snprintf(err, POLICY_ERR_LEN, "more than %d attributes", POLICY_ATTR_MAX);
            return -1;
        }
        if (!eq) {
            snprintf(err, POLICY_ERR_LEN, "line %zu: no '=' in attribute", lineno);
            return -1;
        }
        namelen = (size_t)(eq - line);
        if (namelen == 0) {
            snprintf(err, POLICY_ERR_LEN, "line %zu: empty attribute name", lineno);
            return -1;
        }
        field = policy_field(req, line, namelen);
        if (!field)
            continue;
        valuelen = linelen - namelen - 1;
        memcpy(req->storage + used, eq + 1, valuelen);
        req->storage[used + valuelen] = '\0';
        *field = req->storage + used;
        used += valuelen + 1;
    }

    if (req->request == req->storage) {
        snprintf(err, POLICY_ERR_LEN, "missing request= attribute");
        return -1;
    }
    if (strcmp(req->request, policy_request_name) != 0) {
        policy_err_sample(sample, req->request, strlen(req->request));
        snprintf(err, POLICY_ERR_LEN, "request=%s: not %s", sample, policy_request_name);
        return -1;
    }
    return 0;
}
