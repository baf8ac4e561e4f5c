#!/usr/bin/env bash
# Generates the Python modules this example imports into OUT (default: ./generated, next to this file):
# kaireon.v1 from the repository's proto/, and google.rpc.status_pb2 from the status.proto that the
# googleapis-common-protos package ships (fetched into OUT/.protos with pip; only its .proto file is used,
# so the generated module matches the protobuf runtime grpc_tools was built with).
#
#   ./generate.sh [OUT]
#   PYTHONPATH=OUT python3 decide.py
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto="$here/../../proto"
out="${1:-$here/generated}"
python="${PYTHON:-python3}"

mkdir -p "$out"
"$python" -m grpc_tools.protoc -I "$proto" --python_out="$out" --grpc_python_out="$out" "$proto"/kaireon/v1/*.proto

if [ ! -f "$out/.protos/google/rpc/status.proto" ]; then
  "$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target "$out/.protos" googleapis-common-protos
fi
"$python" -m grpc_tools.protoc -I "$out/.protos" --python_out="$out" google/rpc/status.proto
echo "generated into $out"
