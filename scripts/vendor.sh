#!/usr/bin/env bash
# Refresh the page's vendored libraries and the CommonMark spec from the npm registry.
#
#   scripts/vendor.sh            fetch the pinned versions below, write them and their checksums
#   scripts/vendor.sh --check    verify the files in the tree against static/vendor/SHA256SUMS
#
# To upgrade, change a version below, run the script, run `make test`, commit
# static/vendor/, static/vendored.js and tests/fixtures/commonmark-spec/.
# Files are copied byte for byte from the registry's tarball (whose integrity
# npm checks); nothing is built.  Their paths carry the version, so the
# server may cache them for a year (sse/ serves static/vendor/ as immutable).
set -euo pipefail
cd "$(dirname "$0")/.."

MARKDOWN_IT=15.0.3          # CommonMark parser: its token stream feeds static/markdown.js
HIGHLIGHT_JS=11.12.0        # syntax highlighter (@highlightjs/cdn-assets: the ES module build)
COMMONMARK_SPEC=0.31.2      # the spec's examples, for tests/js/commonmark_spec.test.mjs

VENDOR=static/vendor
SUMS=$VENDOR/SHA256SUMS

if [ "${1:-}" = "--check" ]; then
    (cd "$VENDOR" && sha256sum --check --quiet SHA256SUMS)
    echo "static/vendor matches its checksums"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# npm pack downloads a package's tarball from the registry (and checks its integrity).
fetch() {
    local spec=$1 dir=$2
    mkdir -p "$work/$dir"
    (cd "$work" && npm pack --silent "$spec" >"$dir.name")
    tar -xzf "$work/$(cat "$work/$dir.name")" -C "$work/$dir"
}

fetch "markdown-it@$MARKDOWN_IT" markdown-it
fetch "@highlightjs/cdn-assets@$HIGHLIGHT_JS" highlight
fetch "commonmark-spec@$COMMONMARK_SPEC" commonmark-spec

rm -rf "$VENDOR"
mkdir -p "$VENDOR/markdown-it-$MARKDOWN_IT" "$VENDOR/highlight.js-$HIGHLIGHT_JS"
cp "$work/markdown-it/package/dist/browser/markdown-it.esm.min.mjs" "$VENDOR/markdown-it-$MARKDOWN_IT/"
cp "$work/markdown-it/package/LICENSE" "$VENDOR/markdown-it-$MARKDOWN_IT/LICENSE"
cp "$work/highlight/package/es/highlight.min.js" "$VENDOR/highlight.js-$HIGHLIGHT_JS/"
cp "$work/highlight/package/LICENSE" "$VENDOR/highlight.js-$HIGHLIGHT_JS/LICENSE"

(cd "$VENDOR" && find . -type f ! -name SHA256SUMS ! -name README.md | sed 's|^\./||' | sort | xargs sha256sum) >"$SUMS"

cat >"$VENDOR/README.md" <<README
# Vendored libraries of the chat page

Copied byte for byte from the npm registry by \`scripts/vendor.sh\` (which pins
the versions); checksums in \`SHA256SUMS\` (\`scripts/vendor.sh --check\`).
Why each one is here: docs/page.md.

| Library | Version | Licence | File | From |
|---|---|---|---|---|
| markdown-it | $MARKDOWN_IT | MIT | markdown-it-$MARKDOWN_IT/markdown-it.esm.min.mjs | markdown-it@$MARKDOWN_IT, dist/browser/ |
| highlight.js | $HIGHLIGHT_JS | BSD-3-Clause | highlight.js-$HIGHLIGHT_JS/highlight.min.js | @highlightjs/cdn-assets@$HIGHLIGHT_JS, es/ (the common languages) |
README

cat >static/vendored.js <<JS
// The vendored libraries, by their versioned paths (written by scripts/vendor.sh).
export { default as markdownit } from "./vendor/markdown-it-$MARKDOWN_IT/markdown-it.esm.min.mjs";
export { default as hljs } from "./vendor/highlight.js-$HIGHLIGHT_JS/highlight.min.js";
JS

SPEC=tests/fixtures/commonmark-spec
rm -rf "$SPEC"
mkdir -p "$SPEC"
cp "$work/commonmark-spec/package/"{index.js,spec.txt,LICENSE,package.json} "$SPEC/"

echo "vendored markdown-it $MARKDOWN_IT, highlight.js $HIGHLIGHT_JS, commonmark-spec $COMMONMARK_SPEC"
