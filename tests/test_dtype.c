/*
 * test_dtype.c — the dtype table and the float conversions of src/dtype.c:
 * round-to-nearest-even (ties, subnormals, overflow to Inf, NaN kept a NaN
 * with its sign, -0) checked case by case, exhaustively over every 16-bit
 * pattern, and against independent straightforward implementations for
 * millions of random inputs (double -> float32 -> 16-bit, as PyTorch's
 * .float().to(dtype) does).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "testutil.h"

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bitsf(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int h_is_nan_f16(uint16_t h)
{
    return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0;
}

static int h_is_nan_bf16(uint16_t h)
{
    return (h & 0x7f80u) == 0x7f80u && (h & 0x7fu) != 0;
}

/* --------------------------------------------- independent references */

/* bf16 is the top half of a float: pick the nearer of the two
 * neighbouring bf16 values by exact double arithmetic, ties to the even
 * one; the neighbour above the largest finite value is 2^128 (Inf). */
static uint16_t ref_bf16(float f)
{
    uint32_t u = fbits(f);
    if (isnan(f))
        return 0; /* not used for NaN */
    if (isinf(f))
        return (uint16_t)(u >> 16);
    uint32_t sign = u & 0x80000000u, mag = u & 0x7fffffffu;
    uint32_t lo = mag & 0xffff0000u, hi = lo + 0x10000u;
    double x = fabs((double)f), dlo = (double)bitsf(lo);
    double dhi = (hi & 0x7f800000u) == 0x7f800000u ? ldexp(1.0, 128)
                                                   : (double)bitsf(hi);
    double below = x - dlo, above = dhi - x;
    uint32_t pick;
    if (below < above)
        pick = lo;
    else if (above < below)
        pick = hi;
    else
        pick = ((lo >> 16) & 1u) ? hi : lo;
    return (uint16_t)((sign | pick) >> 16);
}

/* Every finite non-negative f16 value, ascending with the bit pattern. */
static double f16_table[0x7c00];

static double f16_value(uint16_t h)
{
    unsigned e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    double v;
    if (e == 0x1f)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp((double)m, -24);
    else
        v = ldexp((double)(1024 + m), (int)e - 25);
    return (h & 0x8000u) ? -v : v;
}

/* Nearest f16 by binary search in the table, ties to the even pattern;
 * 65520 (halfway from 65504 to the 65536 that does not exist) and above
 * round to Inf. */
static uint16_t ref_f16(float f)
{
    uint16_t sign = (fbits(f) >> 16) & 0x8000u;
    double x = fabs((double)f);
    if (x >= 65520.0)
        return (uint16_t)(sign | 0x7c00u);
    size_t lo = 0, hi = 0x7bff; /* table[lo] <= x < table[hi + 1] */
    while (lo < hi) {
        size_t mid = (lo + hi + 1) / 2;
        if (f16_table[mid] <= x)
            lo = mid;
        else
            hi = mid - 1;
    }
    size_t pick = lo;
    if (f16_table[lo] != x) {
        double below = x - f16_table[lo];
        double above = (lo == 0x7bff ? 65536.0 : f16_table[lo + 1]) - x;
        if (above < below || (above == below && (lo & 1u)))
            pick = lo + 1;
    }
    return (uint16_t)(sign | pick);
}

/* ------------------------------------------------------------ the table */

static void test_table(void)
{
    static const struct {
        const char *name;
        unsigned bits;
    } spec[TIMBER_DT_COUNT] = {
        {"BOOL", 8},        {"F4", 4},          {"F6_E2M3", 6},
        {"F6_E3M2", 6},     {"U8", 8},          {"I8", 8},
        {"F8_E5M2", 8},     {"F8_E4M3", 8},     {"F8_E8M0", 8},
        {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8}, {"I16", 16},
        {"U16", 16},        {"F16", 16},        {"BF16", 16},
        {"I32", 32},        {"U32", 32},        {"F32", 32},
        {"C64", 64},        {"F64", 64},        {"I64", 64},
        {"U64", 64},
    };
    for (int i = 0; i < TIMBER_DT_COUNT; i++) {
        const char *n = timber_dtype_name((timber_dtype)i);
        CHECKF(n && strcmp(n, spec[i].name) == 0, "dtype %d is %s", i,
               n ? n : "NULL");
        CHECKF(timber_dtype_from_name(spec[i].name) == i, "%s",
               spec[i].name);
        CHECKF(timber_dtype_bits((timber_dtype)i) == spec[i].bits, "%s bits",
               spec[i].name);
        int refinable = i == TIMBER_DT_F16 || i == TIMBER_DT_BF16 ||
                        i == TIMBER_DT_F32 || i == TIMBER_DT_F64;
        CHECKF(timber_dtype_is_refinable((timber_dtype)i) == refinable, "%s",
               spec[i].name);
    }
    CHECK(timber_dtype_name(TIMBER_DT_COUNT) == NULL);
    CHECK(timber_dtype_name((timber_dtype)-1) == NULL);
    CHECK(timber_dtype_bits(TIMBER_DT_COUNT) == 0);
    CHECK(timber_dtype_from_name("bf16") == -1);
    CHECK(timber_dtype_from_name("BF16 ") == -1);
    CHECK(timber_dtype_from_name("") == -1);
    CHECK(timber_dtype_from_name("F8") == -1);
    CHECK(tb_dtype_size(TIMBER_DT_F64) == 8 && tb_dtype_size(TIMBER_DT_F32) == 4);
    CHECK(tb_dtype_size(TIMBER_DT_F16) == 2 &&
          tb_dtype_size(TIMBER_DT_BF16) == 2);
}

/* ------------------------------------------------------ chosen cases */

static void test_bf16_cases(void)
{
    static const struct {
        uint32_t in;
        uint16_t out;
    } c[] = {
        {0x3f800000u, 0x3f80u}, /* 1 */
        {0x00000000u, 0x0000u}, /* +0 */
        {0x80000000u, 0x8000u}, /* -0 */
        {0x3f808000u, 0x3f80u}, /* tie, even below */
        {0x3f818000u, 0x3f82u}, /* tie, even above */
        {0x3f808001u, 0x3f81u}, /* just above the tie */
        {0x3f807fffu, 0x3f80u}, /* just below the tie */
        {0xbf808000u, 0xbf80u}, /* negative ties */
        {0xbf818000u, 0xbf82u},
        {0x3f80ffffu, 0x3f81u},
        {0x3fffffffu, 0x4000u}, /* carry into the exponent */
        {0x00008000u, 0x0000u}, /* subnormal tie to even zero */
        {0x00018000u, 0x0002u}, /* subnormal tie to even */
        {0x00008001u, 0x0001u},
        {0x00000001u, 0x0000u}, /* smallest subnormal */
        {0x80000001u, 0x8000u}, /* to -0 */
        {0x007fffffu, 0x0080u}, /* largest subnormal to smallest normal */
        {0x00800000u, 0x0080u},
        {0x7f7f7fffu, 0x7f7fu}, /* largest finite that stays finite */
        {0x7f7f8000u, 0x7f80u}, /* tie at the top: odd, so up to Inf */
        {0x7f7fffffu, 0x7f80u}, /* FLT_MAX to Inf */
        {0xff7fffffu, 0xff80u},
        {0x7f800000u, 0x7f80u}, /* Inf */
        {0xff800000u, 0xff80u},
        {0x7fc00000u, 0x7fc0u}, /* quiet NaN */
        {0xffc00000u, 0xffc0u},
        {0x7fc12345u, 0x7fc1u}, /* payload's top kept */
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        uint16_t got = tb_f32_to_bf16(bitsf(c[i].in));
        CHECKF(got == c[i].out, "bf16(0x%08x) = 0x%04x, expected 0x%04x",
               (unsigned)c[i].in, got, c[i].out);
    }
    /* Signalling NaNs whose payload lies in the low half: naive rounding
     * turns them into Inf (or carries into the sign). */
    static const uint32_t snan[] = {0x7f800001u, 0xff800001u, 0x7f80ffffu,
                                    0x7fffffffu, 0xffffffffu, 0x7f808000u};
    for (size_t i = 0; i < sizeof snan / sizeof *snan; i++) {
        uint16_t got = tb_f32_to_bf16(bitsf(snan[i]));
        CHECKF(h_is_nan_bf16(got) &&
                   (got & 0x8000u) == ((snan[i] >> 16) & 0x8000u),
               "bf16(0x%08x) = 0x%04x is not a NaN of the same sign",
               (unsigned)snan[i], got);
    }
}

static void test_f16_cases(void)
{
    static const struct {
        float in;
        uint16_t out;
    } c[] = {
        {1.0f, 0x3c00u},
        {-1.0f, 0xbc00u},
        {0.0f, 0x0000u},
        {-0.0f, 0x8000u},
        {2.0f, 0x4000u},
        {0.5f, 0x3800u},
        {65504.0f, 0x7bffu},           /* largest finite */
        {65519.99609375f, 0x7bffu},    /* just below the midpoint to Inf */
        {65520.0f, 0x7c00u},           /* the midpoint: odd, so Inf */
        {65536.0f, 0x7c00u},
        {-65520.0f, 0xfc00u},
        {1e10f, 0x7c00u},
        {FLT_MAX, 0x7c00u},
        {0x1p-24f, 0x0001u},           /* smallest subnormal */
        {0x1p-25f, 0x0000u},           /* its half: tie to even zero */
        {-0x1p-25f, 0x8000u},
        {0x1.000002p-25f, 0x0001u},    /* just above the half */
        {0x1p-26f, 0x0000u},
        {0x3p-25f, 0x0002u},           /* 1.5 ulp: tie to even 2 */
        {0x5p-25f, 0x0002u},           /* 2.5 ulp: tie to even 2 */
        {0x7p-25f, 0x0004u},           /* 3.5 ulp: tie to even 4 */
        {0x3ffp-24f, 0x03ffu},         /* largest subnormal */
        {0x7ffp-25f, 0x0400u},         /* tie between it and 2^-14 */
        {0x1p-14f, 0x0400u},           /* smallest normal */
        {0x1.002p+0f, 0x3c00u},        /* 1 + 2^-11: tie to even */
        {0x1.006p+0f, 0x3c02u},        /* 1 + 3*2^-11: tie to even */
        {0x1.002002p+0f, 0x3c01u},     /* just above a tie */
        {0x1.001ffep+0f, 0x3c00u},     /* just below a tie */
        {0x1.ffep+0f, 0x4000u},        /* tie that carries into exponent */
        {1e-45f, 0x0000u},             /* float subnormal */
        {-1e-45f, 0x8000u},
        {0x1p-15f, 0x0200u},           /* a subnormal exactly */
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        uint16_t got = tb_f32_to_f16(c[i].in);
        CHECKF(got == c[i].out, "f16(%a) = 0x%04x, expected 0x%04x",
               (double)c[i].in, got, c[i].out);
    }
    CHECK(tb_f32_to_f16(INFINITY) == 0x7c00u);
    CHECK(tb_f32_to_f16(-INFINITY) == 0xfc00u);
    static const uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u,
                                    0xff800001u, 0x7fa00000u, 0x7fffffffu,
                                    0x7f801fffu};
    for (size_t i = 0; i < sizeof nans / sizeof *nans; i++) {
        uint16_t got = tb_f32_to_f16(bitsf(nans[i]));
        CHECKF(h_is_nan_f16(got) &&
                   (got & 0x8000u) == ((nans[i] >> 16) & 0x8000u),
               "f16(0x%08x) = 0x%04x is not a NaN of the same sign",
               (unsigned)nans[i], got);
    }
}

/* ------------------------------------------------------- exhaustive */

static void test_exhaustive(void)
{
    int bf_bad = 0, f16_bad = 0, f16_val_bad = 0;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        int neg = (h & 0x8000u) != 0;
        /* bf16: decoding is exact (the top half of a float) and encoding
         * gives the pattern back; a NaN stays a NaN with its sign. */
        float f = tb_bf16_to_f32((uint16_t)h);
        uint16_t back = tb_f32_to_bf16(f);
        int ok = fbits(f) == h << 16;
        if (h_is_nan_bf16((uint16_t)h))
            ok = ok && h_is_nan_bf16(back) && ((back & 0x8000u) != 0) == neg;
        else
            ok = ok && back == h;
        if (!ok && bf_bad++ < 3)
            CHECKF(0, "bf16 0x%04x -> %a -> 0x%04x", (unsigned)h, (double)f,
                   back);

        /* f16: decoding matches the definition of the format. */
        float g = tb_f16_to_f32((uint16_t)h);
        double v = f16_value((uint16_t)h);
        if (h_is_nan_f16((uint16_t)h)
                ? !(isnan(g) && (signbit(g) != 0) == neg)
                : (double)g != v || (signbit(g) != 0) != neg)
            f16_val_bad++;
        uint16_t back16 = tb_f32_to_f16(g);
        if (h_is_nan_f16((uint16_t)h)
                ? !(h_is_nan_f16(back16) && ((back16 & 0x8000u) != 0) == neg)
                : back16 != h)
            f16_bad++;
        /* Quiet NaNs keep their payload exactly. */
        if (h_is_nan_f16((uint16_t)h) && (h & 0x200u) && back16 != h)
            f16_bad++;
    }
    CHECKF(bf_bad == 0, "%d bf16 patterns do not round trip", bf_bad);
    CHECKF(f16_val_bad == 0, "%d f16 patterns decode wrongly", f16_val_bad);
    CHECKF(f16_bad == 0, "%d f16 patterns do not round trip", f16_bad);
}

/* Every tie and near-tie of every bf16 value, and every f16 midpoint. */
static void test_all_ties(void)
{
    int bad = 0;
    static const uint32_t low[] = {0x0000u, 0x0001u, 0x7fffu, 0x8000u,
                                   0x8001u, 0xffffu};
    for (uint32_t h = 0; h < 0x10000u; h++)
        for (size_t k = 0; k < sizeof low / sizeof *low; k++) {
            float f = bitsf(h << 16 | low[k]);
            if (isnan(f))
                continue;
            uint16_t got = tb_f32_to_bf16(f), want = ref_bf16(f);
            if (got != want && bad++ < 5)
                CHECKF(0, "bf16(0x%08x) = 0x%04x, reference 0x%04x",
                       (unsigned)fbits(f), got, want);
        }
    CHECKF(bad == 0, "%d bf16 ties differ from the reference", bad);

    bad = 0;
    for (uint32_t h = 0; h < 0x7c00u; h++) {
        double mid = h < 0x7bffu ? (f16_table[h] + f16_table[h + 1]) / 2
                                 : 65520.0;
        float m = (float)mid; /* exact: 12 significant bits */
        float probes[] = {m, nextafterf(m, 0.0f), nextafterf(m, INFINITY),
                          (float)f16_table[h]};
        for (size_t k = 0; k < 4; k++)
            for (int s = 0; s < 2; s++) {
                float f = s ? -probes[k] : probes[k];
                uint16_t got = tb_f32_to_f16(f), want = ref_f16(f);
                if (got != want && bad++ < 5)
                    CHECKF(0, "f16(%a) = 0x%04x, reference 0x%04x",
                           (double)f, got, want);
            }
    }
    CHECKF(bad == 0, "%d f16 ties differ from the reference", bad);
}

/* ---------------------------------------------------- random reference */

static double random_double(uint64_t *rng)
{
    uint64_t r = tu_rand(rng);
    switch (r & 7u) {
    case 0: { /* any bit pattern: NaNs, Infs, huge and tiny values */
        uint64_t u = tu_rand(rng);
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    case 1: { /* a bf16 midpoint, nudged by a few double ulps: the double
               * rounding cases of double -> float -> bf16 */
        uint32_t b = (uint32_t)(tu_rand(rng) & 0x7f7fffffu) & 0xffff0000u;
        double mid = ((double)bitsf(b) + (double)bitsf(b + 0x10000u)) / 2;
        int64_t nudge = (int64_t)(tu_rand(rng) % 9) - 4;
        uint64_t u;
        memcpy(&u, &mid, 8);
        u += (uint64_t)nudge;
        memcpy(&mid, &u, 8);
        return (r & 8u) ? -mid : mid;
    }
    case 2: { /* an f16 midpoint, nudged */
        uint32_t h = (uint32_t)(tu_rand(rng) % 0x7bffu);
        double mid = (f16_table[h] + f16_table[h + 1]) / 2;
        uint64_t u;
        memcpy(&u, &mid, 8);
        u += (uint64_t)((int64_t)(tu_rand(rng) % 5) - 2);
        memcpy(&mid, &u, 8);
        return (r & 8u) ? -mid : mid;
    }
    default: { /* sign, exponent across float's range and beyond, mantissa */
        int e = (int)(tu_rand(rng) % 300) - 160;
        double m = 1.0 + (double)(tu_rand(rng) >> 12) * 0x1p-52;
        double d = ldexp(m, e);
        return (r & 8u) ? -d : d;
    }
    }
}

static void test_random_reference(void)
{
    enum { BATCH = 4096, BATCHES = 768 }; /* 3,145,728 doubles */
    static double src[BATCH], dec[BATCH];
    static unsigned char b16[2 * BATCH], f16[2 * BATCH], f32[4 * BATCH],
        f64[8 * BATCH];
    uint64_t rng = 20240917;
    long bad_bf = 0, bad_f16 = 0, bad_f32 = 0, bad_f64 = 0, bad_dec = 0;
    for (int b = 0; b < BATCHES; b++) {
        for (int i = 0; i < BATCH; i++)
            src[i] = random_double(&rng);
        tb_encode(TIMBER_DT_BF16, src, b16, BATCH);
        tb_encode(TIMBER_DT_F16, src, f16, BATCH);
        tb_encode(TIMBER_DT_F32, src, f32, BATCH);
        tb_encode(TIMBER_DT_F64, src, f64, BATCH);
        for (int i = 0; i < BATCH; i++) {
            float f = (float)src[i];
            uint16_t gb = (uint16_t)(b16[2 * i] | b16[2 * i + 1] << 8);
            uint16_t gh = (uint16_t)(f16[2 * i] | f16[2 * i + 1] << 8);
            if (isnan(f)) {
                int neg = signbit(src[i]) != 0;
                bad_bf += !(h_is_nan_bf16(gb) && ((gb >> 15) != 0) == neg);
                bad_f16 += !(h_is_nan_f16(gh) && ((gh >> 15) != 0) == neg);
            } else {
                uint16_t wb = ref_bf16(f), wh = ref_f16(f);
                if (gb != wb && bad_bf++ < 3)
                    CHECKF(0, "bf16 of %a: 0x%04x, reference 0x%04x", src[i],
                           gb, wb);
                if (gh != wh && bad_f16++ < 3)
                    CHECKF(0, "f16 of %a: 0x%04x, reference 0x%04x", src[i],
                           gh, wh);
            }
            uint32_t g32 = (uint32_t)f32[4 * i] | (uint32_t)f32[4 * i + 1] << 8 |
                           (uint32_t)f32[4 * i + 2] << 16 |
                           (uint32_t)f32[4 * i + 3] << 24;
            if (isnan(f) ? !isnan(bitsf(g32)) : g32 != fbits(f))
                bad_f32++;
            if (memcmp(f64 + 8 * i, &src[i], 8) != 0)
                bad_f64++;
        }
        /* Decoding what was encoded gives the stored value exactly. */
        tb_decode(TIMBER_DT_BF16, b16, dec, BATCH);
        for (int i = 0; i < BATCH; i++) {
            uint16_t h = (uint16_t)(b16[2 * i] | b16[2 * i + 1] << 8);
            double want = (double)bitsf((uint32_t)h << 16);
            if (isnan(want) ? !isnan(dec[i]) : dec[i] != want)
                bad_dec++;
        }
        tb_decode(TIMBER_DT_F16, f16, dec, BATCH);
        for (int i = 0; i < BATCH; i++) {
            uint16_t h = (uint16_t)(f16[2 * i] | f16[2 * i + 1] << 8);
            double want = f16_value(h);
            if (isnan(want) ? !isnan(dec[i]) : dec[i] != want)
                bad_dec++;
        }
    }
    CHECKF(bad_bf == 0, "%ld bf16 conversions differ", bad_bf);
    CHECKF(bad_f16 == 0, "%ld f16 conversions differ", bad_f16);
    CHECKF(bad_f32 == 0, "%ld f32 conversions differ", bad_f32);
    CHECKF(bad_f64 == 0, "%ld f64 copies differ", bad_f64);
    CHECKF(bad_dec == 0, "%ld decodes differ", bad_dec);
}

/* ------------------------------------------------------ arrays */

static void test_arrays(void)
{
    /* Little-endian bytes, whatever the alignment of the buffers. */
    double in[5] = {1.0, -2.5, 1e40, 1e-50, -0.0};
    unsigned char raw[64];
    unsigned char *p = raw + 1; /* misaligned on purpose */

    memset(raw, 0xee, sizeof raw);
    tb_encode(TIMBER_DT_BF16, in, p, 5);
    static const unsigned char bf[] = {0x80, 0x3f, 0x20, 0xc0, 0x80,
                                       0x7f, 0x00, 0x00, 0x00, 0x80};
    CHECK(memcmp(p, bf, sizeof bf) == 0 && p[10] == 0xee && raw[0] == 0xee);

    memset(raw, 0xee, sizeof raw);
    tb_encode(TIMBER_DT_F16, in, p, 5);
    static const unsigned char hf[] = {0x00, 0x3c, 0x00, 0xc1, 0x00,
                                       0x7c, 0x00, 0x00, 0x00, 0x80};
    CHECK(memcmp(p, hf, sizeof hf) == 0 && p[10] == 0xee);

    memset(raw, 0xee, sizeof raw);
    tb_encode(TIMBER_DT_F32, in, p, 5);
    static const unsigned char sf[] = {0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0,
                                       0, 0, 0x80, 0x7f, 0, 0, 0,    0,
                                       0, 0, 0,    0x80};
    CHECK(memcmp(p, sf, sizeof sf) == 0 && p[20] == 0xee);

    memset(raw, 0xee, sizeof raw);
    tb_encode(TIMBER_DT_F64, in, p, 5);
    CHECK(memcmp(p, in, 40) == 0 && p[40] == 0xee);
    static const unsigned char one64[] = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f};
    CHECK(memcmp(p, one64, 8) == 0);

    /* Decoding each back. */
    double out[6];
    tb_decode(TIMBER_DT_F64, p, out, 5);
    CHECK(memcmp(out, in, 40) == 0);
    tb_encode(TIMBER_DT_F32, in, p, 5);
    out[5] = 42;
    tb_decode(TIMBER_DT_F32, p, out, 5);
    CHECK(out[0] == 1.0 && out[1] == -2.5 && isinf(out[2]) && out[3] == 0 &&
          signbit(out[4]) && out[5] == 42);
    tb_encode(TIMBER_DT_F16, in, p, 5);
    tb_decode(TIMBER_DT_F16, p, out, 5);
    CHECK(out[0] == 1.0 && out[1] == -2.5 && isinf(out[2]) && out[3] == 0 &&
          signbit(out[4]));
    tb_encode(TIMBER_DT_BF16, in, p, 5);
    tb_decode(TIMBER_DT_BF16, p, out, 5);
    CHECK(out[0] == 1.0 && out[1] == -2.5 && isinf(out[2]) && out[3] == 0 &&
          signbit(out[4]));

    /* NaN in, NaN out, sign kept, in every refinable dtype. */
    double nan_in[2] = {NAN, -NAN};
    static const timber_dtype fl[] = {TIMBER_DT_F64, TIMBER_DT_F32,
                                      TIMBER_DT_F16, TIMBER_DT_BF16};
    for (size_t k = 0; k < 4; k++) {
        tb_encode(fl[k], nan_in, p, 2);
        tb_decode(fl[k], p, out, 2);
        CHECKF(isnan(out[0]) && isnan(out[1]) && !signbit(out[0]) &&
                   signbit(out[1]),
               "NaN through %s", timber_dtype_name(fl[k]));
    }

    /* n = 0 writes nothing; other dtypes are left to the caller. */
    memset(raw, 0xee, sizeof raw);
    for (size_t k = 0; k < 4; k++)
        tb_encode(fl[k], in, raw, 0);
    tb_encode(TIMBER_DT_I32, in, raw, 4);
    int untouched = 1;
    for (size_t i = 0; i < sizeof raw; i++)
        untouched &= raw[i] == 0xee;
    CHECK(untouched);
    out[0] = 7;
    tb_decode(TIMBER_DT_F32, raw, out, 0);
    tb_decode(TIMBER_DT_U8, raw, out, 1);
    CHECK(out[0] == 7);

    /* Double rounding through float32, as PyTorch does: a double just
     * above a bf16 midpoint that rounds to the midpoint in float32 then
     * ties to even (down), not up as a direct conversion would. */
    double just_above = 1.0 + 0x1p-8 + 0x1p-40;
    tb_encode(TIMBER_DT_BF16, &just_above, p, 1);
    CHECK(p[0] == 0x80 && p[1] == 0x3f);
    double f16_above = 1.0 + 0x1p-11 + 0x1p-40;
    tb_encode(TIMBER_DT_F16, &f16_above, p, 1);
    CHECK(p[0] == 0x00 && p[1] == 0x3c);
}

int main(void)
{
    for (uint32_t h = 0; h < 0x7c00u; h++)
        f16_table[h] = f16_value((uint16_t)h);
    test_table();
    test_bf16_cases();
    test_f16_cases();
    test_exhaustive();
    test_all_ties();
    test_random_reference();
    test_arrays();
    return tu_report();
}
