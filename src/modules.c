/*
 * modules.c — the module type of a tensor, from its name (q, k, v, o,
 * gate, up, down, router, experts, embeddings, lm_head, other): one
 * classification for `timber erank`'s per-module tables and the model
 * card's summary, so the two can never disagree.
 */
#include "timber.h"

#include <string.h>

static const char *const names[TIMBER_MODULE_TYPES] = {
    [TIMBER_MOD_Q] = "q",           [TIMBER_MOD_K] = "k",
    [TIMBER_MOD_V] = "v",           [TIMBER_MOD_O] = "o",
    [TIMBER_MOD_GATE] = "gate",     [TIMBER_MOD_UP] = "up",
    [TIMBER_MOD_DOWN] = "down",     [TIMBER_MOD_ROUTER] = "router",
    [TIMBER_MOD_EXPERTS] = "experts", [TIMBER_MOD_EMBEDDINGS] = "embeddings",
    [TIMBER_MOD_LM_HEAD] = "lm_head", [TIMBER_MOD_OTHER] = "other"};

int timber_module_type(const char *name)
{
    /* First match wins: "experts" before the projections inside them, a
     * router named mlp.gate.weight is not a gate_proj. */
    static const struct {
        const char *needle;
        timber_module module;
    } rules[] = {
        {"experts", TIMBER_MOD_EXPERTS},  {"embed", TIMBER_MOD_EMBEDDINGS},
        {"lm_head", TIMBER_MOD_LM_HEAD},  {"q_proj", TIMBER_MOD_Q},
        {"k_proj", TIMBER_MOD_K},         {"v_proj", TIMBER_MOD_V},
        {"o_proj", TIMBER_MOD_O},         {"gate_proj", TIMBER_MOD_GATE},
        {"up_proj", TIMBER_MOD_UP},       {"down_proj", TIMBER_MOD_DOWN},
        {"mlp.gate.", TIMBER_MOD_ROUTER}, {"router", TIMBER_MOD_ROUTER},
    };
    for (size_t i = 0; i < sizeof rules / sizeof *rules; i++)
        if (strstr(name, rules[i].needle))
            return rules[i].module;
    return TIMBER_MOD_OTHER;
}

const char *timber_module_type_name(int type)
{
    return type >= 0 && type < TIMBER_MODULE_TYPES ? names[type] : NULL;
}
