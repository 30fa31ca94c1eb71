#!/usr/bin/env bash
# The sans-I/O rule (Docs/ARCHITECTURE.md): pure targets import no I/O module.
# Exits non-zero, naming file and line, when one does.
set -euo pipefail
cd "$(dirname "$0")/.."
pure=(LatticaCore LatticaWire LatticaDHT LatticaLearning LatticaSimulation LatticaCRDT)
forbidden='^[[:space:]]*(@preconcurrency[[:space:]]+|@_implementationOnly[[:space:]]+|(public|internal|package)[[:space:]]+)?import[[:space:]]+(class[[:space:]]+|struct[[:space:]]+|func[[:space:]]+)?(Foundation|FoundationNetworking|Dispatch|Glibc|Musl|Darwin|CLibUV|CSQLite|LatticaUV|LatticaStore|LatticaNode|Network|NIO[A-Za-z]*|Logging)\b'
status=0
for t in "${pure[@]}"; do
  [ -d "Sources/$t" ] || continue
  if hits=$(grep -rnE "$forbidden" "Sources/$t" --include='*.swift'); then
    echo "check-layering: pure target $t imports I/O:" >&2
    echo "$hits" >&2
    status=1
  fi
done
[ $status -eq 0 ] && echo "check-layering: ${#pure[@]} pure targets clean"
exit $status
