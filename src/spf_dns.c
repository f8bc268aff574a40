/* spf_dns.c - libspf2's DNS layer: answers from one check's known answers only. */
#include "spf_dns.h"

#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "log.h"
#include "spf.h"
#include "spf_record.h"

#define SPF_VERSION_TAG "v=spf1"

const dns_answer_t *spf_dns_run_find(const spf_dns_run_t *run, const char *name, int type)
{
    for (size_t i = 0; i < run->nknown; i++)
        if (run->known[i]->type == type && strcmp(run->known[i]->name, name) == 0)
            return run->known[i];
    return NULL;
}

int spf_dns_run_add(spf_dns_run_t *run, const dns_answer_t *a)
{
    if (spf_dns_run_find(run, a->name, a->type))
        return 0;
    if (run->nknown == SPF_DNS_MAX_KNOWN)
        return -1;
    run->known[run->nknown++] = dns_answer_ref(a);
    return 0;
}

void spf_dns_run_clear(spf_dns_run_t *run)
{
    for (size_t i = 0; i < run->nknown; i++)
        dns_answer_unref(run->known[i]);
    run->nknown = 0;
}

static void run_over_limit(spf_dns_run_t *run, const char *why)
{
    if (!run->over_limit)
        snprintf(run->problem, sizeof(run->problem), "%s", why);
    run->over_limit = 1;
}

/* The answer for (name, type): from the check, else from the DNS cache (then kept by
 * the check, so a replay sees the same data even if the cache evicts it). */
static const dns_answer_t *run_answer(spf_dns_run_t *run, const char *name, int type)
{
    const dns_answer_t *a = spf_dns_run_find(run, name, type);

    if (a)
        return a;
    a = dns_peek(run->dns, name, type);
    if (!a)
        return NULL;
    if (spf_dns_run_add(run, a) < 0) {
        run_over_limit(run, "too many DNS answers for one check");
        return NULL;
    }
    return a;
}

static void key_add(spf_dns_key_t *keys, size_t *n, size_t max, const char *name, int type)
{
    for (size_t i = 0; i < *n; i++)
        if (keys[i].type == type && strcmp(keys[i].name, name) == 0)
            return;
    if (*n == max)
        return;
    snprintf(keys[*n].name, sizeof(keys[*n].name), "%s", name);
    keys[*n].type = type;
    (*n)++;
}

static void run_miss(spf_dns_run_t *run, const char *name, int type)
{
    if (run->nmiss == SPF_DNS_MAX_MISSES) {
        run_over_limit(run, "too many DNS lookups pending");
        return;
    }
    key_add(run->miss, &run->nmiss, SPF_DNS_MAX_MISSES, name, type);
}

/* A or AAAA of a name that an MX or PTR answer of this check gave: part of an mx or
 * ptr term (or %{p}), not a term of its own. */
static int is_address_of_known_target(const spf_dns_run_t *run, const char *name)
{
    for (size_t i = 0; i < run->nknown; i++) {
        const dns_answer_t *a = run->known[i];
        for (size_t j = 0; j < a->count; j++) {
            const char *target = a->type == DNS_T_MX ? a->rr[j].u.mx.name
                                 : a->type == DNS_T_PTR ? a->rr[j].u.ptr : NULL;
            if (target && strcasecmp(target, name) == 0)
                return 1;
        }
    }
    return 0;
}

static SPF_dns_rr_t *rr_new(SPF_dns_server_t *layer, const char *name, ns_type type,
                            int ttl, int herrno)
{
    SPF_dns_rr_t *rr = SPF_dns_rr_new_init(layer, name, type, ttl, herrno);

    /* libspf2 aborts on a NULL answer; out of memory is fatal either way. */
    if (!rr)
        log_panic("out of memory building a DNS answer for libspf2");
    return rr;
}

static void *rr_slot(SPF_dns_rr_t *rr, int idx, size_t len)
{
    if (SPF_dns_rr_buf_realloc(rr, idx, len) != SPF_E_SUCCESS)
        log_panic("out of memory building a DNS answer for libspf2");
    return rr->rr[idx];
}

static int herrno_of(enum dns_status st)
{
    switch (st) {
    case DNS_OK: return NETDB_SUCCESS;
    case DNS_NODATA: return NO_DATA;
    case DNS_NXDOMAIN: return HOST_NOT_FOUND;
    default: return TRY_AGAIN;
    }
}

static SPF_dns_rr_t *rr_from_answer(SPF_dns_server_t *layer, const dns_answer_t *a,
                                    ns_type type)
{
    SPF_dns_rr_t *rr = rr_new(layer, a->name, type, (int)a->ttl, herrno_of(a->status));

    for (size_t i = 0; i < a->count; i++) {
        const dns_rr_t *r = &a->rr[i];
        SPF_dns_rr_data_t *d;
        switch (a->type) {
        case DNS_T_A:
            d = rr_slot(rr, (int)i, sizeof(*d));
            d->a = r->u.a;
            break;
        case DNS_T_AAAA:
            d = rr_slot(rr, (int)i, sizeof(*d));
            d->aaaa = r->u.aaaa;
            break;
        case DNS_T_MX:
            d = rr_slot(rr, (int)i, strlen(r->u.mx.name) + 1);
            memcpy(d->mx, r->u.mx.name, strlen(r->u.mx.name) + 1);
            break;
        case DNS_T_PTR:
            d = rr_slot(rr, (int)i, strlen(r->u.ptr) + 1);
            memcpy(d->ptr, r->u.ptr, strlen(r->u.ptr) + 1);
            break;
        default:
            d = rr_slot(rr, (int)i, r->u.txt.len + 1);
            memcpy(d->txt, r->u.txt.data, r->u.txt.len + 1);
            break;
        }
    }
    rr->num_rr = (int)a->count;
    return rr;
}

/* libspf2 1.2.10 expands a literal space in an explanation as '%' and then leaves the
 * next macro unexpanded; "%_" is the macro for a space (RFC 7208 7.3) and comes out
 * right, so the text it gets has every space written that way. */
static SPF_dns_rr_t *rr_explanation(SPF_dns_server_t *layer, const dns_answer_t *a)
{
    const char *txt = a->rr[0].u.txt.data;
    size_t spaces = 0, len = a->rr[0].u.txt.len, o = 0;
    SPF_dns_rr_t *rr = rr_new(layer, a->name, ns_t_txt, (int)a->ttl, NETDB_SUCCESS);
    SPF_dns_rr_data_t *d;

    for (size_t i = 0; i < len; i++)
        spaces += txt[i] == ' ';
    d = rr_slot(rr, 0, len + spaces + 1);
    for (size_t i = 0; i < len; i++) {
        if (txt[i] == ' ') {
            d->txt[o++] = '%';
            d->txt[o++] = '_';
        } else {
            d->txt[o++] = txt[i];
        }
    }
    d->txt[o] = '\0';
    rr->num_rr = 1;
    return rr;
}

static int is_printable_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* CVE-2023-42118: no term may be long enough, or hold macros enough, to overrun
 * libspf2's compile buffer. Returns a reason, or NULL when text is safe. */
static const char *guard_reason(const char *text, size_t len)
{
    size_t i = 0;

    if (len > SPF_DNS_RECORD_MAX)
        return "record longer than 2048 bytes";
    while (i < len) {
        size_t start, macros = 0;
        while (i < len && text[i] == ' ')
            i++;
        start = i;
        while (i < len && text[i] != ' ') {
            if (text[i] == '%' && i + 1 < len && text[i + 1] == '{')
                macros++;
            i++;
        }
        if (i - start > SPF_DNS_TERM_MAX)
            return "a term longer than 255 bytes";
        if (macros > SPF_DNS_TERM_MACROS_MAX)
            return "a term with more than 16 macros";
    }
    return NULL;
}

/* libspf2 compiles an explanation as one macro-string into the same 511-byte buffer as
 * a term, with spaces as "%_": the same bounds as a term keep it safe. */
static int explanation_refused(const char *text, size_t len)
{
    size_t spaces = 0, macros = 0;

    for (size_t i = 0; i < len; i++) {
        spaces += text[i] == ' ';
        macros += text[i] == '%' && i + 1 < len && text[i + 1] == '{';
    }
    return len + spaces > SPF_DNS_TERM_MAX || macros > SPF_DNS_TERM_MACROS_MAX;
}

static unsigned macro_uses(const char *text)
{
    unsigned uses = 0;

    for (const char *p = strstr(text, "%{"); p; p = strstr(p + 2, "%{")) {
        switch (tolower((unsigned char)p[2])) {
        case 'l': case 's': uses |= SPF_USES_LOCALPART; break;
        case 'h': uses |= SPF_USES_HELO; break;
        default: break;
        }
    }
    return uses;
}

/* The literal targets of a record's terms, fetched in parallel before libspf2 asks
 * for them one by one. Targets with macros depend on the evaluation: skipped. */
static void note_prefetch(spf_dns_run_t *run, const char *record, const char *domain)
{
    const char *p = record + strlen(SPF_VERSION_TAG);
    int addr_type = run->family == AF_INET6 ? DNS_T_AAAA : DNS_T_A;

    while (*p) {
        char term[SPF_DNS_TERM_MAX + 1], target_name[SPF_DNS_TERM_MAX + 1], name[DNS_NAME_MAX + 1];
        const char *t, *target = NULL;
        size_t n = 0;
        int type = 0;

        while (*p == ' ')
            p++;
        while (p[n] && p[n] != ' ')
            n++;
        if (n == 0)
            break;
        snprintf(term, sizeof(term), "%.*s", (int)(n < SPF_DNS_TERM_MAX ? n : SPF_DNS_TERM_MAX), p);
        p += n;
        t = term;
        if (*t == '+' || *t == '-' || *t == '~' || *t == '?')
            t++;
        if (strncasecmp(t, "include:", 8) == 0) {
            target = t + 8; type = DNS_T_TXT;
        } else if (strncasecmp(t, "redirect=", 9) == 0) {
            target = t + 9; type = DNS_T_TXT;
        } else if (strncasecmp(t, "exp=", 4) == 0) {
            target = t + 4; type = DNS_T_TXT;
        } else if (strncasecmp(t, "exists:", 7) == 0) {
            target = t + 7; type = DNS_T_A;
        } else if (strncasecmp(t, "a:", 2) == 0) {
            target = t + 2; type = addr_type;
        } else if (strncasecmp(t, "mx:", 3) == 0) {
            target = t + 3; type = DNS_T_MX;
        } else if (strcasecmp(t, "a") == 0 || strncasecmp(t, "a/", 2) == 0) {
            target = domain; type = addr_type;
        } else if (strcasecmp(t, "mx") == 0 || strncasecmp(t, "mx/", 3) == 0) {
            target = domain; type = DNS_T_MX;
        }
        if (!target || strchr(target, '%'))
            continue;
        snprintf(target_name, sizeof(target_name), "%s", target);
        target_name[strcspn(target_name, "/")] = '\0';
        if (dns_name_normalize(name, target_name, strlen(target_name)) == 0 &&
            !spf_dns_run_find(run, name, type))
            key_add(run->prefetch, &run->nprefetch, SPF_DNS_MAX_PREFETCH, name, type);
    }
}

static SPF_dns_rr_t *layer_lookup(SPF_dns_server_t *layer, const char *domain,
                                  ns_type type, int should_cache)
{
    spf_dns_run_t *run = layer->hook;
    const dns_answer_t *a;
    char name[DNS_NAME_MAX + 1];
    int term = 0;

    (void)should_cache;
    /* RFC 7208 3.1: SPF checks use TXT only; type 99 never leaves this layer. */
    if (type == ns_t_spf || dns_name_normalize(name, domain, strlen(domain)) < 0)
        return rr_new(layer, domain, type, 0, type == ns_t_spf ? NO_DATA : HOST_NOT_FOUND);
    if (run->over_limit)
        return rr_new(layer, name, type, 0, HOST_NOT_FOUND);

    if (type == ns_t_mx || type == ns_t_ptr)
        term = 1;
    else if (type == ns_t_a || type == ns_t_aaaa)
        term = !is_address_of_known_target(run, name);
    if (term) {
        if (run->terms == SPF_DNS_MAX_TERMS) {
            run_over_limit(run, "more than 10 DNS-querying terms");
            return rr_new(layer, name, type, 0, HOST_NOT_FOUND);
        }
        run->terms++;
    }

    a = run_answer(run, name, type);
    if (!a) {
        if (!run->over_limit)
            run_miss(run, name, type);
        return rr_new(layer, name, type, 0, TRY_AGAIN);
    }
    if (term && (a->status == DNS_NXDOMAIN || a->status == DNS_NODATA)) {
        if (++run->voids > SPF_DNS_MAX_VOIDS)
            run_over_limit(run, "more than 2 void DNS lookups");
    }
    if (term && type == ns_t_mx && a->count > SPF_DNS_MAX_MX)
        run_over_limit(run, "more than 10 MX names");
    if (type == ns_t_txt) {
        /* Only exp= asks for TXT here (get_spf fetches records). RFC 7208 6.2: several
         * records, or text that is not printable ASCII, means the default
         * explanation; text that could hurt libspf2's compiler gets the same. */
        if (a->status == DNS_OK &&
            (a->count != 1 || !is_printable_ascii(a->rr[0].u.txt.data, a->rr[0].u.txt.len) ||
             explanation_refused(a->rr[0].u.txt.data, a->rr[0].u.txt.len)))
            return rr_new(layer, name, type, (int)a->ttl, NO_DATA);
        if (a->status == DNS_OK) {
            run->uses |= macro_uses(a->rr[0].u.txt.data);
            return rr_explanation(layer, a);
        }
    }
    return rr_from_answer(layer, a, type);
}

static SPF_errcode_t get_spf_fail(SPF_response_t *resp, SPF_result_t result,
                                  SPF_errcode_t code, const char *what, const char *domain)
{
    resp->result = result;
    resp->reason = SPF_REASON_FAILURE;
    return SPF_response_add_error(resp, code, "%s for '%s'", what, domain);
}

static SPF_errcode_t layer_get_spf(SPF_server_t *server, SPF_request_t *req,
                                   SPF_response_t *resp, SPF_record_t **recp)
{
    spf_dns_run_t *run = server->resolver->hook;
    const char *domain = req->cur_dom;
    const dns_answer_t *a;
    const char *record = NULL, *why;
    char name[DNS_NAME_MAX + 1];
    size_t found = 0, record_len = 0;
    int top = ++run->records == 1;
    SPF_errcode_t err;
    spf_record_t *parsed;
    char perr[SPF_RECORD_ERR_LEN];

    *recp = NULL;
    if (!top) {
        if (run->terms == SPF_DNS_MAX_TERMS)
            run_over_limit(run, "more than 10 DNS-querying terms");
        else
            run->terms++;
    }
    if (run->over_limit)
        return get_spf_fail(resp, SPF_RESULT_PERMERROR, SPF_E_BIG_DNS, run->problem, domain);
    if (dns_name_normalize(name, domain, strlen(domain)) < 0) {
        if (top)
            run->top = SPF_DNS_TOP_NONE;
        return get_spf_fail(resp, SPF_RESULT_NONE, SPF_E_NOT_SPF, "Not a valid domain", domain);
    }
    a = run_answer(run, name, DNS_T_TXT);
    if (!a) {
        if (!run->over_limit)
            run_miss(run, name, DNS_T_TXT);
        return get_spf_fail(resp, SPF_RESULT_TEMPERROR, SPF_E_DNS_ERROR, "Not fetched yet", name);
    }
    switch (a->status) {
    case DNS_OK:
        break;
    case DNS_NXDOMAIN:
    case DNS_NODATA:
        if (top)
            run->top = SPF_DNS_TOP_NONE;
        else if (++run->voids > SPF_DNS_MAX_VOIDS)
            run_over_limit(run, "more than 2 void DNS lookups");
        return get_spf_fail(resp, SPF_RESULT_NONE, SPF_E_NOT_SPF, "No SPF record", name);
    default:
        if (top)
            run->top = SPF_DNS_TOP_TEMP;
        return get_spf_fail(resp, SPF_RESULT_TEMPERROR, SPF_E_DNS_ERROR,
                            "Temporary DNS failure", name);
    }
    for (size_t i = 0; i < a->count; i++) {
        const char *txt = a->rr[i].u.txt.data;
        size_t tag = strlen(SPF_VERSION_TAG);
        if (strncasecmp(txt, SPF_VERSION_TAG, tag) == 0 && (txt[tag] == ' ' || txt[tag] == '\0')) {
            record = txt;
            record_len = a->rr[i].u.txt.len;
            found++;
        }
    }
    if (found == 0) {
        if (top)
            run->top = SPF_DNS_TOP_NONE;
        return get_spf_fail(resp, SPF_RESULT_NONE, SPF_E_NOT_SPF, "No SPF record", name);
    }
    if (found > 1) {
        if (top)
            run->top = SPF_DNS_TOP_PERM;
        return get_spf_fail(resp, SPF_RESULT_PERMERROR, SPF_E_MULTIPLE_RECORDS,
                            "Multiple SPF records", name);
    }
    why = guard_reason(record, strlen(record));
    if (why) {
        if (top)
            run->top = SPF_DNS_TOP_PERM;
        snprintf(run->problem, sizeof(run->problem), "SPF record of %.64s refused: %s",
                 name, why);
        return get_spf_fail(resp, SPF_RESULT_PERMERROR, SPF_E_BIG_STRING, "Record refused", name);
    }
    /* Our parser is strict where libspf2 only warns and then evaluates anyway: what it
     * rejects is a permerror (RFC 7208 4.6) and never reaches libspf2. */
    if (spf_record_parse(record, record_len, &parsed, perr) < 0) {
        if (top)
            run->top = SPF_DNS_TOP_PERM;
        snprintf(run->problem, sizeof(run->problem), "SPF record of %.40s: %.70s", name, perr);
        return get_spf_fail(resp, SPF_RESULT_PERMERROR, SPF_E_SYNTAX, "Invalid SPF record", name);
    }
    spf_record_free(parsed);
    run->uses |= macro_uses(record);
    note_prefetch(run, record, name);
    err = SPF_record_compile(server, resp, recp, record);
    if (err != SPF_E_SUCCESS) {
        if (top)
            run->top = SPF_DNS_TOP_PERM;
        return get_spf_fail(resp, SPF_RESULT_PERMERROR, err, "Invalid SPF record", name);
    }
    if (top)
        run->top = SPF_DNS_TOP_RECORD;
    return SPF_E_SUCCESS;
}

static void layer_destroy(SPF_dns_server_t *layer)
{
    free(layer);
}

SPF_dns_server_t *spf_dns_new(void)
{
    SPF_dns_server_t *layer = calloc(1, sizeof(*layer));

    if (!layer)
        return NULL;
    layer->destroy = layer_destroy;
    layer->lookup = layer_lookup;
    layer->get_spf = layer_get_spf;
    layer->name = "spf-policyd";
    return layer;
}

void spf_dns_begin(SPF_dns_server_t *layer, spf_dns_run_t *run)
{
    run->nmiss = run->nprefetch = 0;
    run->records = run->terms = run->voids = 0;
    run->top = SPF_DNS_TOP_UNKNOWN;
    run->uses = 0;
    run->over_limit = 0;
    run->problem[0] = '\0';
    layer->hook = run;
}

void spf_dns_end(SPF_dns_server_t *layer)
{
    layer->hook = NULL;
}
