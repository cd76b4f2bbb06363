#!/usr/bin/env bash
# `cmake --install`: into a scratch prefix it installs exactly bin/timber,
# the man page, the bash and zsh completions and the documentation (no
# test helper, no library); the installed timber is the one built (same
# version, byte-identical output on a generated pair), `man` finds its page
# through MANPATH or PREFIX/bin on PATH, and its completions pass completion.sh from where they
# were installed, bash-completion's loader included.  With DESTDIR and
# --prefix /usr the zsh completion goes to Debian's vendor-completions.
# The component "dev" (-DTIMBER_INSTALL_LIBRARY=ON installs it by default)
# adds libtimber.a, timber.h, timber_version.h and timber.pc, and a program
# built from them with pkg-config alone runs and sees this version.
#
#   usage: install_tree.sh BUILD_DIR TIMBER_GEN SANITIZE LIBRARY
# SANITIZE and LIBRARY are the build's TIMBER_SANITIZE and
# TIMBER_INSTALL_LIBRARY (ON/OFF): an instrumented libtimber.a links only
# with the sanitizers, and a default install holds the library only with
# the option.  Prints "N passed, M failed".
set -u
if [ $# -ne 4 ]; then
    echo "usage: $0 BUILD_DIR TIMBER_GEN SANITIZE LIBRARY" >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd) GEN=$2
is_on() { case "$1" in ON | on | 1 | TRUE | true | YES | yes) return 0 ;; esac; return 1; }
san_flags=()
is_on "$3" && san_flags=(-fsanitize=address,undefined)
library=0
is_on "$4" && library=1
BUILT=$BUILD/timber
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/timber-install-XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
# shellcheck source=lib.sh
source "$here/lib.sh"

# tree DIR: the files and links under DIR, relative, sorted.
tree() { (cd "$1" && find . \( -type f -o -type l \) | sed 's:^\./::' | sort); }

# ---- a prefix of its own --------------------------------------------------
P=$TMP/prefix
if cmake --install "$BUILD" --prefix "$P" >"$TMP/install.log" 2>&1; then ok; else
    bad "cmake --install --prefix: $(tail -5 "$TMP/install.log")"
fi
want=$({
    echo bin/timber
    echo share/man/man1/timber.1.gz
    echo share/bash-completion/completions/timber
    echo share/zsh/site-functions/_timber
    echo share/doc/timber/README.md
    echo share/doc/timber/LICENSE
    (cd "$src" && ls docs/*.md | sed 's:^:share/doc/timber/:')
    if ((library)); then
        printf '%s\n' include/timber.h include/timber_version.h \
            lib/libtimber.a lib/pkgconfig/timber.pc
    fi
} | sort)
got=$(tree "$P" | sed 's:^lib/[^/]*-linux-gnu/:lib/:')
if [ "$got" = "$want" ]; then ok; else
    bad "installed files differ from the list:
$(diff <(echo "$want") <(echo "$got"))"
fi
for f in docs/cli.md README.md; do
    cmp -s "$src/$f" "$P/share/doc/timber/${f#./}" 2>/dev/null ||
        cmp -s "$src/$f" "$P/share/doc/timber/$f" && ok ||
        bad "share/doc/timber/$f is not $f"
done
[ -x "$P/bin/timber" ] && ok || bad "bin/timber is not executable"

# On PATH, it is the timber that was built.
got=$(PATH="$P/bin:$PATH" command -v timber)
[ "$got" = "$P/bin/timber" ] && ok || bad "timber on PATH is '$got'"
check_runs "installed timber" "$P/bin/timber"
check_man "installed man page" "$P/share/man" "$P/share/man/man1/timber.1.gz"
# Without MANPATH, man-db derives PREFIX/share/man from PREFIX/bin on PATH.
if command -v man >/dev/null 2>&1; then
    got=$(env -u MANPATH PATH="$P/bin:$PATH" man -w timber 2>&1)
    [ "$got" = "$P/share/man/man1/timber.1.gz" ] && ok ||
        bad "man -w timber with $P/bin on PATH: '$got'"
fi
if bash "$here/completion.sh" "$P/bin/timber" \
    "$P/share/bash-completion/completions/timber" \
    "$P/share/zsh/site-functions/_timber" >"$TMP/comp.log" 2>&1; then ok; else
    bad "completion.sh on the installed files:
$(grep -v '^\(bash\|zsh\).*not' "$TMP/comp.log" | tail -20)"
fi

# ---- DESTDIR, prefix /usr: Debian's zsh directory -------------------------
if DESTDIR=$TMP/root cmake --install "$BUILD" --prefix /usr \
    >"$TMP/install.log" 2>&1; then ok; else
    bad "DESTDIR=... cmake --install --prefix /usr: $(tail -5 "$TMP/install.log")"
fi
[ -f "$TMP/root/usr/share/zsh/vendor-completions/_timber" ] &&
    [ ! -e "$TMP/root/usr/share/zsh/site-functions" ] && ok ||
    bad "prefix /usr: _timber is not in share/zsh/vendor-completions: $(tree "$TMP/root")"
[ -x "$TMP/root/usr/bin/timber" ] && ok || bad "DESTDIR: no usr/bin/timber"

# ---- the library: component dev -------------------------------------------
D=$TMP/dev
if cmake --install "$BUILD" --prefix "$D" --component dev \
    >"$TMP/install.log" 2>&1; then ok; else
    bad "cmake --install --component dev: $(tail -5 "$TMP/install.log")"
fi
got=$(tree "$D" | sed 's:^lib/[^/]*-linux-gnu/:lib/:')
want=$(printf '%s\n' include/timber.h include/timber_version.h lib/libtimber.a \
    lib/pkgconfig/timber.pc | sort)
if [ "$got" = "$want" ]; then ok; else
    bad "component dev: $(echo $got)"
fi
pc=$(find "$D" -name timber.pc)
cat >"$TMP/use.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <timber.h>
int main(void)
{
    char v[64];
    snprintf(v, sizeof v, "%d.%d.%d", TIMBER_VERSION_MAJOR,
             TIMBER_VERSION_MINOR, TIMBER_VERSION_PATCH);
    printf("%s %s\n", TIMBER_VERSION_STRING, timber_version());
    return strcmp(v, TIMBER_VERSION_STRING) != 0 ||
           strcmp(timber_version(), TIMBER_VERSION_STRING) != 0;
}
C
version=$("$BUILT" --version | cut -d' ' -f2)
if [ -n "$pc" ] && command -v pkg-config >/dev/null &&
    flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config \
        --cflags --libs timber 2>&1) &&
    cc -std=c11 ${san_flags[@]+"${san_flags[@]}"} "$TMP/use.c" -o "$TMP/use" \
        $flags 2>"$TMP/cc.err"; then
    ok
    [ "$("$TMP/use")" = "$version $version" ] && ok ||
        bad "a program built against the installed library says '$("$TMP/use")'"
else
    bad "could not build against the installed library ($pc): ${flags:-} $(cat "$TMP/cc.err" 2>/dev/null)"
fi
# The headers installed are the ones of this source tree and build.
cmp -s "$src/include/timber.h" "$D/include/timber.h" &&
    cmp -s "$BUILD/include/timber_version.h" "$D/include/timber_version.h" &&
    ok || bad "the installed headers are not include/timber.h and the generated timber_version.h"

finish
