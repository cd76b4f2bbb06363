#!/usr/bin/env bash
# The Debian package: `cpack -G DEB` builds timber_<version>_<arch>.deb
# whose Depends (from dpkg-shlibdeps) covers the package of every shared
# library the binary needs, which recommends gnuplot, and which holds
# exactly the program, its man page, completions and documentation.
#
# Installed into a scratch root (dpkg --root, as root; dpkg-deb -x
# otherwise), the binary is the one built (byte-identical output on a
# generated pair), its man page shows and its completions pass
# completion.sh; `dpkg --root -r` then leaves nothing behind.
#
# As root, and unless TIMBER_TEST_SYSTEM_INSTALL=0, it is then installed
# for real with `apt-get install ./timber_*.deb`: timber on PATH, `man
# timber`, bash-completion's loader and zsh's compinit (default $fpath)
# all find it, and `apt-get remove` removes every file.  The package is
# removed again however the test ends, and the real install is skipped
# when a timber package or /usr/bin/timber is there already.
#
#   usage: package.sh BUILD_DIR TIMBER_GEN LIBRARY
# LIBRARY is the build's TIMBER_INSTALL_LIBRARY (ON/OFF): with it the
# package also holds libtimber.a, the headers and timber.pc.  Exits 77 (skipped) without dpkg-deb / dpkg-shlibdeps (apt-get install
# dpkg-dev).  Prints "N passed, M failed".
set -u
if [ $# -ne 3 ]; then
    echo "usage: $0 BUILD_DIR TIMBER_GEN LIBRARY" >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd) GEN=$2
case "$3" in ON | on | 1 | TRUE | true | YES | yes) library=1 ;; *) library=0 ;; esac
BUILT=$BUILD/timber
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for tool in dpkg dpkg-deb dpkg-shlibdeps cpack; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$tool not found (apt-get install dpkg-dev): skipped"
        exit 77
    fi
done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/timber-package-XXXXXX") || exit 1
installed_for_real=0
cleanup() {
    if ((installed_for_real)); then
        echo "removing the timber package installed by this test" >&2
        DEBIAN_FRONTEND=noninteractive apt-get remove -y -q \
            -o DPkg::Lock::Timeout=600 timber </dev/null >/dev/null 2>&1 ||
            dpkg -r timber >/dev/null 2>&1
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# shellcheck source=lib.sh
source "$here/lib.sh"

# ---- the package ------------------------------------------------------------
version=$("$BUILT" --version | cut -d' ' -f2)
arch=$(dpkg --print-architecture)
if cpack --config "$BUILD/CPackConfig.cmake" -G DEB -B "$TMP/pkg" \
    >"$TMP/cpack.log" 2>&1; then ok; else
    bad "cpack -G DEB: $(tail -20 "$TMP/cpack.log")"
    finish
    exit
fi
deb=$TMP/pkg/timber_${version}_${arch}.deb
debs=$(cd "$TMP/pkg" && ls ./*.deb 2>/dev/null)
[ -f "$deb" ] && [ "$debs" = "./$(basename "$deb")" ] && ok ||
    bad "cpack wrote [$debs], not timber_${version}_${arch}.deb"
[ -f "$deb" ] || {
    finish
    exit
}
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = timber ] && [ "$(field Version)" = "$version" ] &&
    [ "$(field Architecture)" = "$arch" ] && ok ||
    bad "control: Package $(field Package), Version $(field Version), Architecture $(field Architecture)"
[[ "$(field Recommends)" == *gnuplot* ]] && ok ||
    bad "Recommends is '$(field Recommends)', not gnuplot"
[ -n "$(field Maintainer)" ] && [ -n "$(field Description)" ] && ok ||
    bad "no Maintainer or Description"

# Depends: for every library the binary needs, the package that holds the
# file the dynamic linker loads is named, or is a dependency of a package
# named (libopenblas0 stands for libopenblas0-pthread and its siblings).
depends=$(field Depends)
dpkg-deb -x "$deb" "$TMP/x"
needed=$(readelf -d "$TMP/x/usr/bin/timber" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ -n "$needed" ] && ok || bad "readelf found no NEEDED libraries"
named=$(tr ',|' '\n\n' <<<"$depends" | sed 's/(.*//; s/ //g' | sed '/^$/d')
also=$(for p in $named; do dpkg-query -W -f='${Depends}\n' "$p" 2>/dev/null; done |
    tr ',|' '\n\n' | sed 's/(.*//; s/ //g' | sed '/^$/d')
for lib in $needed; do
    path=$(ldd "$TMP/x/usr/bin/timber" | awk -v l="$lib" '$1 == l { print $3 }')
    owner=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n 1 | cut -d: -f1)
    [ -n "$owner" ] || owner=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1)
    if [ -n "$owner" ] && grep -qxF "$owner" <<<"$named
$also"; then ok; else
        bad "Depends '$depends' does not cover $lib ($path, package '$owner')"
    fi
done

# The contents: exactly these files.
want=$({
    echo usr/bin/timber
    echo usr/share/man/man1/timber.1.gz
    echo usr/share/bash-completion/completions/timber
    echo usr/share/zsh/vendor-completions/_timber
    echo usr/share/doc/timber/README.md
    echo usr/share/doc/timber/LICENSE
    (cd "$here/../.." && ls docs/*.md | sed 's:^:usr/share/doc/timber/:')
    if ((library)); then
        printf '%s\n' usr/include/timber.h usr/include/timber_version.h \
            usr/lib/libtimber.a usr/lib/pkgconfig/timber.pc
    fi
} | sort)
files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $6 }' | sed 's:^\./::' | sort)
if [ "$(sed 's:^usr/lib/[^/]*-linux-gnu/:usr/lib/:' <<<"$files" | sort)" = "$want" ]; then ok; else
    bad "the package's files differ from the list:
$(diff <(echo "$want") <(echo "$files"))"
fi

# check_tree LABEL ROOT: the files of the package as installed under ROOT
# ("" for the system) work.
check_tree() {
    local label=$1 root=$2
    check_runs "$label" "$root/usr/bin/timber"
    check_man "$label" "${root:+$root/usr/share/man}" \
        "$root/usr/share/man/man1/timber.1.gz"
    if bash "$here/completion.sh" "$root/usr/bin/timber" \
        "$root/usr/share/bash-completion/completions/timber" \
        "$root/usr/share/zsh/vendor-completions/_timber" \
        >"$TMP/comp.log" 2>&1; then ok; else
        bad "$label: completion.sh: $(tail -20 "$TMP/comp.log")"
    fi
}
# leftovers ROOT: the package's files still under ROOT.
leftovers() {
    local f
    for f in $files; do [ -e "$1/$f" ] && echo "$f"; done
    [ -e "$1/usr/share/doc/timber" ] && echo usr/share/doc/timber/
}

# ---- a scratch root ---------------------------------------------------------
R=$TMP/root
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/log"
    : >"$R/var/lib/dpkg/status"
    : >"$R/var/lib/dpkg/available"
    # Its database knows none of the dependencies: --force-depends.
    if dpkg --root="$R" --log="$R/var/log/dpkg.log" --force-depends \
        -i "$deb" >"$TMP/dpkg.log" 2>&1; then ok; else
        bad "dpkg --root -i: $(tail -10 "$TMP/dpkg.log")"
    fi
    check_tree "scratch root" "$R"
    if dpkg --root="$R" --log="$R/var/log/dpkg.log" -r timber \
        >"$TMP/dpkg.log" 2>&1; then ok; else
        bad "dpkg --root -r: $(tail -10 "$TMP/dpkg.log")"
    fi
    left=$(leftovers "$R")
    extra=$(cd "$R" && find . -path ./var -prune -o ! -type d -print)
    [ -z "$left$extra" ] && ok || bad "dpkg -r left: $left $extra"
    st=$(dpkg-query --admindir="$R/var/lib/dpkg" -W -f='${db:Status-Status}' \
        timber 2>/dev/null)
    [ -z "$st" ] || [ "$st" = not-installed ] && ok ||
        bad "after dpkg -r, the scratch database says '$st'"
else
    # No root, no dpkg database of our own to install into: unpack only.
    check_tree "unpacked package" "$TMP/x"
fi

# ---- for real ---------------------------------------------------------------
if [ "$(id -u)" != 0 ]; then
    echo "not root: the package is not installed for real"
elif [ "${TIMBER_TEST_SYSTEM_INSTALL:-1}" = 0 ]; then
    echo "TIMBER_TEST_SYSTEM_INSTALL=0: the package is not installed for real"
elif ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get: the package is not installed for real"
elif dpkg-query -W -f='${db:Status-Status}' timber 2>/dev/null | grep -qx installed ||
    [ -e /usr/bin/timber ]; then
    echo "a timber is installed already: left alone, not installed for real"
else
    export DEBIAN_FRONTEND=noninteractive
    installed_for_real=1
    if apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=600 "$deb" </dev/null >"$TMP/apt.log" 2>&1; then
        ok
    else
        bad "apt-get install $deb: $(tail -10 "$TMP/apt.log")"
    fi
    sys_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    got=$(PATH=$sys_path command -v timber)
    [ "$got" = /usr/bin/timber ] || [ -e /usr/local/bin/timber ] && ok ||
        bad "after apt-get install, timber on PATH is '$got'"
    man_excluded=0
    if grep -qs '^path-exclude=\?[[:space:]]*/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
        man_excluded=1
        echo "dpkg's configuration excludes /usr/share/man here: man timber not checked"
    fi
    check_runs "apt-get install" /usr/bin/timber
    ((man_excluded)) || check_man "apt-get install" "" /usr/share/man/man1/timber.1.gz
    if bash "$here/completion.sh" /usr/bin/timber \
        /usr/share/bash-completion/completions/timber \
        /usr/share/zsh/vendor-completions/_timber >"$TMP/comp.log" 2>&1; then
        ok
    else
        bad "apt-get install: completion.sh: $(tail -20 "$TMP/comp.log")"
    fi
    # zsh's own $fpath, untouched, reaches the completion.
    if command -v zsh >/dev/null 2>&1; then
        got=$(HOME=$TMP zsh -f -c "autoload -Uz compinit &&
            compinit -u -d '$TMP/zdump' && print -r -- \$_comps[timber]" 2>&1)
        [ "$got" = _timber ] && ok ||
            bad "zsh's default fpath does not reach _timber: '$got'"
    fi
    if apt-get remove -y -q -o DPkg::Lock::Timeout=600 timber </dev/null \
        >"$TMP/apt.log" 2>&1; then
        ok
        installed_for_real=0
    else
        bad "apt-get remove timber: $(tail -10 "$TMP/apt.log")"
    fi
    st=$(dpkg-query -W -f='${db:Status-Status}' timber 2>/dev/null)
    [ -z "$st" ] || [ "$st" = not-installed ] && ok ||
        bad "after apt-get remove, dpkg says timber is '$st'"
    left=$(leftovers "")
    [ -z "$left" ] && ok || bad "apt-get remove left: $left"
fi

finish
