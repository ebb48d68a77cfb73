# zsh -f zsh_capture.zsh DIR LINE: completes LINE in an interactive zsh whose
# fpath starts with DIR and prints every candidate, one a line
# (tests/e2e/test_completion.py). compadd is wrapped to print its matches;
# the markers are written as \x3c...\x3e so that the echo of the typed
# commands never contains them.
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PROMPT=''; RPROMPT=''; fpath=($1 \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z 'compadd () { local -a __h; builtin compadd -A __h "$@"; (( $#__h )) && print -rl -- $'"'"'\x3cM\x3e'"'"'${^__h}; builtin compadd "$@" }'
zpty -w z 'finish () { print -r -- $'"'"'\x3cEND\x3e'"'"'; exit }'
zpty -w z 'zle -C complete-all complete-word _main_complete_wrap; _main_complete_wrap () { comppostfuncs=(finish); _main_complete }; bindkey "^I" complete-all'
zpty -w z "zstyle ':completion:*' verbose no"
zpty -n -w z "$2"$'\t'
local line
integer n=0
while zpty -r z line; do
  [[ $line == *'<END>'* ]] && break
  [[ $line == *'<M>'* ]] && print -r -- ${${line#*<M>}%%$'\r'}
  (( ++n > 2000 )) && break
done
zpty -d z
