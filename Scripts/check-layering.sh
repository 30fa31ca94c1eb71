#!/usr/bin/env bash
# The sans-I/O rule (Docs/ARCHITECTURE.md): pure targets import no I/O module and no C module.
# Exits non-zero, naming file and line, when one does.
#   - I/O and platform modules: Foundation and all its parts (FoundationEssentials, …), Dispatch,
#     Glibc/Musl/Darwin, Network, NIO*, Logging, and our shells (LatticaUV, LatticaStore, LatticaNode).
#   - C modules: every target with a module.modulemap or an include/ under Sources/ (CLibUV, CKernels, …),
#     except the allowed pairs below, each with its reason.
set -euo pipefail
cd "$(dirname "$0")/.."
pure=(LatticaCore LatticaWire LatticaDHT LatticaAveraging LatticaLearning LatticaSimulation LatticaCRDT LatticaModel LatticaSHA LatticaNAT)
# target:module pairs allowed although the module is C (none: OpenBLAS sits in LatticaBLAS, a
# shell-side target, behind LatticaLearning's BLAS protocol).
allowed_c=()
# (system libraries have a module.modulemap; C targets of ours an include/ directory)
c_modules=$(for m in Sources/*/module.modulemap Sources/*/include; do if [ -e "$m" ]; then basename "$(dirname "$m")"; fi; done | sort -u | paste -sd'|' -)
prefix='^[[:space:]]*(@preconcurrency[[:space:]]+|@_implementationOnly[[:space:]]+|@_exported[[:space:]]+|(public|internal|package|private|fileprivate)[[:space:]]+)*import[[:space:]]+(class[[:space:]]+|struct[[:space:]]+|enum[[:space:]]+|protocol[[:space:]]+|func[[:space:]]+|var[[:space:]]+|typealias[[:space:]]+)?'
io='(Foundation[A-Za-z]*|Dispatch|Glibc|Musl|Darwin|Network|NIO[A-Za-z]*|Logging|LatticaUV|LatticaStore|LatticaNode)'
status=0
for t in "${pure[@]}"; do
  [ -d "Sources/$t" ] || continue
  if hits=$(grep -rnE "${prefix}${io}([[:space:]]|\.|$)" "Sources/$t" --include='*.swift'); then
    echo "check-layering: pure target $t imports I/O:" >&2
    echo "$hits" >&2
    status=1
  fi
  hits=$(grep -rnE "${prefix}(${c_modules})([[:space:]]|\.|$)" "Sources/$t" --include='*.swift' || true)
  while IFS= read -r hit; do
    [ -n "$hit" ] || continue
    mod=$(sed -E "s/.*import[[:space:]]+([A-Za-z]+[[:space:]]+)?([A-Za-z0-9_]+).*/\2/" <<<"${hit#*:*:}")
    ok=0
    for pair in "${allowed_c[@]+"${allowed_c[@]}"}"; do [ "$pair" = "$t:$mod" ] && ok=1; done
    if [ $ok -eq 0 ]; then
      echo "check-layering: pure target $t imports C module $mod: $hit" >&2
      status=1
    fi
  done <<<"$hits"
done
[ $status -eq 0 ] && echo "check-layering: ${#pure[@]} pure targets clean (C modules checked: ${c_modules//|/, })"
exit $status
