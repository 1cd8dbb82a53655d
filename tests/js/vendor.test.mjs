// The vendored libraries are the registry's bytes: each file matches static/vendor/SHA256SUMS,
// every file there is listed, and the page imports them by their versioned paths.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const VENDOR = new URL("../../static/vendor/", import.meta.url).pathname;

function filesUnder(dir, prefix = "") {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path, `${prefix}${name}/`) : [`${prefix}${name}`];
  });
}

const sums = new Map(
  readFileSync(join(VENDOR, "SHA256SUMS"), "utf8")
    .trim()
    .split("\n")
    .map((line) => line.split(/\s+/).reverse()),
);

test("every vendored file matches its checksum, and every file is listed", () => {
  const files = filesUnder(VENDOR).filter((f) => f !== "SHA256SUMS" && f !== "README.md");
  assert.deepEqual(files.sort(), [...sums.keys()].sort());
  for (const [file, sum] of sums) {
    assert.equal(createHash("sha256").update(readFileSync(join(VENDOR, file))).digest("hex"), sum, file);
  }
});

test("each library has its licence beside it, and the page imports what is vendored", () => {
  const vendored = readFileSync(new URL("../../static/vendored.js", import.meta.url), "utf8");
  const imported = [...vendored.matchAll(/from "\.\/vendor\/([^"]+)"/g)].map((m) => m[1]);
  assert.equal(imported.length, 2);
  for (const path of imported) {
    assert.ok(sums.has(path), path);
    assert.ok(sums.has(`${path.split("/")[0]}/LICENSE`), path);
  }
});
