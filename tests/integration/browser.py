"""Headless Chromium against a cairn website (test_website_browser.sh; docs/website.md).

Usage: browser.py ENDPOINT PORT ARTEFACT_DIR. boto3 (root) builds a small site in bucket "site"
(index page with a stylesheet, a gzip'd script and a PNG; an error document; a routing rule),
two public buckets for cross-origin fetches ("data" allows the site's origin by CORS, "nocors"
has no CORS configuration) and a bucket "uploads" for a browser form upload (POST Object, policy
signed with boto3's generate_presigned_post). Chromium (Debian's, headless, one run per page,
DOM dumped after the page's scripts ran, a screenshot of each page saved in ARTEFACT_DIR) then
checks: the page loads its CSS, JS and image; a missing page shows the error document; the
redirect rule lands on the target page; a fetch succeeds where CORS allows and is blocked where
it does not; the form upload lands in the bucket, byte for byte. Prints "ok - ..." per check,
"FAIL - ..." and exits 1 on the first failure.
"""
import gzip, json, os, struct, subprocess, sys, zlib

import boto3
from botocore.config import Config

endpoint, port, art = sys.argv[1], sys.argv[2], sys.argv[3]
SITE = "http://site.s3-website.localhost:%s" % port
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def fail(what, detail=""):
    print("FAIL - %s\n%s" % (what, detail[:3000]))
    sys.exit(1)


def ok(what):
    print("ok - " + what, flush=True)


def png16():
    """A 16x16 opaque green PNG."""
    raw = b"".join(b"\0" + b"\x00\xa0\x00" * 16 for _ in range(16))
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def public(bucket):
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::%s/*" % bucket},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
         "Resource": "arn:aws:s3:::%s" % bucket}]}))


def html(key, body):
    s3.put_object(Bucket="site", Key=key, Body=body.encode(), ContentType="text/html")


def chromium(url, name):
    """The DOM of url after its scripts ran; a screenshot to ART/name.png."""
    shot = os.path.join(art, name + ".png")
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-extensions", "--user-data-dir=" + os.path.join(art, "profile"),
           "--window-size=900,600", "--virtual-time-budget=5000",
           "--screenshot=" + shot, "--dump-dom", url]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=40)
    except subprocess.TimeoutExpired:
        fail("chromium on %s: timed out" % url)
    with open(os.path.join(art, name + ".html"), "w") as f:
        f.write(p.stdout)
    if p.returncode != 0 or not os.path.exists(shot):
        fail("chromium on %s: exit %d" % (url, p.returncode), p.stderr)
    return p.stdout


# ---- the buckets ----
for b in ("site", "data", "nocors", "uploads"):
    s3.create_bucket(Bucket=b)
for b in ("site", "data", "nocors"):
    public(b)
s3.put_bucket_website(Bucket="site", WebsiteConfiguration={
    "IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "error.html"},
    "RoutingRules": [{"Condition": {"KeyPrefixEquals": "docs/"},
                      "Redirect": {"ReplaceKeyPrefixWith": "documents/"}}]})
s3.put_bucket_cors(Bucket="data", CORSConfiguration={"CORSRules": [
    {"AllowedOrigins": [SITE], "AllowedMethods": ["GET"]}]})
for b in ("data", "nocors"):
    s3.put_object(Bucket=b, Key="hello.txt", Body=("hello from %s" % b).encode(),
                  ContentType="text/plain")

html("index.html", """<!doctype html><html><head><title>cairn site</title>
<link rel="stylesheet" href="style.css"></head><body>
<h1 id="h">Hello from a cairn bucket</h1><img id="logo" src="img/logo.png" alt="logo">
<p id="r">scripts did not run</p><script src="app.js"></script></body></html>""")
s3.put_object(Bucket="site", Key="style.css", Body=b"h1 { color: rgb(0, 128, 0); }",
              ContentType="text/css")
s3.put_object(Bucket="site", Key="app.js", ContentType="application/javascript",
              ContentEncoding="gzip", Body=gzip.compress(b"""
window.addEventListener('load', function () {
  var color = getComputedStyle(document.getElementById('h')).color;
  var w = document.getElementById('logo').naturalWidth;
  document.getElementById('r').textContent = 'js=ok css=' +
      (color === 'rgb(0, 128, 0)' ? 'ok' : color) + ' img=' + (w === 16 ? 'ok' : w);
});"""))
s3.put_object(Bucket="site", Key="img/logo.png", Body=png16(), ContentType="image/png")
html("error.html", "<!doctype html><html><body><h1>Custom error page</h1></body></html>")
html("documents/guide.html", "<!doctype html><html><body><h1>The guide</h1></body></html>")
html("cors.html", """<!doctype html><html><body><p id="r">pending</p><script>
async function get(url) {
  try { const r = await fetch(url); return r.ok ? await r.text() : 'status ' + r.status; }
  catch (e) { return 'blocked'; }
}
(async function () {
  const a = await get('%s/data/hello.txt'), b = await get('%s/nocors/hello.txt');
  document.getElementById('r').textContent = 'allowed=[' + a + '] denied=[' + b + ']';
})();
</script></body></html>""" % (endpoint, endpoint))
html("done.html", "<!doctype html><html><body><h1>Upload done</h1></body></html>")
post = s3.generate_presigned_post(
    "uploads", "incoming/${filename}",
    Fields={"success_action_redirect": SITE + "/done.html"},
    Conditions=[["starts-with", "$key", "incoming/"], ["content-length-range", 1, 1 << 20],
                {"success_action_redirect": SITE + "/done.html"}], ExpiresIn=600)
inputs = "".join('<input type="hidden" name="%s" value="%s">' % (k, v.replace('"', "&quot;"))
                 for k, v in post["fields"].items())
UPLOAD = "uploaded from headless chromium\n"
html("form.html", """<!doctype html><html><body>
<form id="f" method="post" enctype="multipart/form-data" action="%s">%s
<input type="file" name="file" id="file"></form><script>
const dt = new DataTransfer();
dt.items.add(new File([%s], 'hello.txt', {type: 'text/plain'}));
document.getElementById('file').files = dt.files;
document.getElementById('f').submit();
</script></body></html>""" % (post["url"], inputs, json.dumps(UPLOAD)))
ok("site, CORS and upload buckets set up")

# ---- the browser ----
dom = chromium(SITE + "/", "index")
if "js=ok css=ok img=ok" not in dom:
    fail("the index page loads its CSS, JS (gzip'd) and image", dom)
ok("the index page loads its CSS, JS (gzip'd) and image")
dom = chromium(SITE + "/no/such/page.html", "missing")
if "Custom error page" not in dom:
    fail("a missing page shows the error document", dom)
ok("a missing page shows the error document")
dom = chromium(SITE + "/docs/guide.html", "redirect")
if "The guide" not in dom:
    fail("the routing rule redirects docs/ to documents/", dom)
ok("the routing rule redirects docs/ to documents/")
dom = chromium(SITE + "/cors.html", "cors")
if "allowed=[hello from data] denied=[blocked]" not in dom:
    fail("a cross-origin fetch succeeds only where CORS allows it", dom)
ok("a cross-origin fetch succeeds only where CORS allows it")
dom = chromium(SITE + "/form.html", "form")
try:
    got = s3.get_object(Bucket="uploads", Key="incoming/hello.txt")["Body"].read().decode()
except Exception as e:  # noqa: BLE001 - reported as the failure
    fail("the form upload lands in the bucket", "%r\n%s" % (e, dom))
if got != UPLOAD:
    fail("the form upload lands in the bucket", repr(got))
if "Upload done" not in dom:
    fail("the form's success_action_redirect lands on the site", dom)
ok("the form upload lands in the bucket and redirects to the site")
