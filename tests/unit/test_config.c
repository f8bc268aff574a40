// unit-deps: config netaddr verdict log
#include "config.h"
#include "log.h"
#include "unit.h"

#include <stdarg.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>

/* Tests run from the repository root (make's working directory). */
#define EXAMPLE "policy.ini.example"
#define SAMPLES "tests/unit/config"

static char tmpdir[64];
static char tmpfile_path[128];
/* Big enough for the long-list tests: 257 lines of "clients = 10.0.N.M". */
static char text[65536];
static struct config cfg, want;
static char err[CONFIG_ERR_LEN];

/* Every option, in the order of the options table and of policy.ini.example. */
static const char *const all_keys[][2] = {
    {"server", "listen"}, {"server", "socket_mode"}, {"server", "socket_owner"},
    {"server", "socket_group"}, {"server", "user"}, {"server", "max_connections"},
    {"server", "idle_timeout"},
    {"dns", "servers"}, {"dns", "timeout"}, {"dns", "tries"}, {"dns", "max_inflight"},
    {"dns", "cache_size"}, {"dns", "max_ttl"}, {"dns", "negative_ttl"}, {"dns", "error_ttl"},
    {"spf", "engine"}, {"spf", "request_timeout"}, {"spf", "check_helo"}, {"spf", "receiver"},
    {"spf", "default_explanation"}, {"spf", "verdict_cache_size"},
    {"action", "helo_none"}, {"action", "helo_neutral"}, {"action", "helo_pass"},
    {"action", "helo_fail"}, {"action", "helo_softfail"}, {"action", "helo_temperror"},
    {"action", "helo_permerror"},
    {"action", "mailfrom_none"}, {"action", "mailfrom_neutral"}, {"action", "mailfrom_pass"},
    {"action", "mailfrom_fail"}, {"action", "mailfrom_softfail"},
    {"action", "mailfrom_temperror"}, {"action", "mailfrom_permerror"},
    {"header", "style"}, {"header", "authserv_id"},
    {"skip", "clients"}, {"skip", "sasl"}, {"skip", "policy_contexts"},
    {"skip", "server_ports"},
    {"whitelist", "clients"}, {"whitelist", "helo"}, {"whitelist", "senders"},
    {"whitelist", "ptr"},
    {"log", "level"}, {"log", "facility"}, {"log", "destination"},
    {"redis", "address"}, {"redis", "username"}, {"redis", "password"}, {"redis", "database"},
    {"redis", "prefix"}, {"redis", "timeout"}, {"redis", "connect_timeout"},
    {"redis", "retry_max"}, {"redis", "max_pending"}, {"redis", "error_ttl"},
    {"redis", "sentinels"}, {"redis", "master_name"},
    {"reputation", "window"}, {"reputation", "flush_interval"}, {"reputation", "refresh"},
    {"reputation", "cache_size"}, {"reputation", "action"}, {"reputation", "min_checks"},
    {"reputation", "fail_percent"}, {"reputation", "count_softfail"},
    {"reputation", "reject_status"}, {"reputation", "defer_status"}, {"reputation", "text"},
    {"reputation", "header"},
};
#define NKEYS (sizeof all_keys / sizeof all_keys[0])

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(content, f) == EOF || fclose(f) != 0) {
        printf("cannot write %s\n", path);
        exit(2);
    }
}

/* Loads content from a scratch file: "OK", or the error text. */
static const char *load_text(const char *content)
{
    write_file(tmpfile_path, content);
    memset(&cfg, 0x5a, sizeof cfg);
    if (config_load(&cfg, tmpfile_path, err) != 0)
        return err;
    return "OK";
}

/* The error expected from the scratch file: its path, then suffix. */
static const char *at_tmp(const char *suffix)
{
    static char buf[CONFIG_ERR_LEN];
    snprintf(buf, sizeof buf, "%s:%s", tmpfile_path, suffix);
    return buf;
}

/* The built-in defaults as config_load leaves them for the scratch file. */
static void want_defaults_for(const char *path)
{
    config_defaults(&want);
    snprintf(want.path, sizeof want.path, "%s", path);
}

static void append(size_t *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text + *pos, sizeof text - *pos, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof text - *pos) {
        printf("test text buffer too small\n");
        exit(2);
    }
    *pos += (size_t)n;
}

static const char *cidr_text(const netcidr_t *c)
{
    static char buf[NETADDR_STRLEN];
    return netcidr_format(c, buf, sizeof buf);
}

static void test_config_defaults(void)
{
    memset(&cfg, 0x5a, sizeof cfg);
    config_defaults(&cfg);
    CHECK_STR(cfg.path, "");
    CHECK_INT(cfg.nlisten, 2);
    CHECK_STR(cfg.listen[0], "127.0.0.1:10041");
    CHECK_STR(cfg.listen[1], "unix:/run/spf-policyd/policy.sock");
    CHECK_INT(cfg.socket_mode, 0666);
    CHECK_STR(cfg.socket_owner, "");
    CHECK_STR(cfg.socket_group, "");
    CHECK_STR(cfg.user, "");
    CHECK_INT(cfg.max_connections, 10000);
    CHECK(cfg.idle_timeout == 600.0);

    CHECK_STR(cfg.dns_servers, "");
    CHECK(cfg.dns_timeout == 5.0);
    CHECK_INT(cfg.dns_tries, 2);
    CHECK_INT(cfg.dns_max_inflight, 1000);
    CHECK_INT(cfg.dns_cache_size, 100000);
    CHECK_INT(cfg.dns_max_ttl, 86400);
    CHECK_INT(cfg.dns_negative_ttl, 3600);
    CHECK_INT(cfg.dns_error_ttl, 30);

    CHECK_INT(cfg.engine, ENGINE_NATIVE);
    CHECK(cfg.request_timeout == 20.0);
    CHECK_INT(cfg.check_helo, 1);
    CHECK_STR(cfg.receiver, "");
    CHECK_STR(cfg.default_explanation, "%{c} is not one of %{d}'s designated mail servers");
    CHECK_INT(cfg.verdict_cache_size, 100000);

    for (int r = 0; r < SPF_RES_COUNT; r++) {
        enum action a = r == SPF_RES_FAIL ? ACTION_REJECT : ACTION_PREPEND;
        CHECK_INT(cfg.helo_action[r], a);
        CHECK_INT(cfg.mailfrom_action[r], a);
    }

    CHECK_INT(cfg.header_style, HEADER_RECEIVED_SPF);
    CHECK_STR(cfg.authserv_id, "");

    CHECK_INT(cfg.skip_clients.n, 2);
    CHECK_STR(cidr_text(&cfg.skip_clients.cidr[0]), "127.0.0.0/8");
    CHECK_STR(cidr_text(&cfg.skip_clients.cidr[1]), "::1/128");
    CHECK_INT(cfg.skip_sasl, 1);
    CHECK_INT(cfg.skip_policy_contexts.n, 0);
    CHECK_INT(cfg.nskip_ports, 0);

    CHECK_INT(cfg.whitelist_clients.n, 0);
    CHECK_INT(cfg.whitelist_helo.n, 0);
    CHECK_INT(cfg.whitelist_senders.n, 0);
    CHECK_INT(cfg.whitelist_ptr.n, 0);

    CHECK_INT(cfg.log_level, LOG_LEVEL_INFO);
    CHECK_INT(cfg.log_facility, LOG_MAIL);
    CHECK_INT(cfg.log_stderr, 0);

    CHECK_STR(cfg.redis_address, "");
    CHECK_STR(cfg.redis_username, "");
    CHECK_STR(cfg.redis_password, "");
    CHECK_INT(cfg.redis_database, 0);
    CHECK_STR(cfg.redis_prefix, "spf:");
    CHECK(cfg.redis_timeout == 0.1);
    CHECK(cfg.redis_connect_timeout == 1.0);
    CHECK(cfg.redis_retry_max == 30.0);
    CHECK_INT(cfg.redis_max_pending, 10000);
    CHECK_INT(cfg.redis_error_ttl, 5);
    CHECK_INT(cfg.nredis_sentinels, 0);
    CHECK_STR(cfg.redis_master_name, "");

    CHECK(cfg.reputation_window == 604800.0);
    CHECK(cfg.reputation_flush == 1.0);
    CHECK(cfg.reputation_refresh == 10.0);
    CHECK_INT(cfg.reputation_cache_size, 100000);
    CHECK_INT(cfg.reputation_action, REPUTATION_NONE);
    CHECK_INT(cfg.reputation_min_checks, 20);
    CHECK_INT(cfg.reputation_fail_percent, 90);
    CHECK_INT(cfg.reputation_count_softfail, 0);
    CHECK_STR(cfg.reputation_reject_status, "5.7.1");
    CHECK_STR(cfg.reputation_defer_status, "4.7.1");
    CHECK_STR(cfg.reputation_text, "mail from your network keeps failing SPF checks");
    CHECK_INT(cfg.reputation_header, 1);

    CHECK_INT(config_validate(&cfg, err), 0);
}

static void test_config_defaults_are_reproducible(void)
{
    /* Unused bytes are zeroed, so two configs with equal settings compare equal. */
    memset(&cfg, 0x5a, sizeof cfg);
    memset(&want, 0xa5, sizeof want);
    config_defaults(&cfg);
    config_defaults(&want);
    CHECK(memcmp(&cfg, &want, sizeof cfg) == 0);
}

static void test_config_example_loads_to_defaults(void)
{
    memset(&cfg, 0x5a, sizeof cfg);
    CHECK_INT(config_load(&cfg, EXAMPLE, err), 0);
    want_defaults_for(EXAMPLE);
    CHECK_STR(cfg.path, EXAMPLE);
    CHECK(memcmp(&cfg, &want, sizeof cfg) == 0);
    CHECK_INT(config_validate(&cfg, err), 0);
}

static int key_index(const char *section, const char *key)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(all_keys[i][0], section) == 0 && strcmp(all_keys[i][1], key) == 0)
            return (int)i;
    return -1;
}

/* The example documents each default as "# key = default": uncommented, those lines
 * must load to the built-in defaults too, each option must be there exactly once, and
 * in the order of the table. */
static void test_config_example_documents_every_default(void)
{
    char line[512], section[64] = "", key[64];
    int count[NKEYS] = {0}, last = -1, in_order = 1;
    size_t pos = 0;
    FILE *f = fopen(EXAMPLE, "r");

    CHECK(f != NULL);
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        size_t klen = strspn(line + 2, "abcdefghijklmnopqrstuvwxyz_");
        int k = -1;
        if (sscanf(line, "[%63[a-z]]", section) == 1) {
            append(&pos, "%s", line);
            continue;
        }
        if (strncmp(line, "# ", 2) == 0 && klen > 0 && klen < sizeof key &&
            strncmp(line + 2 + klen, " =", 2) == 0) {
            memcpy(key, line + 2, klen);
            key[klen] = '\0';
            k = key_index(section, key);
        }
        if (k < 0)
            continue;
        count[k]++;
        if (k <= last)
            in_order = 0;
        last = k;
        append(&pos, "%s", line + 2);
    }
    fclose(f);

    for (size_t i = 0; i < NKEYS; i++)
        if (count[i] != 1)
            UNIT_FAIL_("[%s] %s documented %d times in %s", all_keys[i][0], all_keys[i][1],
                       count[i], EXAMPLE);
    CHECK(in_order);
    CHECK_STR(load_text(text), "OK");
    want_defaults_for(tmpfile_path);
    CHECK(memcmp(&cfg, &want, sizeof cfg) == 0);
}

static void test_config_every_key_is_known(void)
{
    char buf[128];
    for (size_t i = 0; i < NKEYS; i++) {
        /* An empty value is legal for some keys only: what matters is that no key is
         * reported unknown. */
        snprintf(buf, sizeof buf, "[%s]\n%s = \n", all_keys[i][0], all_keys[i][1]);
        const char *r = load_text(buf);
        if (strstr(r, "unknown"))
            UNIT_FAIL_("[%s] %s: %s", all_keys[i][0], all_keys[i][1], r);
    }
}

static void test_config_full_sample(void)
{
    const char *path = SAMPLES "/full.ini";

    memset(&cfg, 0x5a, sizeof cfg);
    CHECK_INT(config_load(&cfg, path, err), 0);
    CHECK_STR(cfg.path, path);
    CHECK_INT(cfg.nlisten, 3);
    CHECK_STR(cfg.listen[0], "[::1]:10041");
    CHECK_STR(cfg.listen[1], "unix:/tmp/spf-policyd-test.sock");
    CHECK_STR(cfg.listen[2], "localhost:10042");
    CHECK_INT(cfg.socket_mode, 0660);
    CHECK_STR(cfg.socket_owner, "postfix");
    CHECK_STR(cfg.socket_group, "mail");
    CHECK_STR(cfg.user, "nobody");
    CHECK_INT(cfg.max_connections, 500);
    CHECK(cfg.idle_timeout == 90.5);

    CHECK_STR(cfg.dns_servers, "127.0.0.1:5300,::1,[::1]:53");
    CHECK(cfg.dns_timeout == 0.5);
    CHECK_INT(cfg.dns_tries, 3);
    CHECK_INT(cfg.dns_max_inflight, 50);
    CHECK_INT(cfg.dns_cache_size, 2000);
    CHECK_INT(cfg.dns_max_ttl, 3600);
    CHECK_INT(cfg.dns_negative_ttl, 0);
    CHECK_INT(cfg.dns_error_ttl, 5);

    CHECK_INT(cfg.engine, ENGINE_LIBSPF2);
    CHECK(cfg.request_timeout == 10.0);
    CHECK_INT(cfg.check_helo, 0);
    CHECK_STR(cfg.receiver, "mx1.example.net");
    CHECK_STR(cfg.default_explanation, "See http://%{d}/spf.html?ip=%{i}");
    CHECK_INT(cfg.verdict_cache_size, 42);

    CHECK_INT(cfg.helo_action[SPF_RES_NONE], ACTION_DUNNO);
    CHECK_INT(cfg.helo_action[SPF_RES_NEUTRAL], ACTION_HOLD);
    CHECK_INT(cfg.helo_action[SPF_RES_PASS], ACTION_DUNNO);
    CHECK_INT(cfg.helo_action[SPF_RES_FAIL], ACTION_DEFER);
    CHECK_INT(cfg.helo_action[SPF_RES_SOFTFAIL], ACTION_HOLD);
    CHECK_INT(cfg.helo_action[SPF_RES_TEMPERROR], ACTION_DEFER);
    CHECK_INT(cfg.helo_action[SPF_RES_PERMERROR], ACTION_REJECT);
    CHECK_INT(cfg.mailfrom_action[SPF_RES_NONE], ACTION_DUNNO);
    CHECK_INT(cfg.mailfrom_action[SPF_RES_NEUTRAL], ACTION_PREPEND);
    CHECK_INT(cfg.mailfrom_action[SPF_RES_PASS], ACTION_DUNNO);
    CHECK_INT(cfg.mailfrom_action[SPF_RES_FAIL], ACTION_HOLD);
    CHECK_INT(cfg.mailfrom_action[SPF_RES_SOFTFAIL], ACTION_HOLD);
    CHECK_INT(cfg.mailfrom_action[SPF_RES_TEMPERROR], ACTION_DEFER);
    CHECK_INT(cfg.mailfrom_action[SPF_RES_PERMERROR], ACTION_REJECT);

    CHECK_INT(cfg.header_style, HEADER_BOTH);
    CHECK_STR(cfg.authserv_id, "mx1.example.net");

    CHECK_INT(cfg.skip_clients.n, 2);
    CHECK_STR(cidr_text(&cfg.skip_clients.cidr[0]), "10.0.0.0/8");
    CHECK_STR(cidr_text(&cfg.skip_clients.cidr[1]), "2001:db8::/32");
    CHECK_INT(cfg.skip_sasl, 0);
    CHECK_INT(cfg.skip_policy_contexts.n, 2);
    CHECK_STR(cfg.skip_policy_contexts.name[0], "submission");
    CHECK_STR(cfg.skip_policy_contexts.name[1], "Smtps");
    CHECK_INT(cfg.nskip_ports, 2);
    CHECK_INT(cfg.skip_server_ports[0], 587);
    CHECK_INT(cfg.skip_server_ports[1], 465);

    CHECK_INT(cfg.whitelist_clients.n, 1);
    CHECK_STR(cidr_text(&cfg.whitelist_clients.cidr[0]), "192.0.2.10/32");
    CHECK_INT(cfg.whitelist_helo.n, 1);
    CHECK_STR(cfg.whitelist_helo.name[0], "relay.partner.example");
    CHECK_INT(cfg.whitelist_senders.n, 1);
    CHECK_STR(cfg.whitelist_senders.name[0], "lists.example.org");
    CHECK_INT(cfg.whitelist_ptr.n, 3);
    CHECK_STR(cfg.whitelist_ptr.name[0], "outbound.mailprovider.example");
    CHECK_STR(cfg.whitelist_ptr.name[1], "bounces.example.com");
    CHECK_STR(cfg.whitelist_ptr.name[2], "example.net");

    CHECK_INT(cfg.log_level, LOG_LEVEL_DEBUG);
    CHECK_INT(cfg.log_facility, LOG_LOCAL3);
    CHECK_INT(cfg.log_stderr, 1);

    CHECK_INT(config_validate(&cfg, err), 0);
}

static void test_config_load_starts_from_defaults(void)
{
    CHECK_STR(load_text("[dns]\ntries = 5\n[skip]\nclients =\n"), "OK");
    CHECK_INT(cfg.dns_tries, 5);
    CHECK_INT(cfg.skip_clients.n, 0);
    CHECK_STR(load_text("[spf]\ncheck_helo = no\n"), "OK");
    CHECK_INT(cfg.dns_tries, 2);
    CHECK_INT(cfg.skip_clients.n, 2);
    CHECK_INT(cfg.check_helo, 0);
}

static void test_config_empty_file_is_defaults(void)
{
    CHECK_STR(load_text(""), "OK");
    want_defaults_for(tmpfile_path);
    CHECK(memcmp(&cfg, &want, sizeof cfg) == 0);
    CHECK_STR(load_text("; only a comment\n\n# and another\n[spf]\n"), "OK");
    CHECK(memcmp(&cfg, &want, sizeof cfg) == 0);
}

static void test_config_syntax_details(void)
{
    /* CRLF lines, blanks around "=", a " ;" comment after a value, a BOM, any case. */
    CHECK_STR(load_text("\xef\xbb\xbf[SPF]\r\n  Check_Helo=No   ; HELO is junk here\r\n"
                        "receiver :  mx.example.com\r\n"),
              "OK");
    CHECK_INT(cfg.check_helo, 0);
    CHECK_STR(cfg.receiver, "mx.example.com");
    /* "#" after a value is not a comment: it is part of the value. */
    CHECK_STR(load_text("[spf]\ncheck_helo = no # comment\n"),
              at_tmp("2: [spf] check_helo: must be one of: yes, no, true, false, on, off, 1, 0"));
}

static void test_config_bool(void)
{
    static const char *const yes[] = {"yes", "true", "on", "1", "YES", "True", "oN"};
    static const char *const no[] = {"no", "false", "off", "0", "NO", "False"};
    char buf[64];

    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        snprintf(buf, sizeof buf, "[skip]\nsasl = %s\n", yes[i]);
        CHECK_STR(load_text(buf), "OK");
        CHECK_INT(cfg.skip_sasl, 1);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        snprintf(buf, sizeof buf, "[skip]\nsasl = %s\n", no[i]);
        CHECK_STR(load_text(buf), "OK");
        CHECK_INT(cfg.skip_sasl, 0);
    }
    CHECK_STR(load_text("[skip]\nsasl = y\n"),
              at_tmp("2: [skip] sasl: must be one of: yes, no, true, false, on, off, 1, 0"));
    CHECK_STR(load_text("[skip]\nsasl =\n"),
              at_tmp("2: [skip] sasl: must be one of: yes, no, true, false, on, off, 1, 0"));
    CHECK_STR(load_text("[spf]\ncheck_helo = 2\n"),
              at_tmp("2: [spf] check_helo: must be one of: yes, no, true, false, on, off, 1, 0"));
}

static void test_config_unsigned_limits(void)
{
    CHECK_STR(load_text("[dns]\ntries = 1\n"), "OK");
    CHECK_INT(cfg.dns_tries, 1);
    CHECK_STR(load_text("[dns]\ntries = 10\n"), "OK");
    CHECK_INT(cfg.dns_tries, 10);
    CHECK_STR(load_text("[dns]\ntries = 0\n"), at_tmp("2: [dns] tries: must be between 1 and 10"));
    CHECK_STR(load_text("[dns]\ntries = 11\n"), at_tmp("2: [dns] tries: must be between 1 and 10"));

    CHECK_STR(load_text("[server]\nmax_connections = 1000000\n"), "OK");
    CHECK_INT(cfg.max_connections, 1000000);
    CHECK_STR(load_text("[server]\nmax_connections = 1000001\n"),
              at_tmp("2: [server] max_connections: must be between 1 and 1000000"));
    CHECK_STR(load_text("[dns]\ncache_size = 10000000\n"), "OK");
    CHECK_STR(load_text("[dns]\ncache_size = 10000001\n"),
              at_tmp("2: [dns] cache_size: must be between 1 and 10000000"));
    CHECK_STR(load_text("[spf]\nverdict_cache_size = 0\n"),
              at_tmp("2: [spf] verdict_cache_size: must be between 1 and 10000000"));
    CHECK_STR(load_text("[dns]\nnegative_ttl = 0\nerror_ttl = 0\n"), "OK");
    CHECK_INT(cfg.dns_negative_ttl, 0);
    CHECK_INT(cfg.dns_error_ttl, 0);
    CHECK_STR(load_text("[dns]\nerror_ttl = 3601\n"),
              at_tmp("2: [dns] error_ttl: must be between 0 and 3600"));
    CHECK_STR(load_text("[dns]\nmax_ttl = 604801\n"),
              at_tmp("2: [dns] max_ttl: must be between 1 and 604800"));
    CHECK_STR(load_text("[dns]\nmax_inflight = 100001\n"),
              at_tmp("2: [dns] max_inflight: must be between 1 and 100000"));
}

static void test_config_unsigned_junk(void)
{
    static const char *const bad[] = {"1.5", "-1", "+5", "5x", "x", "0x10", "1e3", "", "9999999999",
                                      "1 2"};
    char buf[64];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "[dns]\ntries = %s\n", bad[i]);
        CHECK_STR(load_text(buf),
                  at_tmp("2: [dns] tries: must be a whole number between 1 and 10"));
    }
}

static void test_config_seconds(void)
{
    CHECK_STR(load_text("[dns]\ntimeout = 0.1\n"), "OK");
    CHECK(cfg.dns_timeout == 0.1);
    CHECK_STR(load_text("[dns]\ntimeout = 60\n"), "OK");
    CHECK(cfg.dns_timeout == 60.0);
    CHECK_STR(load_text("[dns]\ntimeout = 2.25\n"), "OK");
    CHECK(cfg.dns_timeout == 2.25);
    CHECK_STR(load_text("[dns]\ntimeout = 0.09\n"),
              at_tmp("2: [dns] timeout: must be between 0.1 and 60 seconds"));
    CHECK_STR(load_text("[dns]\ntimeout = 60.01\n"),
              at_tmp("2: [dns] timeout: must be between 0.1 and 60 seconds"));
    CHECK_STR(load_text("[dns]\ntimeout = 0\n"),
              at_tmp("2: [dns] timeout: must be between 0.1 and 60 seconds"));
    CHECK_STR(load_text("[server]\nidle_timeout = 86400\n"), "OK");
    CHECK(cfg.idle_timeout == 86400.0);
    CHECK_STR(load_text("[server]\nidle_timeout = 86400.5\n"),
              at_tmp("2: [server] idle_timeout: must be between 1 and 86400 seconds"));
    CHECK_STR(load_text("[server]\nidle_timeout = 0.99\n"),
              at_tmp("2: [server] idle_timeout: must be between 1 and 86400 seconds"));
    CHECK_STR(load_text("[spf]\nrequest_timeout = 3600\n"), "OK");
    CHECK_STR(load_text("[spf]\nrequest_timeout = 3601\n"),
              at_tmp("2: [spf] request_timeout: must be between 0.1 and 3600 seconds"));

    static const char *const bad[] = {".5", "5.", "1e3", "-1", "+1", "0x10", "inf", "nan",
                                      "5s", "1.2.3", "", "1,5"};
    char buf[64];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "[dns]\ntimeout = %s\n", bad[i]);
        CHECK_STR(load_text(buf),
                  at_tmp("2: [dns] timeout: must be a number of seconds between 0.1 and 60"));
    }
}

static void test_config_mode(void)
{
    CHECK_STR(load_text("[server]\nsocket_mode = 0660\n"), "OK");
    CHECK_INT(cfg.socket_mode, 0660);
    CHECK_STR(load_text("[server]\nsocket_mode = 600\n"), "OK");
    CHECK_INT(cfg.socket_mode, 0600);
    CHECK_STR(load_text("[server]\nsocket_mode = 0777\n"), "OK");
    CHECK_INT(cfg.socket_mode, 0777);
    CHECK_STR(load_text("[server]\nsocket_mode = 0\n"), "OK");
    CHECK_INT(cfg.socket_mode, 0);
    static const char *const bad[] = {"01000", "1000", "0778", "0x1ff", "rw-rw-rw-", "", "-1"};
    char buf[64];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "[server]\nsocket_mode = %s\n", bad[i]);
        CHECK_STR(load_text(buf),
                  at_tmp("2: [server] socket_mode: must be an octal mode between 0 and 0777"));
    }
}

static void test_config_enums(void)
{
    CHECK_STR(load_text("[spf]\nengine = NATIVE\n"), "OK");
    CHECK_INT(cfg.engine, ENGINE_NATIVE);
    CHECK_STR(load_text("[spf]\nengine = spf2\n"),
              at_tmp("2: [spf] engine: must be one of: libspf2, native"));

    CHECK_STR(load_text("[header]\nstyle = authentication-results\n"), "OK");
    CHECK_INT(cfg.header_style, HEADER_AUTH_RESULTS);
    CHECK_STR(load_text("[header]\nstyle = none\n"), "OK");
    CHECK_INT(cfg.header_style, HEADER_NONE);
    CHECK_STR(load_text("[header]\nstyle = received_spf\n"),
              at_tmp("2: [header] style: must be one of: received-spf, authentication-results, "
                     "both, none"));

    CHECK_STR(load_text("[log]\nlevel = warn\n"), "OK");
    CHECK_INT(cfg.log_level, LOG_LEVEL_WARN);
    CHECK_STR(load_text("[log]\nlevel = error\n"), "OK");
    CHECK_INT(cfg.log_level, LOG_LEVEL_ERROR);
    CHECK_STR(load_text("[log]\nlevel = warning\n"),
              at_tmp("2: [log] level: must be one of: debug, info, warn, error"));
    CHECK_STR(load_text("[log]\ndestination = syslog\n"), "OK");
    CHECK_INT(cfg.log_stderr, 0);
    CHECK_STR(load_text("[log]\ndestination = file\n"),
              at_tmp("2: [log] destination: must be one of: syslog, stderr"));

    CHECK_STR(load_text("[log]\nfacility = DAEMON\n"), "OK");
    CHECK_INT(cfg.log_facility, LOG_DAEMON);
    CHECK_STR(load_text("[log]\nfacility = local7\n"), "OK");
    CHECK_INT(cfg.log_facility, LOG_LOCAL7);
    CHECK_STR(load_text("[log]\nfacility = local8\n"),
              at_tmp("2: [log] facility: must be one of: mail, daemon, user, auth, authpriv, "
                     "local0, local1, local2, local3, local4, local5, local6, local7"));
}

static void test_config_actions(void)
{
    static const char *const results[] = {"none", "neutral", "pass", "fail", "softfail",
                                          "temperror", "permerror"};
    static const char *const actions[] = {"prepend", "dunno", "reject", "defer", "hold"};
    char buf[128];

    for (int r = 0; r < SPF_RES_COUNT; r++)
        for (int a = 0; a < ACTION_COUNT; a++) {
            snprintf(buf, sizeof buf, "[action]\nhelo_%s = %s\nmailfrom_%s = %s\n", results[r],
                     actions[a], results[r], actions[(a + 1) % ACTION_COUNT]);
            CHECK_STR(load_text(buf), "OK");
            CHECK_INT(cfg.helo_action[r], a);
            CHECK_INT(cfg.mailfrom_action[r], (a + 1) % ACTION_COUNT);
            /* The other results keep their defaults. */
            int other = (r + 1) % SPF_RES_COUNT;
            CHECK_INT(cfg.helo_action[other],
                      other == SPF_RES_FAIL ? ACTION_REJECT : ACTION_PREPEND);
        }
    CHECK_STR(load_text("[action]\nmailfrom_softfail = quarantine\n"),
              at_tmp("2: [action] mailfrom_softfail: must be one of: prepend, dunno, reject, "
                     "defer, hold"));
    CHECK_STR(load_text("[action]\nhelo_softfail = REJECT\n"), "OK");
    CHECK_INT(cfg.helo_action[SPF_RES_SOFTFAIL], ACTION_REJECT);
}

static void test_config_dns_names(void)
{
    char label63[64], buf[256];

    CHECK_STR(load_text("[spf]\nreceiver = MX.Example.COM.\n[header]\nauthserv_id = a_b-c.d\n"),
              "OK");
    CHECK_STR(cfg.receiver, "mx.example.com");
    CHECK_STR(cfg.authserv_id, "a_b-c.d");
    CHECK_STR(load_text("[spf]\nreceiver =\n"), "OK");
    CHECK_STR(cfg.receiver, "");

    memset(label63, 'a', 63);
    label63[63] = '\0';
    snprintf(buf, sizeof buf, "[spf]\nreceiver = %s.example\n", label63);
    CHECK_STR(load_text(buf), "OK");
    CHECK_INT(strlen(cfg.receiver), 63 + 8);
    snprintf(buf, sizeof buf, "[spf]\nreceiver = %sa.example\n", label63);
    const char *why = "2: [spf] receiver: must be empty or a domain name (dot-separated labels "
                      "of 1 to 63 letters, digits, '-' or '_'; at most 253 bytes)";
    CHECK_STR(load_text(buf), at_tmp(why));
    static const char *const bad[] = {"a..b", ".a", "..", ".", "a b", "a/b", "a@b", "*.a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "[spf]\nreceiver = %s\n", bad[i]);
        CHECK_STR(load_text(buf), at_tmp(why));
    }
}

static void test_config_words(void)
{
    char buf[256], name[80];

    CHECK_STR(load_text("[server]\nsocket_owner = postfix\nuser = spf-policyd\n"), "OK");
    CHECK_STR(cfg.socket_owner, "postfix");
    CHECK_STR(cfg.user, "spf-policyd");
    memset(name, 'u', 63);
    name[63] = '\0';
    snprintf(buf, sizeof buf, "[server]\nsocket_group = %s\n", name);
    CHECK_STR(load_text(buf), "OK");
    CHECK_STR(cfg.socket_group, name);
    snprintf(buf, sizeof buf, "[server]\nsocket_group = %su\n", name);
    CHECK_STR(load_text(buf), at_tmp("2: [server] socket_group: must be at most 63 bytes"));
    CHECK_STR(load_text("[server]\nuser = spf policyd\n"),
              at_tmp("2: [server] user: must be one word without blanks or ':'"));
    CHECK_STR(load_text("[server]\nuser = root:root\n"),
              at_tmp("2: [server] user: must be one word without blanks or ':'"));
}

static void test_config_explanation(void)
{
    char buf[1024], line[200];
    size_t pos = 0;

    CHECK_STR(load_text("[spf]\ndefault_explanation = %{i} may not send for %{d}; see "
                        "http://%{d}/spf%%20help%_%-\n"),
              "OK");
    CHECK_STR(cfg.default_explanation,
              "%{i} may not send for %{d}; see http://%{d}/spf%%20help%_%-");
    CHECK_STR(load_text("[spf]\ndefault_explanation = not\n   authorised\n\tat all\n"), "OK");
    CHECK_STR(cfg.default_explanation, "not authorised at all");
    CHECK_STR(load_text("[spf]\ndefault_explanation = 100%\n"),
              at_tmp("2: [spf] default_explanation: '%' must be followed by {, %, _ or - "
                     "(RFC 7208 7.1)"));
    CHECK_STR(load_text("[spf]\ndefault_explanation = %{i\n"),
              at_tmp("2: [spf] default_explanation: a '%{' has no closing '}' (RFC 7208 7.1)"));
    CHECK_STR(load_text("[spf]\ndefault_explanation = caf\xc3\xa9\n"),
              at_tmp("2: [spf] default_explanation: must be printable ASCII"));
    CHECK_STR(load_text("[spf]\ndefault_explanation =\n"), "OK");
    CHECK_STR(cfg.default_explanation, "");

    /* 511 bytes exactly fit: 5 lines of 99 "x" joined by blanks are 499 bytes, plus
     * " " and 11 more. */
    memset(line, 'x', 99);
    line[99] = '\0';
    pos += (size_t)snprintf(buf + pos, sizeof buf - pos, "[spf]\ndefault_explanation = %s\n", line);
    for (int i = 0; i < 4; i++)
        pos += (size_t)snprintf(buf + pos, sizeof buf - pos, "  %s\n", line);
    snprintf(buf + pos, sizeof buf - pos, "  yyyyyyyyyyy\n");
    CHECK_STR(load_text(buf), "OK");
    CHECK_INT(strlen(cfg.default_explanation), 511);
    snprintf(buf + pos, sizeof buf - pos, "  yyyyyyyyyyyy\n");
    CHECK_STR(load_text(buf), at_tmp("7: [spf] default_explanation: must be at most 511 bytes"));
}

static void test_config_listen(void)
{
    char buf[4096], path[128], want_err[256];
    size_t pos;

    CHECK_STR(load_text("[server]\nlisten = 127.0.0.1:1, [::1]:65535 localhost:10041,,\n"
                        "listen = unix:/run/x.sock\n"),
              "OK");
    CHECK_INT(cfg.nlisten, 4);
    CHECK_STR(cfg.listen[0], "127.0.0.1:1");
    CHECK_STR(cfg.listen[1], "[::1]:65535");
    CHECK_STR(cfg.listen[2], "localhost:10041");
    CHECK_STR(cfg.listen[3], "unix:/run/x.sock");
    CHECK_STR(cfg.listen[4], "");

    /* The unix socket path fits sun_path (108 bytes with the NUL) or not. */
    memset(path, 'p', 106);
    path[106] = '\0';
    snprintf(buf, sizeof buf, "[server]\nlisten = unix:/%s\n", path);
    CHECK_STR(load_text(buf), "OK");
    snprintf(buf, sizeof buf, "[server]\nlisten = unix:/%sp\n", path);
    /* Quoted in the error cut to 64 bytes: "unix:/" and 58 of the p. */
    path[58] = '\0';
    snprintf(want_err, sizeof want_err,
             "2: [server] listen: 'unix:/%s...': a unix socket path must be at most 107 bytes",
             path);
    CHECK_STR(load_text(buf), at_tmp(want_err));
    CHECK_STR(load_text("[server]\nlisten = unix:run/x.sock\n"),
              at_tmp("2: [server] listen: 'unix:run/x.sock': a unix socket needs an "
                     "absolute path"));
    CHECK_STR(load_text("[server]\nlisten = 127.0.0.1:65536\n"),
              at_tmp("2: [server] listen: '127.0.0.1:65536': the port must be between 1 "
                     "and 65535"));
    CHECK_STR(load_text("[server]\nlisten = [::1]:0\n"),
              at_tmp("2: [server] listen: '[::1]:0': the port must be between 1 and 65535"));
    CHECK_STR(load_text("[server]\nlisten = 127.0.0.1:\n"),
              at_tmp("2: [server] listen: '127.0.0.1:': the port must be between 1 and 65535"));
    CHECK_STR(load_text("[server]\nlisten = localhost:smtp\n"),
              at_tmp("2: [server] listen: 'localhost:smtp': the port must be between 1 and 65535"));
    static const char *const bad[] = {"::1:10041", "mail.example.com:25", "127.0.0.1",
                                      "[::1]", "[127.0.0.1]:25", ":25", "tcp:127.0.0.1:25"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "[server]\nlisten = %s\n", bad[i]);
        snprintf(want_err, sizeof want_err,
                 "2: [server] listen: '%s' must be unix:/path, address:port or "
                 "[IPv6 address]:port (address: an IP address or localhost)",
                 bad[i]);
        CHECK_STR(load_text(buf), at_tmp(want_err));
    }

    /* 16 listeners fit, the 17th does not. */
    pos = (size_t)snprintf(buf, sizeof buf, "[server]\n");
    for (int i = 1; i <= 16; i++)
        pos += (size_t)snprintf(buf + pos, sizeof buf - pos, "listen = 127.0.0.1:%d\n", i);
    CHECK_STR(load_text(buf), "OK");
    CHECK_INT(cfg.nlisten, 16);
    CHECK_STR(cfg.listen[15], "127.0.0.1:16");
    snprintf(buf + pos, sizeof buf - pos, "listen = 127.0.0.1:17\n");
    CHECK_STR(load_text(buf), at_tmp("18: [server] listen: too many entries (at most 16)"));
}

static void test_config_validate(void)
{
    CHECK_STR(load_text("[server]\nlisten =\n"), "OK");
    CHECK_INT(cfg.nlisten, 0);
    CHECK_INT(config_validate(&cfg, err), -1);
    CHECK_STR(err, at_tmp(" [server] listen: at least one listener is needed"));

    CHECK_STR(load_text("[server]\nlisten = 127.0.0.1:10041 unix:/a 127.0.0.1:10041\n"), "OK");
    CHECK_INT(config_validate(&cfg, err), -1);
    CHECK_STR(err, at_tmp(" [server] listen: '127.0.0.1:10041' is listed twice"));

    config_defaults(&cfg);
    cfg.nlisten = 0;
    CHECK_INT(config_validate(&cfg, err), -1);
    CHECK_STR(err, "built-in defaults: [server] listen: at least one listener is needed");
}

static void test_config_cidr_lists(void)
{
    size_t pos = 0;

    CHECK_STR(load_text("[skip]\nclients = 192.0.2.0/24\n[whitelist]\n"
                        "clients = 198.51.100.7,2001:db8::/48\n  ::ffff:203.0.113.0/120\n"),
              "OK");
    CHECK_INT(cfg.skip_clients.n, 1);
    CHECK_STR(cidr_text(&cfg.skip_clients.cidr[0]), "192.0.2.0/24");
    CHECK_INT(cfg.whitelist_clients.n, 3);
    CHECK_STR(cidr_text(&cfg.whitelist_clients.cidr[0]), "198.51.100.7/32");
    CHECK_STR(cidr_text(&cfg.whitelist_clients.cidr[1]), "2001:db8::/48");
    CHECK_STR(cidr_text(&cfg.whitelist_clients.cidr[2]), "203.0.113.0/24");

    /* An empty first occurrence empties the default list; later ones add. */
    CHECK_STR(load_text("[skip]\nclients =\nclients = 10.0.0.0/8\n"), "OK");
    CHECK_INT(cfg.skip_clients.n, 1);
    CHECK_STR(cidr_text(&cfg.skip_clients.cidr[0]), "10.0.0.0/8");

    CHECK_STR(load_text("[skip]\nclients = 192.0.2.1/24\n"),
              at_tmp("2: [skip] clients: '192.0.2.1/24' has bits set beyond the /24 prefix; "
                     "did you mean 192.0.2.0/24?"));
    CHECK_STR(load_text("[whitelist]\nclients = 2001:db8::1/64\n"),
              at_tmp("2: [whitelist] clients: '2001:db8::1/64' has bits set beyond the /64 "
                     "prefix; did you mean 2001:db8::/64?"));
    CHECK_STR(load_text("[skip]\nclients = 192.0.2.0/33\n"),
              at_tmp("2: [skip] clients: '192.0.2.0/33' is not an IP address or "
                     "address/prefix block"));
    CHECK_STR(load_text("[skip]\nclients = ::ffff:192.0.2.1/120\n"),
              at_tmp("2: [skip] clients: '::ffff:192.0.2.1/120' is not an IP address or "
                     "address/prefix block"));
    CHECK_STR(load_text("[skip]\nclients = localhost\n"),
              at_tmp("2: [skip] clients: 'localhost' is not an IP address or "
                     "address/prefix block"));

    /* 256 entries fit, the 257th does not. */
    pos = 0;
    append(&pos, "[whitelist]\n");
    for (int i = 0; i < 256; i++)
        append(&pos, "clients = 10.0.%d.%d\n", i / 100, i % 100);
    CHECK_STR(load_text(text), "OK");
    CHECK_INT(cfg.whitelist_clients.n, 256);
    CHECK_STR(cidr_text(&cfg.whitelist_clients.cidr[255]), "10.0.2.55/32");
    append(&pos, "clients = 10.0.9.9\n");
    CHECK_STR(load_text(text), at_tmp("258: [whitelist] clients: too many entries (at most 256)"));
}

static void test_config_name_lists(void)
{
    char buf[512], label63[64];
    size_t pos = 0;

    CHECK_STR(load_text("[whitelist]\nhelo = Relay.Example.COM.\tmx.example.net\n"
                        "senders = example.org,\n"),
              "OK");
    CHECK_INT(cfg.whitelist_helo.n, 2);
    CHECK_STR(cfg.whitelist_helo.name[0], "relay.example.com");
    CHECK_STR(cfg.whitelist_helo.name[1], "mx.example.net");
    CHECK_INT(cfg.whitelist_senders.n, 1);
    CHECK_STR(cfg.whitelist_senders.name[0], "example.org");

    memset(label63, 'b', 63);
    label63[63] = '\0';
    snprintf(buf, sizeof buf, "[whitelist]\nptr = %s.example\n", label63);
    CHECK_STR(load_text(buf), "OK");
    CHECK_INT(strlen(cfg.whitelist_ptr.name[0]), 63 + 8);
    snprintf(buf, sizeof buf, "[whitelist]\nptr = %sb.example\n", label63);
    CHECK_STR(load_text(buf),
              at_tmp("2: [whitelist] ptr: "
                     "'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb...' "
                     "is not a domain name (dot-separated labels of 1 to 63 letters, digits, '-' "
                     "or '_'; at most 253 bytes)"));
    CHECK_STR(load_text("[whitelist]\nsenders = user@example.com\n"),
              at_tmp("2: [whitelist] senders: 'user@example.com' is not a domain name "
                     "(dot-separated labels of 1 to 63 letters, digits, '-' or '_'; at most 253 "
                     "bytes)"));
    CHECK_STR(load_text("[whitelist]\nhelo = a..b\n"),
              at_tmp("2: [whitelist] helo: 'a..b' is not a domain name (dot-separated labels of "
                     "1 to 63 letters, digits, '-' or '_'; at most 253 bytes)"));

    /* Policy contexts are words, kept as written. */
    CHECK_STR(load_text("[skip]\npolicy_contexts = Submission smtps\n"), "OK");
    CHECK_INT(cfg.skip_policy_contexts.n, 2);
    CHECK_STR(cfg.skip_policy_contexts.name[0], "Submission");
    CHECK_STR(cfg.skip_policy_contexts.name[1], "smtps");
    CHECK_STR(load_text("[skip]\npolicy_contexts = caf\xc3\xa9\n"),
              at_tmp("2: [skip] policy_contexts: 'caf\xc3\xa9' must be printable ASCII of at "
                     "most 255 bytes"));

    /* 256 names fit, the 257th does not. */
    append(&pos, "[whitelist]\n");
    for (int i = 0; i < 256; i++)
        append(&pos, "senders = d%d.example\n", i);
    CHECK_STR(load_text(text), "OK");
    CHECK_INT(cfg.whitelist_senders.n, 256);
    CHECK_STR(cfg.whitelist_senders.name[255], "d255.example");
    append(&pos, "senders = one-more.example\n");
    CHECK_STR(load_text(text), at_tmp("258: [whitelist] senders: too many entries (at most 256)"));
}

static void test_config_ports(void)
{
    char buf[512];
    size_t pos;

    CHECK_STR(load_text("[skip]\nserver_ports = 1 65535\n"), "OK");
    CHECK_INT(cfg.nskip_ports, 2);
    CHECK_INT(cfg.skip_server_ports[0], 1);
    CHECK_INT(cfg.skip_server_ports[1], 65535);
    CHECK_STR(load_text("[skip]\nserver_ports = 0\n"),
              at_tmp("2: [skip] server_ports: '0' is not a port: must be between 1 and 65535"));
    CHECK_STR(load_text("[skip]\nserver_ports = 65536\n"),
              at_tmp("2: [skip] server_ports: '65536' is not a port: must be between 1 and 65535"));
    CHECK_STR(load_text("[skip]\nserver_ports = submission\n"),
              at_tmp("2: [skip] server_ports: 'submission' is not a port: must be between 1 and "
                     "65535"));
    CHECK_STR(load_text("[skip]\nserver_ports = 0587\n"),
              at_tmp("2: [skip] server_ports: '0587' is not a port: must be between 1 and 65535"));

    pos = (size_t)snprintf(buf, sizeof buf, "[skip]\nserver_ports =");
    for (int i = 1; i <= 16; i++)
        pos += (size_t)snprintf(buf + pos, sizeof buf - pos, " %d", 1000 + i);
    snprintf(buf + pos, sizeof buf - pos, "\n");
    CHECK_STR(load_text(buf), "OK");
    CHECK_INT(cfg.nskip_ports, 16);
    CHECK_INT(cfg.skip_server_ports[15], 1016);
    snprintf(buf + pos, sizeof buf - pos, " 2000\n");
    CHECK_STR(load_text(buf), at_tmp("2: [skip] server_ports: too many entries (at most 16)"));
}

static void test_config_dns_servers(void)
{
    size_t pos = 0;

    CHECK_STR(load_text("[dns]\nservers = 192.0.2.53 192.0.2.54:5300, 2001:db8::53\n"
                        "servers = [2001:db8::54]:5300\n"),
              "OK");
    CHECK_STR(cfg.dns_servers, "192.0.2.53,192.0.2.54:5300,2001:db8::53,[2001:db8::54]:5300");
    CHECK_STR(load_text("[dns]\nservers =\n"), "OK");
    CHECK_STR(cfg.dns_servers, "");

    static const char *const bad[] = {"ns.example.com", "[::1]", "[192.0.2.53]:53",
                                      "192.0.2.53:0", "192.0.2.53:65536", "2001:db8::53:", "[::1]:",
                                      "localhost"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char buf[128], want_err[256];
        snprintf(buf, sizeof buf, "[dns]\nservers = %s\n", bad[i]);
        snprintf(want_err, sizeof want_err,
                 "2: [dns] servers: '%s' must be an IP address, optionally with a port: "
                 "192.0.2.53, 192.0.2.53:5300, 2001:db8::53 or [2001:db8::53]:5300",
                 bad[i]);
        CHECK_STR(load_text(buf), at_tmp(want_err));
    }

    /* The joined list fits 1023 bytes exactly: 101 entries of 9 bytes and commas make
     * 1009, then ",192.0.2.1:530" 14 more. */
    append(&pos, "[dns]\n");
    for (int i = 0; i < 101; i++)
        append(&pos, "servers = 192.0.2.1\n");
    append(&pos, "servers = 192.0.2.1:530\n");
    CHECK_STR(load_text(text), "OK");
    CHECK_INT(strlen(cfg.dns_servers), 1023);
    append(&pos, "servers = 1.2.3.4\n");
    CHECK_STR(load_text(text),
              at_tmp("104: [dns] servers: too many servers: the list must fit in 1023 bytes"));
}

static void test_config_continuation_lines(void)
{
    CHECK_STR(load_text("[whitelist]\nsenders = a.example,\n  b.example\n# between\n\tc.example\n"
                        "helo = h.example\n"),
              "OK");
    CHECK_INT(cfg.whitelist_senders.n, 3);
    CHECK_STR(cfg.whitelist_senders.name[2], "c.example");
    CHECK_INT(cfg.whitelist_helo.n, 1);

    /* An indented first key of a section is an ordinary key, even after a key of the
     * section before. */
    CHECK_STR(load_text("[spf]\n  check_helo = no\n"), "OK");
    CHECK_INT(cfg.check_helo, 0);
    CHECK_STR(load_text("[dns]\ntries = 3\n[spf]\n  check_helo = no\n"), "OK");
    CHECK_INT(cfg.dns_tries, 3);
    CHECK_INT(cfg.check_helo, 0);

    CHECK_STR(load_text("[spf]\ncheck_helo = no\n  receiver = mx.example.com\n"),
              at_tmp("3: [spf] check_helo: an indented line continues the previous value, and "
                     "this option takes one word; start keys at the beginning of the line"));
}

static void test_config_unknown_key_and_section(void)
{
    CHECK_STR(load_text("[spf]\nchek_helo = no\n"),
              at_tmp("2: [spf] chek_helo: unknown key; [spf] has: engine, request_timeout, "
                     "check_helo, receiver, default_explanation, verdict_cache_size"));
    CHECK_STR(load_text("\n[spff]\ncheck_helo = no\n"),
              at_tmp("3: [spff] check_helo: unknown section; sections are: server, dns, spf, "
                     "action, header, skip, whitelist, log, redis, reputation"));
    CHECK_STR(load_text("check_helo = no\n"),
              at_tmp("1: check_helo: not inside a [section]; sections are: server, dns, spf, "
                     "action, header, skip, whitelist, log, redis, reputation"));
    CHECK_STR(load_text("[action]\nhelo_softpass = hold\n"),
              at_tmp("2: [action] helo_softpass: unknown key; [action] has: helo_none, "
                     "helo_neutral, helo_pass, helo_fail, helo_softfail, helo_temperror, "
                     "helo_permerror, mailfrom_none, mailfrom_neutral, mailfrom_pass, "
                     "mailfrom_fail, mailfrom_softfail, mailfrom_temperror, mailfrom_permerror"));
    /* A key of another section. */
    CHECK_STR(load_text("[dns]\nlisten = 127.0.0.1:53\n"),
              at_tmp("2: [dns] listen: unknown key; [dns] has: servers, timeout, tries, "
                     "max_inflight, cache_size, max_ttl, negative_ttl, error_ttl"));
}

static void test_config_duplicate_scalar(void)
{
    CHECK_STR(load_text("[spf]\ncheck_helo = no\nengine = native\n\ncheck_helo = yes\n"),
              at_tmp("5: [spf] check_helo: set twice (first on line 2)"));
    /* Twice, in two [spf] sections. */
    CHECK_STR(load_text("[spf]\nengine = native\n[log]\nlevel = info\n[spf]\nengine = native\n"),
              at_tmp("6: [spf] engine: set twice (first on line 2)"));
}

static void test_config_syntax_errors(void)
{
    const char *why = "syntax error: expected [section], key = value, or a comment";
    char want_err[256];

    snprintf(want_err, sizeof want_err, "2: %s", why);
    CHECK_STR(load_text("[spf]\ncheck_helo\n"), at_tmp(want_err));
    CHECK_STR(load_text("[spf]\n[dns\ntries = 3\n"), at_tmp(want_err));
    /* The first error wins, whichever kind it is. */
    CHECK_STR(load_text("[spf]\ngarbage\n[dns]\ntries = 0\n"), at_tmp(want_err));
    CHECK_STR(load_text("[dns]\ntries = 0\ngarbage\n"),
              at_tmp("2: [dns] tries: must be between 1 and 10"));
}

static void test_config_line_length(void)
{
    char buf[512];
    int fill;

    /* 198 bytes before the newline fit inih's 200-byte line buffer; 199 do not. */
    fill = 198 - (int)strlen("default_explanation = ");
    snprintf(buf, sizeof buf, "[spf]\ndefault_explanation = %0*d\nengine = native\n", fill, 0);
    CHECK_STR(load_text(buf), "OK");
    CHECK_INT(strlen(cfg.default_explanation), (size_t)fill);
    CHECK_INT(cfg.engine, ENGINE_NATIVE);
    snprintf(buf, sizeof buf, "[spf]\ndefault_explanation = %0*d\nengine = native\n", fill + 1, 0);
    CHECK_STR(load_text(buf), at_tmp("2: line is longer than 198 bytes; continue a long value on "
                                     "indented lines"));
}

static void test_config_missing_file(void)
{
    memset(&cfg, 0x5a, sizeof cfg);
    CHECK_INT(config_load(&cfg, SAMPLES "/does-not-exist.ini", err), -1);
    CHECK_STR(err, SAMPLES "/does-not-exist.ini: cannot open: No such file or directory");
    CHECK_INT(config_load(&cfg, SAMPLES, err), -1);
    CHECK_STR(err, SAMPLES ": cannot read: Is a directory");
}

static void test_config_sample_errors(void)
{
    memset(&cfg, 0x5a, sizeof cfg);
    CHECK_INT(config_load(&cfg, SAMPLES "/bad_range.ini", err), -1);
    CHECK_STR(err, "tests/unit/config/bad_range.ini:4: [dns] tries: must be between 1 and 10");
    CHECK_INT(config_load(&cfg, SAMPLES "/bad_section.ini", err), -1);
    CHECK_STR(err, "tests/unit/config/bad_section.ini:5: [hedaer] style: unknown section; "
                   "sections are: server, dns, spf, action, header, skip, whitelist, log, redis, "
                   "reputation");
}

static void test_config_redis(void)
{
    CHECK_STR(load_text("[redis]\naddress = unix:/run/redis/redis.sock\npassword = s3cr:t#x\n"
                        "username = spf\ndatabase = 1023\nprefix = mx:spf:\n"
                        "timeout = 0.001\nconnect_timeout = 60\nretry_max = 0.1\n"
                        "max_pending = 1\nerror_ttl = 0\n"),
              "OK");
    CHECK_STR(cfg.redis_address, "unix:/run/redis/redis.sock");
    CHECK_STR(cfg.redis_password, "s3cr:t#x");
    CHECK_STR(cfg.redis_username, "spf");
    CHECK_INT(cfg.redis_database, 1023);
    CHECK_STR(cfg.redis_prefix, "mx:spf:");
    CHECK(cfg.redis_timeout == 0.001);
    CHECK_INT(cfg.redis_max_pending, 1);
    CHECK_INT(cfg.redis_error_ttl, 0);
    CHECK_INT(config_validate(&cfg, err), 0);

    CHECK_STR(load_text("[redis]\naddress = 192.0.2.6:6379\n"), "OK");
    CHECK_STR(cfg.redis_address, "192.0.2.6:6379");
    CHECK_STR(load_text("[redis]\naddress = [::1]:6379\n"), "OK");
    CHECK_STR(load_text("[redis]\naddress = redis.example.com:6379\n"),
              at_tmp("2: [redis] address: 'redis.example.com:6379' must be unix:/path, "
                     "address:port or [IPv6 address]:port (address: an IP address or "
                     "localhost)"));
    CHECK_STR(load_text("[redis]\naddress = a:1, b:2\n"),
              at_tmp("2: [redis] address: 'a:1, b:2' must be unix:/path, address:port or "
                     "[IPv6 address]:port (address: an IP address or localhost)"));
    CHECK_STR(load_text("[redis]\npassword = two words\n"),
              at_tmp("2: [redis] password: must be printable ASCII without blanks"));
    CHECK_STR(load_text("[redis]\ndatabase = 1024\n"),
              at_tmp("2: [redis] database: must be between 0 and 1023"));
    CHECK_STR(load_text("[redis]\ntimeout = 0.0009\n"),
              at_tmp("2: [redis] timeout: must be between 0.001 and 10 seconds"));
    CHECK_STR(load_text("[redis]\nmax_pending = 0\n"),
              at_tmp("2: [redis] max_pending: must be between 1 and 1000000"));
    CHECK_STR(load_text("[redis]\nerror_ttl = 3601\n"),
              at_tmp("2: [redis] error_ttl: must be between 0 and 3600"));
}

static void test_config_redis_sentinels(void)
{
    char buf[2048];
    size_t pos = 0;

    CHECK_STR(load_text("[redis]\nsentinels = 127.0.0.1:26379, [::1]:26380\n"
                        "  localhost:26381\nmaster_name = mymaster\n"),
              "OK");
    CHECK_INT(cfg.nredis_sentinels, 3);
    CHECK_STR(cfg.redis_sentinels[0], "127.0.0.1:26379");
    CHECK_STR(cfg.redis_sentinels[1], "[::1]:26380");
    CHECK_STR(cfg.redis_sentinels[2], "localhost:26381");
    CHECK_STR(cfg.redis_master_name, "mymaster");
    CHECK_INT(config_validate(&cfg, err), 0);

    CHECK_STR(load_text("[redis]\nsentinels = unix:/tmp/s.sock\n"),
              at_tmp("2: [redis] sentinels: 'unix:/tmp/s.sock': must be address:port or "
                     "[IPv6 address]:port, not a unix socket"));
    /* 16 fit, the 17th does not. */
    pos += (size_t)snprintf(buf + pos, sizeof buf - pos, "[redis]\n");
    for (int i = 0; i < CONFIG_MAX_SENTINELS; i++)
        pos += (size_t)snprintf(buf + pos, sizeof buf - pos, "sentinels = 127.0.0.1:%d\n",
                                26000 + i);
    CHECK_STR(load_text(buf), "OK");
    CHECK_INT(cfg.nredis_sentinels, CONFIG_MAX_SENTINELS);
    snprintf(buf + pos, sizeof buf - pos, "sentinels = 127.0.0.1:27000\n");
    CHECK_STR(load_text(buf), at_tmp("18: [redis] sentinels: too many entries (at most 16)"));

    CHECK_STR(load_text("[redis]\nsentinels = 127.0.0.1:26379\n"), "OK");
    CHECK_INT(config_validate(&cfg, err), -1);
    CHECK_STR(err, at_tmp(" [redis] sentinels and master_name go together"));
    CHECK_STR(load_text("[redis]\nmaster_name = mymaster\n"), "OK");
    CHECK_INT(config_validate(&cfg, err), -1);
    CHECK_STR(err, at_tmp(" [redis] sentinels and master_name go together"));
    CHECK_STR(load_text("[redis]\naddress = 127.0.0.1:6379\nsentinels = 127.0.0.1:26379\n"
                        "master_name = m\n"),
              "OK");
    CHECK_INT(config_validate(&cfg, err), -1);
    CHECK_STR(err, at_tmp(" [redis] address and sentinels: set one of them (with sentinels, "
                          "the sentinels name the master)"));
}

static void test_config_reputation(void)
{
    CHECK_STR(load_text("[redis]\naddress = 127.0.0.1:6379\n"
                        "[reputation]\nwindow = 60\nflush_interval = 0.01\nrefresh = 3600\n"
                        "cache_size = 1\naction = DEFER\nmin_checks = 1000000\n"
                        "fail_percent = 100\ncount_softfail = yes\nreject_status = 5.7.999\n"
                        "defer_status = 4.0.0\ntext = go away,\n  please\nheader = no\n"),
              "OK");
    CHECK(cfg.reputation_window == 60.0);
    CHECK(cfg.reputation_flush == 0.01);
    CHECK(cfg.reputation_refresh == 3600.0);
    CHECK_INT(cfg.reputation_cache_size, 1);
    CHECK_INT(cfg.reputation_action, REPUTATION_DEFER);
    CHECK_INT(cfg.reputation_min_checks, 1000000);
    CHECK_INT(cfg.reputation_fail_percent, 100);
    CHECK_INT(cfg.reputation_count_softfail, 1);
    CHECK_STR(cfg.reputation_reject_status, "5.7.999");
    CHECK_STR(cfg.reputation_defer_status, "4.0.0");
    CHECK_STR(cfg.reputation_text, "go away, please");
    CHECK_INT(cfg.reputation_header, 0);
    CHECK_INT(config_validate(&cfg, err), 0);

    /* A text without macros: a per cent sign is just that. */
    CHECK_STR(load_text("[reputation]\ntext = 100% failures\n"), "OK");
    CHECK_STR(cfg.reputation_text, "100% failures");
    CHECK_STR(load_text("[reputation]\naction = drop\n"),
              at_tmp("2: [reputation] action: must be one of: none, reject, defer"));
    CHECK_STR(load_text("[reputation]\nfail_percent = 0\n"),
              at_tmp("2: [reputation] fail_percent: must be between 1 and 100"));
    CHECK_STR(load_text("[reputation]\nwindow = 59\n"),
              at_tmp("2: [reputation] window: must be between 60 and 3.1536e+07 seconds"));
    static const char *const bad_reject[] = {"4.7.1", "5.7", "5.7.1.1", "5.1000.1", "5..1",
                                             "5.7.1x", "", "5", "5."};
    for (size_t i = 0; i < sizeof bad_reject / sizeof bad_reject[0]; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "[reputation]\nreject_status = %s\n", bad_reject[i]);
        CHECK_STR(load_text(buf),
                  at_tmp("2: [reputation] reject_status: must be an RFC 3463 status code "
                         "5.X.Y (X and Y of 1 to 3 digits)"));
    }
    CHECK_STR(load_text("[reputation]\ndefer_status = 5.7.1\n"),
              at_tmp("2: [reputation] defer_status: must be an RFC 3463 status code 4.X.Y "
                     "(X and Y of 1 to 3 digits)"));
    CHECK_STR(load_text("[reputation]\naction = reject\n"), "OK");
    CHECK_INT(config_validate(&cfg, err), -1);
    CHECK_STR(err, at_tmp(" [reputation] action: the reputation lives in Redis; set [redis] "
                          "address or sentinels"));
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_config.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(tmpfile_path, sizeof tmpfile_path, "%s/t.ini", tmpdir);

    UNIT_RUN(test_config_defaults);
    UNIT_RUN(test_config_defaults_are_reproducible);
    UNIT_RUN(test_config_example_loads_to_defaults);
    UNIT_RUN(test_config_example_documents_every_default);
    UNIT_RUN(test_config_every_key_is_known);
    UNIT_RUN(test_config_full_sample);
    UNIT_RUN(test_config_load_starts_from_defaults);
    UNIT_RUN(test_config_empty_file_is_defaults);
    UNIT_RUN(test_config_syntax_details);
    UNIT_RUN(test_config_bool);
    UNIT_RUN(test_config_unsigned_limits);
    UNIT_RUN(test_config_unsigned_junk);
    UNIT_RUN(test_config_seconds);
    UNIT_RUN(test_config_mode);
    UNIT_RUN(test_config_enums);
    UNIT_RUN(test_config_actions);
    UNIT_RUN(test_config_dns_names);
    UNIT_RUN(test_config_words);
    UNIT_RUN(test_config_explanation);
    UNIT_RUN(test_config_listen);
    UNIT_RUN(test_config_validate);
    UNIT_RUN(test_config_cidr_lists);
    UNIT_RUN(test_config_name_lists);
    UNIT_RUN(test_config_ports);
    UNIT_RUN(test_config_dns_servers);
    UNIT_RUN(test_config_continuation_lines);
    UNIT_RUN(test_config_unknown_key_and_section);
    UNIT_RUN(test_config_duplicate_scalar);
    UNIT_RUN(test_config_syntax_errors);
    UNIT_RUN(test_config_line_length);
    UNIT_RUN(test_config_missing_file);
    UNIT_RUN(test_config_sample_errors);
    UNIT_RUN(test_config_redis);
    UNIT_RUN(test_config_redis_sentinels);
    UNIT_RUN(test_config_reputation);

    unlink(tmpfile_path);
    rmdir(tmpdir);
    return unit_report();
}
