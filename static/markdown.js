// Markdown of model output, which is untrusted, rendered safely and incrementally.
//
// Parsing is markdown-it's (vendored; CommonMark plus tables, strikethrough
// and bare links), with raw HTML turned off so `<script>` and `<img
// onerror=...>` are text.  Turning its tokens into DOM is this module's own
// job, and it only ever creates elements from a fixed list and fills them
// with text nodes: no HTML string is ever parsed.  Links keep their href only
// for absolute http:, https: and mailto: URLs; anything else shows its text.
// Images become links to the image (the page loads nothing from elsewhere).
//
// MarkdownView renders a growing answer: each update re-parses only the text
// from the start of the last top-level block that may still change, and
// reconciles the result with what is on screen, so a block (or a list item,
// a table row) whose source did not change is never touched.  Blocks that
// are over -- another block has begun on a complete line after them -- are
// never parsed again.  A growing code block gets its text extended in place
// and is re-highlighted at most once per completed line, and less often the
// longer highlighting takes.

import { grammarOf, highlightInto } from "./codehighlight.js";
import { markdownit } from "./vendored.js";

const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);

/** The normalised URL if it is absolute and of a safe scheme, else null. */
export function safeUrl(raw) {
  let url;
  try {
    url = new URL(String(raw).trim());
  } catch {
    return null;
  }
  return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
}

/**
 * The page's parser: CommonMark with GFM tables and strikethrough, bare URLs
 * as links, raw HTML as text, and a newline as a line break (chat answers
 * mean their newlines).
 */
export function createParser(options = {}) {
  return markdownit({ html: false, linkify: true, breaks: true, typographer: false, ...options });
}

const pageParser = createParser();

/** The parse of `text` as the page does it: markdown-it's token stream. */
export function parse(text, env = {}, parser = pageParser) {
  return parser.parse(text, env);
}

// -- tokens to a tree of blocks

/** Nest markdown-it's flat token list: `{token, children}`, children null for a leaf token. */
export function blockTree(tokens) {
  const root = { token: null, children: [] };
  const stack = [root];
  for (const token of tokens) {
    const parent = stack[stack.length - 1];
    if (token.nesting === 1) {
      const node = { token, children: [] };
      parent.children.push(node);
      stack.push(node);
    } else if (token.nesting === -1) {
      if (stack.length > 1) stack.pop();
    } else {
      parent.children.push({ token, children: null });
    }
  }
  return root.children;
}

// Containers: their children are reconciled one by one.
const CONTAINERS = {
  blockquote_open: "blockquote",
  bullet_list_open: "ul",
  ordered_list_open: "ol",
  list_item_open: "li",
  table_open: "table",
  thead_open: "thead",
  tbody_open: "tbody",
  tr_open: "tr",
};
// Blocks whose one child is inline content: rebuilt whole when it changes.
const TEXT_BLOCKS = new Set(["paragraph_open", "heading_open", "th_open", "td_open"]);
const INLINE_TAGS = { em_open: "em", strong_open: "strong", s_open: "del" };
const ALIGN = /^text-align:(left|center|right)$/;

const inlineOf = (node) => node.children?.find((child) => child.token.type === "inline")?.token ?? null;

/**
 * What identifies a rendered block: equal signatures render to the same DOM.
 * Text that may hold a reference link depends on the definitions known too.
 */
function signature(node, references) {
  const { token } = node;
  if (TEXT_BLOCKS.has(token.type)) {
    const content = inlineOf(node)?.content ?? "";
    const refs = content.includes("]") ? references : "";
    return `${token.tag}\u0000${token.hidden}\u0000${token.attrGet("style") ?? ""}\u0000${content}\u0000${refs}`;
  }
  if (token.type in CONTAINERS) return `${token.tag}\u0000${token.attrGet("start") ?? ""}`;
  if (token.type === "fence" || token.type === "code_block") return `code\u0000${langOf(token)}`;
  return `${token.type}\u0000${token.content}`;
}

/** A fence's language: the first word of its info string, its escapes and entities resolved. */
function langOf(token) {
  if (token.type !== "fence") return "";
  return pageParser.utils.unescapeAll(token.info).trim().split(/\s+/)[0];
}

// -- rendering

/**
 * Builds DOM from tokens with the page's rules.  `options`: `headingOffset`
 * (added to heading levels; the page's answers sit under its h1 and h2),
 * `linkPolicy` (href -> the href to use, or null for none), `breaks` (soft
 * line breaks as <br>), `highlight` (syntax-highlight code blocks).
 */
class Builder {
  constructor(doc, { headingOffset = 2, linkPolicy = safeUrl, breaks = true, highlight = true } = {}) {
    this.doc = doc;
    this.headingOffset = headingOffset;
    this.linkPolicy = linkPolicy;
    this.breaks = breaks;
    this.highlight = highlight;
    this.references = ""; // the link reference definitions the text is rendered with (referencesKey)
  }

  element(tag, className) {
    const node = this.doc.createElement(tag);
    if (className) node.className = className;
    return node;
  }

  text(value) {
    return this.doc.createTextNode(value);
  }

  /** A block's record: `{sig, nodes, element, children, code}`. */
  block(node) {
    const { token } = node;
    const sig = signature(node, this.references);
    if (token.type in CONTAINERS) {
      const element = this.element(CONTAINERS[token.type]);
      let outer = element;
      if (token.type === "ordered_list_open") {
        const start = token.attrGet("start");
        if (start !== null) element.setAttribute("start", String(Number.parseInt(start, 10)));
      }
      if (token.type === "table_open") {
        outer = this.element("div", "table-wrap");
        outer.append(element);
      }
      const children = node.children.map((child) => this.block(child));
      for (const child of children) element.append(...child.nodes);
      return { sig, nodes: [outer], element, children };
    }
    if (TEXT_BLOCKS.has(token.type)) {
      const inline = inlineOf(node);
      if (token.type === "paragraph_open" && token.hidden) {
        // A tight list's paragraph: its text sits in the list item itself.
        const box = this.doc.createDocumentFragment();
        if (inline) this.inline(inline.children ?? [], box);
        return { sig, nodes: [...box.childNodes], element: null, children: null };
      }
      let tag = token.tag;
      if (token.type === "heading_open") tag = `h${Math.min(Number(token.tag.slice(1)) + this.headingOffset, 6)}`;
      const element = this.element(tag);
      const align = ALIGN.exec(token.attrGet("style") ?? "");
      if (align) element.className = `align-${align[1]}`;
      if (inline) this.inline(inline.children ?? [], element);
      return { sig, nodes: [element], element, children: null };
    }
    if (token.type === "fence" || token.type === "code_block") {
      const code = new CodeBlock(this, langOf(token));
      code.set(token.content, false);
      return { sig, nodes: [code.wrap], element: null, children: null, code };
    }
    if (token.type === "hr") return { sig, nodes: [this.element("hr")], element: null, children: null };
    // Anything else (raw HTML is off, so nothing expected): its source, as text.
    const p = this.element("p");
    p.append(this.text(token.content));
    return { sig, nodes: token.content ? [p] : [], element: null, children: null };
  }

  /** Append inline tokens to `parent` as elements from a fixed list and text nodes. */
  inline(tokens, parent) {
    const stack = [parent];
    let linkDepth = 0;
    for (const token of tokens) {
      const top = stack[stack.length - 1];
      switch (token.type) {
        case "text":
          top.append(this.text(token.content));
          break;
        case "softbreak":
          top.append(this.breaks ? this.element("br") : this.text("\n"));
          break;
        case "hardbreak":
          top.append(this.element("br"));
          break;
        case "code_inline": {
          const code = this.element("code");
          code.textContent = token.content;
          top.append(code);
          break;
        }
        case "em_open":
        case "strong_open":
        case "s_open": {
          const element = this.element(INLINE_TAGS[token.type]);
          top.append(element);
          stack.push(element);
          break;
        }
        case "link_open": {
          const href = linkDepth ? null : this.linkPolicy(token.attrGet("href") ?? "");
          linkDepth += 1;
          if (href === null) {
            stack.push(top); // not a link we follow: its text stays, unlinked
            break;
          }
          const a = this.link(href, token.attrGet("title"));
          top.append(a);
          stack.push(a);
          break;
        }
        case "link_close":
          linkDepth -= 1;
          if (stack.length > 1) stack.pop();
          break;
        case "em_close":
        case "strong_close":
        case "s_close":
          if (stack.length > 1) stack.pop();
          break;
        case "image": {
          // No image is loaded from an answer: it becomes a link to the image.
          const href = linkDepth ? null : this.linkPolicy(token.attrGet("src") ?? "");
          const alt = token.content || token.attrGet("src") || "";
          if (href === null) {
            top.append(this.text(alt));
          } else {
            const a = this.link(href, token.attrGet("title"));
            a.className = "image-link";
            a.append(this.text(alt || href));
            top.append(a);
          }
          break;
        }
        default:
          if (token.content) top.append(this.text(token.content));
      }
    }
  }

  link(href, title) {
    const a = this.element("a");
    a.setAttribute("href", href);
    if (title) a.setAttribute("title", title);
    a.setAttribute("rel", "noopener noreferrer nofollow");
    a.setAttribute("target", "_blank");
    return a;
  }
}

/**
 * A code block on screen: a bar with its language and a Copy button, then the
 * code.  While it grows, new text goes into a plain text node after the
 * highlighted part, and the complete lines are highlighted again as they
 * arrive: at every line while the block is small, every n lines for a block
 * of n * 2,000 characters, so the work per line stays about the same however
 * long the block grows.
 */
class CodeBlock {
  constructor(builder, lang) {
    this.lang = lang;
    this.highlight = builder.highlight && grammarOf(lang) !== null;
    this.wrap = builder.element("div", "code-block");
    const bar = builder.element("div", "code-bar");
    const label = builder.element("span", "code-lang");
    label.textContent = lang || "code";
    const copy = builder.element("button", "copy");
    copy.setAttribute("type", "button");
    copy.textContent = "Copy";
    copy.setAttribute("aria-label", lang ? `Copy ${lang} code` : "Copy code");
    bar.append(label, copy);
    const pre = builder.element("pre");
    this.code = builder.element("code");
    const safeLang = lang.replace(/[^\p{L}\p{N}_#+.-]/gu, "");
    if (safeLang) this.code.className = `language-${safeLang}`;
    pre.append(this.code);
    this.wrap.append(bar, pre);
    this.text = "";
    this.highlighted = ""; // the prefix of `text` shown highlighted
    this.tail = null; // the text node after it
  }

  /** Show `text`; `final` when the block is complete (highlight it all, now). */
  set(text, final) {
    if (text === this.text && (!final || this.highlighted === text)) return;
    if (this.highlight && text.startsWith(this.highlighted)) {
      const complete = final ? text : text.slice(0, text.lastIndexOf("\n") + 1);
      const newLines = lineCount(complete.slice(this.highlighted.length));
      const every = Math.max(1, Math.floor(complete.length / 2000));
      if (complete.length > this.highlighted.length && (final || newLines >= every)) {
        highlightInto(this.code, complete, this.lang);
        this.highlighted = complete;
        this.tail = null;
      }
    } else if (this.highlight) {
      highlightInto(this.code, text.slice(0, text.lastIndexOf("\n") + 1), this.lang);
      this.highlighted = text.slice(0, text.lastIndexOf("\n") + 1);
      this.tail = null;
    }
    if (!text.startsWith(this.highlighted)) {
      this.code.replaceChildren();
      this.highlighted = "";
      this.tail = null;
    }
    const rest = text.slice(this.highlighted.length);
    if (!this.tail) {
      this.tail = this.code.ownerDocument.createTextNode(rest);
      this.code.append(this.tail);
    } else if (this.tail.data !== rest) {
      this.tail.data = rest;
    }
    this.text = text;
  }
}

/** Put `node`s in place of `before` (or at the end of `parent`). */
function insertAll(parent, nodes, before) {
  for (const node of nodes) parent.insertBefore(node, before);
}

function firstNodeFrom(records, index) {
  for (let i = index; i < records.length; i++) if (records[i].nodes.length) return records[i].nodes[0];
  return null;
}

/**
 * Make `parent`'s rendered `records` show `nodes`: records whose signature
 * is unchanged are kept as they are (containers recurse), a code block of
 * the same language grows in place, anything else is rebuilt in its place.
 */
function reconcile(builder, parent, records, nodes) {
  const result = [];
  nodes.forEach((node, index) => {
    const old = records[index];
    const sig = signature(node, builder.references);
    if (old && old.sig === sig) {
      if (old.children && node.children) old.children = reconcile(builder, old.element, old.children, node.children);
      if (old.code) old.code.set(node.token.content, false);
      result.push(old);
      return;
    }
    const fresh = builder.block(node);
    const before = old ? firstNodeFrom(records, index) : null;
    insertAll(parent, fresh.nodes, before);
    if (old) for (const stale of old.nodes) stale.remove();
    result.push(fresh);
  });
  for (const stale of records.slice(nodes.length)) for (const node of stale.nodes) node.remove();
  return result;
}

function finishCode(records) {
  for (const record of records) {
    if (record.code) record.code.set(record.code.text, true);
    if (record.children) finishCode(record.children);
  }
}

/** The link reference definitions of a parse, as one string to compare. */
function referencesKey(env) {
  const refs = env.references ?? {};
  return Object.keys(refs)
    .sort()
    .map((label) => `${label}\u0000${refs[label].href}\u0000${refs[label].title}`)
    .join("\u0001");
}

function lineCount(text) {
  let count = 0;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) count += 1;
  return count;
}

function offsetOfLine(text, line) {
  let offset = 0;
  for (let n = 0; n < line; n++) offset = text.indexOf("\n", offset) + 1;
  return offset;
}

/**
 * The rendered Markdown of one growing text, updated in place.
 *
 *   const view = new MarkdownView(container);
 *   view.update(textSoFar);   // as often as text arrives (the page: once per frame)
 *   view.finish();            // the text is complete: highlight what is left
 *
 * `options`: `parser` (a markdown-it instance; default the page's), and the
 * builder's `headingOffset`, `linkPolicy`, `breaks`, `highlight`.
 */
export class MarkdownView {
  constructor(container, options = {}) {
    this.container = container;
    this.parser = options.parser ?? pageParser;
    this.builder = new Builder(container.ownerDocument, options);
    this.reset();
  }

  reset() {
    this.container.replaceChildren();
    this.text = "";
    this.stableEnd = 0; // the text before this offset is over: never parsed again...
    this.env = {}; // ...but its link reference definitions are kept
    this.settled = []; // records of the blocks before stableEnd
    this.live = []; // records of the blocks after it
    this.builder.references = "";
  }

  update(text) {
    if (text.includes("\r")) text = text.replace(/\r\n?/g, "\n");
    if (text === this.text) return;
    if (this.stableEnd && !text.startsWith(this.text.slice(0, this.stableEnd))) this.reset();
    const tail = text.slice(this.stableEnd);
    const env = { references: { ...this.env.references } };
    let nodes = blockTree(this.parser.parse(tail, env));
    const references = referencesKey(env);
    if (references !== this.builder.references) {
      // A link definition arrived (or changed): a link above may use it.  Parse
      // it all once more; only text blocks with a "]" in them can be rebuilt.
      this.builder.references = references;
      const all = blockTree(this.parser.parse(text, {}));
      const records = reconcile(this.builder, this.container, [...this.settled, ...this.live], all);
      this.env = {};
      this.settled = [];
      this.live = records;
      this.stableEnd = 0;
      nodes = all;
    } else {
      this.live = reconcile(this.builder, this.container, this.live, nodes);
    }
    this.text = text;
    this.settle(nodes, text.slice(this.stableEnd));
  }

  /** Blocks before the last one that begins on a complete line are over: keep them out of the next parse. */
  settle(nodes, tail) {
    const lastLine = lineCount(tail);
    let k = nodes.length - 1;
    while (k > 0 && !(nodes[k].token.map && nodes[k].token.map[0] < lastLine)) k -= 1;
    if (k <= 0) return;
    const offset = offsetOfLine(tail, nodes[k].token.map[0]);
    const over = tail.slice(0, offset);
    if (over.includes("]:")) this.parser.parse(over, this.env); // collects its reference definitions
    finishCode(this.live.slice(0, k));
    this.settled.push(...this.live.slice(0, k));
    this.live = this.live.slice(k);
    this.stableEnd += offset;
  }

  /** The text is complete: finish highlighting its code blocks. */
  finish() {
    finishCode(this.live);
  }
}

/** Render `text` whole into `container` (a stored answer, a user's message). */
export function renderMarkdown(container, text, options) {
  const view = new MarkdownView(container, options);
  view.update(text);
  view.finish();
  return view;
}
