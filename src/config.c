/* config.c - built-in defaults, the INI file, and its validation.
 *
 * Every option is one row of the options table below: section, key, type, default
 * (as the text an administrator would write, run through the same parser as the
 * file, so the table, the file and policy.ini.example cannot drift apart), bounds
 * and where it lives in struct config.
 *
 * The file is read by inih (Debian's libinih 55). Its handler is not told the line
 * number: INI_HANDLER_LINENO is a compile-time switch of the library, and Debian
 * builds it off (defining it ourselves would only change our prototype, the library
 * would still call four arguments). So we hand inih our own line reader through
 * ini_parse_stream(): inih asks it for exactly one line per line it counts, the
 * handler runs before the next line is read, and the reader's count is therefore the
 * line of the key being handled. The reader also refuses lines longer than inih's
 * buffer (inih would silently parse the tail as a line of its own) and stops the
 * parse at the first error by reporting end of file.
 *
 * Values: inih strips surrounding blanks and " ;" comments. A line that starts with
 * blanks continues the previous key (Python configparser style): more entries for a
 * list, more words for a text, an error for anything else. A list key may be given
 * more than once; its first occurrence in a file replaces the built-in list. A scalar
 * key given twice is an error. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "log.h"

/* Room for a reason before "FILE:LINE: [section] key: " is put in front of it. */
#define REASON_LEN 384
/* Offending text quoted in an error is cut here, so the reason still fits. */
#define QUOTE_MAX 64
#define QUOTE_LEN (QUOTE_MAX + sizeof "...")
/* Digits read for a number: enough for every bound in the table, and a longer
 * number is out of range anyway. */
#define NUMBER_DIGITS_MAX 9
/* RFC 1035 2.3.4, without the trailing dot. */
#define DNS_LABEL_MAX 63
#define DNS_NAME_MAX_LEN 253
#define PORT_MAX 65535
#define IPV4_BITS 32u
#define IPV6_BITS 128u
/* The permission bits a unix socket's mode may set. */
#define SOCKET_MODE_MAX 0777
#define UNIX_PREFIX "unix:"
/* sun_path includes the terminating NUL. */
#define UNIX_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

enum opt_type {
    OPT_TEXT,       /* printable ASCII macro-string, continuation lines add words */
    OPT_WORD,       /* "" or one printable word: user and group names */
    OPT_DNSNAME,    /* "" or a DNS name */
    OPT_BOOL,
    OPT_UNSIGNED,
    OPT_SECONDS,    /* positive decimal */
    OPT_MODE,       /* octal permission bits */
    OPT_ENUM,       /* index into names, stored as int */
    OPT_ACTION,     /* enum action, by action_parse() */
    OPT_FACILITY,   /* syslog facility name, stored as LOG_xxx */
    OPT_CIDRS,      /* cidr_list_t */
    OPT_NAMES,      /* name_list_t of DNS names */
    OPT_WORDS,      /* name_list_t of words kept as written */
    OPT_PORTS,      /* unsigned[CONFIG_MAX_PORTS] counted by count_off */
    OPT_LISTEN,     /* listen[CONFIG_MAX_LISTEN] counted by count_off */
    OPT_SERVERS,    /* c-ares server list, joined with commas */
    OPT_TOKEN,      /* "" or printable ASCII without blanks: passwords, key prefixes */
    OPT_PLAIN,      /* printable ASCII text without macros, continuation lines add words */
    OPT_STATUS,     /* RFC 3463 enhanced status code, its class between min and max */
    OPT_ADDRESS,    /* "" or one address as [server] listen takes it */
    OPT_HOSTPORTS,  /* "host:port" list (no unix sockets) counted by count_off */
};

struct option {
    const char *section;
    const char *key;
    enum opt_type type;
    const char *def;
    double min, max;                  /* OPT_UNSIGNED, OPT_SECONDS */
    const char *const *names;         /* OPT_ENUM, NULL-terminated */
    size_t off, size;                 /* the field in struct config */
    size_t count_off;                 /* OPT_PORTS, OPT_LISTEN: its size_t count */
};

static const char *const engine_names[] = {"libspf2", "native", NULL};
static const char *const style_names[] = {"received-spf", "authentication-results", "both",
                                          "none", NULL};
static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const destination_names[] = {"syslog", "stderr", NULL};
static const char *const reputation_action_names[] = {"none", "reject", "defer", NULL};
/* Pairs of a true spelling and its false counterpart. */
static const char *const bool_names[] = {"yes", "no", "true", "false", "on", "off", "1", "0",
                                         NULL};

/* Enum fields are written through an int. */
_Static_assert(ENGINE_LIBSPF2 == 0 && ENGINE_NATIVE == 1, "engine_names order");
_Static_assert(HEADER_RECEIVED_SPF == 0 && HEADER_AUTH_RESULTS == 1 && HEADER_BOTH == 2 &&
               HEADER_NONE == 3, "style_names order");
_Static_assert(LOG_LEVEL_DEBUG == 0 && LOG_LEVEL_INFO == 1 && LOG_LEVEL_WARN == 2 &&
               LOG_LEVEL_ERROR == 3, "level_names order");
_Static_assert(REPUTATION_NONE == 0 && REPUTATION_REJECT == 1 && REPUTATION_DEFER == 2,
               "reputation_action_names order");
_Static_assert(sizeof(enum engine) == sizeof(int) && sizeof(enum header_style) == sizeof(int) &&
               sizeof(enum action) == sizeof(int) &&
               sizeof(enum reputation_action) == sizeof(int), "enum fields are int-sized");

static const struct {
    const char *name;
    int value;
} facilities[] = {
    {"mail", LOG_MAIL},       {"daemon", LOG_DAEMON},   {"user", LOG_USER},
    {"auth", LOG_AUTH},       {"authpriv", LOG_AUTHPRIV}, {"local0", LOG_LOCAL0},
    {"local1", LOG_LOCAL1},   {"local2", LOG_LOCAL2},   {"local3", LOG_LOCAL3},
    {"local4", LOG_LOCAL4},   {"local5", LOG_LOCAL5},   {"local6", LOG_LOCAL6},
    {"local7", LOG_LOCAL7},
};

#define FIELD(f) .off = offsetof(struct config, f), .size = sizeof(((struct config *)0)->f)
#define COUNTED(f, n) FIELD(f), .count_off = offsetof(struct config, n)
/* Defaults follow postfix-policyd-spf-python: reject only on fail, record every
 * other result in a header and let the rest of smtpd_recipient_restrictions decide. */
#define ACTIONS(id)                                                                      \
    {"action", #id "_none", OPT_ACTION, "prepend", FIELD(id##_action[SPF_RES_NONE])},         \
    {"action", #id "_neutral", OPT_ACTION, "prepend", FIELD(id##_action[SPF_RES_NEUTRAL])},   \
    {"action", #id "_pass", OPT_ACTION, "prepend", FIELD(id##_action[SPF_RES_PASS])},         \
    {"action", #id "_fail", OPT_ACTION, "reject", FIELD(id##_action[SPF_RES_FAIL])},          \
    {"action", #id "_softfail", OPT_ACTION, "prepend", FIELD(id##_action[SPF_RES_SOFTFAIL])}, \
    {"action", #id "_temperror", OPT_ACTION, "prepend", FIELD(id##_action[SPF_RES_TEMPERROR])}, \
    {"action", #id "_permerror", OPT_ACTION, "prepend", FIELD(id##_action[SPF_RES_PERMERROR])}

static const struct option options[] = {
    {"server", "listen", OPT_LISTEN, "127.0.0.1:10041, unix:/run/spf-policyd/policy.sock",
     COUNTED(listen, nlisten)},
    {"server", "socket_mode", OPT_MODE, "0666", FIELD(socket_mode)},
    {"server", "socket_owner", OPT_WORD, "", FIELD(socket_owner)},
    {"server", "socket_group", OPT_WORD, "", FIELD(socket_group)},
    {"server", "user", OPT_WORD, "", FIELD(user)},
    {"server", "max_connections", OPT_UNSIGNED, "10000", 1, 1000000, FIELD(max_connections)},
    {"server", "idle_timeout", OPT_SECONDS, "600", 1, 86400, FIELD(idle_timeout)},

    {"dns", "servers", OPT_SERVERS, "", FIELD(dns_servers)},
    {"dns", "timeout", OPT_SECONDS, "5", 0.1, 60, FIELD(dns_timeout)},
    {"dns", "tries", OPT_UNSIGNED, "2", 1, 10, FIELD(dns_tries)},
    {"dns", "max_inflight", OPT_UNSIGNED, "1000", 1, 100000, FIELD(dns_max_inflight)},
    {"dns", "cache_size", OPT_UNSIGNED, "100000", 1, 10000000, FIELD(dns_cache_size)},
    {"dns", "max_ttl", OPT_UNSIGNED, "86400", 1, 604800, FIELD(dns_max_ttl)},
    {"dns", "negative_ttl", OPT_UNSIGNED, "3600", 0, 86400, FIELD(dns_negative_ttl)},
    {"dns", "error_ttl", OPT_UNSIGNED, "30", 0, 3600, FIELD(dns_error_ttl)},

    {"spf", "engine", OPT_ENUM, "native", .names = engine_names, FIELD(engine)},
    {"spf", "request_timeout", OPT_SECONDS, "20", 0.1, 3600, FIELD(request_timeout)},
    {"spf", "check_helo", OPT_BOOL, "yes", FIELD(check_helo)},
    {"spf", "receiver", OPT_DNSNAME, "", FIELD(receiver)},
    {"spf", "default_explanation", OPT_TEXT,
     "%{c} is not one of %{d}'s designated mail servers", FIELD(default_explanation)},
    {"spf", "verdict_cache_size", OPT_UNSIGNED, "100000", 1, 10000000,
     FIELD(verdict_cache_size)},

    ACTIONS(helo),
    ACTIONS(mailfrom),

    {"header", "style", OPT_ENUM, "received-spf", .names = style_names, FIELD(header_style)},
    {"header", "authserv_id", OPT_DNSNAME, "", FIELD(authserv_id)},

    {"skip", "clients", OPT_CIDRS, "127.0.0.0/8, ::1", FIELD(skip_clients)},
    {"skip", "sasl", OPT_BOOL, "yes", FIELD(skip_sasl)},
    {"skip", "policy_contexts", OPT_WORDS, "", FIELD(skip_policy_contexts)},
    {"skip", "server_ports", OPT_PORTS, "", COUNTED(skip_server_ports, nskip_ports)},

    {"whitelist", "clients", OPT_CIDRS, "", FIELD(whitelist_clients)},
    {"whitelist", "helo", OPT_NAMES, "", FIELD(whitelist_helo)},
    {"whitelist", "senders", OPT_NAMES, "", FIELD(whitelist_senders)},
    {"whitelist", "ptr", OPT_NAMES, "", FIELD(whitelist_ptr)},

    {"log", "level", OPT_ENUM, "info", .names = level_names, FIELD(log_level)},
    {"log", "facility", OPT_FACILITY, "mail", FIELD(log_facility)},
    {"log", "destination", OPT_ENUM, "syslog", .names = destination_names, FIELD(log_stderr)},

    {"redis", "address", OPT_ADDRESS, "", FIELD(redis_address)},
    {"redis", "username", OPT_WORD, "", FIELD(redis_username)},
    {"redis", "password", OPT_TOKEN, "", FIELD(redis_password)},
    {"redis", "database", OPT_UNSIGNED, "0", 0, 1023, FIELD(redis_database)},
    {"redis", "prefix", OPT_TOKEN, "spf:", FIELD(redis_prefix)},
    {"redis", "timeout", OPT_SECONDS, "0.1", 0.001, 10, FIELD(redis_timeout)},
    {"redis", "connect_timeout", OPT_SECONDS, "1", 0.01, 60, FIELD(redis_connect_timeout)},
    {"redis", "retry_max", OPT_SECONDS, "30", 0.1, 3600, FIELD(redis_retry_max)},
    {"redis", "max_pending", OPT_UNSIGNED, "10000", 1, 1000000, FIELD(redis_max_pending)},
    {"redis", "error_ttl", OPT_UNSIGNED, "5", 0, 3600, FIELD(redis_error_ttl)},
    {"redis", "sentinels", OPT_HOSTPORTS, "", COUNTED(redis_sentinels, nredis_sentinels)},
    {"redis", "master_name", OPT_WORD, "", FIELD(redis_master_name)},

    {"reputation", "window", OPT_SECONDS, "604800", 60, 31536000, FIELD(reputation_window)},
    {"reputation", "flush_interval", OPT_SECONDS, "1", 0.01, 60, FIELD(reputation_flush)},
    {"reputation", "refresh", OPT_SECONDS, "10", 0.1, 3600, FIELD(reputation_refresh)},
    {"reputation", "cache_size", OPT_UNSIGNED, "100000", 1, 10000000,
     FIELD(reputation_cache_size)},
    {"reputation", "action", OPT_ENUM, "none", .names = reputation_action_names,
     FIELD(reputation_action)},
    {"reputation", "min_checks", OPT_UNSIGNED, "20", 1, 1000000, FIELD(reputation_min_checks)},
    {"reputation", "fail_percent", OPT_UNSIGNED, "90", 1, 100, FIELD(reputation_fail_percent)},
    {"reputation", "count_softfail", OPT_BOOL, "no", FIELD(reputation_count_softfail)},
    {"reputation", "reject_status", OPT_STATUS, "5.7.1", 5, 5, FIELD(reputation_reject_status)},
    {"reputation", "defer_status", OPT_STATUS, "4.7.1", 4, 4, FIELD(reputation_defer_status)},
    {"reputation", "text", OPT_PLAIN, "mail from your network keeps failing SPF checks",
     FIELD(reputation_text)},
    {"reputation", "header", OPT_BOOL, "yes", FIELD(reputation_header)},
};

#define NOPTIONS (sizeof options / sizeof options[0])

static const char *const sections[] = {"server", "dns", "spf", "action", "header", "skip",
                                       "whitelist", "log", "redis", "reputation", NULL};

struct loader {
    struct config *cfg;
    const char *path;
    FILE *f;
    int lineno;                       /* of the line inih has last been given */
    int continuation;                 /* that line continues the value of prev */
    const struct option *prev;
    int seen[NOPTIONS];               /* line the option was first set on, 0 = not yet */
    int err_line;                     /* line of the first error, 0 = none yet */
    char *err;
};

/* ---- values ---------------------------------------------------------------- */

static void *field(struct config *cfg, const struct option *o)
{
    return (char *)cfg + o->off;
}

static size_t *count_field(struct config *cfg, const struct option *o)
{
    return (size_t *)(void *)((char *)cfg + o->count_off);
}

/* Error texts may be cut to their buffer: the start says what is wrong. */
__attribute__((format(printf, 3, 4)))
static void say(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* Copies s into a field, zero-filling the rest so equal configs compare equal. */
static int set_text(char *dst, size_t size, const char *s, char *why, size_t wlen)
{
    size_t n = strlen(s);
    if (n >= size) {
        say(why, wlen, "must be at most %zu bytes", size - 1);
        return -1;
    }
    memset(dst, 0, size);
    memcpy(dst, s, n);
    return 0;
}

/* s for quoting in an error: at most QUOTE_MAX bytes, then "...". */
static const char *quote(const char *s, char buf[QUOTE_LEN])
{
    size_t n = strlen(s);
    if (n <= QUOTE_MAX)
        return s;
    memcpy(buf, s, QUOTE_MAX);
    memcpy(buf + QUOTE_MAX, "...", sizeof "...");
    return buf;
}

/* "a, b, c" from a NULL-terminated list. */
static void join_names(char *buf, size_t len, const char *const *names)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; names[i] && pos < len; i++) {
        int n = snprintf(buf + pos, len - pos, "%s%s", i ? ", " : "", names[i]);
        if (n < 0)
            break;
        pos += (size_t)n;
    }
}

static int is_printable(const char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e)
            return 0;
    return 1;
}

/* RFC 7208 7.1: "%" starts "%{...}", "%%", "%_" or "%-". The letters inside the
 * braces are the SPF engine's to judge. */
static int check_macro_string(const char *s, char *why, size_t wlen)
{
    for (; *s; s++) {
        if (*s != '%')
            continue;
        s++;
        if (*s == '{') {
            const char *close = strchr(s, '}');
            if (!close) {
                say(why, wlen, "a '%%{' has no closing '}' (RFC 7208 7.1)");
                return -1;
            }
            s = close;
        } else if (*s != '%' && *s != '_' && *s != '-') {
            say(why, wlen, "'%%' must be followed by {, %%, _ or - (RFC 7208 7.1)");
            return -1;
        }
    }
    return 0;
}

/* Lower-cases name in place, drops one trailing dot, and checks it is a DNS name. */
static int normalise_dns_name(char *name)
{
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.')
        name[--n] = '\0';
    if (n == 0 || n > DNS_NAME_MAX_LEN)
        return -1;
    size_t label = 0;
    for (char *p = name; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
        if (*p == '.') {
            if (label == 0)
                return -1;
            label = 0;
        } else if (isalnum((unsigned char)*p) || *p == '-' || *p == '_') {
            if (++label > DNS_LABEL_MAX)
                return -1;
        } else {
            return -1;
        }
    }
    return label == 0 ? -1 : 0;
}

static int parse_bool(const char *s, int *out)
{
    for (int i = 0; bool_names[i]; i++)
        if (strcasecmp(s, bool_names[i]) == 0) {
            *out = i % 2 == 0;
            return 0;
        }
    return -1;
}

/* Decimal digits only, no sign; -1 when not a number or too long for any bound. */
static int parse_digits(const char *s, unsigned long *out)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || s[n] != '\0' || n > NUMBER_DIGITS_MAX)
        return -1;
    *out = strtoul(s, NULL, 10);
    return 0;
}

/* "5", "0.5", "600": digits, optionally one dot and more digits. */
static int parse_seconds(const char *s, double *out)
{
    size_t whole = strspn(s, "0123456789");
    size_t frac = 0;
    if (whole == 0 || whole > NUMBER_DIGITS_MAX)
        return -1;
    if (s[whole] == '.') {
        frac = strspn(s + whole + 1, "0123456789");
        if (frac == 0 || frac > NUMBER_DIGITS_MAX)
            return -1;
        frac++;
    }
    if (s[whole + frac] != '\0')
        return -1;
    /* The daemon never calls setlocale(), so strtod's decimal point is '.'. */
    *out = strtod(s, NULL);
    return 0;
}

/* A zero-padded port ("0587") is refused: it reads like octal to some people. */
static int parse_port(const char *s, unsigned *out)
{
    unsigned long v;
    if (parse_digits(s, &v) != 0 || v < 1 || v > PORT_MAX || s[0] == '0')
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* "unix:/abs/path", "host:port" (host an IPv4 address or localhost), "[v6]:port". */
static int check_listen(const char *item, char *why, size_t wlen)
{
    char q[QUOTE_LEN], host[CONFIG_ADDR_LEN];
    unsigned port;
    struct in6_addr a6;
    struct in_addr a4;

    if (strncmp(item, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0) {
        const char *path = item + strlen(UNIX_PREFIX);
        if (path[0] != '/') {
            say(why, wlen, "'%s': a unix socket needs an absolute path", quote(item, q));
            return -1;
        }
        if (strlen(path) > UNIX_PATH_MAX) {
            say(why, wlen, "'%s': a unix socket path must be at most %zu bytes",
                quote(item, q), UNIX_PATH_MAX);
            return -1;
        }
        return 0;
    }
    const char *colon = strrchr(item, ':');
    size_t hostlen = colon ? (size_t)(colon - item) : 0;
    if (colon && hostlen < sizeof host) {
        memcpy(host, item, hostlen);
        host[hostlen] = '\0';
        int ok;
        if (host[0] == '[' && hostlen >= 2 && host[hostlen - 1] == ']') {
            host[hostlen - 1] = '\0';
            ok = inet_pton(AF_INET6, host + 1, &a6) == 1;
        } else {
            ok = inet_pton(AF_INET, host, &a4) == 1 || strcasecmp(host, "localhost") == 0;
        }
        if (ok && parse_port(colon + 1, &port) == 0)
            return 0;
        if (ok) {
            say(why, wlen, "'%s': the port must be between 1 and %d", quote(item, q),
                PORT_MAX);
            return -1;
        }
    }
    say(why, wlen,
        "'%s' must be unix:/path, address:port or [IPv6 address]:port "
        "(address: an IP address or localhost)",
        quote(item, q));
    return -1;
}

/* A TCP address only: what [redis] sentinels lists. */
static int check_hostport(const char *item, char *why, size_t wlen)
{
    char q[QUOTE_LEN];

    if (strncmp(item, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0) {
        say(why, wlen, "'%s': must be address:port or [IPv6 address]:port, not a unix socket",
            quote(item, q));
        return -1;
    }
    return check_listen(item, why, wlen);
}

/* RFC 3463 2: class "." subject "." detail, subject and detail of 1 to 3 digits. */
static int check_status(const char *s, const struct option *o, char *why, size_t wlen)
{
    size_t subject = 0, detail = 0;
    int ok = s[0] >= '0' + (int)o->min && s[0] <= '0' + (int)o->max && s[1] == '.';

    if (ok) {
        subject = strspn(s + 2, "0123456789");
        ok = subject >= 1 && subject <= 3 && s[2 + subject] == '.';
    }
    if (ok) {
        detail = strspn(s + 3 + subject, "0123456789");
        ok = detail >= 1 && detail <= 3 && s[3 + subject + detail] == '\0';
    }
    if (!ok) {
        say(why, wlen, "must be an RFC 3463 status code %.0f.X.Y (X and Y of 1 to 3 digits)",
            o->min);
        return -1;
    }
    return 0;
}

/* c-ares accepts "v4", "v4:port", "v6" and "[v6]:port" (ares_set_servers_ports_csv). */
static int check_server(const char *item, char *why, size_t wlen)
{
    char q[QUOTE_LEN], host[INET6_ADDRSTRLEN];
    unsigned port;
    struct in6_addr a6;
    struct in_addr a4;
    const char *colon = strchr(item, ':');

    if (item[0] == '[') {
        const char *close = strstr(item, "]:");
        size_t n = close ? (size_t)(close - item - 1) : 0;
        if (close && n < sizeof host) {
            memcpy(host, item + 1, n);
            host[n] = '\0';
            if (inet_pton(AF_INET6, host, &a6) == 1 && parse_port(close + 2, &port) == 0)
                return 0;
        }
    } else if (colon && strchr(colon + 1, ':')) {
        if (inet_pton(AF_INET6, item, &a6) == 1)
            return 0;
    } else if (colon) {
        size_t n = (size_t)(colon - item);
        if (n < sizeof host) {
            memcpy(host, item, n);
            host[n] = '\0';
            if (inet_pton(AF_INET, host, &a4) == 1 && parse_port(colon + 1, &port) == 0)
                return 0;
        }
    } else if (inet_pton(AF_INET, item, &a4) == 1) {
        return 0;
    }
    say(why, wlen,
        "'%s' must be an IP address, optionally with a port: 192.0.2.53, "
        "192.0.2.53:5300, 2001:db8::53 or [2001:db8::53]:5300",
        quote(item, q));
    return -1;
}

/* Host bits beyond the prefix are the likely typo: say which block was meant. */
static void explain_bad_cidr(const char *item, char *why, size_t wlen)
{
    char q[QUOTE_LEN], addr[NETADDR_STRLEN], net[NETADDR_STRLEN];
    const char *slash = strchr(item, '/');
    netaddr_t a;
    netcidr_t c;
    unsigned long prefix;

    if (slash && (size_t)(slash - item) < sizeof addr) {
        memcpy(addr, item, (size_t)(slash - item));
        addr[slash - item] = '\0';
        /* Not for mapped IPv6 text: its prefix counts IPv6 bits. */
        if (netaddr_parse(&a, addr) == 0 && !(a.family == AF_INET && strchr(addr, ':')) &&
            parse_digits(slash + 1, &prefix) == 0 &&
            prefix <= (a.family == AF_INET ? IPV4_BITS : IPV6_BITS)) {
            netaddr_network(&c, &a, (unsigned)prefix, (unsigned)prefix);
            say(why, wlen, "'%s' has bits set beyond the /%lu prefix; did you mean %s?",
                quote(item, q), prefix, netcidr_format(&c, net, sizeof net));
            return;
        }
    }
    say(why, wlen, "'%s' is not an IP address or address/prefix block", quote(item, q));
}

/* Adds one list entry. */
static int add_item(struct config *cfg, const struct option *o, char *item, char *why,
                    size_t wlen)
{
    char q[QUOTE_LEN];
    void *f = field(cfg, o);

    switch (o->type) {
    case OPT_CIDRS: {
        cidr_list_t *l = f;
        if (l->n == CONFIG_MAX_CIDRS)
            goto full;
        if (netcidr_parse(&l->cidr[l->n], item) != 0) {
            explain_bad_cidr(item, why, wlen);
            return -1;
        }
        l->n++;
        return 0;
    }
    case OPT_NAMES:
    case OPT_WORDS: {
        name_list_t *l = f;
        if (l->n == CONFIG_MAX_NAMES)
            goto full;
        if (o->type == OPT_NAMES && normalise_dns_name(item) != 0) {
            say(why, wlen,
                "'%s' is not a domain name (dot-separated labels of 1 to %d letters, "
                "digits, '-' or '_'; at most %d bytes)",
                quote(item, q), DNS_LABEL_MAX, DNS_NAME_MAX_LEN);
            return -1;
        }
        if (!is_printable(item) || strlen(item) >= CONFIG_NAME_LEN) {
            say(why, wlen, "'%s' must be printable ASCII of at most %d bytes",
                quote(item, q), CONFIG_NAME_LEN - 1);
            return -1;
        }
        memcpy(l->name[l->n++], item, strlen(item) + 1);
        return 0;
    }
    case OPT_PORTS: {
        size_t *n = count_field(cfg, o);
        unsigned *ports = f;
        if (*n == CONFIG_MAX_PORTS)
            goto full;
        if (parse_port(item, &ports[*n]) != 0) {
            say(why, wlen, "'%s' is not a port: must be between 1 and %d",
                quote(item, q), PORT_MAX);
            return -1;
        }
        (*n)++;
        return 0;
    }
    case OPT_LISTEN:
    case OPT_HOSTPORTS: {
        size_t *n = count_field(cfg, o);
        char (*listen)[CONFIG_ADDR_LEN] = f;
        if (*n == (o->type == OPT_LISTEN ? CONFIG_MAX_LISTEN : CONFIG_MAX_SENTINELS))
            goto full;
        if (strlen(item) >= CONFIG_ADDR_LEN) {
            say(why, wlen, "'%s' is longer than %d bytes", quote(item, q),
                CONFIG_ADDR_LEN - 1);
            return -1;
        }
        if ((o->type == OPT_LISTEN ? check_listen(item, why, wlen)
                                   : check_hostport(item, why, wlen)) != 0)
            return -1;
        memcpy(listen[(*n)++], item, strlen(item) + 1);
        return 0;
    }
    case OPT_SERVERS: {
        char *list = f;
        size_t used = strlen(list);
        if (check_server(item, why, wlen) != 0)
            return -1;
        if (used + (used ? 1 : 0) + strlen(item) >= o->size) {
            say(why, wlen, "too many servers: the list must fit in %zu bytes",
                o->size - 1);
            return -1;
        }
        snprintf(list + used, o->size - used, "%s%s", used ? "," : "", item);
        return 0;
    }
    default:
        log_panic("config: [%s] %s is not a list", o->section, o->key);
    }

full:
    say(why, wlen, "too many entries (at most %zu)",
        o->type == OPT_CIDRS ? (size_t)CONFIG_MAX_CIDRS
        : o->type == OPT_PORTS ? (size_t)CONFIG_MAX_PORTS
        : o->type == OPT_LISTEN ? (size_t)CONFIG_MAX_LISTEN
        : o->type == OPT_HOSTPORTS ? (size_t)CONFIG_MAX_SENTINELS
        : (size_t)CONFIG_MAX_NAMES);
    return -1;
}

static int is_list(const struct option *o)
{
    return o->type == OPT_CIDRS || o->type == OPT_NAMES || o->type == OPT_WORDS ||
           o->type == OPT_PORTS || o->type == OPT_LISTEN || o->type == OPT_SERVERS ||
           o->type == OPT_HOSTPORTS;
}

/* Adds the entries of value (comma and/or blank separated); first empties the list. */
static int set_list(struct config *cfg, const struct option *o, const char *value, int first,
                    char *why, size_t wlen)
{
    static const char seps[] = ", \t";

    if (first) {
        memset(field(cfg, o), 0, o->size);
        if (o->type == OPT_PORTS || o->type == OPT_LISTEN || o->type == OPT_HOSTPORTS)
            *count_field(cfg, o) = 0;
    }
    for (const char *p = value + strspn(value, seps); *p; p += strspn(p, seps)) {
        /* Longer than any legal entry of any list: cut so the error can quote it. */
        char item[CONFIG_ADDR_LEN + CONFIG_NAME_LEN];
        size_t n = strcspn(p, seps);
        size_t keep = n < sizeof item ? n : sizeof item - 1;
        memcpy(item, p, keep);
        item[keep] = '\0';
        p += n;
        if (add_item(cfg, o, item, why, wlen) != 0)
            return -1;
    }
    return 0;
}

static int set_enum(int *dst, const char *value, const char *const *names, char *why,
                    size_t wlen)
{
    char legal[REASON_LEN];
    for (int i = 0; names[i]; i++)
        if (strcasecmp(value, names[i]) == 0) {
            *dst = i;
            return 0;
        }
    join_names(legal, sizeof legal, names);
    say(why, wlen, "must be one of: %s", legal);
    return -1;
}

/* Sets a scalar option from its text. */
static int set_scalar(struct config *cfg, const struct option *o, const char *value, char *why,
                      size_t wlen)
{
    char buf[CONFIG_NAME_LEN];
    void *f = field(cfg, o);
    unsigned long u;
    double d;

    switch (o->type) {
    case OPT_TEXT:
        if (!is_printable(value)) {
            say(why, wlen, "must be printable ASCII");
            return -1;
        }
        if (check_macro_string(value, why, wlen) != 0)
            return -1;
        return set_text(f, o->size, value, why, wlen);
    case OPT_WORD:
        if (!is_printable(value) || strpbrk(value, " :")) {
            say(why, wlen, "must be one word without blanks or ':'");
            return -1;
        }
        return set_text(f, o->size, value, why, wlen);
    case OPT_TOKEN:
        if (!is_printable(value) || strchr(value, ' ')) {
            say(why, wlen, "must be printable ASCII without blanks");
            return -1;
        }
        return set_text(f, o->size, value, why, wlen);
    case OPT_PLAIN:
        if (!is_printable(value)) {
            say(why, wlen, "must be printable ASCII");
            return -1;
        }
        return set_text(f, o->size, value, why, wlen);
    case OPT_STATUS:
        if (check_status(value, o, why, wlen) != 0)
            return -1;
        return set_text(f, o->size, value, why, wlen);
    case OPT_ADDRESS:
        if (value[0] == '\0')
            return set_text(f, o->size, value, why, wlen);
        if (strlen(value) >= o->size) {
            say(why, wlen, "must be at most %zu bytes", o->size - 1);
            return -1;
        }
        if (check_listen(value, why, wlen) != 0)
            return -1;
        return set_text(f, o->size, value, why, wlen);
    case OPT_DNSNAME:
        if (value[0] == '\0')
            return set_text(f, o->size, value, why, wlen);
        if (set_text(buf, sizeof buf, value, why, wlen) != 0 || normalise_dns_name(buf) != 0) {
            say(why, wlen,
                "must be empty or a domain name (dot-separated labels of 1 to %d "
                "letters, digits, '-' or '_'; at most %d bytes)",
                DNS_LABEL_MAX, DNS_NAME_MAX_LEN);
            return -1;
        }
        return set_text(f, o->size, buf, why, wlen);
    case OPT_BOOL: {
        char legal[REASON_LEN];
        if (parse_bool(value, f) == 0)
            return 0;
        join_names(legal, sizeof legal, bool_names);
        say(why, wlen, "must be one of: %s", legal);
        return -1;
    }
    case OPT_UNSIGNED:
        if (parse_digits(value, &u) != 0) {
            say(why, wlen, "must be a whole number between %.0f and %.0f", o->min, o->max);
            return -1;
        }
        if (u < o->min || u > o->max) {
            say(why, wlen, "must be between %.0f and %.0f", o->min, o->max);
            return -1;
        }
        *(unsigned *)f = (unsigned)u;
        return 0;
    case OPT_SECONDS:
        if (parse_seconds(value, &d) != 0) {
            say(why, wlen, "must be a number of seconds between %g and %g", o->min,
                o->max);
            return -1;
        }
        if (d < o->min || d > o->max) {
            say(why, wlen, "must be between %g and %g seconds", o->min, o->max);
            return -1;
        }
        *(double *)f = d;
        return 0;
    case OPT_MODE: {
        size_t n = strspn(value, "01234567");
        if (n == 0 || value[n] != '\0' || n > NUMBER_DIGITS_MAX ||
            (u = strtoul(value, NULL, 8)) > SOCKET_MODE_MAX) {
            say(why, wlen, "must be an octal mode between 0 and %04o", SOCKET_MODE_MAX);
            return -1;
        }
        *(unsigned *)f = (unsigned)u;
        return 0;
    }
    case OPT_ENUM:
        return set_enum(f, value, o->names, why, wlen);
    case OPT_ACTION: {
        const char *names[ACTION_COUNT + 1];
        for (int i = 0; i < ACTION_COUNT; i++)
            names[i] = action_name((enum action)i);
        names[ACTION_COUNT] = NULL;
        return set_enum(f, value, names, why, wlen);
    }
    case OPT_FACILITY: {
        const char *names[sizeof facilities / sizeof facilities[0] + 1];
        size_t i;
        for (i = 0; i < sizeof facilities / sizeof facilities[0]; i++) {
            if (strcasecmp(value, facilities[i].name) == 0) {
                *(int *)f = facilities[i].value;
                return 0;
            }
            names[i] = facilities[i].name;
        }
        names[i] = NULL;
        char legal[REASON_LEN];
        join_names(legal, sizeof legal, names);
        say(why, wlen, "must be one of: %s", legal);
        return -1;
    }
    default:
        log_panic("config: [%s] %s is a list", o->section, o->key);
    }
}

/* A text continued on an indented line gets its words after a blank. */
static int append_text(struct config *cfg, const struct option *o, const char *value,
                       char *why, size_t wlen)
{
    char joined[sizeof((struct config *)0)->default_explanation];
    char *cur = field(cfg, o);
    size_t have = strlen(cur);
    int n = snprintf(joined, sizeof joined, "%s%s%s", cur, have ? " " : "", value);
    if (n < 0 || (size_t)n >= o->size || (size_t)n >= sizeof joined) {
        say(why, wlen, "must be at most %zu bytes", o->size - 1);
        return -1;
    }
    return set_scalar(cfg, o, joined, why, wlen);
}

/* ---- the file ---------------------------------------------------------------- */

static const struct option *find_option(const char *section, const char *key)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strcasecmp(options[i].section, section) == 0 && strcasecmp(options[i].key, key) == 0)
            return &options[i];
    return NULL;
}

static int known_section(const char *section)
{
    for (size_t i = 0; sections[i]; i++)
        if (strcasecmp(sections[i], section) == 0)
            return 1;
    return 0;
}

static void fail(struct loader *ld, const char *section, const char *key, const char *why)
{
    if (section[0] != '\0')
        say(ld->err, CONFIG_ERR_LEN, "%s:%d: [%s] %s: %s", ld->path, ld->lineno, section,
            key, why);
    else
        say(ld->err, CONFIG_ERR_LEN, "%s:%d: %s: %s", ld->path, ld->lineno, key, why);
    ld->err_line = ld->lineno;
}

/* Why section/key names no option: the keys of the section, or the sections. */
static void explain_unknown(const char *section, char *why, size_t wlen)
{
    char list[REASON_LEN];
    size_t pos = 0;

    list[0] = '\0';
    if (known_section(section)) {
        for (size_t i = 0; i < NOPTIONS && pos < sizeof list; i++) {
            if (strcasecmp(options[i].section, section) != 0)
                continue;
            int n = snprintf(list + pos, sizeof list - pos, "%s%s", pos ? ", " : "",
                             options[i].key);
            if (n < 0)
                break;
            pos += (size_t)n;
        }
        say(why, wlen, "unknown key; [%s] has: %s", section, list);
        return;
    }
    join_names(list, sizeof list, sections);
    if (section[0] == '\0')
        say(why, wlen, "not inside a [section]; sections are: %s", list);
    else
        say(why, wlen, "unknown section; sections are: %s", list);
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
    struct loader *ld = user;
    char why[REASON_LEN];
    const struct option *o = find_option(section, key);
    int rc;

    if (!o) {
        explain_unknown(section, why, sizeof why);
        fail(ld, section, key, why);
        return 0;
    }
    size_t idx = (size_t)(o - options);
    if (ld->continuation) {
        if (is_list(o)) {
            rc = set_list(ld->cfg, o, value, 0, why, sizeof why);
        } else if (o->type == OPT_TEXT || o->type == OPT_PLAIN) {
            rc = append_text(ld->cfg, o, value, why, sizeof why);
        } else {
            say(why, sizeof why,
                "an indented line continues the previous value, and this option takes "
                "one word; start keys at the beginning of the line");
            rc = -1;
        }
    } else if (ld->seen[idx] && !is_list(o)) {
        say(why, sizeof why, "set twice (first on line %d)", ld->seen[idx]);
        rc = -1;
    } else {
        int first = ld->seen[idx] == 0;
        if (first)
            ld->seen[idx] = ld->lineno;
        ld->prev = o;
        rc = is_list(o) ? set_list(ld->cfg, o, value, first, why, sizeof why)
                        : set_scalar(ld->cfg, o, value, why, sizeof why);
    }
    if (rc != 0) {
        fail(ld, section, key, why);
        return 0;
    }
    return 1;
}

/* inih's line source: one physical line per call, so ld->lineno is inih's count. */
static char *read_line(char *str, int num, void *stream)
{
    struct loader *ld = stream;

    if (ld->err_line || !fgets(str, num, ld->f))
        return NULL;
    ld->lineno++;
    size_t len = strlen(str);
    if (len == (size_t)num - 1 && str[len - 1] != '\n') {
        int c = getc(ld->f);
        if (c != EOF) {
            say(ld->err, CONFIG_ERR_LEN,
                "%s:%d: line is longer than %d bytes; continue a long value on "
                "indented lines",
                ld->path, ld->lineno, num - 2);
            ld->err_line = ld->lineno;
            return NULL;
        }
    }
    /* Mirror inih's order of tests, which decides what the line is. */
    const char *s = str;
    while (isspace((unsigned char)*s))
        s++;
    ld->continuation = 0;
    if (*s == '\0' || *s == ';' || *s == '#')
        return str;
    if (s > str && ld->prev)
        ld->continuation = 1;
    else if (*s == '[')
        ld->prev = NULL;
    return str;
}

void config_defaults(struct config *cfg)
{
    char why[REASON_LEN];

    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NOPTIONS; i++) {
        const struct option *o = &options[i];
        int rc = is_list(o) ? set_list(cfg, o, o->def, 1, why, sizeof why)
                            : set_scalar(cfg, o, o->def, why, sizeof why);
        if (rc != 0)
            log_panic("config: built-in default of [%s] %s: %s", o->section, o->key, why);
    }
}

int config_load(struct config *cfg, const char *path, char err[CONFIG_ERR_LEN])
{
    struct loader ld;
    char why[REASON_LEN];

    config_defaults(cfg);
    if (set_text(cfg->path, sizeof cfg->path, path, why, sizeof why) != 0) {
        say(err, CONFIG_ERR_LEN, "%s: cannot open: path %s", path, why);
        return -1;
    }
    memset(&ld, 0, sizeof ld);
    ld.cfg = cfg;
    ld.path = path;
    ld.err = err;
    ld.f = fopen(path, "r");
    if (!ld.f) {
        say(err, CONFIG_ERR_LEN, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    errno = 0;
    int rc = ini_parse_stream(read_line, &ld, on_key, &ld);
    int read_error = ferror(ld.f) ? (errno ? errno : EIO) : 0;
    fclose(ld.f);

    if (rc > 0 && (ld.err_line == 0 || rc < ld.err_line)) {
        say(err, CONFIG_ERR_LEN,
            "%s:%d: syntax error: expected [section], key = value, or a comment",
            path, rc);
        return -1;
    }
    if (ld.err_line)
        return -1;
    if (read_error) {
        say(err, CONFIG_ERR_LEN, "%s: cannot read: %s", path, strerror(read_error));
        return -1;
    }
    return 0;
}

int config_validate(const struct config *cfg, char err[CONFIG_ERR_LEN])
{
    const char *path = cfg->path[0] ? cfg->path : "built-in defaults";

    if (cfg->nlisten == 0) {
        say(err, CONFIG_ERR_LEN, "%s: [server] listen: at least one listener is needed",
            path);
        return -1;
    }
    for (size_t i = 0; i < cfg->nlisten; i++)
        for (size_t j = i + 1; j < cfg->nlisten; j++)
            if (strcmp(cfg->listen[i], cfg->listen[j]) == 0) {
                say(err, CONFIG_ERR_LEN, "%s: [server] listen: '%s' is listed twice",
                    path, cfg->listen[i]);
                return -1;
            }
    if (cfg->nredis_sentinels > 0 && cfg->redis_address[0]) {
        say(err, CONFIG_ERR_LEN,
            "%s: [redis] address and sentinels: set one of them (with sentinels, the "
            "sentinels name the master)", path);
        return -1;
    }
    if ((cfg->nredis_sentinels > 0) != (cfg->redis_master_name[0] != '\0')) {
        say(err, CONFIG_ERR_LEN, "%s: [redis] sentinels and master_name go together", path);
        return -1;
    }
    if (cfg->reputation_action != REPUTATION_NONE && !cfg->redis_address[0] &&
        cfg->nredis_sentinels == 0) {
        say(err, CONFIG_ERR_LEN,
            "%s: [reputation] action: the reputation lives in Redis; set [redis] address "
            "or sentinels", path);
        return -1;
    }
    return 0;
}
