#!/usr/bin/env bash
# Mutation runs of bench/MUTATION.md (issue 15, item 7): mutmut 3 over the gate,
# comment-rendering, webhook-signature and manifest-pin code, each with only its own
# test files. Each run works in a scratch copy (mutmut writes mutants/ beside the
# sources and reads its settings from setup.cfg there), 2 workers, bounded by a timeout.
#
#   bash bench/mutation.sh [gates|render|signature|pins ...]     (default: all four)
#
# Needs mutmut in the venv: .venv/bin/uv pip install --python .venv/bin/python mutmut
# (3.8.1 was used). Prints, per module, the counts and every surviving mutant's diff;
# (SHOW=0: counts only); the scratch copies stay under ${MUTATION_DIR:-/tmp/mlgitops-mutation} for `mutmut browse`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
OUT=${MUTATION_DIR:-/tmp/mlgitops-mutation}
LIMIT=${MUTATION_TIMEOUT:-900}

setup() {  # NAME "ONLY_MUTATE..." "PYTEST ARGS..."
  local dir=$OUT/$1
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$ROOT" && cp -r mlgitops tests flows templates examples actions schema docs mlops.yaml action.yml Dockerfile "$dir"/)
  find "$dir" -name __pycache__ -prune -exec rm -rf {} +
  {
    echo "[mutmut]"
    echo "source_paths=mlgitops"
    echo "only_mutate="; for p in $2; do echo "    $p"; done
    echo "pytest_add_cli_args_test_selection="; for t in $3; do echo "    $t"; done
    printf 'pytest_add_cli_args=\n    -p\n    no:cacheprovider\n    -q\n'
    printf 'also_copy=\n    mlops.yaml\n    flows\n    templates\n    examples\n    actions\n    schema\n    docs\n    action.yml\n    Dockerfile\n'
  } > "$dir/setup.cfg"  # no pyproject.toml in the copy: mutmut would look for [tool.mutmut] there
}

run() {  # NAME MUTANT-NAME-PATTERNS...
  local name=$1; shift
  cd "$OUT/$name"
  echo "== $name: mutmut run $*"
  local start=$SECONDS
  timeout "$LIMIT" "$VENV/bin/mutmut" run --max-children 2 "$@" > run.log 2>&1 || echo "   (mutmut exit $?; see $OUT/$name/run.log)"
  "$VENV/bin/mutmut" results --all true 2>&1 | grep -v ': not checked$' > results.txt || true  # not checked: outside the names asked for
  local total killed survived timeout other
  total=$(grep -c ': ' results.txt || true)
  killed=$(grep -c ': killed$' results.txt || true)
  survived=$(grep -c ': survived$' results.txt || true)
  timeout=$(grep -c ': timeout$' results.txt || true)
  echo "   $total mutants: $killed killed, $survived survived, $timeout timeouts, $((total - killed - survived - timeout)) other ($((SECONDS - start)) s)"
  [ "${SHOW:-1}" = 1 ] || { cd "$ROOT"; return; }  # SHOW=0: counts only (mutmut show takes a second a mutant)
  for m in $(grep ': survived$' results.txt | cut -d: -f1); do
    echo "   -- $m"; "$VENV/bin/mutmut" show "$m" 2>/dev/null | grep '^[-+] ' | sed 's/^/      /'
  done
  cd "$ROOT"
}

want=("${@:-gates render signature pins}")
for which in ${want[@]}; do
  case $which in
    gates)
      setup gates "mlgitops/train/gates.py" "tests/test_gates.py"
      run gates ;;
    render)
      setup render "mlgitops/report/render.py" "tests/test_render.py tests/test_render_sections.py"
      run render ;;
    signature)  # the two places X-Hub-Signature-256 is checked: webhook.verified/signature, http.App's head and body checks
      setup signature "mlgitops/service/webhook.py mlgitops/service/http.py" "tests/test_webhook.py tests/test_near_misses.py tests/test_intake_edges.py -k SIG_K"
      # test_webhook's intake tests, not its two real runs (Prefect, minutes); test_near_misses' signature tests; all of test_intake_edges
      sed -i 's/SIG_K/(vector or forged or signature or exact_limits or bad_bodies or answered_at_once or burst or full_queue or intake_edges) and not deploy_actions/' "$OUT/signature/setup.cfg"
      run signature 'mlgitops.service.webhook.x_signature*' 'mlgitops.service.webhook.x_verified*' '*judge_head*' '*read_body*' ;;
    pins)  # where a pin is read and its sha256 checked: manifest.read_pin, everything in fetch.py
      setup pins "mlgitops/deploy/fetch.py mlgitops/deploy/manifest.py" "tests/test_pull.py tests/test_near_misses.py tests/test_registry_errors.py -k PINS_K"
      # not the tests that start `mlops serve` in a subprocess (mutated code outside mutmut's runner cannot load) or real S3/OCI servers;
      # all of test_registry_errors (registry failures made without a server)
      sed -i 's/PINS_K/(pin or cache or sha256 or pull or registry_errors) and not manifest_only_folder and not remote_registry and not deploy_actions/' "$OUT/pins/setup.cfg"
      run pins 'mlgitops.deploy.fetch.*' 'mlgitops.deploy.manifest.x_read_pin*' ;;
    *) echo "unknown: $which (gates, render, signature, pins)"; exit 2 ;;
  esac
done
