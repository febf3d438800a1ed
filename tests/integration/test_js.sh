#!/usr/bin/env bash
# aws-sdk-js v3 (pinned in tests/integration/js/package-lock.json, installed with `npm ci` when
# node_modules is missing) against one cairn node. Needs node >= 18 and npm.
source "$(dirname "$0")/lib.sh"
h_need node npm
JS=$H_DIR/js
echo "client: node $(node --version), npm $(npm --version)"
if [ ! -d "$JS/node_modules/@aws-sdk/client-s3" ] || [ ! -d "$JS/node_modules/@aws-sdk/lib-storage" ]; then
    # npm keeps its cache under $HOME, which lib.sh points at the temp dir: use the real one
    if ! (cd "$JS" && HOME=$H_REAL_HOME npm ci --no-audit --no-fund --loglevel=error); then
        echo "FAIL - npm ci in $JS"
        echo "FAIL $H_NAME"
        exit 1
    fi
fi
h_start
export CAIRN_ENDPOINT=$H_ENDPOINT
if (cd "$JS" && node s3_test.mjs); then
    h_ok "aws-sdk-js suite"
else
    h_bad "aws-sdk-js suite"
fi
h_finish
