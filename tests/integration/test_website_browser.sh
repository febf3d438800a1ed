#!/usr/bin/env bash
# The issue 11 "Done when" browser test: headless Chromium (Debian's `chromium`, installed by
# scripts/setup.sh) against a site served by cairn (browser.py): page, CSS, JS and image load; a
# missing page shows the error document; a redirect rule works; a cross-origin fetch succeeds only
# where CORS allows it; an HTML form upload (POST Object) lands in the bucket. Screenshots and
# DOM dumps are kept as artefacts in $LOG_DIR/test_website_browser/ (run.sh's log directory),
# else in a directory this test prints.
source "$(dirname "$0")/lib.sh"

"$H_PY" -c 'import boto3' 2>/dev/null || { echo "SKIP $H_NAME: no boto3"; exit 77; }
h_need chromium
h_own_server "website hosting is single-node"
ART=${LOG_DIR:+$LOG_DIR/$H_NAME}
ART=${ART:-$(mktemp -d "${TMPDIR:-/tmp}/cairn-browser.XXXXXX")}
mkdir -p "$ART"
echo "artefacts: $ART"
printf '[server]\nwebsite_domain = s3-website.localhost\n' >"$H_WORK/server.conf"
H_SERVER_ARGS=(--config "$H_WORK/server.conf")
h_start

if "$H_PY" "$H_DIR/browser.py" "$H_ENDPOINT" "$H_PORT" "$ART" >"$H_WORK/browser.out" 2>&1; then
    h_ok "headless chromium: $(grep -c '^ok - ' "$H_WORK/browser.out") checks"
else
    h_bad "headless chromium" "$(cat "$H_WORK/browser.out")"
fi
cat "$H_WORK/browser.out"
n=$(ls "$ART"/*.png 2>/dev/null | wc -l)
h_eq "five screenshots saved" 5 "$n"
rm -rf "$ART/profile"
h_finish
