/* policy_proto.h - the SMTP Access Policy Delegation protocol (Postfix
 * SMTPD_POLICY_README): finding one request block in a byte stream and parsing it.
 *
 * A request is "name=value" lines ended by an empty line. Parsing is resumable: the
 * caller keeps the bytes, calls policy_proto_scan() after each read with the same
 * scanner, and parses once a block is complete. Names are case-sensitive as Postfix
 * sends them; unknown attributes are skipped; a repeated attribute keeps the last
 * value; attributes may come in any order. The parsed request owns a copy of its
 * values, so the input buffer can be reused at once. */
#ifndef POLICY_PROTO_H
#define POLICY_PROTO_H

#include <stddef.h>

/* Postfix's own attribute lines are far shorter (a TLS certificate subject is the
 * longest, ~1 KB); 4 KiB leaves room and still bounds memory per connection. */
#define POLICY_LINE_MAX 4096
/* A whole request block. Postfix 3.7 sends ~35 attributes; 16 KiB is 4x the largest
 * real request we have seen and is what each connection may buffer. */
#define POLICY_REQUEST_MAX 16384
/* Attribute lines per request, unknown ones included (Postfix's attr_scan caps too). */
#define POLICY_ATTR_MAX 256

enum policy_scan {
    POLICY_SCAN_MORE,        /* no complete block yet */
    POLICY_SCAN_READY,       /* a block of *len bytes (with its empty line) is complete */
    POLICY_SCAN_TOO_LONG,    /* a line over POLICY_LINE_MAX or a block over POLICY_REQUEST_MAX */
};

typedef struct policy_scanner {
    size_t scanned;          /* bytes already looked at */
    size_t line_start;
} policy_scanner_t;

void policy_scanner_reset(policy_scanner_t *s);
/* buf holds len bytes received since the last complete block. */
enum policy_scan policy_proto_scan(policy_scanner_t *s, const char *buf, size_t len,
                                   size_t *block_len);

typedef struct policy_request {
    /* Values, NUL-terminated, "" when absent. Pointers into storage. */
    const char *request;            /* must be "smtpd_access_policy" */
    const char *protocol_state;     /* CONNECT, EHLO, HELO, MAIL, RCPT, DATA, END-OF-MESSAGE, VRFY, ETRN */
    const char *protocol_name;
    const char *client_address;
    const char *client_name;
    const char *reverse_client_name;
    const char *helo_name;
    const char *sender;
    const char *recipient;
    const char *recipient_count;
    const char *queue_id;
    const char *instance;
    const char *sasl_method;
    const char *sasl_username;
    const char *policy_context;
    const char *server_address;
    const char *server_port;
    char storage[POLICY_REQUEST_MAX];
} policy_request_t;

#define POLICY_ERR_LEN 160

/* Parses one complete block (as found by policy_proto_scan, including its final empty
 * line). 0 on success; -1 with err saying what is wrong (a line without '=', an empty
 * name, too many attributes, a request= other than smtpd_access_policy, a NUL byte). */
int policy_proto_parse(policy_request_t *req, const char *block, size_t len,
                       char err[POLICY_ERR_LEN]);

#endif
