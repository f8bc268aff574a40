// unit-deps: policy_proto
#include "policy_proto.h"
#include "unit.h"

#include <stdlib.h>

/* What Postfix 3.7's smtpd sends at RCPT TO, every attribute of the README. */
static const char postfix_request[] =
    "request=smtpd_access_policy\n"
    "protocol_state=RCPT\n"
    "protocol_name=ESMTP\n"
    "client_address=192.0.2.10\n"
    "client_name=mail.example.org\n"
    "client_port=41234\n"
    "reverse_client_name=mail.example.org\n"
    "server_address=198.51.100.1\n"
    "server_port=25\n"
    "helo_name=mail.example.org\n"
    "sender=alice@example.org\n"
    "recipient=bob@example.net\n"
    "recipient_count=0\n"
    "queue_id=\n"
    "instance=1a2b.5f3c4d5e.a1b2c.0\n"
    "size=12345\n"
    "etrn_domain=\n"
    "stress=\n"
    "sasl_method=\n"
    "sasl_username=\n"
    "sasl_sender=\n"
    "ccert_subject=\n"
    "ccert_issuer=\n"
    "ccert_fingerprint=\n"
    "ccert_pubkey_fingerprint=\n"
    "encryption_protocol=TLSv1.3\n"
    "encryption_cipher=TLS_AES_256_GCM_SHA384\n"
    "encryption_keysize=256\n"
    "policy_context=submission\n"
    "compatibility_level=3.6\n"
    "mail_version=3.7.11\n"
    "\n";

static policy_request_t req;
static char err[POLICY_ERR_LEN];

static int parse(const char *text)
{
    err[0] = '\0';
    return policy_proto_parse(&req, text, strlen(text), err);
}

static void check_postfix_fields(void)
{
    CHECK_STR(req.request, "smtpd_access_policy");
    CHECK_STR(req.protocol_state, "RCPT");
    CHECK_STR(req.protocol_name, "ESMTP");
    CHECK_STR(req.client_address, "192.0.2.10");
    CHECK_STR(req.client_name, "mail.example.org");
    CHECK_STR(req.reverse_client_name, "mail.example.org");
    CHECK_STR(req.helo_name, "mail.example.org");
    CHECK_STR(req.sender, "alice@example.org");
    CHECK_STR(req.recipient, "bob@example.net");
    CHECK_STR(req.recipient_count, "0");
    CHECK_STR(req.queue_id, "");
    CHECK_STR(req.instance, "1a2b.5f3c4d5e.a1b2c.0");
    CHECK_STR(req.sasl_method, "");
    CHECK_STR(req.sasl_username, "");
    CHECK_STR(req.policy_context, "submission");
    CHECK_STR(req.server_address, "198.51.100.1");
    CHECK_STR(req.server_port, "25");
}

static void test_policy_proto_postfix_request(void)
{
    policy_scanner_t s;
    size_t blen = 0;

    policy_scanner_reset(&s);
    CHECK_INT(policy_proto_scan(&s, postfix_request, strlen(postfix_request), &blen),
              POLICY_SCAN_READY);
    CHECK_INT(blen, strlen(postfix_request));
    CHECK_INT(policy_proto_parse(&req, postfix_request, blen, err), 0);
    check_postfix_fields();
}

static void test_policy_proto_absent_fields_empty(void)
{
    CHECK_INT(parse("request=smtpd_access_policy\n\n"), 0);
    CHECK_STR(req.request, "smtpd_access_policy");
    CHECK_STR(req.protocol_state, "");
    CHECK_STR(req.protocol_name, "");
    CHECK_STR(req.client_address, "");
    CHECK_STR(req.client_name, "");
    CHECK_STR(req.reverse_client_name, "");
    CHECK_STR(req.helo_name, "");
    CHECK_STR(req.sender, "");
    CHECK_STR(req.recipient, "");
    CHECK_STR(req.recipient_count, "");
    CHECK_STR(req.queue_id, "");
    CHECK_STR(req.instance, "");
    CHECK_STR(req.sasl_method, "");
    CHECK_STR(req.sasl_username, "");
    CHECK_STR(req.policy_context, "");
    CHECK_STR(req.server_address, "");
    CHECK_STR(req.server_port, "");
}

/* Every split point: the first part says MORE and remembers how far it looked, the
 * rest completes the same block, and the parse is the same. */
static void test_policy_proto_split_every_offset(void)
{
    size_t total = strlen(postfix_request), k;

    for (k = 0; k < total; k++) {
        policy_scanner_t s;
        size_t blen = 0;
        int failed_before = unit_cur_failed;

        policy_scanner_reset(&s);
        CHECK_INT(policy_proto_scan(&s, postfix_request, k, &blen), POLICY_SCAN_MORE);
        CHECK_INT(s.scanned, k);
        CHECK_INT(policy_proto_scan(&s, postfix_request, total, &blen), POLICY_SCAN_READY);
        CHECK_INT(blen, total);
        CHECK_INT(policy_proto_parse(&req, postfix_request, blen, err), 0);
        check_postfix_fields();
        if (unit_cur_failed && !failed_before) {
            printf("    (split at offset %zu)\n", k);
            return;
        }
    }
}

static void test_policy_proto_byte_by_byte(void)
{
    size_t total = strlen(postfix_request), k;
    policy_scanner_t s;
    size_t blen = 0;

    policy_scanner_reset(&s);
    for (k = 1; k < total; k++)
        if (policy_proto_scan(&s, postfix_request, k, &blen) != POLICY_SCAN_MORE)
            break;
    CHECK_INT(k, total);
    CHECK_INT(policy_proto_scan(&s, postfix_request, total, &blen), POLICY_SCAN_READY);
    CHECK_INT(blen, total);
}

static void test_policy_proto_back_to_back(void)
{
    static const char two[] =
        "request=smtpd_access_policy\nsender=a@one.example\ninstance=1\n\n"
        "request=smtpd_access_policy\nsender=b@two.example\ninstance=2\n\n";
    size_t first = strlen("request=smtpd_access_policy\nsender=a@one.example\ninstance=1\n\n");
    policy_scanner_t s;
    size_t blen = 0;

    policy_scanner_reset(&s);
    CHECK_INT(policy_proto_scan(&s, two, strlen(two), &blen), POLICY_SCAN_READY);
    CHECK_INT(blen, first);
    CHECK_INT(policy_proto_parse(&req, two, blen, err), 0);
    CHECK_STR(req.sender, "a@one.example");
    CHECK_STR(req.instance, "1");
    /* The scanner reset itself: the rest of the buffer is a new block. */
    CHECK_INT(s.scanned, 0);
    CHECK_INT(policy_proto_scan(&s, two + first, strlen(two) - first, &blen), POLICY_SCAN_READY);
    CHECK_INT(blen, strlen(two) - first);
    CHECK_INT(policy_proto_parse(&req, two + first, blen, err), 0);
    CHECK_STR(req.sender, "b@two.example");
    CHECK_STR(req.instance, "2");
}

/* The second request arrives in pieces after the first one completed in a read. */
static void test_policy_proto_back_to_back_partial(void)
{
    static const char two[] =
        "request=smtpd_access_policy\nsender=a@one.example\n\n"
        "request=smtpd_access_policy\nsender=b@two.example\n\n";
    size_t first = strlen("request=smtpd_access_policy\nsender=a@one.example\n\n");
    policy_scanner_t s;
    size_t blen = 0;

    policy_scanner_reset(&s);
    CHECK_INT(policy_proto_scan(&s, two, first + 10, &blen), POLICY_SCAN_READY);
    CHECK_INT(blen, first);
    CHECK_INT(policy_proto_scan(&s, two + first, 10, &blen), POLICY_SCAN_MORE);
    CHECK_INT(policy_proto_scan(&s, two + first, strlen(two) - first, &blen), POLICY_SCAN_READY);
    CHECK_INT(blen, strlen(two) - first);
}

static void test_policy_proto_crlf(void)
{
    static const char text[] = "request=smtpd_access_policy\r\nsender=a@b.example\r\n"
                               "helo_name=x\r\r\n\r\n";
    policy_scanner_t s;
    size_t blen = 0;

    policy_scanner_reset(&s);
    CHECK_INT(policy_proto_scan(&s, text, strlen(text), &blen), POLICY_SCAN_READY);
    CHECK_INT(blen, strlen(text));
    CHECK_INT(policy_proto_parse(&req, text, blen, err), 0);
    CHECK_STR(req.request, "smtpd_access_policy");
    CHECK_STR(req.sender, "a@b.example");
    /* Only the one "\r" of the line ending goes. */
    CHECK_STR(req.helo_name, "x\r");
}

static void test_policy_proto_values_byte_exact(void)
{
    CHECK_INT(parse("request=smtpd_access_policy\n"
                    "sender= spaced@example.com \n"
                    "helo_name=a=b==\n"
                    "recipient=\t\xff\x01\n"
                    "client_name=\n\n"),
              0);
    CHECK_STR(req.sender, " spaced@example.com ");
    CHECK_STR(req.helo_name, "a=b==");
    CHECK_STR(req.recipient, "\t\xff\x01");
    CHECK_STR(req.client_name, "");
}

static void test_policy_proto_last_value_wins(void)
{
    CHECK_INT(parse("request=smtpd_access_policy\nsender=first@example.com\n"
                    "sender=second@example.com\nsender=\n"
                    "helo_name=h1\nhelo_name=h2\n\n"),
              0);
    CHECK_STR(req.sender, "");
    CHECK_STR(req.helo_name, "h2");
}

static void test_policy_proto_names_case_sensitive_unknown_skipped(void)
{
    CHECK_INT(parse("Sender=upper@example.com\nrequest=smtpd_access_policy\n"
                    "x-custom=1\nsender_x=2\nsende=3\n\n"),
              0);
    CHECK_STR(req.sender, "");
}

static void test_policy_proto_order_irrelevant(void)
{
    CHECK_INT(parse("instance=9\nsender=s@example.com\nclient_address=2001:db8::1\n"
                    "request=smtpd_access_policy\n\n"),
              0);
    CHECK_STR(req.request, "smtpd_access_policy");
    CHECK_STR(req.sender, "s@example.com");
    CHECK_STR(req.client_address, "2001:db8::1");
    CHECK_STR(req.instance, "9");
}

/* Builds "sender=<fill>" so the line, without its "\n", is linelen bytes. */
static char *long_line_request(size_t linelen, size_t *outlen)
{
    static const char head[] = "request=smtpd_access_policy\n";
    size_t hl = strlen(head), n = hl + linelen + 2;
    char *b = malloc(n + 1);

    memcpy(b, head, hl);
    memcpy(b + hl, "sender=", 7);
    memset(b + hl + 7, 'a', linelen - 7);
    memcpy(b + hl + linelen, "\n\n", 3);
    *outlen = n;
    return b;
}

static void test_policy_proto_line_max_fits(void)
{
    size_t n, blen = 0;
    char *b = long_line_request(POLICY_LINE_MAX, &n);
    policy_scanner_t s;

    policy_scanner_reset(&s);
    CHECK_INT(policy_proto_scan(&s, b, n, &blen), POLICY_SCAN_READY);
    CHECK_INT(blen, n);
    CHECK_INT(policy_proto_parse(&req, b, blen, err), 0);
    CHECK_INT(strlen(req.sender), POLICY_LINE_MAX - 7);
    free(b);
}

static void test_policy_proto_line_max_one_over(void)
{
    size_t n, blen = 0, hl = strlen("request=smtpd_access_policy\n");
    char *b = long_line_request(POLICY_LINE_MAX + 1, &n);
    policy_scanner_t s;

    policy_scanner_reset(&s);
    CHECK_INT(policy_proto_scan(&s, b, n, &blen), POLICY_SCAN_TOO_LONG);
    /* Without a newline: the cap itself is still a possible line, one more is not. */
    policy_scanner_reset(&s);
    CHECK_INT(policy_proto_scan(&s, b, hl + POLICY_LINE_MAX, &blen), POLICY_SCAN_MORE);
    CHECK_INT(policy_proto_scan(&s, b, hl + POLICY_LINE_MAX + 1, &blen), POLICY_SCAN_TOO_LONG);
    free(b);
}

/* "\r\n" does not buy a byte: the "\r" belongs to the measured line. */
static void test_policy_proto_line_max_counts_cr(void)
{
    size_t n, blen = 0;
    char *b = long_line_request(POLICY_LINE_MAX, &n);
    policy_scanner_t s;
    char *crlf = malloc(n + 2);
    size_t hl = strlen("request=smtpd_access_policy\n");

    memcpy(crlf, b, hl + POLICY_LINE_MAX);
    memcpy(crlf + hl + POLICY_LINE_MAX, "\r\n\n", 4);
    policy_scanner_reset(&s);
    CHECK_INT(policy_proto_scan(&s, crlf, n + 1, &blen), POLICY_SCAN_TOO_LONG);
    memcpy(crlf + hl + POLICY_LINE_MAX - 1, "\r\n\n", 4);
    policy_scanner_reset(&s);
    CHECK_INT(policy_proto_scan(&s, crlf, n, &blen), POLICY_SCAN_READY);
    CHECK_INT(policy_proto_parse(&req, crlf, blen, err), 0);
    CHECK_INT(strlen(req.sender), POLICY_LINE_MAX - 8);
    free(crlf);
    free(b);
}

/* A valid request of exactly total bytes: filler lines "x=aaa...\n", then "\n". */
static char *sized_request(size_t total)
{
    static const char head[] = "request=smtpd_access_policy\n";
    char *b = malloc(total + 1);
    size_t pos = strlen(head), left;

    memcpy(b, head, pos);
    left = total - pos - 1;
    while (left > 0) {
        /* A line is at least "x=\n"; keep the last one from being shorter. */
        size_t line = left > 2000 ? 2000 : left;
        if (left - line > 0 && left - line < 3)
            line -= 3;
        b[pos] = 'x';
        b[pos + 1] = '=';
        memset(b + pos + 2, 'a', line - 3);
        b[pos + line - 1] = '\n';
        pos += line;
        left -= line;
    }
    b[pos++] = '\n';
    b[pos] = '\0';
    return b;
}

static void test_policy_proto_request_max_fits(void)
{
    char *b = sized_request(POLICY_REQUEST_MAX);
    policy_scanner_t s;
    size_t blen = 0;

    CHECK_INT(strlen(b), POLICY_REQUEST_MAX);
    policy_scanner_reset(&s);
    CHECK_INT(policy_proto_scan(&s, b, POLICY_REQUEST_MAX, &blen), POLICY_SCAN_READY);
    CHECK_INT(blen, POLICY_REQUEST_MAX);
    CHECK_INT(policy_proto_parse(&req, b, blen, err), 0);
    CHECK_STR(req.request, "smtpd_access_policy");
    /* One byte short of the end is one byte short of a block, not an error yet. */
    policy_scanner_reset(&s);
    CHECK_INT(policy_proto_scan(&s, b, POLICY_REQUEST_MAX - 1, &blen), POLICY_SCAN_MORE);
    free(b);
}

static void test_policy_proto_request_max_one_over(void)
{
    char *b = sized_request(POLICY_REQUEST_MAX + 1);
    policy_scanner_t s;
    size_t blen = 0;

    CHECK_INT(strlen(b), POLICY_REQUEST_MAX + 1);
    policy_scanner_reset(&s);
    CHECK_INT(policy_proto_scan(&s, b, POLICY_REQUEST_MAX + 1, &blen), POLICY_SCAN_TOO_LONG);
    /* Known as soon as the cap is reached: a full buffer that holds no block. */
    policy_scanner_reset(&s);
    CHECK_INT(policy_proto_scan(&s, b, POLICY_REQUEST_MAX - 1, &blen), POLICY_SCAN_MORE);
    CHECK_INT(policy_proto_scan(&s, b, POLICY_REQUEST_MAX, &blen), POLICY_SCAN_TOO_LONG);
    /* The parser refuses what the scanner would never pass on. */
    CHECK_INT(policy_proto_parse(&req, b, POLICY_REQUEST_MAX + 1, err), -1);
    CHECK_STR(err, "request longer than 16384 bytes");
    free(b);
}

/* An unfinished last line that fills the cap can never end inside it. */
static void test_policy_proto_request_max_unfinished_line(void)
{
    char *b = malloc(POLICY_REQUEST_MAX);
    policy_scanner_t s;
    size_t blen = 0, pos = 0;

    while (pos + 1000 <= POLICY_REQUEST_MAX) {
        memcpy(b + pos, "x=", 2);
        memset(b + pos + 2, 'a', 997);
        b[pos + 999] = '\n';
        pos += 1000;
    }
    memset(b + pos, 'b', POLICY_REQUEST_MAX - pos);
    policy_scanner_reset(&s);
    CHECK_INT(policy_proto_scan(&s, b, POLICY_REQUEST_MAX - 1, &blen), POLICY_SCAN_MORE);
    CHECK_INT(policy_proto_scan(&s, b, POLICY_REQUEST_MAX, &blen), POLICY_SCAN_TOO_LONG);
    free(b);
}

static char *attrs_request(size_t nattr)
{
    size_t i;
    char *b = malloc(strlen("request=smtpd_access_policy\n") + nattr * 4 + 2), *p = b;

    p += snprintf(p, 64, "request=smtpd_access_policy\n");
    for (i = 1; i < nattr; i++) {
        memcpy(p, "a=b\n", 4);
        p += 4;
    }
    *p++ = '\n';
    *p = '\0';
    return b;
}

static void test_policy_proto_attr_max_fits(void)
{
    char *b = attrs_request(POLICY_ATTR_MAX);

    CHECK_INT(parse(b), 0);
    CHECK_STR(err, "");
    free(b);
}

static void test_policy_proto_attr_max_one_over(void)
{
    char *b = attrs_request(POLICY_ATTR_MAX + 1);

    CHECK_INT(parse(b), -1);
    CHECK_STR(err, "more than 256 attributes");
    free(b);
}

static void test_policy_proto_error_no_equals(void)
{
    CHECK_INT(parse("request=smtpd_access_policy\nsender=a@b\nhello world\n\n"), -1);
    CHECK_STR(err, "line 3: no '=' in attribute");
}

static void test_policy_proto_error_empty_name(void)
{
    CHECK_INT(parse("request=smtpd_access_policy\n=value\n\n"), -1);
    CHECK_STR(err, "line 2: empty attribute name");
}

static void test_policy_proto_error_not_smtpd_access_policy(void)
{
    CHECK_INT(parse("request=foo\nsender=a@b\n\n"), -1);
    CHECK_STR(err, "request=foo: not smtpd_access_policy");
    CHECK_INT(parse("request=\n\n"), -1);
    CHECK_STR(err, "request=: not smtpd_access_policy");
    CHECK_INT(parse("request=smtpd_access_policy \n\n"), -1);
    CHECK_STR(err, "request=smtpd_access_policy : not smtpd_access_policy");
}

/* The peer's value is repeated sanitised and cut, so it cannot forge log lines. */
static void test_policy_proto_error_request_value_sanitised(void)
{
    CHECK_INT(parse("request=a\tb\x7f\xc3\xa9\n\n"), -1);
    CHECK_STR(err, "request=a?b???: not smtpd_access_policy");
    CHECK_INT(parse("request=0123456789012345678901234567890123456789012345678\n\n"), -1);
    CHECK_STR(err, "request=012345678901234567890123456789012345678901234567...: "
                   "not smtpd_access_policy");
    CHECK_INT(parse("request=012345678901234567890123456789012345678901234567\n\n"), -1);
    CHECK_STR(err, "request=012345678901234567890123456789012345678901234567: "
                   "not smtpd_access_policy");
}

static void test_policy_proto_error_missing_request(void)
{
    CHECK_INT(parse("sender=a@b\n\n"), -1);
    CHECK_STR(err, "missing request= attribute");
    CHECK_INT(parse("\n"), -1);
    CHECK_STR(err, "missing request= attribute");
}

static void test_policy_proto_error_nul_byte(void)
{
    static const char text[] = "request=smtpd_access_policy\nsender=a@b\nhelo_name=x\n"
                               "recipient=c\0d\n\n";

    CHECK_INT(policy_proto_parse(&req, text, sizeof(text) - 1, err), -1);
    CHECK_STR(err, "NUL byte in line 4");
}

/* Misuse by the caller: a block that the scanner did not delimit. */
static void test_policy_proto_error_not_a_block(void)
{
    CHECK_INT(parse("request=smtpd_access_policy\n"), -1);
    CHECK_STR(err, "request not ended by an empty line");
    CHECK_INT(parse(""), -1);
    CHECK_STR(err, "request not ended by an empty line");
    CHECK_INT(parse("request=smtpd_access_policy\nsender=x"), -1);
    CHECK_STR(err, "line 2: no newline at the end");
    CHECK_INT(parse("request=smtpd_access_policy\n\nsender=x\n\n"), -1);
    CHECK_STR(err, "line 2: data after the empty line");
}

static void test_policy_proto_empty_block(void)
{
    policy_scanner_t s;
    size_t blen = 0;

    policy_scanner_reset(&s);
    CHECK_INT(policy_proto_scan(&s, "\r\nrequest=x\n\n", 13, &blen), POLICY_SCAN_READY);
    CHECK_INT(blen, 2);
    policy_scanner_reset(&s);
    CHECK_INT(policy_proto_scan(&s, "", 0, &blen), POLICY_SCAN_MORE);
    CHECK_INT(policy_proto_scan(&s, "\r", 1, &blen), POLICY_SCAN_MORE);
    CHECK_INT(policy_proto_scan(&s, "\r\n", 2, &blen), POLICY_SCAN_READY);
    CHECK_INT(blen, 2);
}

int main(void)
{
    UNIT_RUN(test_policy_proto_postfix_request);
    UNIT_RUN(test_policy_proto_absent_fields_empty);
    UNIT_RUN(test_policy_proto_split_every_offset);
    UNIT_RUN(test_policy_proto_byte_by_byte);
    UNIT_RUN(test_policy_proto_back_to_back);
    UNIT_RUN(test_policy_proto_back_to_back_partial);
    UNIT_RUN(test_policy_proto_crlf);
    UNIT_RUN(test_policy_proto_values_byte_exact);
    UNIT_RUN(test_policy_proto_last_value_wins);
    UNIT_RUN(test_policy_proto_names_case_sensitive_unknown_skipped);
    UNIT_RUN(test_policy_proto_order_irrelevant);
    UNIT_RUN(test_policy_proto_line_max_fits);
    UNIT_RUN(test_policy_proto_line_max_one_over);
    UNIT_RUN(test_policy_proto_line_max_counts_cr);
    UNIT_RUN(test_policy_proto_request_max_fits);
    UNIT_RUN(test_policy_proto_request_max_one_over);
    UNIT_RUN(test_policy_proto_request_max_unfinished_line);
    UNIT_RUN(test_policy_proto_attr_max_fits);
    UNIT_RUN(test_policy_proto_attr_max_one_over);
    UNIT_RUN(test_policy_proto_error_no_equals);
    UNIT_RUN(test_policy_proto_error_empty_name);
    UNIT_RUN(test_policy_proto_error_not_smtpd_access_policy);
    UNIT_RUN(test_policy_proto_error_request_value_sanitised);
    UNIT_RUN(test_policy_proto_error_missing_request);
    UNIT_RUN(test_policy_proto_error_nul_byte);
    UNIT_RUN(test_policy_proto_error_not_a_block);
    UNIT_RUN(test_policy_proto_empty_block);
    return unit_report();
}
