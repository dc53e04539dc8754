#!/usr/bin/env bash
# The native relay engine's tests against an AddressSanitizer + UndefinedBehaviorSanitizer build of
# the addon (npm run test:native-asan; .ci/run runs it): any report aborts the process and fails.
# Leak detection is off: Node itself leaks by design at exit; the start/stop test checks that the
# engine gives back its descriptors and memory.
set -euo pipefail
cd "$(dirname "$0")/.."
out=native/relay-engine/build-asan
node scripts/build-native.mjs --asan "$out" >/dev/null
libasan=$("${CXX:-g++}" -print-file-name=libasan.so)
if [ ! -e "$libasan" ]; then
  echo "libasan.so not found (${CXX:-g++} -print-file-name=libasan.so); install gcc's libasan" >&2
  exit 1
fi
export NORAY_NATIVE_ADDON="$PWD/$out/relay_engine.node"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
LD_PRELOAD="$libasan" npx vitest run test/core/relay.test.ts test/core/native-relay.test.ts test/noray/relay-fuzz.test.ts test/noray/e2e.test.ts "$@"
