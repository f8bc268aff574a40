/* verdict.h - the vocabulary shared by every module: the seven SPF results of
 * RFC 7208 section 2.6, the two identities checked, and the actions the daemon can
 * answer with. Names round-trip through text for the config file and the logs. */
#ifndef VERDICT_H
#define VERDICT_H

enum spf_result {
    SPF_RES_NONE,
    SPF_RES_NEUTRAL,
    SPF_RES_PASS,
    SPF_RES_FAIL,
    SPF_RES_SOFTFAIL,
    SPF_RES_TEMPERROR,
    SPF_RES_PERMERROR,
};
#define SPF_RES_COUNT 7

enum spf_identity { SPF_ID_HELO, SPF_ID_MAILFROM };

/* What the policy answers for one result of one identity. PREPEND adds our header
 * and lets the other restrictions decide; DUNNO adds nothing. */
enum action {
    ACTION_PREPEND,
    ACTION_DUNNO,
    ACTION_REJECT,
    ACTION_DEFER,
    ACTION_HOLD,
};
#define ACTION_COUNT 5

/* "pass", "fail", ... as RFC 7208 spells them. */
const char *spf_result_name(enum spf_result r);
/* Case-insensitive; -1 when text names no result. */
int spf_result_parse(const char *text);
const char *spf_identity_name(enum spf_identity id);
/* "prepend", "dunno", "reject", "defer", "hold". */
const char *action_name(enum action a);
int action_parse(const char *text);

#endif
