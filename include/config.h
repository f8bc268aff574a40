/* config.h - the daemon's configuration: built-in defaults, the INI file (inih), and
 * its validation.
 *
 * Owns struct config, a plain value (no pointers into other memory), so a reload can
 * build a new one and swap it in only when it is valid. Every option is one row of the
 * table in config.c (name, default, bounds) and one documented line of
 * policy.ini.example. Errors read "FILE:LINE: [section] key: reason". */
#ifndef CONFIG_H
#define CONFIG_H

#include <stddef.h>
#include <limits.h>
#include "netaddr.h"
#include "verdict.h"

#define CONFIG_ERR_LEN 512
/* Caps on list options: a config is written by a person, these are far above any
 * real site and keep struct config a fixed-size value. */
#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_CIDRS 256
#define CONFIG_MAX_NAMES 256
#define CONFIG_MAX_PORTS 16
#define CONFIG_NAME_LEN 256       /* a DNS name (253) plus room to say it is too long */
#define CONFIG_ADDR_LEN 256       /* "unix:/path" or "host:port" */
#define CONFIG_MAX_SENTINELS 16
/* A Redis password or key prefix: far longer than anyone types, short enough for a
 * fixed-size struct config. */
#define CONFIG_SECRET_LEN 256
#define CONFIG_PREFIX_LEN 64
/* RFC 3463 "class.subject.detail": three digits and two 3-digit fields at most. */
#define CONFIG_STATUS_LEN 12

enum engine { ENGINE_LIBSPF2, ENGINE_NATIVE };
enum header_style { HEADER_RECEIVED_SPF, HEADER_AUTH_RESULTS, HEADER_BOTH, HEADER_NONE };
enum reputation_action { REPUTATION_NONE, REPUTATION_REJECT, REPUTATION_DEFER };

typedef struct name_list {
    size_t n;
    char name[CONFIG_MAX_NAMES][CONFIG_NAME_LEN];   /* lower-case, no trailing dot */
} name_list_t;

typedef struct cidr_list {
    size_t n;
    netcidr_t cidr[CONFIG_MAX_CIDRS];
} cidr_list_t;

struct config {
    char path[PATH_MAX];                  /* file it came from; "" for built-in defaults */

    /* [server] */
    size_t nlisten;
    char listen[CONFIG_MAX_LISTEN][CONFIG_ADDR_LEN];  /* "unix:/path" or "host:port", "[v6]:port" */
    unsigned socket_mode;                 /* unix sockets, octal in the file */
    char socket_owner[64];                /* user name, "" = leave as created */
    char socket_group[64];
    char user[64];                        /* drop privileges to this user after binding; "" = stay */
    unsigned max_connections;
    double idle_timeout;                  /* seconds a connection may wait between requests */

    /* [dns] */
    char dns_servers[1024];               /* c-ares "host[:port],..." list; "" = /etc/resolv.conf */
    double dns_timeout;                   /* seconds per query attempt */
    unsigned dns_tries;
    unsigned dns_max_inflight;            /* queries outstanding to the servers at once */
    unsigned dns_cache_size;              /* answers kept in memory */
    unsigned dns_max_ttl;                 /* seconds; longer TTLs are cut to this */
    unsigned dns_negative_ttl;            /* seconds, upper bound for NXDOMAIN/NODATA (RFC 2308) */
    unsigned dns_error_ttl;               /* seconds a SERVFAIL/timeout is remembered */

    /* [spf] */
    enum engine engine;
    double request_timeout;               /* time budget for one check (RFC 7208 4.6.4: >= 20 s) */
    int check_helo;                       /* 0: skip the HELO identity (except for the null sender) */
    char receiver[CONFIG_NAME_LEN];       /* receiver= and %{r}; "" = this host's name */
    char default_explanation[512];        /* macro-string used for fail without exp= */
    unsigned verdict_cache_size;

    /* [action] result -> action, per identity */
    enum action helo_action[7];           /* indexed by enum spf_result */
    enum action mailfrom_action[7];

    /* [header] */
    enum header_style header_style;
    char authserv_id[CONFIG_NAME_LEN];    /* "" = this host's name */

    /* [skip] */
    cidr_list_t skip_clients;
    int skip_sasl;
    name_list_t skip_policy_contexts;
    size_t nskip_ports;
    unsigned skip_server_ports[CONFIG_MAX_PORTS];

    /* [whitelist] */
    cidr_list_t whitelist_clients;
    name_list_t whitelist_helo;           /* HELO name, forward-confirmed to the client IP */
    name_list_t whitelist_senders;        /* sender domain or its subdomains */
    name_list_t whitelist_ptr;            /* FCrDNS name at or below these domains */

    /* [log] */
    int log_level;                        /* enum log_level */
    int log_facility;                     /* LOG_MAIL ... */
    int log_stderr;                       /* 1 = stderr instead of syslog */

    /* [redis] shared store; no address and no sentinels: no Redis at all */
    char redis_address[CONFIG_ADDR_LEN];  /* "unix:/path", "host:port", "[v6]:port" or "" */
    char redis_username[64];              /* Redis 6 ACL user, "" = AUTH with the password only */
    char redis_password[CONFIG_SECRET_LEN];
    unsigned redis_database;
    char redis_prefix[CONFIG_PREFIX_LEN]; /* put in front of every key */
    double redis_timeout;                 /* seconds one command may take */
    double redis_connect_timeout;         /* seconds to connect and authenticate */
    double redis_retry_max;               /* longest wait between reconnection attempts */
    unsigned redis_max_pending;           /* commands sent and not answered yet */
    unsigned redis_error_ttl;             /* seconds a temporary error is shared */
    size_t nredis_sentinels;
    char redis_sentinels[CONFIG_MAX_SENTINELS][CONFIG_ADDR_LEN];  /* "host:port" */
    char redis_master_name[64];

    /* [reputation] counters per sender domain, client IP and client network */
    double reputation_window;             /* seconds: the time constant of the decay */
    double reputation_flush;              /* seconds between writes of local counts */
    double reputation_refresh;            /* seconds a fetched reputation is reused */
    unsigned reputation_cache_size;
    enum reputation_action reputation_action;
    unsigned reputation_min_checks;
    unsigned reputation_fail_percent;
    int reputation_count_softfail;
    char reputation_reject_status[CONFIG_STATUS_LEN];
    char reputation_defer_status[CONFIG_STATUS_LEN];
    char reputation_text[256];
    int reputation_header;                /* x-spf-reputation= in Received-SPF */
};

/* Fills cfg with the built-in defaults (what `make run` gets). */
void config_defaults(struct config *cfg);
/* Loads path over the defaults. 0 on success; -1 with err filled
 * ("FILE:LINE: [section] key: reason" or "FILE: cannot open: reason"). */
int config_load(struct config *cfg, const char *path, char err[CONFIG_ERR_LEN]);
/* Checks cross-option rules after loading (at least one listener, ...). */
int config_validate(const struct config *cfg, char err[CONFIG_ERR_LEN]);

#endif
