# bash completion for tokend(1): commands, their options, sub-commands and
# the values of options that take a fixed set (algorithms, --explain, ...).
# Install as /usr/share/bash-completion/completions/tokend, or source it.
# tests/e2e/test_completion.py checks the option lists against each
# command's --help.

_tokend_algs="HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA"

# The settings shared by the admin commands (see tokend.conf(5)).
_tokend_store_opts="--config --data-dir --store --store-password-file --master-key-file --alg"

_tokend_opts()
{
    case $1 in
    inspect)
        echo "--jwks --key --secret-file --issuer --discover --cacert --iss --aud --scope --typ --require
              --profile --leeway --max-age --now --json --help" ;;
    keygen)
        echo "--alg --kid --out --force --help" ;;
    sign)
        echo "--key --claims --exp --iss --aud --sub --scope --typ --alg --kid --now --help" ;;
    serve)
        echo "--config --print-config --listen --admin-listen --public-metrics --data-dir --store --master-key-file
              --issuer --public-url --tls-cert --tls-key --dev --insecure-http --alg --access-ttl --max-ttl
              --rotate-every --leeway --session-idle --session-max --refresh-ttl --code-ttl --audit-retention
              --session-retention --refresh-grace --threads --max-connections --explain --log --log-sample-auth-ok
              --max-connections-per-ip --request-timeout --trusted-proxy --forwarded-header --auth-audience
              --login-workers --login-queue --store-password-file --jwks-max-age --max-stale --trust-issuer
              --trust-ca-file --issuer-cache-min --issuer-cache-max --issuer-kid-cooldown --issuer-max-stale
              --issuer-fetch-wait --issuer-fetch-timeout --issuer-fetch-max-bytes --auth-cache-size --help" ;;
    client)
        echo "--scope --aud --ttl --redirect-uri --public --serves --json --consent --backchannel-logout-uri
              --id-token-alg $_tokend_store_opts --access-ttl --max-ttl --help" ;;
    keys)
        echo "--json $_tokend_store_opts --max-ttl --leeway --jwks-max-age --help" ;;
    revoke)
        echo "--jti --sid --token --jti-file --sid-file --reason --json $_tokend_store_opts --max-ttl --leeway
              --help" ;;
    user)
        echo "--password-file --name --given-name --family-name --preferred-username --email --email-verified
              --revoke --revoke-all --json $_tokend_store_opts --issuer --public-url --trust-ca-file --max-ttl
              --refresh-ttl --leeway --help" ;;
    esac
}

_tokend_subcommands()
{
    case $1 in
    client) echo "add list show disable enable remove" ;;
    keys) echo "list rotate" ;;
    user) echo "add set passwd list show disable enable remove consents" ;;
    esac
}

_tokend()
{
    local cur=${COMP_WORDS[COMP_CWORD]}
    local prev=
    if ((COMP_CWORD > 0)); then
        prev=${COMP_WORDS[COMP_CWORD - 1]}
    fi
    COMPREPLY=()
    if ((COMP_CWORD == 1)); then
        COMPREPLY=($(compgen -W "inspect keygen sign serve client keys revoke user --help --version" -- "$cur"))
        return 0
    fi
    local cmd=${COMP_WORDS[1]}

    # The value of the option before the cursor.
    case $prev in
    --alg | --id-token-alg)
        COMPREPLY=($(compgen -W "$_tokend_algs" -- "$cur"))
        return 0 ;;
    --profile)
        COMPREPLY=($(compgen -W "tokend" -- "$cur"))
        return 0 ;;
    --explain)
        COMPREPLY=($(compgen -W "full bare" -- "$cur"))
        return 0 ;;
    --forwarded-header)
        COMPREPLY=($(compgen -W "x-forwarded-for forwarded" -- "$cur"))
        return 0 ;;
    --email-verified)
        COMPREPLY=($(compgen -W "yes no" -- "$cur"))
        return 0 ;;
    --jwks | --key | --secret-file | --cacert | --out | --config | --master-key-file | --tls-cert | --tls-key | \
        --log | --store-password-file | --trust-ca-file | --password-file | --jti-file | --sid-file)
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
        return 0 ;;
    --data-dir)
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -d -- "$cur"))
        return 0 ;;
    --claims | --token)
        COMPREPLY=($(compgen -W "-" -- "$cur"))
        return 0 ;;
    --*)
        # Any other option that takes a value: nothing to offer.
        case " $(_tokend_opts "$cmd") " in
        *" $prev "*)
            case $prev in
            --discover | --json | --force | --dev | --insecure-http | --public-metrics | --print-config | --public | \
                --consent | --revoke-all | --help) ;;
            *) return 0 ;;
            esac ;;
        esac ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_tokend_opts "$cmd")" -- "$cur"))
        return 0
    fi
    if ((COMP_CWORD == 2)); then
        local subs
        subs=$(_tokend_subcommands "$cmd")
        if [[ -n $subs ]]; then
            COMPREPLY=($(compgen -W "$subs" -- "$cur"))
        fi
    fi
    return 0
}

complete -F _tokend tokend
