/* msg.c - DNS wire format for the test DNS server (see msg.h). */
#include "msg.h"

#include <stdio.h>
#include <string.h>

#define FLAG_QR 0x8000
#define FLAG_AA 0x0400
#define FLAG_TC 0x0200
#define FLAG_RD 0x0100
#define FLAG_RA 0x0080
#define OPCODE_SHIFT 11
#define OPCODE_MASK 0xF
#define RCODE_MASK 0x000F
#define OPCODE_QUERY 0

/* Header field offsets (RFC 1035 4.1.1). */
#define OFF_FLAGS 2
#define OFF_QDCOUNT 4
#define OFF_ANCOUNT 6
#define OFF_NSCOUNT 8
#define OFF_ARCOUNT 10

/* The two top bits of a length byte mark a compression pointer (11) or an
 * extended label type (01, 10); neither belongs in the question of a query. */
#define LABEL_TYPE_MASK 0xC0

static uint16_t get_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

enum msg_parse msg_parse_query(const unsigned char *m, size_t len, struct msg_query *q)
{
    size_t off = MSG_HEADER_LEN;

    memset(q, 0, sizeof(*q));
    if (len < MSG_HEADER_LEN)
        return MSG_IGNORE;
    q->id = get_u16(m);
    q->flags = get_u16(m + OFF_FLAGS);
    if (q->flags & FLAG_QR)
        return MSG_IGNORE;
    if (get_u16(m + OFF_QDCOUNT) != 1)
        return MSG_FORMERR;
    for (;;) {
        unsigned lab;

        if (off >= len)
            return MSG_FORMERR;
        lab = m[off];
        if (lab & LABEL_TYPE_MASK)
            return MSG_FORMERR;
        if (off + 1 + lab - MSG_HEADER_LEN > MSG_NAME_MAX)
            return MSG_FORMERR;
        off += 1 + lab;
        if (lab == 0)
            break;
    }
    if (off + MSG_QFIXED_LEN > len)
        return MSG_FORMERR;
    q->qname = m + MSG_HEADER_LEN;
    q->qname_len = off - MSG_HEADER_LEN;
    q->qtype = get_u16(m + off);
    q->qclass = get_u16(m + off + 2);
    q->qend = off + MSG_QFIXED_LEN;
    if (((q->flags >> OPCODE_SHIFT) & OPCODE_MASK) != OPCODE_QUERY)
        return MSG_NOTIMP;
    return MSG_QUERY;
}

void msg_buf_init(struct msg_buf *b, unsigned char *p, size_t cap)
{
    b->p = p;
    b->len = 0;
    b->cap = cap;
    b->overflow = 0;
}

void msg_put(struct msg_buf *b, const void *data, size_t n)
{
    if (b->overflow || n > b->cap - b->len) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

void msg_put_u16(struct msg_buf *b, uint16_t v)
{
    unsigned char x[2] = {(unsigned char)(v >> 8), (unsigned char)v};

    msg_put(b, x, sizeof(x));
}

void msg_put_u32(struct msg_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};

    msg_put(b, x, sizeof(x));
}

void msg_set_u16(struct msg_buf *b, size_t off, uint16_t v)
{
    if (off + 2 > b->len)
        return;
    b->p[off] = (unsigned char)(v >> 8);
    b->p[off + 1] = (unsigned char)v;
}

void msg_reply_start(struct msg_buf *b, const unsigned char *m, const struct msg_query *q,
                     enum msg_rcode rcode)
{
    uint16_t flags = FLAG_QR | FLAG_AA | FLAG_RA | (q->flags & FLAG_RD) |
                     (q->flags & (OPCODE_MASK << OPCODE_SHIFT)) | (uint16_t)rcode;

    b->len = 0;
    b->overflow = 0;
    msg_put_u16(b, q->id);
    msg_put_u16(b, flags);
    msg_put_u16(b, q->qend ? 1 : 0);
    msg_put_u16(b, 0);
    msg_put_u16(b, 0);
    msg_put_u16(b, 0);
    if (q->qend)
        msg_put(b, m + MSG_HEADER_LEN, q->qend - MSG_HEADER_LEN);
}

void msg_set_rcode(struct msg_buf *b, enum msg_rcode rcode)
{
    uint16_t flags;

    if (b->len < MSG_HEADER_LEN)
        return;
    flags = get_u16(b->p + OFF_FLAGS);
    msg_set_u16(b, OFF_FLAGS, (uint16_t)((flags & ~RCODE_MASK) | rcode));
}

void msg_set_counts(struct msg_buf *b, uint16_t ancount, uint16_t nscount)
{
    msg_set_u16(b, OFF_ANCOUNT, ancount);
    msg_set_u16(b, OFF_NSCOUNT, nscount);
}

void msg_truncate(struct msg_buf *b, const struct msg_query *q)
{
    size_t keep = q->qend ? q->qend : MSG_HEADER_LEN;

    if (b->len < keep)
        return;
    b->len = keep;
    msg_set_u16(b, OFF_FLAGS, get_u16(b->p + OFF_FLAGS) | FLAG_TC);
    msg_set_u16(b, OFF_ANCOUNT, 0);
    msg_set_u16(b, OFF_NSCOUNT, 0);
    msg_set_u16(b, OFF_ARCOUNT, 0);
}

size_t msg_name_len(const unsigned char *wire)
{
    size_t n = 0;

    while (wire[n])
        n += 1 + wire[n];
    return n + 1;
}

char *msg_name_text(const unsigned char *wire, char *dst)
{
    size_t o = 0;

    if (!wire[0]) {
        dst[0] = '.';
        dst[1] = '\0';
        return dst;
    }
    while (*wire) {
        unsigned lab = *wire++;

        if (o)
            dst[o++] = '.';
        for (unsigned i = 0; i < lab; i++) {
            unsigned char c = wire[i];

            if (c > ' ' && c < 0x7f && c != '.' && c != '\\') {
                dst[o++] = (char)c;
            } else {
                snprintf(dst + o, MSG_ESCAPE_LEN + 1, "\\%03u", c);
                o += MSG_ESCAPE_LEN;
            }
        }
        wire += lab;
    }
    dst[o] = '\0';
    return dst;
}

const char *msg_type_name(uint16_t type, char *buf, size_t size)
{
    switch (type) {
    case MSG_T_A: return "A";
    case MSG_T_NS: return "NS";
    case MSG_T_CNAME: return "CNAME";
    case MSG_T_SOA: return "SOA";
    case MSG_T_PTR: return "PTR";
    case MSG_T_MX: return "MX";
    case MSG_T_TXT: return "TXT";
    case MSG_T_AAAA: return "AAAA";
    case MSG_T_OPT: return "OPT";
    case MSG_T_SPF: return "SPF";
    case MSG_T_ANY: return "ANY";
    default:
        snprintf(buf, size, "TYPE%u", (unsigned)type);
        return buf;
    }
}
