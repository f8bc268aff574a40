/* verdict.c - names of results, identities and actions. */
#include "verdict.h"

#include <strings.h>

static const char *const result_names[SPF_RES_COUNT] = {
    [SPF_RES_NONE] = "none",
    [SPF_RES_NEUTRAL] = "neutral",
    [SPF_RES_PASS] = "pass",
    [SPF_RES_FAIL] = "fail",
    [SPF_RES_SOFTFAIL] = "softfail",
    [SPF_RES_TEMPERROR] = "temperror",
    [SPF_RES_PERMERROR] = "permerror",
};

static const char *const action_names[ACTION_COUNT] = {
    [ACTION_PREPEND] = "prepend",
    [ACTION_DUNNO] = "dunno",
    [ACTION_REJECT] = "reject",
    [ACTION_DEFER] = "defer",
    [ACTION_HOLD] = "hold",
};

const char *spf_result_name(enum spf_result r)
{
    return (unsigned)r < SPF_RES_COUNT ? result_names[r] : "unknown";
}

static int name_index(const char *const *names, int count, const char *text)
{
    for (int i = 0; i < count; i++)
        if (strcasecmp(names[i], text) == 0)
            return i;
    return -1;
}

int spf_result_parse(const char *text)
{
    return name_index(result_names, SPF_RES_COUNT, text);
}

const char *spf_identity_name(enum spf_identity id)
{
    return id == SPF_ID_HELO ? "helo" : "mailfrom";
}

const char *action_name(enum action a)
{
    return (unsigned)a < ACTION_COUNT ? action_names[a] : "unknown";
}

int action_parse(const char *text)
{
    return name_index(action_names, ACTION_COUNT, text);
}
