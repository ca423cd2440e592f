#!/usr/bin/env bash
# The layers of docs/architecture.md, checked on the #include lines: each folder may include only what lies
# beneath it. apps -> models -> (data, io, dist, metrics) -> nn -> ops -> core -> kernels.
#
#   check_includes.sh SOURCE_DIR
#
# Prints every include that breaks a rule (file:line, the include, the rule) and exits 1 if there is one.
set -uo pipefail
src=${1:?usage: check_includes.sh SOURCE_DIR}
cd "$src" || exit 2
bad=0

# rule FOLDERS... -- FORBIDDEN_REGEX WHY: no file under FOLDERS may include a header matching the regex.
rule() {
  local folders=() arg
  while [[ $1 != -- ]]; do folders+=("$1"); shift; done
  shift
  local forbidden=$1 why=$2 hits
  hits=$(grep -rnE --include='*.h' --include='*.cpp' --include='*.cu' --include='*.cuh' \
    "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($forbidden)" "${folders[@]}" 2>/dev/null)
  if [[ -n $hits ]]; then
    while IFS= read -r line; do echo "layering: $line -- $why"; done <<<"$hits"
    bad=1
  fi
  for arg in "${folders[@]}"; do [[ -e $arg ]] || { echo "layering: no folder $arg (update this script)"; bad=1; }; done
}

# kernels/ knows nothing of tensors or autograd: of the engine, only the error hierarchy's root.
rule kernels -- 'cudagan/(core/(tensor|autograd|device|dtype|rng|cuda)|ops|nn|data|io|runtime|dcgan|trainer)' \
  'kernels/ may include only cudagan/core/error.h of the engine'
# core/ sits on the kernels alone: no op, module, file format or model.
rule engine/src/core engine/include/cudagan/core -- 'cudagan/(ops|nn|data|io|dcgan|trainer)|(ops|nn|data|io)/' \
  'core/ may include only core/ and the kernels'
rule engine/src/ops engine/include/cudagan/ops -- 'cudagan/(nn|data|io|dcgan|trainer)|(nn|data|io)/' \
  'ops/ may include only ops/, core/ and the kernels'
rule engine/src/nn engine/include/cudagan/nn -- 'cudagan/(data|io|dcgan|trainer)|(data|io)/' \
  'nn/ may include only nn/, ops/, core/ and the kernels'
# metrics/ (image-quality metrics on the engine's ops) sits on nn/: no file formats, data, dist or models; and
# nothing beside or beneath it knows of it (models/ and apps/ use it).
rule engine/src/metrics engine/include/cudagan/metrics -- \
  'cudagan/(data|io|dist|dcgan|dcgan_checkpoint|trainer)|(data|io|dist)/' \
  'metrics/ may include only metrics/, nn/, ops/, core/ and the kernels'
rule kernels engine/src/core engine/src/ops engine/src/nn engine/src/runtime engine/src/data engine/src/io \
  engine/src/dist engine/include/cudagan/core engine/include/cudagan/ops engine/include/cudagan/nn \
  engine/include/cudagan/data engine/include/cudagan/io engine/include/cudagan/dist -- 'cudagan/metrics/|metrics/' \
  'only metrics/ (and what is above it) knows of the metrics'
# dist/ (data parallelism) sits on nn/: no file formats, no models; and nothing beneath it knows of it.
rule engine/src/dist engine/include/cudagan/dist -- 'cudagan/(data|io|dcgan|trainer)|(data|io)/' \
  'dist/ may include only dist/, nn/, ops/, core/ and the kernels'
rule kernels engine/src/core engine/src/ops engine/src/nn engine/src/metrics engine/src/data engine/src/io \
  engine/src/runtime engine/include/cudagan/core engine/include/cudagan/ops engine/include/cudagan/nn \
  engine/include/cudagan/metrics engine/include/cudagan/data engine/include/cudagan/io -- 'cudagan/dist/|mpi\.h|nccl\.h' 'only dist/ (and what is above it) knows of MPI and NCCL'
# The core library links no file-format library.
rule engine/src/core engine/src/ops engine/src/nn engine/src/metrics engine/src/runtime engine/include/cudagan/core \
  engine/include/cudagan/ops engine/include/cudagan/nn engine/include/cudagan/metrics engine/include/cudagan/runtime -- \
  'stb_|zlib\.h|gif_lib\.h|nlohmann/|yaml-cpp/' 'cudagan::core links no image, GIF, zlib, JSON or YAML library'
# Nothing in engine/ knows about DCGAN; models/ knows nothing of the apps.
rule engine -- 'cudagan/(dcgan|dcgan_checkpoint|trainer)\.h' 'engine/ knows nothing of the models'
rule models -- 'train_config\.h|train_outputs\.h|CLI/|yaml-cpp/' 'models/ knows nothing of the apps'

[[ $bad -eq 0 ]] && echo "layering: every include follows the layers"
exit $bad
