/* Unit tests of reply.c: RFC 7372 codes, texts, and hostile explanations. */
// unit-deps: reply verdict
#include "reply.h"
#include "unit.h"

static reply_verdict_t verdict(enum spf_result r)
{
    reply_verdict_t v = {
        .result = r, .domain = "example.org", .client_ip = "192.0.2.1",
        .explanation = "", .comment = "",
    };
    return v;
}

static void test_reply_fail_uses_explanation(void)
{
    char buf[REPLY_MAX + 1];
    reply_verdict_t v = verdict(SPF_RES_FAIL);

    v.explanation = "192.0.2.1 is not one of example.org's designated mail servers";
    CHECK_INT(reply_refusal(buf, sizeof(buf), ACTION_REJECT, &v), 72);
    CHECK_STR(buf, "550 5.7.23 192.0.2.1 is not one of example.org's designated mail servers");
    reply_refusal(buf, sizeof(buf), ACTION_DEFER, &v);
    CHECK_STR(buf, "451 4.7.23 192.0.2.1 is not one of example.org's designated mail servers");
    reply_refusal(buf, sizeof(buf), ACTION_HOLD, &v);
    CHECK_STR(buf, "HOLD 192.0.2.1 is not one of example.org's designated mail servers");
}

static void test_reply_errors_use_5_7_24(void)
{
    char buf[REPLY_MAX + 1];
    reply_verdict_t v = verdict(SPF_RES_PERMERROR);

    v.comment = "more than 10 DNS-querying terms";
    reply_refusal(buf, sizeof(buf), ACTION_REJECT, &v);
    CHECK_STR(buf, "550 5.7.24 SPF permerror for example.org: more than 10 DNS-querying terms");
    v.result = SPF_RES_TEMPERROR;
    v.comment = "";
    reply_refusal(buf, sizeof(buf), ACTION_DEFER, &v);
    CHECK_STR(buf, "451 4.7.24 SPF temperror for example.org: the SPF record could not be evaluated");
}

static void test_reply_other_results(void)
{
    char buf[REPLY_MAX + 1];
    reply_verdict_t v = verdict(SPF_RES_SOFTFAIL);

    reply_refusal(buf, sizeof(buf), ACTION_REJECT, &v);
    CHECK_STR(buf, "550 5.7.23 SPF softfail: 192.0.2.1 is not authorized to send for example.org");
    v = verdict(SPF_RES_FAIL);
    reply_refusal(buf, sizeof(buf), ACTION_REJECT, &v);
    CHECK_STR(buf, "550 5.7.23 SPF fail: 192.0.2.1 is not authorized to send for example.org");
}

static void test_reply_not_a_refusal(void)
{
    char buf[REPLY_MAX + 1];
    reply_verdict_t v = verdict(SPF_RES_FAIL);

    CHECK_INT(reply_refusal(buf, sizeof(buf), ACTION_PREPEND, &v), -1);
    CHECK_INT(reply_refusal(buf, sizeof(buf), ACTION_DUNNO, &v), -1);
}

static void test_reply_hostile_explanation(void)
{
    char buf[REPLY_MAX + 1], exp[2000];
    reply_verdict_t v = verdict(SPF_RES_FAIL);
    int n;

    v.explanation = "bad\n\naction=OK\r\x7f\xff";
    reply_refusal(buf, sizeof(buf), ACTION_REJECT, &v);
    CHECK_STR(buf, "550 5.7.23 bad??action=OK???");
    memset(exp, 'x', sizeof(exp) - 1);
    exp[sizeof(exp) - 1] = '\0';
    v.explanation = exp;
    n = reply_refusal(buf, sizeof(buf), ACTION_REJECT, &v);
    CHECK(n > 0 && n <= REPLY_MAX);
    CHECK_INT(strlen(buf), n);
}

static void test_reply_stronger(void)
{
    CHECK_INT(reply_stronger(ACTION_PREPEND, ACTION_REJECT), ACTION_REJECT);
    CHECK_INT(reply_stronger(ACTION_DEFER, ACTION_REJECT), ACTION_REJECT);
    CHECK_INT(reply_stronger(ACTION_DEFER, ACTION_HOLD), ACTION_DEFER);
    CHECK_INT(reply_stronger(ACTION_HOLD, ACTION_PREPEND), ACTION_HOLD);
    CHECK_INT(reply_stronger(ACTION_DUNNO, ACTION_PREPEND), ACTION_PREPEND);
    CHECK_INT(reply_stronger(ACTION_DUNNO, ACTION_DUNNO), ACTION_DUNNO);
}

static void test_reply_verdict_names(void)
{
    CHECK_STR(spf_result_name(SPF_RES_PERMERROR), "permerror");
    CHECK_INT(spf_result_parse("SoftFail"), SPF_RES_SOFTFAIL);
    CHECK_INT(spf_result_parse("unknown"), -1);
    CHECK_INT(action_parse("HOLD"), ACTION_HOLD);
    CHECK_INT(action_parse("discard"), -1);
    CHECK_STR(action_name(ACTION_DUNNO), "dunno");
}

int main(void)
{
    UNIT_RUN(test_reply_fail_uses_explanation);
    UNIT_RUN(test_reply_errors_use_5_7_24);
    UNIT_RUN(test_reply_other_results);
    UNIT_RUN(test_reply_not_a_refusal);
    UNIT_RUN(test_reply_hostile_explanation);
    UNIT_RUN(test_reply_stronger);
    UNIT_RUN(test_reply_verdict_names);
    return unit_report();
}
