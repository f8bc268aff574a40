/* zone.c - zone file parser, name table and answers of the test DNS server (see
 * zone.h). Names are kept in wire form; the hash key is the wire form lowercased
 * (length bytes are below 'A', so lowering the whole buffer is safe). */
#include "zone.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_TIMEOUT 1u
#define NODE_SERVFAIL 2u
#define NODE_DATA 4u /* named on a line of its own, not only an ancestor of one */

/* First table size; it doubles whenever names outnumber buckets. */
#define ZONE_BUCKETS_INIT 1024
/* A compression pointer has 14 bits of offset (RFC 1035 4.1.4). */
#define PTR_OFFSET_MAX 0x3FFF
#define PTR_FLAG 0xC000
/* How much of an offending token an error message quotes. */
#define SAMPLE_MAX 60

/* SOA timers: any sane values; only the minimum (negative TTL) matters to clients. */
#define SOA_SERIAL 1
#define SOA_REFRESH 3600
#define SOA_RETRY 600
#define SOA_EXPIRE 86400
#define SOA_RDATA_MAX (2 * MSG_NAME_MAX + 20)

#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

struct rr {
    struct rr *next;
    uint16_t type;
    uint32_t ttl;
    uint16_t rdlen;
    unsigned char rdata[];
};

struct node {
    struct node *hnext;
    struct rr *rrs;
    struct rr **tail;
    unsigned flags;
    size_t len;            /* wire length of the name */
    unsigned char key[];   /* lowered wire name, then the name as written */
};

struct zone {
    struct node **buckets;
    size_t nbuckets;
    size_t nnodes;
    size_t ndata;
    uint32_t neg_ttl;
    unsigned char soa[SOA_RDATA_MAX];
    size_t soa_len;
};

struct parser {
    const char *path;
    unsigned long line;
    char *err;
    size_t errlen;
};

struct cursor {
    const char *s;
    const char *end;
};

static void lower(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 'A' && p[i] <= 'Z')
            p[i] = (unsigned char)(p[i] + ('a' - 'A'));
}

static uint32_t hash(const unsigned char *p, size_t n)
{
    uint32_t h = FNV_OFFSET;

    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* key: lowered wire name. */
static struct node *find(const zone_t *z, const unsigned char *key, size_t len)
{
    struct node *n = z->buckets[hash(key, len) & (z->nbuckets - 1)];

    for (; n; n = n->hnext)
        if (n->len == len && memcmp(n->key, key, len) == 0)
            return n;
    return NULL;
}

static int grow(zone_t *z)
{
    size_t nb = z->nbuckets * 2;
    struct node **b = calloc(nb, sizeof(*b));

    if (!b)
        return -1;
    for (size_t i = 0; i < z->nbuckets; i++) {
        struct node *n = z->buckets[i], *next;

        for (; n; n = next) {
            size_t h = hash(n->key, n->len) & (nb - 1);

            next = n->hnext;
            n->hnext = b[h];
            b[h] = n;
        }
    }
    free(z->buckets);
    z->buckets = b;
    z->nbuckets = nb;
    return 0;
}

/* wire: the name as written. Returns the node of that name, created if missing. */
static struct node *node_get(zone_t *z, const unsigned char *wire, size_t len)
{
    unsigned char key[MSG_NAME_MAX];
    struct node *n;
    size_t h;

    memcpy(key, wire, len);
    lower(key, len);
    if ((n = find(z, key, len)))
        return n;
    if (z->nnodes >= z->nbuckets && grow(z) < 0)
        return NULL;
    n = malloc(sizeof(*n) + 2 * len);
    if (!n)
        return NULL;
    n->rrs = NULL;
    n->tail = &n->rrs;
    n->flags = 0;
    n->len = len;
    memcpy(n->key, key, len);
    memcpy(n->key + len, wire, len);
    h = hash(key, len) & (z->nbuckets - 1);
    n->hnext = z->buckets[h];
    z->buckets[h] = n;
    z->nnodes++;
    return n;
}

/* The node of a name on a zone line; its ancestors up to the root exist as empty
 * nodes, so that they answer NODATA rather than NXDOMAIN. */
static struct node *node_define(zone_t *z, const unsigned char *wire, size_t len)
{
    struct node *n = node_get(z, wire, len);
    size_t off = 0;

    if (!n)
        return NULL;
    while (wire[off]) {
        off += 1 + wire[off];
        if (!node_get(z, wire + off, len - off))
            return NULL;
    }
    if (!(n->flags & NODE_DATA)) {
        n->flags |= NODE_DATA;
        z->ndata++;
    }
    return n;
}

void zone_free(zone_t *z)
{
    if (!z)
        return;
    for (size_t i = 0; i < z->nbuckets; i++) {
        struct node *n = z->buckets[i], *next;

        for (; n; n = next) {
            struct rr *r = n->rrs, *rnext;

            next = n->hnext;
            for (; r; r = rnext) {
                rnext = r->next;
                free(r);
            }
            free(n);
        }
    }
    free(z->buckets);
    free(z);
}

size_t zone_names(const zone_t *z)
{
    return z->ndata;
}

/* ---- parsing ---- */

static void sample(const char *s, size_t n, char *dst)
{
    size_t i;

    for (i = 0; i < n && i < SAMPLE_MAX; i++)
        dst[i] = (s[i] > ' ' && s[i] < 0x7f) ? s[i] : '?';
    if (n > SAMPLE_MAX) {
        memcpy(dst + i, "...", 3);
        i += 3;
    }
    dst[i] = '\0';
}

__attribute__((format(printf, 2, 3)))
static int perr(struct parser *p, const char *fmt, ...)
{
    va_list ap;
    int n;

    n = snprintf(p->err, p->errlen, "%s:%lu: ", p->path, p->line);
    if (n < 0 || (size_t)n >= p->errlen)
        return -1;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static void skip_blanks(struct cursor *c)
{
    while (c->s < c->end && is_blank(*c->s))
        c->s++;
}

/* Next whitespace-delimited token; 0 at the end of the line or at a comment. */
static int next_token(struct cursor *c, const char **tok, size_t *len)
{
    skip_blanks(c);
    if (c->s >= c->end || *c->s == '#')
        return 0;
    *tok = c->s;
    while (c->s < c->end && !is_blank(*c->s))
        c->s++;
    *len = (size_t)(c->s - *tok);
    return 1;
}

static int more_tokens(struct cursor *c)
{
    skip_blanks(c);
    return c->s < c->end && *c->s != '#';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Three decimal digits at s (n bytes left) -> *v <= 255. */
static int ddd(const char *s, size_t n, unsigned *v)
{
    if (n < 3 || !is_digit(s[0]) || !is_digit(s[1]) || !is_digit(s[2]))
        return -1;
    *v = (unsigned)((s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0'));
    return *v <= 255 ? 0 : -1;
}

static int parse_uint(const char *s, size_t n, unsigned long max, unsigned long *v)
{
    unsigned long x = 0;

    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        x = x * 10 + (unsigned long)(s[i] - '0');
        if (x > max)
            return -1;
    }
    *v = x;
    return 0;
}

/* Text name -> wire (MSG_NAME_MAX bytes); returns its length, or 0 after an error. */
static size_t parse_name(struct parser *p, const char *s, size_t n, unsigned char *wire)
{
    char smp[SAMPLE_MAX + 4];
    size_t o = 0, lab = 0; /* o: bytes written; lab: offset of the current length byte */
    size_t i = 0;

    sample(s, n, smp);
    if (n == 1 && s[0] == '.') {
        wire[0] = 0;
        return 1;
    }
    wire[o++] = 0;
    while (i < n) {
        unsigned c = (unsigned char)s[i];

        if (c == '.') {
            if (wire[lab] == 0 || i + 1 == n) {
                if (wire[lab] == 0) {
                    perr(p, "empty label in name '%s'", smp);
                    return 0;
                }
                i++;
                continue;
            }
            lab = o;
            if (o >= MSG_NAME_MAX - 1) {
                perr(p, "name '%s' longer than %d bytes", smp, MSG_NAME_MAX);
                return 0;
            }
            wire[o++] = 0;
            i++;
            continue;
        }
        if (c == '\\') {
            if (ddd(s + i + 1, n - i - 1, &c) == 0) {
                i += MSG_ESCAPE_LEN;
            } else if (i + 1 < n && !is_digit(s[i + 1])) {
                c = (unsigned char)s[i + 1];
                i += 2;
            } else {
                perr(p, "bad escape in name '%s'", smp);
                return 0;
            }
        } else if (c <= ' ' || c == 0x7f) {
            perr(p, "unprintable byte in name '%s' (use \\DDD)", smp);
            return 0;
        } else {
            i++;
        }
        if (wire[lab] == MSG_LABEL_MAX) {
            perr(p, "label longer than %d bytes in name '%s'", MSG_LABEL_MAX, smp);
            return 0;
        }
        if (o >= MSG_NAME_MAX - 1) {
            perr(p, "name '%s' longer than %d bytes", smp, MSG_NAME_MAX);
            return 0;
        }
        wire[o++] = (unsigned char)c;
        wire[lab]++;
    }
    wire[o++] = 0;
    return o;
}

/* One or more "quoted" strings -> TXT rdata in out (MSG_MAX bytes). */
static int parse_strings(struct parser *p, struct cursor *c, unsigned char *out,
                         size_t *outlen)
{
    size_t o = 0;
    int count = 0;

    while (more_tokens(c)) {
        size_t lab; /* offset of the current character-string's length byte */

        if (*c->s != '"')
            return perr(p, "TXT data must be \"quoted\" strings");
        c->s++;
        if (o >= MSG_MAX)
            return perr(p, "record data longer than %d bytes", MSG_MAX);
        lab = o;
        out[o++] = 0;
        for (;;) {
            unsigned ch;

            if (c->s >= c->end)
                return perr(p, "unterminated string");
            ch = (unsigned char)*c->s;
            if (ch == '"') {
                c->s++;
                break;
            }
            if (ch == '\\') {
                size_t left = (size_t)(c->end - c->s) - 1;

                if (left >= 1 && (c->s[1] == '"' || c->s[1] == '\\')) {
                    ch = (unsigned char)c->s[1];
                    c->s += 2;
                } else if (ddd(c->s + 1, left, &ch) == 0) {
                    c->s += MSG_ESCAPE_LEN;
                } else {
                    return perr(p, "bad escape in string (use \\\" \\\\ or \\DDD)");
                }
            } else {
                c->s++;
            }
            if (out[lab] == MSG_CHARSTR_MAX) {
                if (o >= MSG_MAX)
                    return perr(p, "record data longer than %d bytes", MSG_MAX);
                lab = o;
                out[o++] = 0;
            }
            if (o >= MSG_MAX)
                return perr(p, "record data longer than %d bytes", MSG_MAX);
            out[o++] = (unsigned char)ch;
            out[lab]++;
        }
        if (c->s < c->end && !is_blank(*c->s))
            return perr(p, "junk after closing quote");
        count++;
    }
    if (!count)
        return perr(p, "missing data");
    *outlen = o;
    return 0;
}

static int add_rr(struct parser *p, struct node *n, uint16_t type, uint32_t ttl,
                  const unsigned char *rdata, size_t rdlen)
{
    struct rr *r;

    for (r = n->rrs; r; r = r->next)
        if (r->type == MSG_T_CNAME || type == MSG_T_CNAME)
            return perr(p, "CNAME and other data at one name");
    r = malloc(sizeof(*r) + rdlen);
    if (!r)
        return perr(p, "out of memory");
    r->next = NULL;
    r->type = type;
    r->ttl = ttl;
    r->rdlen = (uint16_t)rdlen;
    memcpy(r->rdata, rdata, rdlen);
    *n->tail = r;
    n->tail = &r->next;
    return 0;
}

static int parse_type(const char *s, size_t n, uint16_t *type, unsigned *flag)
{
    static const struct {
        const char *name;
        uint16_t type;
        unsigned flag;
    } types[] = {
        {"A", MSG_T_A, 0},          {"AAAA", MSG_T_AAAA, 0},
        {"MX", MSG_T_MX, 0},        {"PTR", MSG_T_PTR, 0},
        {"CNAME", MSG_T_CNAME, 0},  {"TXT", MSG_T_TXT, 0},
        {"SPF", MSG_T_SPF, 0},      {"TIMEOUT", 0, NODE_TIMEOUT},
        {"SERVFAIL", 0, NODE_SERVFAIL},
    };

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strlen(types[i].name) == n && strncasecmp(types[i].name, s, n) == 0) {
            *type = types[i].type;
            *flag = types[i].flag;
            return 0;
        }
    return -1;
}

static int parse_line(zone_t *z, struct parser *p, const char *line, size_t len)
{
    unsigned char rdata[MSG_MAX];
    struct cursor c = {line, line + len};
    unsigned char owner[MSG_NAME_MAX];
    char smp[SAMPLE_MAX + 4];
    const char *tok;
    size_t toklen, ownerlen, rdlen = 0;
    unsigned long ttl, pref;
    uint16_t type;
    unsigned flag;
    struct node *n;

    if (!next_token(&c, &tok, &toklen))
        return 0;
    if (!(ownerlen = parse_name(p, tok, toklen, owner)))
        return -1;
    if (!next_token(&c, &tok, &toklen))
        return perr(p, "missing type");
    sample(tok, toklen, smp);
    if (parse_type(tok, toklen, &type, &flag) < 0)
        return perr(p, "unknown type '%s'", smp);
    if (flag) {
        if (more_tokens(&c))
            return perr(p, "trailing data after %s", smp);
        if (!(n = node_define(z, owner, ownerlen)))
            return perr(p, "out of memory");
        if ((n->flags | flag) & NODE_TIMEOUT && (n->flags | flag) & NODE_SERVFAIL)
            return perr(p, "TIMEOUT and SERVFAIL at one name");
        n->flags |= flag;
        return 0;
    }
    if (!next_token(&c, &tok, &toklen))
        return perr(p, "missing TTL");
    sample(tok, toklen, smp);
    if (parse_uint(tok, toklen, ZONE_TTL_MAX, &ttl) < 0)
        return perr(p, "bad TTL '%s'", smp);
    switch (type) {
    case MSG_T_A:
    case MSG_T_AAAA: {
        char addr[INET6_ADDRSTRLEN];
        int af = type == MSG_T_A ? AF_INET : AF_INET6;

        if (!next_token(&c, &tok, &toklen))
            return perr(p, "missing data");
        sample(tok, toklen, smp);
        if (toklen >= sizeof(addr))
            return perr(p, "bad %s address '%s'", af == AF_INET ? "IPv4" : "IPv6", smp);
        memcpy(addr, tok, toklen);
        addr[toklen] = '\0';
        if (inet_pton(af, addr, rdata) != 1)
            return perr(p, "bad %s address '%s'", af == AF_INET ? "IPv4" : "IPv6", smp);
        rdlen = af == AF_INET ? 4 : 16;
        break;
    }
    case MSG_T_MX:
        if (!next_token(&c, &tok, &toklen))
            return perr(p, "missing data");
        sample(tok, toklen, smp);
        if (parse_uint(tok, toklen, UINT16_MAX, &pref) < 0)
            return perr(p, "bad MX preference '%s'", smp);
        rdata[0] = (unsigned char)(pref >> 8);
        rdata[1] = (unsigned char)pref;
        if (!next_token(&c, &tok, &toklen))
            return perr(p, "missing MX exchange");
        if (!(rdlen = parse_name(p, tok, toklen, rdata + 2)))
            return -1;
        rdlen += 2;
        break;
    case MSG_T_PTR:
    case MSG_T_CNAME:
        if (!next_token(&c, &tok, &toklen))
            return perr(p, "missing data");
        if (!(rdlen = parse_name(p, tok, toklen, rdata)))
            return -1;
        break;
    default:
        if (parse_strings(p, &c, rdata, &rdlen) < 0)
            return -1;
        break;
    }
    if (more_tokens(&c))
        return perr(p, "trailing data");
    if (!(n = node_define(z, owner, ownerlen)))
        return perr(p, "out of memory");
    return add_rr(p, n, type, (uint32_t)ttl, rdata, rdlen);
}

static void build_soa(zone_t *z)
{
    static const unsigned char mname[] = "\2ns\4dnsd\4test";
    static const unsigned char rname[] = "\12hostmaster\4dnsd\4test";
    struct msg_buf b;

    msg_buf_init(&b, z->soa, sizeof(z->soa));
    msg_put(&b, mname, sizeof(mname));
    msg_put(&b, rname, sizeof(rname));
    msg_put_u32(&b, SOA_SERIAL);
    msg_put_u32(&b, SOA_REFRESH);
    msg_put_u32(&b, SOA_RETRY);
    msg_put_u32(&b, SOA_EXPIRE);
    msg_put_u32(&b, z->neg_ttl);
    z->soa_len = b.len;
}

zone_t *zone_load(const char *path, uint32_t neg_ttl, char *err, size_t errlen)
{
    struct parser p = {path, 0, err, errlen};
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    FILE *f;
    zone_t *z;
    int rc = 0;

    if (!(f = fopen(path, "r"))) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    z = calloc(1, sizeof(*z));
    if (z)
        z->buckets = calloc(ZONE_BUCKETS_INIT, sizeof(*z->buckets));
    if (!z || !z->buckets) {
        snprintf(err, errlen, "%s: out of memory", path);
        free(z);
        fclose(f);
        return NULL;
    }
    z->nbuckets = ZONE_BUCKETS_INIT;
    z->neg_ttl = neg_ttl;
    build_soa(z);
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        p.line++;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (len > ZONE_LINE_MAX)
            rc = perr(&p, "line longer than %d bytes", ZONE_LINE_MAX);
        else
            rc = parse_line(z, &p, line, (size_t)len);
    }
    if (rc == 0 && ferror(f))
        rc = perr(&p, "read error: %s", strerror(errno));
    free(line);
    fclose(f);
    if (rc < 0) {
        zone_free(z);
        return NULL;
    }
    return z;
}

/* ---- answers ---- */

/* A node for key (lowered wire name) that does not exist: the wildcard child of its
 * closest encloser, if there is one (RFC 4592 3.3.1). */
static const struct node *wildcard(const zone_t *z, const unsigned char *key, size_t len)
{
    unsigned char w[MSG_NAME_MAX];
    size_t off = 0;

    while (key[off]) {
        off += 1 + key[off];
        if (find(z, key + off, len - off)) {
            if (len - off + 2 > MSG_NAME_MAX)
                return NULL;
            w[0] = 1;
            w[1] = '*';
            memcpy(w + 2, key + off, len - off);
            return find(z, w, len - off + 2);
        }
    }
    return NULL;
}

/* Owner: a pointer to a name already in the message when it can be reached, else the
 * name itself. Returns the offset of the record's rdata. */
static size_t put_rr(struct msg_buf *b, size_t owner_off, const unsigned char *owner,
                     size_t ownerlen, uint16_t type, uint32_t ttl,
                     const unsigned char *rdata, size_t rdlen)
{
    size_t at;

    if (owner_off && owner_off <= PTR_OFFSET_MAX)
        msg_put_u16(b, (uint16_t)(PTR_FLAG | owner_off));
    else
        msg_put(b, owner, ownerlen);
    msg_put_u16(b, type);
    msg_put_u16(b, MSG_CLASS_IN);
    msg_put_u32(b, ttl);
    msg_put_u16(b, (uint16_t)rdlen);
    at = b->len;
    msg_put(b, rdata, rdlen);
    return at;
}

static void put_soa(const zone_t *z, struct msg_buf *b)
{
    static const unsigned char root[] = {0};

    put_rr(b, 0, root, sizeof(root), MSG_T_SOA, z->neg_ttl, z->soa, z->soa_len);
}

enum zone_outcome zone_answer(const zone_t *z, const unsigned char *m,
                              const struct msg_query *q, struct msg_buf *b)
{
    unsigned char key[MSG_NAME_MAX], name[MSG_NAME_MAX];
    size_t len = q->qname_len, owner_off = MSG_HEADER_LEN;
    uint16_t ancount = 0, nscount = 0;
    enum msg_rcode rcode = MSG_R_NOERROR;
    int chain;

    msg_reply_start(b, m, q, MSG_R_NOERROR);
    if (q->qclass != MSG_CLASS_IN && q->qclass != MSG_CLASS_ANY) {
        msg_set_rcode(b, MSG_R_REFUSED);
        return ZONE_REPLY;
    }
    memcpy(name, q->qname, len);
    for (chain = 0; chain <= ZONE_CNAME_CHAIN_MAX; chain++) {
        const struct node *n;
        const struct rr *r, *cname = NULL;
        uint16_t found = 0;

        memcpy(key, name, len);
        lower(key, len);
        if (!(n = find(z, key, len)))
            n = wildcard(z, key, len);
        if (!n) {
            rcode = MSG_R_NXDOMAIN;
            put_soa(z, b);
            nscount++;
            break;
        }
        for (r = n->rrs; r; r = r->next)
            if (r->type == MSG_T_CNAME)
                cname = r;
        if (cname && q->qtype != MSG_T_CNAME && q->qtype != MSG_T_ANY) {
            owner_off = put_rr(b, owner_off, name, len, cname->type, cname->ttl,
                               cname->rdata, cname->rdlen);
            ancount++;
            len = cname->rdlen;
            memcpy(name, cname->rdata, len);
            continue;
        }
        for (r = n->rrs; r; r = r->next)
            if (r->type == q->qtype || q->qtype == MSG_T_ANY) {
                put_rr(b, owner_off, name, len, r->type, r->ttl, r->rdata, r->rdlen);
                found++;
            }
        if (found) {
            ancount = (uint16_t)(ancount + found);
            break;
        }
        if (n->flags & NODE_TIMEOUT)
            return ZONE_SILENT;
        if (n->flags & NODE_SERVFAIL) {
            msg_reply_start(b, m, q, MSG_R_SERVFAIL);
            return ZONE_REPLY;
        }
        put_soa(z, b);
        nscount++;
        break;
    }
    if (chain > ZONE_CNAME_CHAIN_MAX || b->overflow) {
        msg_reply_start(b, m, q, MSG_R_SERVFAIL);
        return ZONE_REPLY;
    }
    msg_set_counts(b, ancount, nscount);
    msg_set_rcode(b, rcode);
    return ZONE_REPLY;
}
