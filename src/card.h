/*
 * card.h — the refined checkpoint's own model card, OUT/README.md: Hub
 * front matter (base_model, base_model_relation: merge, library_name,
 * tags, Instruct's license) and a body that says what was done to the
 * model (method, gamma, selection, version, command, eRank/k per module
 * type).  Instruct's README.md describes another model and is never
 * copied in its place.
 */
#ifndef TIMBER_CARD_H
#define TIMBER_CARD_H

#include <stddef.h>

#include "timber.h"

typedef struct tb_card {
    const timber_model *base, *inst;
    const timber_result *result; /* the reports, filled by the run */
    size_t gamma;                /* which of the result's gammas */
    const timber_refine_options *options; /* selection and command */
    const char *fingerprint;     /* the pair's, as in shard metadata */
    /* How the inputs were named on the command line (NULL: as opened);
     * a distributed run's finalize opens them by their absolute paths
     * but the card quotes the parts' names. */
    const char *base_name, *inst_name;
} tb_card;

/* The card file's name, which refine does not carry over from Instruct. */
#define TB_CARD_NAME "README.md"

/* Writes dir/README.md atomically. */
timber_status tb_card_write(const char *dir, const tb_card *card,
                            timber_error *err);

#endif /* TIMBER_CARD_H */
