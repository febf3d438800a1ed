// aws-sdk-js v3 against a running cairn node (CAIRN_ENDPOINT, AWS_* credentials from the env).
// Default flexible checksums (requestChecksumCalculation WHEN_SUPPORTED, CRC32 trailers on
// PutObject/UploadPart), path-style addressing, put/get/head, a streamed upload of unknown length
// through lib-storage's Upload (multipart), listing and deletes. Prints `ok -`/`FAIL -` lines and
// exits 1 on any failed check. Payloads come from a seeded generator (seed printed).
import { createHash } from "node:crypto";
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, HeadObjectCommand,
  ListObjectsV2Command, DeleteObjectCommand, DeleteObjectsCommand, DeleteBucketCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";

const SEED = 31337;
let fails = 0;
const ok = (d) => console.log(`ok - ${d}`);
const bad = (d, detail) => {
  fails++;
  console.log(`FAIL - ${d}`);
  if (detail !== undefined) console.log(`    | ${String(detail).split("\n").slice(0, 10).join("\n    | ")}`);
};
const check = (d, cond, detail) => (cond ? ok(d) : bad(d, detail));
async function step(d, fn) {
  try {
    const r = await fn();
    ok(d);
    return r;
  } catch (e) {
    bad(d, `${e.name}: ${e.message} (status ${e.$metadata?.httpStatusCode})`);
    return undefined;
  }
}

// xorshift32: deterministic bytes without depending on node's crypto RNG
function randomBytes(n, seed) {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out.writeUInt32LE(x, Math.min(i, n - 4)); // the last word may overlap
  }
  return out;
}
const md5 = (b) => createHash("md5").update(b).digest("hex");

const s3 = new S3Client({
  endpoint: process.env.CAIRN_ENDPOINT,
  region: "us-east-1",
  forcePathStyle: true,
  maxAttempts: 2,
});
// CAIRN_TEST_BUCKET_PREFIX: set by lib.sh on a cluster shared by several runs, else empty
const Bucket = (process.env.CAIRN_TEST_BUCKET_PREFIX ?? "") + "js-sdk-bucket";
console.log(`client: node ${process.version}, @aws-sdk/client-s3 (package-lock), seed ${SEED}, ` +
  `requestChecksumCalculation=${await s3.config.requestChecksumCalculation()}`);

await step("CreateBucket", () => s3.send(new CreateBucketCommand({ Bucket })));
const small = randomBytes(200_000, SEED);
const put = await step("PutObject (default CRC32 checksum)", () =>
  s3.send(new PutObjectCommand({ Bucket, Key: "dir/small.bin", Body: small, ContentType: "application/x-test" })));
if (put) check("PutObject ETag is the MD5", put.ETag === `"${md5(small)}"`, put.ETag);
const got = await step("GetObject", () => s3.send(new GetObjectCommand({ Bucket, Key: "dir/small.bin" })));
if (got) {
  const body = Buffer.from(await got.Body.transformToByteArray());
  check("GetObject byte-exact", body.equals(small), `${body.length} bytes, md5 ${md5(body)}`);
}
const head = await step("HeadObject", () => s3.send(new HeadObjectCommand({ Bucket, Key: "dir/small.bin" })));
if (head) {
  check("HeadObject size and type", head.ContentLength === small.length && head.ContentType === "application/x-test",
    `${head.ContentLength} ${head.ContentType}`);
}

// A file stream body: the SDK sends it aws-chunked with a CRC32 trailer
// (STREAMING-UNSIGNED-PAYLOAD-TRAILER), even over plain HTTP.
const tmp = mkdtempSync(join(tmpdir(), "cairn-js-"));
const fileData = randomBytes(3 * 1024 * 1024 + 7, SEED + 2);
writeFileSync(join(tmp, "f.bin"), fileData);
await step("PutObject of a file stream (aws-chunked, CRC32 trailer)", () =>
  s3.send(new PutObjectCommand({ Bucket, Key: "dir/stream.bin", Body: createReadStream(join(tmp, "f.bin")) })));
rmSync(tmp, { recursive: true, force: true });
const gotStream = await step("GetObject file-stream object", () =>
  s3.send(new GetObjectCommand({ Bucket, Key: "dir/stream.bin" })));
if (gotStream) {
  const body = Buffer.from(await gotStream.Body.transformToByteArray());
  check("file-stream object byte-exact", body.equals(fileData), `${body.length} bytes`);
}
await step("DeleteObject file-stream object", () =>
  s3.send(new DeleteObjectCommand({ Bucket, Key: "dir/stream.bin" })));

// Upload of unknown length: a stream with no ContentLength, cut into 5 MiB parts by lib-storage.
const bigSize = 12 * 1024 * 1024 + 12345;
const big = randomBytes(bigSize, SEED + 1);
function* pieces() {
  for (let off = 0; off < big.length; off += 64 * 1024) yield big.subarray(off, off + 64 * 1024);
}
const up = new Upload({
  client: s3,
  params: { Bucket, Key: "streamed/big.bin", Body: Readable.from(pieces()) },
  partSize: 5 * 1024 * 1024,
  queueSize: 2,
});
const done = await step("lib-storage Upload of a ~12 MiB stream (multipart)", () => up.done());
if (done) check("multipart ETag has -3", /-3"$/.test(done.ETag ?? ""), done.ETag);
const gotBig = await step("GetObject streamed object", () =>
  s3.send(new GetObjectCommand({ Bucket, Key: "streamed/big.bin" })));
if (gotBig) {
  const body = Buffer.from(await gotBig.Body.transformToByteArray());
  check("streamed object byte-exact", body.equals(big), `${body.length} bytes`);
}

const list = await step("ListObjectsV2", () => s3.send(new ListObjectsV2Command({ Bucket })));
if (list) {
  const keys = (list.Contents ?? []).map((o) => o.Key).join(" ");
  check("list shows both keys", keys === "dir/small.bin streamed/big.bin", keys);
}
await step("DeleteObject", () => s3.send(new DeleteObjectCommand({ Bucket, Key: "dir/small.bin" })));
const del = await step("DeleteObjects", () => s3.send(new DeleteObjectsCommand({
  Bucket, Delete: { Objects: [{ Key: "streamed/big.bin" }] },
})));
if (del) check("DeleteObjects reports no errors", (del.Deleted ?? []).length === 1 && !(del.Errors ?? []).length,
  JSON.stringify(del.Errors));
const after = await step("ListObjectsV2 after deletes", () => s3.send(new ListObjectsV2Command({ Bucket })));
if (after) check("bucket empty", (after.KeyCount ?? 0) === 0, after.KeyCount);
await step("DeleteBucket", () => s3.send(new DeleteBucketCommand({ Bucket })));
console.log(`aws-sdk-js: ${fails} failed check(s)`);
process.exit(fails ? 1 : 0);
