// The vendored libraries, by their versioned paths (written by scripts/vendor.sh).
export { default as markdownit } from "./vendor/markdown-it-15.0.3/markdown-it.esm.min.mjs";
export { default as hljs } from "./vendor/highlight.js-11.12.0/highlight.min.js";
