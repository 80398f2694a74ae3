#!/usr/bin/env bash
# Installs the independent clients/decoders the collector tests use into a
# cache directory in the build tree (once): the official SLS Node SDK, and
# the OpenTelemetry JS transformer whose generated protobufjs code carries
# the official OTLP message definitions (0.52.x still ships a decoder).
set -euo pipefail
dir=$1
if [ -f "$dir/.done" ]; then exit 0; fi
mkdir -p "$dir"
npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
  @alicloud/log@1.2.6 @opentelemetry/otlp-transformer@0.52.1 >/dev/null
touch "$dir/.done"
