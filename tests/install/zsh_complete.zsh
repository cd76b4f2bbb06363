# zsh_complete.zsh — what zsh's completion system offers for a command
# line, the way an interactive zsh computes it: a zsh runs under a pseudo
# terminal (zsh/zpty), compinit loads the completion functions of DIR, Tab
# completes LINE, and a compadd wrapper prints every match added.
#
#   usage: zsh -f zsh_complete.zsh DIR DUMPFILE LINE
# Prints the matches, one per line, as zsh quotes them ("a\ b"); exits
# non-zero when zsh could not be driven.
zmodload zsh/zpty || exit 3
zpty z zsh -f -i || exit 3
zpty -w z "PROMPT= RPROMPT= PS2=; unsetopt zle_bracketed_paste 2>/dev/null"
zpty -w z "fpath=(${(q)1} \$fpath); autoload -Uz compinit; compinit -u -d ${(q)2}"
zpty -w z "zstyle ':completion:*' list-grouped false; zstyle ':completion:*' menu no"
# The wrapper passes through the calls that only gather matches into
# arrays (-O, -A, -D).  No comments inside: an interactive zsh without
# interactive_comments would take them for commands.
zpty -w z 'compadd () {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi
  local -a __hits; local __h
  builtin compadd -A __hits "$@"
  for __h in $__hits; do print -r -- "<M>$__h</M>"; done
  builtin compadd "$@"
}'
zpty -w z 'bindkey "^I" complete-word'
zpty -w z "print '<READY''>'"
zpty -r z _ '*<READY>*' || exit 4
zpty -n -w z "$3"$'\t'
zpty -w z $'\C-u'"print '<DONE''>'"
zpty -r z out '*<DONE>*' || exit 4
print -r -- "$out" | tr -d '\r' | sed -n 's/.*<M>\(.*\)<\/M>.*/\1/p'
zpty -d z
