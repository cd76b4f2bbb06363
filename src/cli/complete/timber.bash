# bash completion for timber (installed as
# share/bash-completion/completions/timber, which bash-completion loads the
# first time `timber` is completed; `source` it to use it without).
#
# The commands and options are those of `timber help` and each
# `timber COMMAND --help`; tests/install/completion.sh checks every one of
# them, and that a FILE or PATH value completes file names: change both
# together.
# Self-contained (compgen only), so it also works without bash-completion.

_timber_words() {
    # Replies with the words of $1 that start with the current word.
    local IFS=$' \t\n'
    COMPREPLY=($(compgen -W "$1" -- "$cur"))
}

_timber_paths() {
    # Files and directories (checkpoints are either), or directories only
    # with "dirs"; one reply per line so names with spaces survive.
    local IFS=$'\n'
    compopt -o filenames 2>/dev/null
    if [[ "${1:-}" == dirs ]]; then
        COMPREPLY=($(compgen -d -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}

_timber() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    local prev=""
    ((COMP_CWORD > 0)) && prev="${COMP_WORDS[COMP_CWORD - 1]}"
    # "--cache=FI": bash splits at '=' (COMP_WORDBREAKS), so the option is
    # one or two words back.
    if [[ "$cur" == "=" ]]; then
        cur=""
    elif [[ "$prev" == "=" ]] && ((COMP_CWORD > 1)); then
        prev="${COMP_WORDS[COMP_CWORD - 2]}"
    fi
    local commands="refine inspect erank cache plan finalize help"

    # The command word: the first argument, when it is one of the
    # commands; otherwise `timber BASE INSTRUCT OUT ...` is refine.
    local cmd=refine first="${COMP_WORDS[1]:-}"
    case "$first" in
    refine | inspect | erank | cache | plan | finalize | help) cmd="$first" ;;
    -V | --version) cmd=version ;;
    esac

    if ((COMP_CWORD == 1)); then
        case "$cur" in
        -*) _timber_words "-h --help -V --version" ;;
        *)
            _timber_words "$commands"
            local IFS=$'\n' more
            more=($(compgen -f -- "$cur"))
            if ((${#more[@]})); then
                compopt -o filenames 2>/dev/null
                COMPREPLY+=("${more[@]}")
            fi
            ;;
        esac
        return 0
    fi

    case "$cmd" in
    refine)
        case "$prev" in
        --report | --cache)
            _timber_paths
            return 0
            ;;
        --gamma | --include | --exclude | --threads | --parts) return 0 ;;
        --part)
            _timber_words "auto"
            return 0
            ;;
        --matrix-view)
            _timber_words "auto flatten"
            return 0
            ;;
        esac
        if [[ "$cur" == -* ]]; then
            _timber_words "--gamma --include --exclude --strict --force
                --report --cache --no-cache --threads --part --parts
                --matrix-view --timings -q --quiet -h --help"
        else
            _timber_paths
        fi
        ;;
    plan)
        case "$prev" in
        --gamma | --include | --exclude | --parts) return 0 ;;
        --matrix-view)
            _timber_words "auto flatten"
            return 0
            ;;
        esac
        if [[ "$cur" == -* ]]; then
            _timber_words "--parts --json --gamma --include --exclude --strict
                --matrix-view -h --help"
        else
            _timber_paths
        fi
        ;;
    finalize)
        case "$prev" in
        --report)
            _timber_paths
            return 0
            ;;
        --threads) return 0 ;;
        esac
        if [[ "$cur" == -* ]]; then
            _timber_words "--force --report --threads -q --quiet -h --help"
        else
            _timber_paths
        fi
        ;;
    inspect)
        if [[ "$cur" == -* ]]; then
            _timber_words "--json -h --help"
        else
            _timber_paths
        fi
        ;;
    erank)
        case "$prev" in
        --json | --csv | --plot | --cache)
            _timber_paths
            return 0
            ;;
        --include | --exclude | --threads) return 0 ;;
        --matrix-view)
            _timber_words "auto flatten"
            return 0
            ;;
        esac
        if [[ "$cur" == -* ]]; then
            _timber_words "--include --exclude --json --csv --plot --cache
                --no-cache --threads --matrix-view -q --quiet -h --help"
        else
            _timber_paths
        fi
        ;;
    cache)
        if ((COMP_CWORD == 2)); then
            if [[ "$cur" == -* ]]; then
                _timber_words "-h --help"
            else
                _timber_words "info verify"
            fi
        else
            _timber_paths
        fi
        ;;
    help)
        ((COMP_CWORD == 2)) && _timber_words "$commands"
        ;;
    version)
        ((COMP_CWORD == 2)) && _timber_words "--verbose"
        ;;
    esac
    return 0
}
complete -F _timber timber
