#!/usr/bin/env bash
# The shell completions against --help: every command of `timber --help`
# and every option of each `timber CMD --help` is offered, nothing else
# is, an option's FILE or PATH value completes file names (with spaces, and in the
# --opt=VALUE form), its other values complete nothing, and the
# positional arguments complete paths.  The same checks run for both
# shells: bash runs the completion function the way bash does (COMP_WORDS,
# COMP_CWORD); zsh (when installed) completes the line with Tab in an
# interactive zsh whose compinit found the file on $fpath
# (zsh_complete.zsh).  When the bash file lies in a
# share/bash-completion/completions directory, bash-completion's own
# loader must find it there.
#
#   usage: completion.sh TIMBER BASH_FILE [ZSH_FILE]
# Prints "N passed, M failed".
set -u
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 TIMBER BASH_FILE [ZSH_FILE]" >&2
    exit 2
fi
abs() { case "$1" in /* | '') printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
TIMBER=$(abs "$1") BASH_FILE=$(abs "$2") ZSH_FILE=$(abs "${3:-}")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/timber-completion-XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL: $*" >&2
}

# help_terms TEXT: the option terms of a help text's "options:" section,
# one per line ("--gamma G[,G...]", "-q, --quiet").
help_terms() {
    awk '/^[^ ]/ { opt = ($0 == "options:") ; next }
         opt && /^  -/ { sub(/^  /, ""); sub(/  +.*/, ""); print }'
}
# help_text TERM: the words of TERM's description in a help text (its
# line and the continuation lines under it), one per line.
help_text() {
    awk -v t="$1" '/^[^ ]/ { opt = ($0 == "options:"); on = 0; next }
        opt && /^  -/ { d = $0; sub(/^  /, "", d); on = (index(d, t "  ") == 1)
                        if (on) { sub(/^[^ ]+( [^ ]+)?  +/, "", d); print d }; next }
        on && /^      / { print }' | tr -cs 'A-Za-z0-9_-' '\n' | sed '/^$/d'
}
# names TERMS: the option names of the terms, sorted, one per line.
names() { grep -oE '(^|[ ,])-{1,2}[a-zA-Z][a-zA-Z-]*' | tr -d ' ,' | sort -u; }
sorted() { printf '%s\n' "$@" | sed '/^$/d' | sort -u; }

# comp WORD...: what the shell under test ($shell) offers for the command
# line WORD..., completing the last word ("=" between an option and a
# partial value is the --opt=VALUE form); the basenames of the replies,
# unquoted, sorted, one per line.
# shellcheck source=/dev/null
source "$BASH_FILE" || bad "cannot source $BASH_FILE"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
comp() {
    if [ "$shell" = bash ]; then
        COMP_WORDS=("$@")
        COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        COMPREPLY=()
        _timber timber "${COMP_WORDS[COMP_CWORD]}" \
            "${COMP_WORDS[COMP_CWORD - 1]}" 2>/dev/null
        sorted "${COMPREPLY[@]}"
    else
        local line="" w
        for w in "$@"; do
            if [ "$w" = = ]; then line+="="; continue; fi
            [ -n "$line" ] && [ "${line: -1}" != = ] && line+=" "
            line+=${w// /\\ }
        done
        zsh -f "$here/zsh_complete.zsh" "$(dirname "$ZSH_FILE")" \
            "$TMP/zcompdump" "$line" | sed 's/\\\(.\)/\1/g' | sorted_stdin
    fi | sed 's:/$::; s:.*/::' | sorted_stdin
}
sorted_stdin() { sed '/^$/d' | sort -u; }
# same LABEL WANT GOT
same() {
    if [ "$2" = "$3" ]; then ok; else
        bad "$shell: $1: want [$(echo $2)], got [$(echo $3)]"
    fi
}

complete -p timber 2>/dev/null | grep -q -- '-F _timber' && ok ||
    bad "sourcing $BASH_FILE does not bind _timber to timber"

# An empty working directory: no file names mixed into the replies.
mkdir "$TMP/empty" "$TMP/fs" "$TMP/fs/sub dir"
: >"$TMP/fs/file one.json"
cd "$TMP/empty" || exit 1

main_help=$("$TIMBER" --help)
commands=$(awk '/^[^ ]/ { c = ($0 == "commands:"); next }
    c && /^  [a-z]/ { print $1 }' <<<"$main_help" | sort -u)
[ "$(wc -l <<<"$commands")" -ge 5 ] && ok ||
    bad "could not read the commands of timber --help: $commands"
main_terms=$(help_terms <<<"$main_help")
# cache: the subcommands of its usage lines.
cache_subs=$("$TIMBER" cache --help |
    sed -n 's/^\(usage:\)\{0,1\} *timber cache \([a-z]*\).*/\2/p' | sort -u)
both=$(sorted "file one.json" "sub dir")

# check_command CMD PREFIX...: the options of `timber CMD --help` against
# completion after PREFIX (the command word, or a positional argument for
# the implicit refine).
check_command() {
    local cmd=$1
    shift
    local help terms opts term opt value reply words
    help=$("$TIMBER" "$cmd" --help)
    terms=$(help_terms <<<"$help")
    opts=$(names <<<"$terms")
    [ -n "$opts" ] && ok || bad "timber $cmd --help lists no options"
    same "timber $* -" "$opts" "$(comp timber "$@" -)"
    while IFS= read -r term; do
        # "--name VALUE": a valued option.
        [[ "$term" == --*" "* ]] || continue
        opt=${term%% *} value=${term#* }
        if [ "$value" = FILE ] || [ "$value" = PATH ]; then
            same "timber $* $opt $TMP/fs/" "$both" \
                "$(comp timber "$@" "$opt" "$TMP/fs/")"
            same "timber $* $opt=$TMP/fs/fi" "file one.json" \
                "$(comp timber "$@" "$opt" = "$TMP/fs/fi")"
        else
            # A number, a pattern or a choice: neither options nor file
            # names, only words its help names ("auto", "flatten").
            : >"$TMP/empty/decoy-file"
            reply=$(comp timber "$@" "$opt" '')
            words=$(help_text "$term" <<<"$help")
            local w wrong=""
            for w in $reply; do
                grep -qxF -- "$w" <<<"$words" || wrong+=" $w"
            done
            same "timber $* $opt '': replies not in its help" "" "${wrong# }"
            rm -f "$TMP/empty/decoy-file"
        fi
    done <<<"$terms"
}

check_shell() {
    same "timber ''" "$commands" "$(comp timber '')"
    same "timber help ''" "$commands" "$(comp timber help '')"
    # Top-level options; "--version --verbose" is a follow-up of --version.
    same "timber -" "$(grep -v -- '^--[a-z-]* --' <<<"$main_terms" | names)" \
        "$(comp timber -)"
    local lead next cmd
    while read -r lead next; do
        [ -n "$lead" ] || continue
        same "timber $lead ''" "$next" "$(comp timber "$lead" '')"
    done <<<"$(grep -- '^--[a-z-]* --' <<<"$main_terms")"
    for cmd in $commands; do
        [ "$cmd" = help ] && continue
        check_command "$cmd" "$cmd"
    done
    # `timber BASE INSTRUCT OUT ...` is refine without its command word.
    check_command refine base
    # Positional arguments: paths (files and directories; checkpoints are
    # either).
    same "timber refine $TMP/fs/" "$both" "$(comp timber refine "$TMP/fs/")"
    same "timber base $TMP/fs/" "$both" "$(comp timber base "$TMP/fs/")"
    same "timber refine a b $TMP/fs/s" "sub dir" \
        "$(comp timber refine a b "$TMP/fs/s")"
    same "timber inspect $TMP/fs/f" "file one.json" \
        "$(comp timber inspect "$TMP/fs/f")"
    same "timber erank $TMP/fs/f" "file one.json" \
        "$(comp timber erank "$TMP/fs/f")"
    same "timber $TMP/fs/f" "file one.json" "$(comp timber "$TMP/fs/f")"
    same "timber cache ''" "$cache_subs" "$(comp timber cache '')"
    same "timber cache info $TMP/fs/f" "file one.json" \
        "$(comp timber cache info "$TMP/fs/f")"
}

shell=bash
check_shell

# bash-completion's on-demand loader finds the installed file.
dir=$(dirname "$BASH_FILE")
loader=/usr/share/bash-completion/bash_completion
if [[ "$dir" == */share/bash-completion/completions ]]; then
    if [ -r "$loader" ]; then
        share=${dir%/bash-completion/completions}
        got=$(XDG_DATA_DIRS="$share" bash --norc --noprofile -c "
            source $loader
            complete -r timber 2>/dev/null
            __load_completion timber && complete -p timber" 2>&1)
        [[ "$got" == *"-F _timber"*" timber" ]] && ok ||
            bad "bash-completion does not load timber's completion from $dir: $got"
    else
        echo "bash-completion is not installed: its loader was not checked"
    fi
fi

if [ -n "$ZSH_FILE" ]; then
    if command -v zsh >/dev/null 2>&1 &&
        zsh -fc 'zmodload zsh/zpty' 2>/dev/null; then
        zsh -n "$ZSH_FILE" && ok || bad "zsh -n $ZSH_FILE"
        got=$(HOME=$TMP zsh -f -c "
            fpath=(${ZSH_FILE%/*} \$fpath)
            autoload -Uz compinit && compinit -u -d '$TMP/zcompdump'
            print -r -- \$_comps[timber]" 2>&1)
        same "compinit binds timber" "_timber" "$got"
        shell=zsh
        check_shell
    else
        echo "zsh (with zsh/zpty) is not installed: the zsh completion was not checked"
    fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
