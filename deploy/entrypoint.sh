#!/bin/sh
# deploy/entrypoint.sh - the entry point of the studyshare image
# (/usr/local/bin/studyshare-entrypoint).  The command picks what runs:
#
#   authz|share|notify|guestlink|gateway [FLAG...]
#                    exec studyshare-<daemon> with the flags
#   studyshare [ARG...]
#                    exec the command-line tool
#   gen-secrets DIR [ACLDIR [OUTROOT]]
#                    write each missing secret of the stack to DIR/<name>
#                    (32 random bytes, base64, mode 0600); existing files
#                    are kept, so it is safe to run on every start.  With
#                    ACLDIR, also (re)write ACLDIR/users.acl, Redis's users
#                    with those passwords (deploy/redis/acl-file; hashes
#                    only, mode 0644, for Redis's own user to read).  With
#                    OUTROOT, also copy each daemon's own secrets (and no
#                    other) to OUTROOT/<daemon>/, for its container alone
#   init             import the directory document $STUDYSHARE_DIRECTORY_FILE
#                    (default: the demo directory) through authz
#                    ($STUDYSHARE_AUTHZ_URL) and, when it is the demo
#                    directory, publish the demo studies to share
#                    ($STUDYSHARE_INGEST_URL); both are idempotent
#   healthcheck      exit 0 when /readyz on this container's admin port
#                    ($STUDYSHARE_ADMIN_ADDR) answers 200 (the image's
#                    HEALTHCHECK)
#   help             this text
#
# Inside a container the daemons' listen addresses default to every
# interface (0.0.0.0) on their usual ports instead of the binaries' own
# loopback defaults, which no other container could reach.  Settings given
# in the environment or as flags win over these defaults.
set -eu

# Where the Dockerfile puts templates, web UI and demo data (tests point
# SS_SHARE_DIR at a copy of that layout).
share_dir=${SS_SHARE_DIR:-/usr/share/studyshare}
# The secrets gen-secrets makes: the names deploy/local/stack uses, which
# docker-compose.yml mounts and deploy/k8s/secret.example.yaml lists, and
# the Redis passwords of the administrator and of each daemon's user.
secret_names="pepper token-key seal-key share-seal-key mail-key jwt-secret operator-token
redis-password redis-authz redis-share redis-guestlink redis-notify redis-gateway"

: "${STUDYSHARE_ADMIN_ADDR:=0.0.0.0:9100}"
export STUDYSHARE_ADMIN_ADDR

usage() {
	sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'
}

# default VAR VALUE: export VAR=VALUE unless VAR is set.
default() {
	eval "[ -n \"\${$1+x}\" ]" || export "$1=$2"
}

daemon_defaults() {
	case $1 in
	authz)
		default STUDYSHARE_LISTEN tcp://0.0.0.0:7101 ;;
	share)
		default STUDYSHARE_LISTEN tcp://0.0.0.0:7201
		default STUDYSHARE_INGEST_LISTEN tcp://0.0.0.0:7300
		default STUDYSHARE_PUB_LISTEN tcp://0.0.0.0:7202 ;;
	guestlink)
		default STUDYSHARE_LISTEN tcp://0.0.0.0:7401
		default STUDYSHARE_PUB_LISTEN tcp://0.0.0.0:7402 ;;
	gateway)
		default STUDYSHARE_LISTEN 0.0.0.0:8080 ;;
	esac
}

# own_secrets DAEMON: the secrets that daemon reads, as deploy/k8s mounts
# them (smtp-password: when the operator put one in DIR).
own_secrets() {
	case $1 in
	authz) echo "pepper redis-authz" ;;
	share) echo "token-key share-seal-key mail-key redis-share" ;;
	notify) echo "mail-key redis-notify smtp-password" ;;
	guestlink) echo "token-key seal-key mail-key pepper redis-guestlink" ;;
	gateway) echo "jwt-secret operator-token redis-gateway" ;;
	esac
}

gen_secrets() {
	dir=$1
	mkdir -p "$dir"
	umask 077
	for name in $secret_names; do
		[ -s "$dir/$name" ] && continue
		# Written under a temporary name and renamed: a daemon starting
		# at the same moment never reads half a secret.
		head -c 32 /dev/urandom | base64 | tr -d '\n=' >"$dir/.$name.tmp"
		mv "$dir/.$name.tmp" "$dir/$name"
		echo "gen-secrets: made $dir/$name"
	done
	[ -n "${2:-}" ] || return 0
	# Rewritten every time: a new image's rules apply at the next start.
	umask 022
	mkdir -p "$2"
	"$share_dir/redis/acl-file" "$dir" >"$2/.users.acl.tmp"
	mv "$2/.users.acl.tmp" "$2/users.acl"
	[ -n "${3:-}" ] || return 0
	# Copied on every start: a secret changed in DIR reaches its daemon.
	umask 077
	for d in authz share notify guestlink gateway; do
		mkdir -p "$3/$d"
		for name in $(own_secrets "$d"); do
			[ -s "$dir/$name" ] || continue
			cp "$dir/$name" "$3/$d/.$name.tmp"
			mv "$3/$d/.$name.tmp" "$3/$d/$name"
		done
	done
}

init_stack() {
	dir_file=${STUDYSHARE_DIRECTORY_FILE:-$share_dir/demo/directory.json}
	studyshare directory import "$dir_file"
	if cmp -s "$dir_file" "$share_dir/demo/directory.json"; then
		for ev in "$share_dir"/demo/studies/*.json; do
			studyshare --quiet publish-study --file "$ev"
		done
		echo "init: published the demo studies"
	fi
}

healthcheck() {
	host=${STUDYSHARE_ADMIN_ADDR%:*}
	port=${STUDYSHARE_ADMIN_ADDR##*:}
	host=${host#tcp://}
	case $host in
	'' | '*' | 0.0.0.0 | '[::]') host=127.0.0.1 ;;
	esac
	exec curl -fsS -o /dev/null --max-time 2 "http://$host:$port/readyz"
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case $cmd in
authz | share | notify | guestlink | gateway)
	daemon_defaults "$cmd"
	exec "studyshare-$cmd" "$@" ;;
studyshare)
	exec studyshare "$@" ;;
gen-secrets)
	if [ $# -lt 1 ] || [ $# -gt 3 ]; then
		echo "usage: gen-secrets DIR [ACLDIR [OUTROOT]]" >&2
		exit 2
	fi
	gen_secrets "$@" ;;
init)
	init_stack ;;
healthcheck)
	healthcheck ;;
help | -h | --help)
	usage ;;
*)
	echo "studyshare-entrypoint: unknown command '$cmd' (try: help)" >&2
	exit 2 ;;
esac
