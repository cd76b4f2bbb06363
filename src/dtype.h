/*
 * dtype.h — element types of safetensors: names, sizes, and conversion of
 * the float types (F64, F32, F16, BF16) to and from double.
 *
 * Rounding on the way down is round-to-nearest-even at every step, and the
 * path from double to a 16-bit type goes through float32, exactly as
 * PyTorch's `.float().to(dtype)` does: this is what makes timber's output
 * agree bit for bit with a float64 implementation run through PyTorch.
 * NaN and Inf are preserved (a NaN stays a NaN, its sign kept).
 */
#ifndef TIMBER_DTYPE_H
#define TIMBER_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "timber.h"

uint16_t tb_f32_to_bf16(float f);
float tb_bf16_to_f32(uint16_t h);
uint16_t tb_f32_to_f16(float f);
float tb_f16_to_f32(uint16_t h);

/* Converts n little-endian elements of a refinable dtype at src to double. */
void tb_decode(timber_dtype dt, const void *src, double *dst, size_t n);

/* Converts n doubles to a refinable dtype at dst: F64 is stored as is; F32,
 * F16 and BF16 are rounded to float32 and then to the storage type. */
void tb_encode(timber_dtype dt, const double *src, void *dst, size_t n);

/* Bytes per element of a refinable dtype (2, 4 or 8). */
size_t tb_dtype_size(timber_dtype dt);

#endif /* TIMBER_DTYPE_H */
