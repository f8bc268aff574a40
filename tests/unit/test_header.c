/* Unit tests of header.c: exact header text and the escaping of hostile values. */
// unit-deps: header verdict
#include "header.h"
#include "unit.h"

static header_info_t base(void)
{
    header_info_t h = {
        .result = SPF_RES_PASS,
        .identity = SPF_ID_MAILFROM,
        .client_ip = "192.0.2.10",
        .helo = "mail.example.org",
        .envelope_from = "alice@example.org",
        .domain = "example.org",
        .receiver = "mx.example.net",
        .comment = "",
        .mechanism = "",
        .problem = "",
    };
    return h;
}

static void test_header_received_spf_pass(void)
{
    char buf[HEADER_MAX];
    header_info_t h = base();
    int n = header_received_spf(buf, sizeof(buf), &h);

    CHECK_STR(buf, "Received-SPF: pass (mx.example.net: domain of alice@example.org designates "
                   "192.0.2.10 as permitted sender) client-ip=192.0.2.10; "
                   "envelope-from=\"alice@example.org\"; helo=mail.example.org; "
                   "receiver=mx.example.net; identity=mailfrom");
    CHECK_INT(n, (int)strlen(buf));
}

static void test_header_received_spf_results(void)
{
    char buf[HEADER_MAX];
    header_info_t h = base();

    h.result = SPF_RES_SOFTFAIL;
    header_received_spf(buf, sizeof(buf), &h);
    CHECK(strncmp(buf, "Received-SPF: softfail (mx.example.net: domain of transitioning "
                       "alice@example.org does not designate 192.0.2.10 as permitted sender)",
                  130) == 0);
    h.result = SPF_RES_PERMERROR;
    h.problem = "more than 10 DNS-querying terms";
    header_received_spf(buf, sizeof(buf), &h);
    CHECK(strstr(buf, "; problem=\"more than 10 DNS-querying terms\"; identity=mailfrom") != NULL);
    CHECK(strncmp(buf, "Received-SPF: permerror (", 25) == 0);
}

static void test_header_reputation(void)
{
    char buf[HEADER_MAX];
    header_info_t h = base();
    int n;

    h.reputation = "net 43/70 ip 0/3 domain 2/122";
    n = header_received_spf(buf, sizeof(buf), &h);
    CHECK_STR(buf, "Received-SPF: pass (mx.example.net: domain of alice@example.org designates "
                   "192.0.2.10 as permitted sender) client-ip=192.0.2.10; "
                   "envelope-from=\"alice@example.org\"; helo=mail.example.org; "
                   "receiver=mx.example.net; x-spf-reputation=\"net 43/70 ip 0/3 domain 2/122\"; "
                   "identity=mailfrom");
    CHECK_INT(n, (int)strlen(buf));
    /* Nothing that could end the pair or the quote survives. */
    h.reputation = "a;b=c\"d\\e\r\n(f)";
    header_received_spf(buf, sizeof(buf), &h);
    CHECK(strstr(buf, "; x-spf-reputation=\"a?b?c?d?e???f?\"; identity=mailfrom") != NULL);
    /* Empty or absent: no key at all. */
    h.reputation = "";
    header_received_spf(buf, sizeof(buf), &h);
    CHECK(strstr(buf, "x-spf-reputation") == NULL);
    h.reputation = NULL;
    header_received_spf(buf, sizeof(buf), &h);
    CHECK(strstr(buf, "x-spf-reputation") == NULL);
}

static void test_header_escapes_hostile_values(void)
{
    char buf[HEADER_MAX];
    header_info_t h = base();

    h.helo = "evil\r\nX-Injected: yes";
    h.envelope_from = "a\"b\\c(d)@example.org";
    h.result = SPF_RES_FAIL;
    header_received_spf(buf, sizeof(buf), &h);
    CHECK(strchr(buf, '\r') == NULL);
    CHECK(strchr(buf, '\n') == NULL);
    CHECK(strstr(buf, "helo=\"evil??X-Injected: yes\";") != NULL);
    CHECK(strstr(buf, "envelope-from=\"a\\\"b\\\\c(d)@example.org\";") != NULL);
    CHECK(strstr(buf, "domain of a\"b\\\\c\\(d\\)@example.org does not designate") != NULL);
}

static void test_header_empty_helo_is_quoted(void)
{
    char buf[HEADER_MAX];
    header_info_t h = base();

    h.helo = "";
    header_received_spf(buf, sizeof(buf), &h);
    CHECK(strstr(buf, "; helo=\"\"; ") != NULL);
}

static void test_header_comment_given(void)
{
    char buf[HEADER_MAX];
    header_info_t h = base();

    h.result = SPF_RES_NONE;
    h.comment = "skipped: client is in [skip] clients";
    header_received_spf(buf, sizeof(buf), &h);
    CHECK(strncmp(buf, "Received-SPF: none (mx.example.net: skipped: client is in [skip] "
                       "clients) client-ip=", 83) == 0);
}

static void test_header_auth_results(void)
{
    char buf[HEADER_MAX];
    header_info_t h = base();

    CHECK_INT(header_auth_results(buf, sizeof(buf), "mx.example.net", &h), 74);
    CHECK_STR(buf, "Authentication-Results: mx.example.net; spf=pass smtp.mailfrom=example.org");
    h.identity = SPF_ID_HELO;
    h.result = SPF_RES_FAIL;
    header_auth_results(buf, sizeof(buf), "mx.example.net", &h);
    CHECK_STR(buf, "Authentication-Results: mx.example.net; spf=fail smtp.helo=mail.example.org");
}

static void test_header_too_small_buffer(void)
{
    char buf[HEADER_MAX];
    header_info_t h = base();
    int n = header_received_spf(buf, sizeof(buf), &h);

    CHECK_INT(header_received_spf(buf, (size_t)n + 1, &h), n);
    CHECK_INT(header_received_spf(buf, (size_t)n, &h), -1);
    CHECK_INT(header_auth_results(buf, 20, "mx.example.net", &h), -1);
}

static void test_header_long_values_fit(void)
{
    char buf[HEADER_MAX], from[2000];
    header_info_t h = base();

    memset(from, 'x', sizeof(from) - 1);
    from[sizeof(from) - 1] = '\0';
    h.envelope_from = from;
    h.helo = from;
    CHECK(header_received_spf(buf, sizeof(buf), &h) > 0);
    CHECK(strstr(buf, "; identity=mailfrom") != NULL);
}

int main(void)
{
    UNIT_RUN(test_header_received_spf_pass);
    UNIT_RUN(test_header_received_spf_results);
    UNIT_RUN(test_header_reputation);
    UNIT_RUN(test_header_escapes_hostile_values);
    UNIT_RUN(test_header_empty_helo_is_quoted);
    UNIT_RUN(test_header_comment_given);
    UNIT_RUN(test_header_auth_results);
    UNIT_RUN(test_header_too_small_buffer);
    UNIT_RUN(test_header_long_values_fit);
    return unit_report();
}
