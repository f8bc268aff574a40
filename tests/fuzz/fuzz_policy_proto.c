/* fuzz_policy_proto.c - libFuzzer harness for the policy request scanner and parser.
 *
 * Build and run from the top of the tree:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
 *       tests/fuzz/fuzz_policy_proto.c src/policy_proto.c -o build/fuzz_policy_proto
 *   mkdir -p build/fuzz-corpus
 *   build/fuzz_policy_proto -max_len=40000 build/fuzz-corpus tests/fuzz/corpus/policy_proto
 * (new inputs go to the first directory, so the seeds stay as committed).
 *
 * The input's first byte picks the chunk size the bytes arrive in, the rest is the
 * stream. It is fed to the scanner the way the server does (a buffer of at most
 * POLICY_REQUEST_MAX bytes, complete blocks cut off the front), every block is parsed,
 * and the results are checked against what the scanner and parser promise: a block
 * ends with its empty line and fits the caps, and a parsed request's fields are
 * NUL-terminated strings inside storage. A broken promise aborts, which the fuzzer
 * reports like a crash. */
#include "policy_proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static policy_request_t req;
static char buf[POLICY_REQUEST_MAX];

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void check_field(const char *v)
{
    const char *end = req.storage + sizeof(req.storage);

    if (v < req.storage || v >= end || !memchr(v, '\0', (size_t)(end - v)))
        abort();
}

static void check_block(const char *block, size_t len)
{
    char err[POLICY_ERR_LEN];

    if (len == 0 || len > POLICY_REQUEST_MAX || block[len - 1] != '\n')
        abort();
    /* The block's last line is empty ("\n" or "\r\n"). */
    if (!(len == 1 || block[len - 2] == '\n' || (block[len - 2] == '\r' &&
                                                  (len == 2 || block[len - 3] == '\n'))))
        abort();
    if (policy_proto_parse(&req, block, len, err) < 0) {
        if (!memchr(err, '\0', sizeof(err)) || err[0] == '\0')
            abort();
        /* Errors about the block's framing mean scanner and parser disagree (only
         * "request=..." errors quote the peer, so these texts are all ours). */
        if (starts_with(err, "request not ended") || starts_with(err, "request longer") ||
            (starts_with(err, "line ") &&
             (strstr(err, "no newline") || strstr(err, "after the empty line"))))
            abort();
        return;
    }
    if (strcmp(req.request, "smtpd_access_policy") != 0)
        abort();
    check_field(req.request);
    check_field(req.protocol_state);
    check_field(req.protocol_name);
    check_field(req.client_address);
    check_field(req.client_name);
    check_field(req.reverse_client_name);
    check_field(req.helo_name);
    check_field(req.sender);
    check_field(req.recipient);
    check_field(req.recipient_count);
    check_field(req.queue_id);
    check_field(req.instance);
    check_field(req.sasl_method);
    check_field(req.sasl_username);
    check_field(req.policy_context);
    check_field(req.server_address);
    check_field(req.server_port);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    policy_scanner_t s;
    size_t chunk, pos = 1, have = 0, blen;

    if (size < 1)
        return 0;
    chunk = (size_t)data[0] + 1;
    policy_scanner_reset(&s);
    while (pos < size) {
        size_t n = size - pos;
        enum policy_scan r;

        if (n > chunk)
            n = chunk;
        if (n > sizeof(buf) - have)
            n = sizeof(buf) - have;
        memcpy(buf + have, data + pos, n);
        have += n;
        pos += n;
        /* Each READY leaves the rest for a new block, as the server does. */
        while ((r = policy_proto_scan(&s, buf, have, &blen)) == POLICY_SCAN_READY) {
            if (blen > have)
                abort();
            check_block(buf, blen);
            have -= blen;
            memmove(buf, buf + blen, have);
        }
        if (r == POLICY_SCAN_TOO_LONG)
            return 0;
        /* MORE with a full buffer would stall a connection forever. */
        if (have == sizeof(buf))
            abort();
    }
    return 0;
}
