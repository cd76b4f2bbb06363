/*
 * dtype.c — the safetensors dtype table and float conversions (see dtype.h).
 * Owns every bit-level detail of BF16/F16 so no other file touches them.
 */
#include "dtype.h"

#include <string.h>

static const struct {
    const char *name;
    unsigned bits;
} dtype_table[TIMBER_DT_COUNT] = {
    [TIMBER_DT_BOOL] = {"BOOL", 8},
    [TIMBER_DT_F4] = {"F4", 4},
    [TIMBER_DT_F6_E2M3] = {"F6_E2M3", 6},
    [TIMBER_DT_F6_E3M2] = {"F6_E3M2", 6},
    [TIMBER_DT_U8] = {"U8", 8},
    [TIMBER_DT_I8] = {"I8", 8},
    [TIMBER_DT_F8_E5M2] = {"F8_E5M2", 8},
    [TIMBER_DT_F8_E4M3] = {"F8_E4M3", 8},
    [TIMBER_DT_F8_E8M0] = {"F8_E8M0", 8},
    [TIMBER_DT_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8},
    [TIMBER_DT_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8},
    [TIMBER_DT_I16] = {"I16", 16},
    [TIMBER_DT_U16] = {"U16", 16},
    [TIMBER_DT_F16] = {"F16", 16},
    [TIMBER_DT_BF16] = {"BF16", 16},
    [TIMBER_DT_I32] = {"I32", 32},
    [TIMBER_DT_U32] = {"U32", 32},
    [TIMBER_DT_F32] = {"F32", 32},
    [TIMBER_DT_C64] = {"C64", 64},
    [TIMBER_DT_F64] = {"F64", 64},
    [TIMBER_DT_I64] = {"I64", 64},
    [TIMBER_DT_U64] = {"U64", 64},
};

const char *timber_dtype_name(timber_dtype dt)
{
    if ((unsigned)dt >= TIMBER_DT_COUNT)
        return NULL;
    return dtype_table[dt].name;
}

int timber_dtype_from_name(const char *name)
{
    for (int i = 0; i < TIMBER_DT_COUNT; i++)
        if (strcmp(dtype_table[i].name, name) == 0)
            return i;
    return -1;
}

unsigned timber_dtype_bits(timber_dtype dt)
{
    if ((unsigned)dt >= TIMBER_DT_COUNT)
        return 0;
    return dtype_table[dt].bits;
}

int timber_dtype_is_refinable(timber_dtype dt)
{
    return dt == TIMBER_DT_F16 || dt == TIMBER_DT_BF16 ||
           dt == TIMBER_DT_F32 || dt == TIMBER_DT_F64;
}

size_t tb_dtype_size(timber_dtype dt)
{
    return timber_dtype_bits(dt) / 8;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* float32 bits to bf16: round to nearest, ties to even; a NaN keeps its
 * sign and is made quiet.  Branch-free (a select), so tb_encode's loop
 * vectorises: the one bf16 rounding, for single values and arrays. */
static inline uint16_t bf16_round(uint32_t u)
{
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    uint32_t quiet = (u >> 16) | 0x0040u;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet : rounded);
}

uint16_t tb_f32_to_bf16(float f)
{
    return bf16_round(f32_bits(f));
}

float tb_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t tb_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;

    if (ax > 0x7f800000u) /* NaN: keep the top payload bits, force quiet */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x47800000u) /* >= 65536 (or Inf): overflows to Inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) { /* below 2^-14: a half subnormal, or zero */
        if (ax < 0x33000000u) /* below 2^-25: rounds to zero */
            return sign;
        uint32_t e = ax >> 23;
        uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e; /* 14..24 */
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u)))
            r++;
        return (uint16_t)(sign | r);
    }
    /* Normal: rebias the exponent (127 -> 15) and round 13 bits away; a
     * carry out of the mantissa correctly bumps the exponent (to Inf at
     * the top of the range). */
    uint32_t r = (ax - 0x38000000u) >> 13;
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u)))
        r++;
    return (uint16_t)(sign | r);
}

float tb_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu;
    uint32_t m = h & 0x3ffu;
    if (e == 0x1fu) /* Inf / NaN */
        return bits_f32(sign | 0x7f800000u | (m << 13));
    if (e == 0) {
        if (m == 0)
            return bits_f32(sign);
        /* subnormal: m * 2^-24, exact in float */
        float v = (float)m * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

/* safetensors data is little-endian, as is every machine timber builds
 * for; elements are read through unaligned-access types so the loops
 * below vectorise (a shard's data need not be aligned). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "timber assumes a little-endian machine"
#endif
typedef uint16_t u16_any __attribute__((aligned(1), may_alias));
typedef float f32_any __attribute__((aligned(1), may_alias));

/* f16 -> f32 without branches on the common path: shift the exponent and
 * mantissa into place and rebias; subnormals are renormalised by a float
 * subtraction, Inf/NaN get the full exponent. */
static inline float f16_to_f32_fast(uint16_t h)
{
    uint32_t o = (uint32_t)(h & 0x7fffu) << 13;
    uint32_t exp = o & 0x0f800000u;
    o += (uint32_t)(127 - 15) << 23;
    float f;
    if (exp == 0x0f800000u) {
        o += (uint32_t)(128 - 16) << 23; /* Inf / NaN */
        memcpy(&f, &o, 4);
    } else if (exp == 0) {
        o += 1u << 23; /* zero / subnormal */
        memcpy(&f, &o, 4);
        f -= 0x1p-14f;
    } else {
        memcpy(&f, &o, 4);
    }
    return (h & 0x8000u) ? -f : f;
}

void tb_decode(timber_dtype dt, const void *src, double *dst, size_t n)
{
    switch (dt) {
    case TIMBER_DT_F64:
        memcpy(dst, src, n * 8);
        break;
    case TIMBER_DT_F32: {
        const f32_any *s = src;
        for (size_t i = 0; i < n; i++)
            dst[i] = s[i];
        break;
    }
    case TIMBER_DT_F16: {
        const u16_any *s = src;
        for (size_t i = 0; i < n; i++)
            dst[i] = f16_to_f32_fast(s[i]);
        break;
    }
    case TIMBER_DT_BF16: {
        const u16_any *s = src;
        for (size_t i = 0; i < n; i++)
            dst[i] = bits_f32((uint32_t)s[i] << 16);
        break;
    }
    default:
        break; /* callers only pass refinable dtypes */
    }
}

void tb_encode(timber_dtype dt, const double *src, void *dst, size_t n)
{
    switch (dt) {
    case TIMBER_DT_F64:
        memcpy(dst, src, n * 8);
        break;
    case TIMBER_DT_F32: {
        f32_any *d = dst;
        for (size_t i = 0; i < n; i++)
            d[i] = (float)src[i];
        break;
    }
    case TIMBER_DT_F16: {
        u16_any *d = dst;
        for (size_t i = 0; i < n; i++)
            d[i] = tb_f32_to_f16((float)src[i]);
        break;
    }
    case TIMBER_DT_BF16: {
        u16_any *d = dst;
        for (size_t i = 0; i < n; i++)
            d[i] = bf16_round(f32_bits((float)src[i]));
        break;
    }
    default:
        break;
    }
}
