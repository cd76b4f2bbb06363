/*
 * text.c — names and paths made safe for a human-readable line.  A tensor
 * name or a path may hold any byte a file allows: a newline would split
 * one warning into two lines, an escape sequence would move the cursor or
 * recolour the terminal.  Every control character (0x00-0x1f, 0x7f) is
 * written as \xNN (as the library already writes them in its messages,
 * util.c), so one name is always one line.  Machine
 * formats (JSON, CSV) carry names exactly, in their own quoting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int needs_escape(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

char *cli_escape(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += needs_escape(*p) ? 4 : 1;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (needs_escape(*p)) {
            snprintf(o, 5, "\\x%02x", *p);
            o += 4;
        } else {
            *o++ = (char)*p;
        }
    }
    *o = '\0';
    return out;
}

void cli_put_text(FILE *f, const char *s, int width)
{
    char *e = cli_escape(s);
    fprintf(f, "%-*s", width, e ? e : "(out of memory)");
    free(e);
}
