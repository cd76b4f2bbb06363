/*
 * refload.h — what the float64 reference checkers (refcheck.c,
 * func/erankcheck.c) share: reading a tensor element as double with their
 * own conversions (not the library's dtype.c, which they check), the
 * mapped bytes of a tensor, and shape equality.
 */
#ifndef TIMBER_REFLOAD_H
#define TIMBER_REFLOAD_H

#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "safetensors.h"
#include "timber.h"

static inline double ref_load(timber_dtype dt, const unsigned char *p, size_t i)
{
    switch (dt) {
    case TIMBER_DT_F64: {
        double d;
        memcpy(&d, p + 8 * i, 8);
        return d;
    }
    case TIMBER_DT_F32: {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    case TIMBER_DT_BF16: {
        uint32_t u = (uint32_t)(p[2 * i] | (p[2 * i + 1] << 8)) << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    case TIMBER_DT_F16: {
        _Float16 h;
        memcpy(&h, p + 2 * i, 2);
        return (double)h;
    }
    default:
        abort();
    }
}

static inline const unsigned char *ref_data_of(const timber_model *m,
                                    const timber_tensor_info *t)
{
    return tb_shard_data(tb_model_shard_of(m, t), t);
}

static inline int ref_same_shape(const timber_tensor_info *a, const timber_tensor_info *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (size_t d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return 0;
    return 1;
}

#endif /* TIMBER_REFLOAD_H */
