// A small Markdown renderer for model output, which is untrusted.
//
// It only ever creates elements from a fixed list and fills them with text
// nodes: no HTML string is parsed, so `<script>`, `<img onerror=...>` and raw
// HTML in an answer show up as the text they are.  Links keep their href only
// for http:, https: and mailto: URLs; anything else (javascript:, data:,
// relative paths) stays visible as plain text.
//
// The subset is what chat answers use: paragraphs, headings, bullet and
// numbered lists (nested by indentation), block quotes, fenced code blocks,
// tables, rules; inline code, bold, italic, strikethrough, links and bare
// URLs.
//
// MarkdownView re-renders incrementally while an answer streams: the text is
// split into blocks, and only blocks whose source changed since the last
// update (in practice the last one) are rebuilt; a growing code block just
// gets its text replaced.  Finished blocks are never touched again, so
// nothing above the cursor flickers, and text in them stays selectable.

const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);

/** The normalised URL if it is absolute and of a safe scheme, else null. */
export function safeUrl(raw) {
  let url;
  try {
    url = new URL(raw.trim());
  } catch {
    return null;
  }
  return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
}

// -- blocks

const FENCE = /^ {0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])([ \t]+(.*)|[ \t]*$)/;
const TABLE_DELIMITER = /^ {0,3}\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;

const isBlank = (line) => /^[ \t]*$/.test(line);
const indentOf = (line) => line.match(/^[ \t]*/)[0].replace(/\t/g, "    ").length;

/** Remove up to `count` columns of leading indentation. */
function dedent(line, count) {
  let columns = 0;
  let i = 0;
  while (i < line.length && columns < count) {
    if (line[i] === " ") columns += 1;
    else if (line[i] === "\t") columns += 4;
    else break;
    i += 1;
  }
  return line.slice(i);
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);
}

function splitRow(line) {
  let row = line.trim();
  if (row.startsWith("|")) row = row.slice(1);
  if (row.endsWith("|") && !row.endsWith("\\|")) row = row.slice(0, -1);
  const cells = [];
  let cell = "";
  for (let i = 0; i < row.length; i++) {
    if (row[i] === "\\" && row[i + 1] === "|") {
      cell += "|";
      i += 1;
    } else if (row[i] === "|") {
      cells.push(cell.trim());
      cell = "";
    } else {
      cell += row[i];
    }
  }
  cells.push(cell.trim());
  return cells;
}

/**
 * Split Markdown into blocks.  Each block has a `kind`, a `key` (its
 * source, so an unchanged block can be recognised) and what rendering needs.
 */
export function parseBlocks(text) {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  const blocks = [];
  let i = 0;
  const take = (kind, start, fields) => {
    blocks.push({ kind, key: `${kind}\u0000${lines.slice(start, i).join("\n")}`, ...fields });
  };
  while (i < lines.length) {
    const line = lines[i];
    const start = i;
    if (isBlank(line)) {
      i += 1;
      continue;
    }
    let match = FENCE.exec(line);
    if (match) {
      const fence = match[1];
      const indent = indentOf(line);
      const body = [];
      let closed = false;
      i += 1;
      while (i < lines.length) {
        const close = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(lines[i]);
        if (close && close[1][0] === fence[0] && close[1].length >= fence.length) {
          closed = true;
          i += 1;
          break;
        }
        body.push(dedent(lines[i], indent));
        i += 1;
      }
      take("code", start, { lang: match[2] || "", code: body.join("\n"), closed });
      continue;
    }
    match = HEADING.exec(line);
    if (match) {
      i += 1;
      take("heading", start, { level: match[1].length, text: match[2] || "" });
      continue;
    }
    if (RULE.test(line)) {
      i += 1;
      take("rule", start, {});
      continue;
    }
    if (QUOTE.test(line)) {
      const inner = [];
      while (i < lines.length && QUOTE.test(lines[i])) {
        inner.push(QUOTE.exec(lines[i])[1]);
        i += 1;
      }
      take("quote", start, { children: parseBlocks(inner.join("\n")) });
      continue;
    }
    match = ITEM.exec(line);
    if (match) {
      const list = parseList(lines, i);
      i = list.end;
      take("list", start, list.fields);
      continue;
    }
    if (line.includes("|") && i + 1 < lines.length && TABLE_DELIMITER.test(lines[i + 1]) && lines[i + 1].includes("-")) {
      const header = splitRow(line);
      const align = splitRow(lines[i + 1]).map((cell) => {
        const left = cell.startsWith(":");
        const right = cell.endsWith(":");
        return left && right ? "center" : right ? "right" : left ? "left" : "";
      });
      const rows = [];
      i += 2;
      while (i < lines.length && !isBlank(lines[i]) && lines[i].includes("|")) {
        rows.push(splitRow(lines[i]));
        i += 1;
      }
      take("table", start, { header, align, rows });
      continue;
    }
    // A paragraph: until a blank line or the start of another block.
    const body = [line];
    i += 1;
    while (i < lines.length && !isBlank(lines[i]) && !startsBlock(lines[i])) {
      body.push(lines[i]);
      i += 1;
    }
    take("paragraph", start, { text: body.map((l) => l.trim()).join("\n") });
  }
  return blocks;
}

/** A list starting at `lines[start]`: its items, each parsed as blocks. */
function parseList(lines, start) {
  const kindOf = (item) => (/\d/.test(item[2]) ? item[2].slice(-1) : item[2]); // "." or ")" or the bullet
  const first = ITEM.exec(lines[start]);
  const kind = kindOf(first);
  const ordered = /\d/.test(first[2]);
  const baseIndent = indentOf(lines[start]);
  // A sibling item sits at the first item's indentation (give or take a
  // space); anything indented further belongs to the current item.
  const sibling = (line) => {
    const item = ITEM.exec(line);
    return item && indentOf(line) <= baseIndent + 1 ? item : null;
  };
  const items = [];
  let loose = false;
  let current = null;
  let contentIndent = 0;
  let i = start;
  while (i < lines.length) {
    const line = lines[i];
    const item = sibling(line);
    if (item) {
      if (kindOf(item) !== kind) break;
      current = [item[4] ?? ""];
      items.push(current);
      contentIndent = item[1].length + item[2].length + 1;
      i += 1;
      continue;
    }
    if (isBlank(line)) {
      // After blank lines the list goes on only with more of it.
      let next = i + 1;
      while (next < lines.length && isBlank(lines[next])) next += 1;
      if (next >= lines.length) break;
      const nextItem = sibling(lines[next]);
      if (nextItem ? kindOf(nextItem) !== kind : indentOf(lines[next]) <= baseIndent) break;
      loose = true;
      for (; i < next; i++) current.push("");
      continue;
    }
    const indent = indentOf(line);
    if (indent > baseIndent) {
      current.push(dedent(line, Math.min(indent, contentIndent)));
      i += 1;
      continue;
    }
    // A lazy continuation of the item's paragraph, unless another block starts.
    if (startsBlock(line) || isBlank(current[current.length - 1])) break;
    current.push(line.trim());
    i += 1;
  }
  return {
    end: i,
    fields: {
      ordered,
      start: ordered ? Number.parseInt(first[2], 10) : null,
      loose,
      items: items.map((item) => parseBlocks(item.join("\n"))),
    },
  };
}

// -- inline

const PUNCTUATION = /[!-/:-@[-`{-~]/;
// Sticky patterns, matched at a position without copying the rest of the text.
const BARE_URL = /(?:https?:\/\/|mailto:)[^\s<>]*[^\s<>.,;:!?'")\]*_~]/y;
const AUTOLINK = /<((?:https?|mailto):[^\s<>]+)>/y;
const BACKTICKS = /`+/y;
const DELIMITER_RUN = /([*_~])\1*/y;

function matchAt(pattern, text, index) {
  pattern.lastIndex = index;
  return pattern.exec(text);
}

function element(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

/** Find the closing `delimiter` of an emphasis opened just before `from`. */
function findClose(text, delimiter, from) {
  let j = text.indexOf(delimiter, from);
  while (j !== -1) {
    const inside = text[j - 1];
    const after = text[j + delimiter.length];
    const wordAfter = delimiter[0] === "_" && after !== undefined && /\w/.test(after);
    if (j > from && !/\s/.test(inside) && !wordAfter && text[j - 1] !== "\\") return j;
    j = text.indexOf(delimiter, j + 1);
  }
  return -1;
}

/** Parse `[label](url)` at `i` (or `![alt](url)` at `i - 1`); null when it is not one. */
function parseLink(text, i) {
  let depth = 0;
  let j = i;
  for (; j < text.length; j++) {
    if (text[j] === "\\") j += 1;
    else if (text[j] === "[") depth += 1;
    else if (text[j] === "]" && --depth === 0) break;
  }
  if (j >= text.length || text[j + 1] !== "(") return null;
  let k = j + 2;
  let parens = 1;
  for (; k < text.length; k++) {
    if (text[k] === "(") parens += 1;
    else if (text[k] === ")" && --parens === 0) break;
  }
  if (k >= text.length) return null;
  const target = text.slice(j + 2, k).trim();
  const href = target.replace(/\s+"[^"]*"$|\s+'[^']*'$/, "").replace(/^<(.*)>$/, "$1");
  if (/\s/.test(href)) return null; // not a link destination: leave the text as written
  return { label: text.slice(i + 1, j), href, end: k + 1 };
}

function link(href, label, parent, inLink) {
  const url = safeUrl(href);
  if (!url || inLink) return false;
  const a = element("a");
  a.href = url;
  a.rel = "noopener noreferrer nofollow";
  a.target = "_blank";
  renderInline(label || url, a, true);
  parent.append(a);
  return true;
}

/**
 * Append the inline content of `text` to `parent`, as elements and text
 * nodes only.  Newlines become line breaks (chat answers mean them).
 */
export function renderInline(text, parent, inLink = false) {
  let plain = "";
  const flush = () => {
    if (plain) parent.append(document.createTextNode(plain));
    plain = "";
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "\\" && i + 1 < text.length && PUNCTUATION.test(text[i + 1])) {
      plain += text[i + 1];
      i += 2;
      continue;
    }
    if (c === "\n") {
      flush();
      parent.append(element("br"));
      i += 1;
      continue;
    }
    if (c === "`") {
      const run = matchAt(BACKTICKS, text, i)[0];
      const close = text.indexOf(run, i + run.length);
      if (close !== -1) {
        flush();
        const code = element("code");
        let content = text.slice(i + run.length, close).replace(/\n/g, " ");
        if (/^ .* $/.test(content) && content.trim()) content = content.slice(1, -1);
        code.textContent = content;
        parent.append(code);
        i = close + run.length;
        continue;
      }
      plain += run;
      i += run.length;
      continue;
    }
    if (c === "*" || c === "_" || c === "~") {
      const double = text[i + 1] === c;
      const delimiter = c === "~" ? (double ? "~~" : null) : double ? c + c : c;
      const leftFlanking = delimiter && text[i + delimiter.length] && !/\s/.test(text[i + delimiter.length]);
      const wordBefore = c === "_" && i > 0 && /\w/.test(text[i - 1]);
      if (delimiter && leftFlanking && !wordBefore) {
        const close = findClose(text, delimiter, i + delimiter.length);
        if (close !== -1) {
          flush();
          const tag = c === "~" ? "del" : delimiter.length === 2 ? "strong" : "em";
          const node = element(tag);
          renderInline(text.slice(i + delimiter.length, close), node, inLink);
          parent.append(node);
          i = close + delimiter.length;
          continue;
        }
      }
      const run = matchAt(DELIMITER_RUN, text, i)[0];
      plain += run;
      i += run.length;
      continue;
    }
    if (c === "[" || (c === "!" && text[i + 1] === "[")) {
      const open = c === "!" ? i + 1 : i;
      const parsed = parseLink(text, open);
      if (parsed) {
        flush();
        if (!link(parsed.href, parsed.label, parent, inLink)) {
          // Not a link we follow: show exactly what the model wrote.
          plain += text.slice(i, parsed.end);
        }
        i = parsed.end;
        continue;
      }
    }
    if (c === "<") {
      const auto = matchAt(AUTOLINK, text, i);
      if (auto && !inLink) {
        flush();
        if (link(auto[1], "", parent, inLink)) {
          i += auto[0].length;
          continue;
        }
      }
    }
    if ((c === "h" || c === "m") && !inLink && (i === 0 || /[\s(]/.test(text[i - 1]))) {
      const bare = matchAt(BARE_URL, text, i);
      if (bare) {
        flush();
        if (link(bare[0], "", parent, inLink)) {
          i += bare[0].length;
          continue;
        }
      }
    }
    plain += c;
    i += 1;
  }
  flush();
}

// -- rendering blocks

/** Build the DOM of one block; `parts` receives handles for in-place updates. */
export function renderBlock(block, parts = {}) {
  switch (block.kind) {
    case "paragraph": {
      const p = element("p");
      renderInline(block.text, p);
      return p;
    }
    case "heading": {
      // Answers sit under the page's h1 and each turn's h2.
      const h = element(`h${Math.min(block.level + 2, 6)}`);
      renderInline(block.text, h);
      return h;
    }
    case "rule":
      return element("hr");
    case "quote": {
      const quote = element("blockquote");
      for (const child of block.children) quote.append(renderBlock(child));
      return quote;
    }
    case "list": {
      const list = element(block.ordered ? "ol" : "ul");
      if (block.ordered && block.start !== 1) list.start = block.start;
      for (const item of block.items) {
        const li = element("li");
        if (!block.loose && item.length && item[0].kind === "paragraph") {
          // A tight list: the item's first paragraph is not wrapped in <p>.
          renderInline(item[0].text, li);
          for (const child of item.slice(1)) li.append(renderBlock(child));
        } else {
          for (const child of item) li.append(renderBlock(child));
        }
        list.append(li);
      }
      return list;
    }
    case "table": {
      const wrap = element("div", "table-wrap");
      const table = element("table");
      const head = element("thead");
      const headRow = element("tr");
      block.header.forEach((cell, n) => headRow.append(tableCell("th", cell, block.align[n])));
      head.append(headRow);
      table.append(head);
      const body = element("tbody");
      for (const row of block.rows) {
        const tr = element("tr");
        block.header.forEach((_, n) => tr.append(tableCell("td", row[n] ?? "", block.align[n])));
        body.append(tr);
      }
      table.append(body);
      wrap.append(table);
      return wrap;
    }
    case "code": {
      const wrap = element("div", "code-block");
      const bar = element("div", "code-bar");
      const lang = element("span", "code-lang");
      lang.textContent = block.lang || "code";
      const copy = element("button", "copy");
      copy.type = "button";
      copy.textContent = "Copy";
      copy.setAttribute("aria-label", block.lang ? `Copy ${block.lang} code` : "Copy code");
      bar.append(lang, copy);
      const pre = element("pre");
      const code = element("code");
      if (block.lang) code.className = `language-${block.lang.replace(/[^\w#+.-]/g, "")}`;
      code.textContent = block.code;
      pre.append(code);
      wrap.append(bar, pre);
      parts.code = code;
      return wrap;
    }
    default:
      throw new Error(`unknown block kind ${block.kind}`);
  }
}

function tableCell(tag, text, align) {
  const cell = element(tag, align ? `align-${align}` : "");
  renderInline(text, cell);
  return cell;
}

/**
 * The rendered Markdown of one growing text, updated in place.
 *
 *   const view = new MarkdownView(container);
 *   view.update(textSoFar);   // as often as tokens arrive
 */
export class MarkdownView {
  constructor(container) {
    this.container = container;
    this.rendered = []; // {key, kind, lang, node, code}
  }

  update(text) {
    const blocks = parseBlocks(text);
    blocks.forEach((block, n) => {
      const old = this.rendered[n];
      if (old && old.key === block.key) return;
      if (old && old.kind === "code" && block.kind === "code" && old.lang === block.lang) {
        // A code block growing line by line: keep its frame and copy button.
        old.code.textContent = block.code;
        old.key = block.key;
        return;
      }
      const parts = {};
      const node = renderBlock(block, parts);
      if (old) this.container.replaceChild(node, old.node);
      else this.container.append(node);
      this.rendered[n] = { key: block.key, kind: block.kind, lang: block.lang, node, code: parts.code };
    });
    for (const stale of this.rendered.splice(blocks.length)) stale.node.remove();
  }
}
