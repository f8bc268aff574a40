/* msg.h - DNS wire format for the test DNS server: parsing a query, building a reply.
 *
 * Owns nothing: a parsed query points into the caller's message buffer, and a
 * msg_buf writes into the caller's array. Only what dnsd needs: one question per
 * query, names in queries never compressed, replies compress only owner names that
 * repeat a name already written. */
#ifndef MSG_H
#define MSG_H

#include <stddef.h>
#include <stdint.h>

/* Largest DNS message: TCP frames it with a 16-bit length (RFC 1035 4.2.2). */
#define MSG_MAX 65535
/* Largest UDP reply without EDNS0 (RFC 1035 4.2.1); dnsd ignores EDNS0, so longer
 * answers go out truncated with TC set and the client retries over TCP. */
#define MSG_UDP_MAX 512
/* Longest name in wire form, root label included (RFC 1035 2.3.4). */
#define MSG_NAME_MAX 255
/* Longest label (RFC 1035 2.3.4). */
#define MSG_LABEL_MAX 63
/* Longest text form of a name: every byte may need a \DDD escape. */
#define MSG_NAME_TEXT_MAX (MSG_ESCAPE_LEN * MSG_NAME_MAX + 2)
#define MSG_HEADER_LEN 12
/* QTYPE and QCLASS after the question name (RFC 1035 4.1.2). */
#define MSG_QFIXED_LEN 4
/* TCP frames each message with a 2-byte length (RFC 1035 4.2.2). */
#define MSG_TCP_PREFIX 2
/* Longest character-string in TXT data: one length byte (RFC 1035 3.3). */
#define MSG_CHARSTR_MAX 255
/* "\DDD", the escaped form of one byte in a name's or string's text. */
#define MSG_ESCAPE_LEN 4
/* Room for the mnemonic of any type, "TYPE65535" included. */
#define MSG_TYPE_NAME_LEN 16

enum msg_type {
    MSG_T_A = 1,
    MSG_T_NS = 2,
    MSG_T_CNAME = 5,
    MSG_T_SOA = 6,
    MSG_T_PTR = 12,
    MSG_T_MX = 15,
    MSG_T_TXT = 16,
    MSG_T_AAAA = 28,
    MSG_T_OPT = 41,
    MSG_T_SPF = 99,
    MSG_T_ANY = 255
};

enum msg_rcode {
    MSG_R_NOERROR = 0,
    MSG_R_FORMERR = 1,
    MSG_R_SERVFAIL = 2,
    MSG_R_NXDOMAIN = 3,
    MSG_R_NOTIMP = 4,
    MSG_R_REFUSED = 5
};

#define MSG_CLASS_IN 1
#define MSG_CLASS_ANY 255

/* What msg_parse_query made of a message. */
enum msg_parse {
    MSG_QUERY,   /* one well-formed question: answer it */
    MSG_IGNORE,  /* not a query at all (short, or a response): say nothing */
    MSG_FORMERR, /* a query header with a bad question section */
    MSG_NOTIMP   /* an opcode other than QUERY */
};

struct msg_query {
    uint16_t id;
    uint16_t flags;              /* header flags word as received */
    const unsigned char *qname;  /* wire form inside the message, root label included */
    size_t qname_len;
    uint16_t qtype;
    uint16_t qclass;
    size_t qend;                 /* offset just past the question; 0: no usable question */
};

struct msg_buf {
    unsigned char *p;
    size_t len;
    size_t cap;
    int overflow;                /* a write did not fit; len stays where it was */
};

enum msg_parse msg_parse_query(const unsigned char *m, size_t len, struct msg_query *q);

void msg_buf_init(struct msg_buf *b, unsigned char *p, size_t cap);
void msg_put(struct msg_buf *b, const void *data, size_t n);
void msg_put_u16(struct msg_buf *b, uint16_t v);
void msg_put_u32(struct msg_buf *b, uint32_t v);
void msg_set_u16(struct msg_buf *b, size_t off, uint16_t v);

/* Starts a reply to q in b: header (QR, AA, RA set, RD copied, rcode, counts zero
 * except QDCOUNT) and the question copied byte for byte from m when q has one. */
void msg_reply_start(struct msg_buf *b, const unsigned char *m, const struct msg_query *q,
                     enum msg_rcode rcode);
void msg_set_rcode(struct msg_buf *b, enum msg_rcode rcode);
void msg_set_counts(struct msg_buf *b, uint16_t ancount, uint16_t nscount);

/* Cuts a reply down to header and question and sets TC (RFC 2181 9). */
void msg_truncate(struct msg_buf *b, const struct msg_query *q);

/* Text form of a wire name: labels joined by '.', no trailing dot, "." for the root;
 * bytes outside '!'..'~', '.' inside a label and '\' become \DDD. dst holds
 * MSG_NAME_TEXT_MAX bytes. The name must be valid wire form (as msg_parse_query and
 * the zone produce). Returns dst. */
char *msg_name_text(const unsigned char *wire, char *dst);

/* Mnemonic of a type ("TXT"), or "TYPE<n>" written into buf (MSG_TYPE_NAME_LEN). */
const char *msg_type_name(uint16_t type, char *buf, size_t size);

/* Length of a valid wire name, root label included. */
size_t msg_name_len(const unsigned char *wire);

#endif
