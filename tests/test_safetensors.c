/*
 * test_safetensors.c — the shard reader (src/safetensors.c) against a table
 * of hand-built malformed shards, each of which must be refused with the
 * right status and a one-line message naming the file (and, where it
 * applies, the tensor and the numbers); then the valid edge cases it must
 * accept.  Every shard is written here byte by byte: the 8-byte
 * little-endian length, the header text, the data.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "dtype.h"
#include "safetensors.h"
#include "testutil.h"

static const char *dir;

/* ------------------------------------------------------- malformed table */

#define LEN_AUTO UINT64_MAX /* the length field is the header's length */
#define RAW_FILE 1          /* header bytes are the whole file */

struct bad_case {
    const char *label;
    const char *header; /* may hold NULs when hlen is given */
    size_t hlen;        /* 0: strlen(header) */
    size_t dlen;        /* zero bytes of data after the header */
    uint64_t len_field; /* LEN_AUTO, or the value to write */
    int raw;            /* RAW_FILE: write header bytes only, no length */
    timber_status status;
    const char *expect[4]; /* substrings of the message besides the path */
};

/* One F32 tensor of 2 elements and its 8 data bytes. */
#define W32 "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

static const struct bad_case bad_cases[] = {
    /* -- the file and the length field */
    {"empty file", "", 0, 0, 0, RAW_FILE, TIMBER_ERR_FORMAT,
     {"file is 0 bytes, too short for the 8-byte header length"}},
    {"3-byte file", "\x01\x02\x03", 3, 0, 0, RAW_FILE, TIMBER_ERR_FORMAT,
     {"file is 3 bytes, too short"}},
    {"7-byte file", "\x02\0\0\0\0\0\0", 7, 0, 0, RAW_FILE, TIMBER_ERR_FORMAT,
     {"file is 7 bytes"}},
    {"header length 100,000,001", "{}", 0, 0, 100000001u, 0,
     TIMBER_ERR_FORMAT,
     {"header length 100000001 exceeds the limit of 100000000 bytes"}},
    {"header length 2^64-2", "{}", 0, 0, UINT64_MAX - 1, 0,
     TIMBER_ERR_FORMAT, {"header length 18446744073709551614 exceeds"}},
    {"header length past the end", "{}", 0, 0, 64, 0, TIMBER_ERR_FORMAT,
     {"header length 64 runs past the end of the 10-byte file"}},
    {"header length one past the end", "{}  ", 0, 0, 5, 0,
     TIMBER_ERR_FORMAT,
     {"header length 5 runs past the end of the 12-byte file"}},

    /* -- the header text: UTF-8 and control characters */
    {"overlong 2-byte UTF-8", "{\"\xc0\xaf\":1}", 0, 0, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT, {"header byte 2 (0xc0) is not valid UTF-8"}},
    {"overlong 3-byte UTF-8", "{\"\xe0\x80\xaf\":1}", 0, 0, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT, {"header byte 2 (0xe0) is not valid UTF-8"}},
    {"overlong 4-byte UTF-8", "{\"\xf0\x80\x80\xaf\":1}", 0, 0, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT, {"header byte 2 (0xf0) is not valid UTF-8"}},
    {"UTF-8 surrogate", "{\"a\xed\xa0\x80\":1}", 0, 0, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT, {"header byte 3 (0xed) is not valid UTF-8"}},
    {"UTF-8 above U+10FFFF", "{\"\xf4\x90\x80\x80\":1}", 0, 0, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT, {"header byte 2 (0xf4) is not valid UTF-8"}},
    {"UTF-8 lead byte 0xff", "{\"\xff\":1}", 0, 0, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT, {"header byte 2 (0xff) is not valid UTF-8"}},
    {"stray UTF-8 continuation byte", "{\"ab\x80\":1}", 0, 0, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT, {"header byte 4 (0x80) is not valid UTF-8"}},
    {"truncated UTF-8 sequence", "{\"\xe2\x82\":1}", 0, 0, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT, {"header byte 2 (0xe2) is not valid UTF-8"}},
    {"UTF-8 sequence cut by the header's end", "{\"a\xe2\x82", 0, 0,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"header byte 3 (0xe2) is not valid UTF-8"}},
    {"raw NUL in a name", "{\"a\0b\":1}", 9, 0, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT, {"header byte 3 (0x00) is a raw control character"}},
    {"raw NUL padding", "{}\0\0\0\0\0\0", 8, 0, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT, {"header byte 2 (0x00) is a raw control character"}},
    {"raw control character outside strings", "{\x01}", 0, 0, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT, {"header byte 1 (0x01) is a raw control character"}},
    {"raw tab inside a tensor name",
     "{\"a\tb\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0,
     8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"header byte 3 (0x09) is a raw control character"}},
    {"raw newline inside a metadata value",
     "{\"__metadata__\":{\"k\":\"x\ny\"}}", 0, 0, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT,
     {"header byte 23 (0x0a) is a raw control character"}},
    {"escaped NUL in a tensor name",
     "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT, {"header byte 3", "\\u0000"}},

    /* -- JSON syntax and the top-level value */
    {"not JSON", "hello", 0, 0, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"header is not valid JSON"}},
    {"empty header", "", 0, 0, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"header is not valid JSON", "of 0)"}},
    {"header of spaces only", "        ", 0, 0, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT, {"header is not valid JSON"}},
    {"truncated JSON", "{\"w\":{\"dtype\":", 0, 0, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT, {"header is not valid JSON"}},
    {"trailing comma", "{" W32 ",}", 0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"header is not valid JSON"}},
    {"single quotes", "{'w':1}", 0, 0, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"header is not valid JSON"}},
    {"invalid escape", "{\"\\x41\":1}", 0, 0, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"header is not valid JSON"}},
    {"lone surrogate escape", "{\"\\ud800\":1}", 0, 0, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT, {"header is not valid JSON"}},
    {"number with a leading zero",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 0, 8,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"header byte 29 starts a number that is not valid JSON"}},
    {"number ending in a point",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.]}}", 0, 8,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"header byte 50 starts a number that is not valid JSON"}},
    {"number without an integer part",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[-.5],\"data_offsets\":[0,8]}}", 0,
     8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"starts a number that is not valid JSON"}},
    {"JSON array", "[]", 0, 0, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"header is JSON but not an object"}},
    {"JSON number", "42      ", 0, 0, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"header is JSON but not an object"}},
    {"JSON string", "\"{}\"", 0, 0, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"header is JSON but not an object"}},
    {"JSON null", "null", 0, 0, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"header is JSON but not an object"}},
    {"trailing garbage", "{} x", 0, 0, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"unexpected text after the header's JSON value at byte 3 of 4"}},
    {"two objects", "{}{}", 0, 0, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"unexpected text after the header's JSON value at byte 2 of 4"}},

    /* -- fields of a tensor entry */
    {"entry not an object", "{\"w\":[1,2]}", 0, 0, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT, {"tensor 'w': entry is not a JSON object"}},
    {"unknown dtype",
     "{\"w\":{\"dtype\":\"F128\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT, {"tensor 'w': unknown dtype \"F128\""}},
    {"lower-case dtype",
     "{\"w\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT, {"tensor 'w': unknown dtype \"f32\""}},
    {"dtype not a string",
     "{\"w\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': \"dtype\" is not a string"}},
    {"dtype null",
     "{\"w\":{\"dtype\":null,\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': \"dtype\" is not a string"}},
    {"missing dtype", "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': field \"dtype\" is missing"}},
    {"missing shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 0,
     8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': field \"shape\" is missing"}},
    {"missing data_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 0, 8,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': field \"data_offsets\" is missing"}},
    {"dtype given twice",
     "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],"
     "\"data_offsets\":[0,8]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': field \"dtype\" appears twice"}},
    {"shape given twice",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"shape\":[1,2],"
     "\"data_offsets\":[0,8]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': field \"shape\" appears twice"}},
    {"data_offsets given twice",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],"
     "\"data_offsets\":[0,8]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': field \"data_offsets\" appears twice"}},
    {"shape not an array",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 0, 8,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': \"shape\" is not an array"}},
    {"shape an object",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":{\"0\":2},\"data_offsets\":[0,8]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': \"shape\" is not an array"}},
    {"negative dimension",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-2],\"data_offsets\":[0,8]}}", 0,
     8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': shape[1] = -2 is not a whole number in [0, 2^53)"}},
    {"fractional dimension",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 0,
     8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': shape[0] = 1.5 is not a whole number"}},
    {"dimension 2^53",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[9007199254740992],"
     "\"data_offsets\":[0,8]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': shape[0] = 9007199254740992 is not a whole number"}},
    {"dimension 1e400",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[1e400],\"data_offsets\":[0,8]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': shape[0] = inf is not a whole number"}},
    {"dimension a string",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': shape[0] is not a number"}},
    {"data_offsets of one number",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", 0, 8,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': \"data_offsets\" is not an array of two numbers"}},
    {"data_offsets of three numbers",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", 0,
     8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': \"data_offsets\" is not an array of two numbers"}},
    {"data_offsets a string",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":\"0-8\"}}", 0,
     8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': \"data_offsets\" is not an array of two numbers"}},
    {"negative begin",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 0, 8,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': data_offsets[0] = -8 is not a whole number in [0, 2^53)"}},
    {"fractional end",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,7.5]}}", 0,
     8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': data_offsets[1] = 7.5 is not a whole number"}},
    {"end beyond 2^53",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],"
     "\"data_offsets\":[0,9007199254740993]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': data_offsets[1] = 9007199254740992 is not a whole"}},
    {"offset null",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[null,8]}}", 0,
     8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': data_offsets[0] is not a number"}},
    {"end before begin",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,4]}}", 0, 8,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': data_offsets [8, 4] end before they begin"}},
    {"offsets past the data buffer",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0,
     8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': data_offsets [0, 16] run past the 8-byte data buffer"}},
    {"shape x dtype larger than the range",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 0, 8,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': shape [3] of F32 needs 12 bytes but data_offsets [0, 8] "
      "hold 8"}},
    {"shape x dtype smaller than the range",
     "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
     0, 16, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': shape [2, 2] of BF16 needs 8 bytes but data_offsets "
      "[0, 16] hold 16"}},
    {"F4 with an odd element count",
     "{\"w\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 0, 2,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': shape [3] of F4 is 12 bits, not a whole number of "
      "bytes"}},
    {"F6_E3M2 of 3 elements",
     "{\"w\":{\"dtype\":\"F6_E3M2\",\"shape\":[3],\"data_offsets\":[0,3]}}",
     0, 3, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': shape [3] of F6_E3M2 is 18 bits"}},
    {"element count overflow",
     "{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],"
     "\"data_offsets\":[0,8]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': shape [4294967296, 4294967296] has more elements than "
      "fit in 64 bits"}},
    {"element count overflow in the third dimension",
     "{\"w\":{\"dtype\":\"U8\",\"shape\":[65536,65536,65536,65536],"
     "\"data_offsets\":[0,8]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"has more elements than fit in 64 bits"}},
    {"size in bits overflows",
     "{\"w\":{\"dtype\":\"F64\",\"shape\":[2147483648,2147483648],"
     "\"data_offsets\":[0,8]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w': shape [2147483648, 2147483648] of F64 overflows 64 bits"}},

    /* -- the layout of the data buffer */
    {"hole between tensors",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
     0, 12, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'b' begins at byte 8 but the previous tensor ends at 4 (a hole "
      "in the data)"}},
    {"overlapping tensors",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
     0, 12, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'b' begins at byte 4, inside the previous tensor which ends at "
      "8 (overlap)"}},
    {"two tensors on the same bytes",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'b' begins at byte 0, inside the previous tensor which ends at "
      "8"}},
    {"empty tensor inside another",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'e' begins at byte 4, inside the previous tensor"}},
    {"first tensor not at 0",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 0, 8,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'a' is the first in the data buffer but begins at byte 4, "
      "not 0"}},
    {"trailing bytes after the last tensor", "{" W32 "}", 0, 12, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT,
     {"tensors cover 8 bytes of data but the file holds 12 after the header "
      "(4 trailing bytes)"}},
    {"no tensors but data", "{}", 0, 4, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensors cover 0 bytes of data but the file holds 4"}},
    {"duplicate tensor names",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w' appears twice in the header"}},
    {"duplicate tensor names, identical entries",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'w' appears twice in the header"}},

    /* -- __metadata__ */
    {"__metadata__ twice",
     "{\"__metadata__\":{\"a\":\"1\"},\"__metadata__\":{\"b\":\"2\"}}", 0, 0,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"\"__metadata__\" appears 2 times; a tensor may not be called "
      "\"__metadata__\""}},
    {"a tensor called __metadata__ beside the metadata",
     "{\"__metadata__\":{\"format\":\"pt\"},"
     "\"__metadata__\":{\"dtype\":\"F32\",\"shape\":[2],"
     "\"data_offsets\":[0,8]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT, {"\"__metadata__\" appears 2"}},
    {"a lone tensor called __metadata__",
     "{\"__metadata__\":{\"dtype\":\"F32\",\"shape\":[2],"
     "\"data_offsets\":[0,8]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"\"__metadata__\" value of \"shape\" is not a string"}},
    {"__metadata__ an array", "{\"__metadata__\":[\"pt\"]}", 0, 0, LEN_AUTO,
     0, TIMBER_ERR_FORMAT, {"\"__metadata__\" is not a JSON object"}},
    {"__metadata__ a string", "{\"__metadata__\":\"pt\"}", 0, 0, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT, {"\"__metadata__\" is not a JSON object"}},
    {"metadata value a number", "{\"__metadata__\":{\"format\":1}}", 0, 0,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"\"__metadata__\" value of \"format\" is not a string"}},
    {"metadata value null", "{\"__metadata__\":{\"format\":null}}", 0, 0,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"\"__metadata__\" value of \"format\" is not a string"}},
    {"metadata value an object",
     "{\"__metadata__\":{\"format\":{\"x\":\"pt\"}}}", 0, 0, LEN_AUTO, 0,
     TIMBER_ERR_FORMAT,
     {"\"__metadata__\" value of \"format\" is not a string"}},
    {"metadata key twice",
     "{\"__metadata__\":{\"format\":\"pt\",\"format\":\"np\"}}", 0, 0,
     LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"\"__metadata__\" key \"format\" appears twice"}},

    /* -- messages stay one line whatever the names hold */
    {"escaped newline in a bad tensor's name",
     "{\"bad\\nname\":{\"dtype\":\"F128\",\"shape\":[2],"
     "\"data_offsets\":[0,8]}}",
     0, 8, LEN_AUTO, 0, TIMBER_ERR_FORMAT,
     {"tensor 'bad\\x0aname': unknown dtype \"F128\""}},
};

static void write_case(const char *path, const struct bad_case *c)
{
    size_t hlen = c->hlen ? c->hlen : strlen(c->header);
    int rc;
    if (c->raw == RAW_FILE)
        rc = tu_write_file(path, c->header, hlen);
    else
        rc = tu_write_shard_raw(path,
                                c->len_field == LEN_AUTO ? hlen : c->len_field,
                                c->header, hlen, NULL, c->dlen);
    if (rc != 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(99);
    }
}

/* The message must start with the path, then ": ". */
static void check_names_file(const char *label, const char *path,
                             const timber_error *err)
{
    size_t n = strlen(path);
    CHECKF(strncmp(err->message, path, n) == 0 && err->message[n] == ':' &&
               err->message[n + 1] == ' ',
           "%s: message \"%s\" does not start with \"%s: \"", label,
           err->message, path);
}

static void test_bad_table(void)
{
    size_t n = sizeof bad_cases / sizeof *bad_cases;
    CHECKF(n >= 25, "only %zu malformed cases", n);
    for (size_t i = 0; i < n; i++) {
        const struct bad_case *c = &bad_cases[i];
        char name[64];
        snprintf(name, sizeof name, "bad-%03zu.safetensors", i);
        const char *path = tu_path(dir, name);
        write_case(path, c);
        tb_shard *s = (tb_shard *)0x1;
        timber_error err;
        memset(&err, 0, sizeof err);
        timber_status st = tb_shard_open(path, &s, &err);
        const char *subs[5] = {0};
        for (int k = 0; k < 4 && c->expect[k]; k++)
            subs[k] = c->expect[k];
        if (tu_check_error(__FILE__, __LINE__, c->label, st, &err, c->status,
                           subs))
            check_names_file(c->label, path, &err);
        CHECKF(s == NULL, "%s: *out not NULL after failure", c->label);
        if (st == TIMBER_OK)
            tb_shard_free(s);
    }
}

/* Big but not huge inputs that once tempted parsers to read past ends or
 * recurse without bound. */
static void test_bad_special(void)
{
    timber_error err;
    tb_shard *s = NULL;

    /* An unterminated string running to the very end of a file of exactly
     * one page: a parser that ignores the length reads past the map. */
    {
        long page = sysconf(_SC_PAGESIZE);
        size_t hlen = (size_t)page - 8;
        char *h = malloc(hlen);
        memset(h, 'a', hlen);
        memcpy(h, "{\"", 2);
        const char *path = tu_path(dir, "page-string.safetensors");
        tu_write_shard_raw(path, hlen, h, hlen, NULL, 0);
        free(h);
        timber_status st = tb_shard_open(path, &s, &err);
        CHECK_ERROR("unterminated string to the end of a page", st, &err,
                    TIMBER_ERR_FORMAT, "header is not valid JSON");
    }
    /* A number running to the end of a page. */
    {
        long page = sysconf(_SC_PAGESIZE);
        size_t hlen = (size_t)page - 8;
        char *h = malloc(hlen);
        memset(h, '7', hlen);
        memcpy(h, "{\"a\":", 5);
        const char *path = tu_path(dir, "page-number.safetensors");
        tu_write_shard_raw(path, hlen, h, hlen, NULL, 0);
        free(h);
        timber_status st = tb_shard_open(path, &s, &err);
        CHECK_ERROR("number to the end of a page", st, &err,
                    TIMBER_ERR_FORMAT, "header is not valid JSON");
    }
    /* 100,000 nested arrays. */
    {
        size_t depth = 100000;
        char *h = malloc(2 * depth + 8);
        size_t k = 0;
        memcpy(h, "{\"a\":", 5);
        k = 5;
        for (size_t i = 0; i < depth; i++)
            h[k++] = '[';
        for (size_t i = 0; i < depth; i++)
            h[k++] = ']';
        h[k++] = '}';
        const char *path = tu_path(dir, "deep.safetensors");
        tu_write_shard_raw(path, k, h, k, NULL, 0);
        free(h);
        timber_status st = tb_shard_open(path, &s, &err);
        CHECK_ERROR("100,000 nested arrays", st, &err, TIMBER_ERR_FORMAT,
                    "header is not valid JSON");
    }
}

static void test_bad_files(void)
{
    timber_error err;
    tb_shard *s = NULL;

    const char *missing = tu_path(dir, "no-such.safetensors");
    timber_status st = tb_shard_open(missing, &s, &err);
    if (CHECK_ERROR("missing file", st, &err, TIMBER_ERR_IO, "cannot open",
                    "No such file or directory"))
        check_names_file("missing file", missing, &err);

    const char *sub = tu_path(dir, "a-directory.safetensors");
    mkdir(sub, 0755);
    st = tb_shard_open(sub, &s, &err);
    if (CHECK_ERROR("a directory", st, &err, TIMBER_ERR_IO,
                    "not a regular file"))
        check_names_file("a directory", sub, &err);

    /* A FIFO with no writer: open() must not block (alarm fails the test
     * instead of hanging it). */
    const char *fifo = tu_path(dir, "fifo.safetensors");
    if (mkfifo(fifo, 0644) == 0) {
        alarm(20);
        st = tb_shard_open(fifo, &s, &err);
        alarm(0);
        if (CHECK_ERROR("a FIFO", st, &err, TIMBER_ERR_IO,
                        "not a regular file"))
            check_names_file("a FIFO", fifo, &err);
    }
}

/* ----------------------------------------------------------- valid files */

static tb_shard *open_ok(const char *label, const char *path)
{
    tb_shard *s = NULL;
    timber_error err;
    timber_status st = tb_shard_open(path, &s, &err);
    CHECK_OK(label, st, &err);
    return st ? NULL : s;
}

static tb_shard *write_and_open(const char *label, const char *name,
                                const char *header, const void *data,
                                size_t dlen)
{
    const char *path = tu_path(dir, name);
    tu_write_shard_raw(path, strlen(header), header, strlen(header), data,
                       dlen);
    return open_ok(label, path);
}

static const timber_tensor_info *find(const tb_shard *s, const char *name)
{
    for (size_t i = 0; i < tb_shard_tensor_count(s); i++)
        if (strcmp(tb_shard_tensor(s, i)->name, name) == 0)
            return tb_shard_tensor(s, i);
    return NULL;
}

static int same_shape(const timber_tensor_info *t, size_t ndim,
                      const uint64_t *shape)
{
    if (t->ndim != ndim)
        return 0;
    for (size_t d = 0; d < ndim; d++)
        if (t->shape[d] != shape[d])
            return 0;
    return 1;
}

static void test_valid_small(void)
{
    tb_shard *s;

    s = write_and_open("zero tensors, empty data", "empty.safetensors", "{}",
                       NULL, 0);
    if (s) {
        CHECK(tb_shard_tensor_count(s) == 0);
        CHECK(tb_shard_meta_count(s) == 0);
        CHECK(tb_shard_file_size(s) == 10);
        CHECK(tb_shard_tensor(s, 0) == NULL);
        CHECK(strcmp(tb_shard_name(s), "empty.safetensors") == 0);
        CHECK(strcmp(tb_shard_path(s), tu_path(dir, "empty.safetensors")) ==
              0);
        tb_shard_free(s);
    }

    s = write_and_open("padded with spaces", "padded.safetensors",
                       "{" W32 "}              ", "\0\0\x80?\0\0\0@", 8);
    if (s) {
        const timber_tensor_info *t = tb_shard_tensor(s, 0);
        CHECK(tb_shard_tensor_count(s) == 1);
        CHECK(t && strcmp(t->name, "w") == 0 && t->dtype == TIMBER_DT_F32);
        CHECK(t && t->nelems == 2 && t->nbytes == 8 && t->offset == 0);
        CHECK(t && strcmp(t->shard, "padded.safetensors") == 0);
        if (t) {
            float f[2];
            memcpy(f, tb_shard_data(s, t), 8);
            CHECK(f[0] == 1.0f && f[1] == 2.0f);
        }
        tb_shard_free(s);
    }

    s = write_and_open(
        "pretty-printed header with every kind of whitespace",
        "pretty.safetensors",
        "\r\n\t{ \"w\" :\n\t{ \"dtype\" : \"F32\" ,\r\n \"shape\" : [ 2 ] , "
        "\"data_offsets\" : [ 0 , 8 ] } }\n\t \r",
        NULL, 8);
    if (s) {
        CHECK(tb_shard_tensor_count(s) == 1);
        tb_shard_free(s);
    }

    s = write_and_open(
        "scalar and zero-sized dimensions", "scalar.safetensors",
        "{\"empty\":{\"dtype\":\"F32\",\"shape\":[3,0,5],"
        "\"data_offsets\":[0,0]},"
        "\"huge_empty\":{\"dtype\":\"F64\",\"shape\":[0,4503599627370496,"
        "4503599627370496],\"data_offsets\":[0,0]},"
        "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
        "\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]}}",
        NULL, 4);
    if (s) {
        CHECK(tb_shard_tensor_count(s) == 4);
        const timber_tensor_info *t = find(s, "s");
        CHECK(t && t->ndim == 0 && t->nelems == 1 && t->nbytes == 4);
        t = find(s, "empty");
        CHECK(t && t->ndim == 3 && t->nelems == 0 && t->nbytes == 0);
        CHECK(t && same_shape(t, 3, (const uint64_t[]){3, 0, 5}));
        t = find(s, "huge_empty");
        CHECK(t && t->nelems == 0 && t->shape[2] == 4503599627370496ull);
        t = find(s, "z");
        CHECK(t && t->offset == 4 && t->nbytes == 0);
        /* Sorted by offset: the last one is the empty tensor at 4. */
        CHECK(strcmp(tb_shard_tensor(s, 3)->name, "z") == 0);
        tb_shard_free(s);
    }

    s = write_and_open("__metadata__ null", "meta-null.safetensors",
                       "{\"__metadata__\":null," W32 "}", NULL, 8);
    if (s) {
        CHECK(tb_shard_meta_count(s) == 0 && tb_shard_tensor_count(s) == 1);
        tb_shard_free(s);
    }
    s = write_and_open("__metadata__ empty", "meta-empty.safetensors",
                       "{" W32 ",\"__metadata__\":{}}", NULL, 8);
    if (s) {
        CHECK(tb_shard_meta_count(s) == 0);
        tb_shard_free(s);
    }
    s = write_and_open(
        "__metadata__ with string values", "meta.safetensors",
        "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\\u00e9 \\\"x\\\"\","
        "\"empty\":\"\"}," W32 "}",
        NULL, 8);
    if (s) {
        CHECK(tb_shard_meta_count(s) == 3);
        CHECK(tb_shard_meta_key(s, 0) &&
              strcmp(tb_shard_meta_key(s, 0), "format") == 0);
        CHECK(tb_shard_meta_value(s, 0) &&
              strcmp(tb_shard_meta_value(s, 0), "pt") == 0);
        CHECK(tb_shard_meta_value(s, 1) &&
              strcmp(tb_shard_meta_value(s, 1), "caf\xc3\xa9 \"x\"") == 0);
        CHECK(tb_shard_meta_value(s, 2) &&
              strcmp(tb_shard_meta_value(s, 2), "") == 0);
        CHECK(tb_shard_meta_key(s, 3) == NULL);
        tb_shard_free(s);
    }

    s = write_and_open(
        "names with escapes and multi-byte UTF-8", "names.safetensors",
        "{\"caf\xc3\xa9.\xe6\x97\xa5\xf0\x9f\x99\x82\":{\"dtype\":\"U8\","
        "\"shape\":[1],\"data_offsets\":[0,1]},"
        "\"q\\\"b\\\\s\\/\\u00e9\":{\"dtype\":\"U8\",\"shape\":[1],"
        "\"data_offsets\":[1,2]},"
        "\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,3]},"
        "\"num-1.5e3\":{\"dtype\":\"U8\",\"shape\":[1],"
        "\"data_offsets\":[3,4]}}",
        "abcd", 4);
    if (s) {
        CHECK(find(s, "caf\xc3\xa9.\xe6\x97\xa5\xf0\x9f\x99\x82") != NULL);
        CHECK(find(s, "q\"b\\s/\xc3\xa9") != NULL);
        CHECK(find(s, "") != NULL);
        CHECK(find(s, "num-1.5e3") != NULL);
        tb_shard_free(s);
    }
}

/* One tensor of every dtype of the spec, with sizes that are whole bytes:
 * F4 of 4 elements (2 bytes), F6_E2M3 of 4 (3 bytes), C64 of 2, ... */
static void test_valid_all_dtypes(void)
{
    char header[8192];
    size_t at = 0, off = 0;
    uint64_t elems[TIMBER_DT_COUNT];
    at += (size_t)snprintf(header + at, sizeof header - at, "{");
    for (int dt = 0; dt < TIMBER_DT_COUNT; dt++) {
        unsigned bits = timber_dtype_bits((timber_dtype)dt);
        elems[dt] = bits < 8 ? 4 : 3;
        uint64_t bytes = elems[dt] * bits / 8;
        at += (size_t)snprintf(
            header + at, sizeof header - at,
            "%s\"t_%s\":{\"dtype\":\"%s\",\"shape\":[%llu],"
            "\"data_offsets\":[%zu,%zu]}",
            dt ? "," : "", timber_dtype_name((timber_dtype)dt),
            timber_dtype_name((timber_dtype)dt), (unsigned long long)elems[dt],
            off, off + (size_t)bytes);
        off += (size_t)bytes;
    }
    snprintf(header + at, sizeof header - at, "}");
    unsigned char *data = malloc(off);
    for (size_t i = 0; i < off; i++)
        data[i] = (unsigned char)(i * 7 + 1);
    tb_shard *s =
        write_and_open("every dtype", "dtypes.safetensors", header, data, off);
    if (s) {
        CHECK(tb_shard_tensor_count(s) == TIMBER_DT_COUNT);
        size_t expect_off = 0;
        for (int dt = 0; dt < TIMBER_DT_COUNT; dt++) {
            char name[64];
            snprintf(name, sizeof name, "t_%s",
                     timber_dtype_name((timber_dtype)dt));
            const timber_tensor_info *t = find(s, name);
            uint64_t bytes =
                elems[dt] * timber_dtype_bits((timber_dtype)dt) / 8;
            if (!CHECKF(t != NULL, "%s missing", name))
                continue;
            CHECKF(t->dtype == (timber_dtype)dt, "%s dtype %d", name,
                   (int)t->dtype);
            CHECKF(t->nelems == elems[dt] && t->nbytes == bytes &&
                       t->offset == expect_off,
                   "%s: nelems %llu nbytes %llu offset %llu", name,
                   (unsigned long long)t->nelems,
                   (unsigned long long)t->nbytes,
                   (unsigned long long)t->offset);
            CHECK(memcmp(tb_shard_data(s, t), data + expect_off, bytes) == 0);
            expect_off += bytes;
        }
        /* tb_shard_tensor() is in offset order. */
        for (size_t i = 1; i < tb_shard_tensor_count(s); i++)
            CHECK(tb_shard_tensor(s, i - 1)->offset <=
                  tb_shard_tensor(s, i)->offset);
        tb_shard_free(s);
    }
    free(data);

    /* The specific sub-byte sizes the spec names. */
    s = write_and_open(
        "F4 x4, F6_E2M3 x4, C64, F8", "subbyte.safetensors",
        "{\"a\":{\"dtype\":\"F4\",\"shape\":[2,2],\"data_offsets\":[0,2]},"
        "\"b\":{\"dtype\":\"F6_E2M3\",\"shape\":[4],\"data_offsets\":[2,5]},"
        "\"c\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[5,13]},"
        "\"d\":{\"dtype\":\"F8_E4M3\",\"shape\":[3],\"data_offsets\":[13,16]},"
        "\"e\":{\"dtype\":\"F8_E8M0\",\"shape\":[],\"data_offsets\":[16,17]},"
        "\"f\":{\"dtype\":\"F4\",\"shape\":[1,6],\"data_offsets\":[17,20]}}",
        NULL, 20);
    if (s) {
        const timber_tensor_info *t = find(s, "b");
        CHECK(t && t->nelems == 4 && t->nbytes == 3);
        t = find(s, "a");
        CHECK(t && t->nelems == 4 && t->nbytes == 2);
        t = find(s, "f");
        CHECK(t && t->nelems == 6 && t->nbytes == 3);
        tb_shard_free(s);
    }
}

static void test_many_tensors(void)
{
    const size_t n = 100000;
    size_t cap = n * 128 + 16, at = 0;
    char *h = malloc(cap);
    h[at++] = '{';
    /* Written in reverse offset order, so the reader must sort. */
    for (size_t i = 0; i < n; i++) {
        size_t k = n - 1 - i;
        at += (size_t)snprintf(h + at, cap - at,
                               "%s\"model.layers.%zu.w\":{\"dtype\":\"BF16\","
                               "\"shape\":[1],\"data_offsets\":[%zu,%zu]}",
                               i ? "," : "", k, 2 * k, 2 * k + 2);
    }
    h[at++] = '}';
    h[at] = '\0';
    const char *path = tu_path(dir, "many.safetensors");
    tu_write_shard_raw(path, at, h, at, NULL, 2 * n);
    free(h);
    /* No timing assertion: a quadratic reader shows up as a slow test. */
    tb_shard *s = open_ok("100,000 tensors", path);
    if (s) {
        CHECK(tb_shard_tensor_count(s) == n);
        int ordered = 1;
        for (size_t i = 0; i < n; i++)
            ordered &= tb_shard_tensor(s, i)->offset == 2 * i;
        CHECK(ordered);
        CHECK(strcmp(tb_shard_tensor(s, n - 1)->name, "model.layers.99999.w") ==
              0);
        tb_shard_free(s);
    }
}

/* Deterministic mutations of a valid shard: every result must be either
 * accepted with consistent tensors, or refused as FORMAT with a one-line
 * message that starts with the path.  (Under the sanitizers and valgrind
 * this doubles as a small fuzz run.) */
static void test_mutations(void)
{
    static const char base[] =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"a.w\":{\"dtype\":\"BF16\",\"shape\":[2,3],"
        "\"data_offsets\":[0,12]},"
        "\"b\":{\"dtype\":\"F4\",\"shape\":[4],\"data_offsets\":[12,14]},"
        "\"c\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[14,18]}}";
    static const char alphabet[] = "{}[]:,\"\\0123456789-.eE+ \tnulltruef"
                                   "\x00\x01\x7f\x80\xbf\xc0\xe0\xed\xf0"
                                   "\xf4\xff";
    const size_t blen = sizeof base - 1;
    const char *path = tu_path(dir, "mutant.safetensors");
    uint64_t rng = 12345;
    int bad = 0, accepted = 0;
    char h[sizeof base + 16];
    for (int iter = 0; iter < 4000; iter++) {
        memcpy(h, base, blen);
        size_t hlen = blen;
        int edits = 1 + (int)(tu_rand(&rng) % 3);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)(tu_rand(&rng) % hlen);
            char c = alphabet[tu_rand(&rng) % (sizeof alphabet - 1)];
            switch (tu_rand(&rng) % 3) {
            case 0: /* replace */
                h[at] = c;
                break;
            case 1: /* delete */
                memmove(h + at, h + at + 1, hlen - at - 1);
                hlen--;
                break;
            default: /* insert */
                if (hlen < sizeof h) {
                    memmove(h + at + 1, h + at, hlen - at);
                    h[at] = c;
                    hlen++;
                }
            }
        }
        size_t dlen = 18 + (size_t)(tu_rand(&rng) % 3) - 1;
        uint64_t field = hlen;
        if (tu_rand(&rng) % 16 == 0)
            field = hlen + (tu_rand(&rng) % 5) - 2;
        tu_write_shard_raw(path, field, h, hlen, NULL, dlen);
        tb_shard *s = NULL;
        timber_error err;
        timber_status st = tb_shard_open(path, &s, &err);
        if (st == TIMBER_OK) {
            accepted++;
            uint64_t total = 0;
            int ok = 1;
            for (size_t i = 0; i < tb_shard_tensor_count(s); i++) {
                const timber_tensor_info *t = tb_shard_tensor(s, i);
                ok &= t->offset == total;
                ok &= t->nelems * timber_dtype_bits(t->dtype) == 8 * t->nbytes;
                total += t->nbytes;
            }
            ok &= 8 + field + total == tb_shard_file_size(s);
            if (!ok && bad++ < 3)
                CHECKF(0, "mutant %d accepted with inconsistent tensors", iter);
            tb_shard_free(s);
        } else {
            size_t n = strlen(path);
            int ok = st == TIMBER_ERR_FORMAT &&
                     strncmp(err.message, path, n) == 0 &&
                     err.message[n] == ':' && !strchr(err.message, '\n');
            if (!ok && bad++ < 3)
                CHECKF(0, "mutant %d: status %d, message \"%s\"", iter,
                       (int)st, err.message);
        }
    }
    CHECKF(bad == 0, "%d mutants misbehaved", bad);
    CHECKF(accepted > 0 && accepted < 4000, "%d of 4000 accepted", accepted);
}

int main(void)
{
    signal(SIGALRM, SIG_DFL);
    dir = tu_tempdir("st");
    test_bad_table();
    test_bad_special();
    test_bad_files();
    test_valid_small();
    test_valid_all_dtypes();
    test_many_tensors();
    test_mutations();
    return tu_report();
}
