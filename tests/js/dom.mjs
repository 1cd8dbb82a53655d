// Just enough of the DOM for static/markdown.js to build into under Node, and
// an HTML serialiser shaped like the CommonMark spec's (`"` in text as &quot;).
// The real DOM is exercised in Chromium (tests/browser/); this one lets the
// spec's 652 examples run in a second.

const VOID = new Set(["br", "hr", "img"]);

const escapeText = (text) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

class Node {
  constructor(doc) {
    this.ownerDocument = doc;
    this.parentNode = null;
  }

  remove() {
    if (!this.parentNode) return;
    const siblings = this.parentNode.childNodes;
    siblings.splice(siblings.indexOf(this), 1);
    this.parentNode = null;
  }
}

class Text extends Node {
  constructor(doc, data) {
    super(doc);
    this.data = String(data);
  }

  get textContent() {
    return this.data;
  }

  get html() {
    return escapeText(this.data);
  }
}

class ParentNode extends Node {
  constructor(doc) {
    super(doc);
    this.childNodes = [];
  }

  _adopt(nodes) {
    const flat = [];
    for (const node of nodes) {
      if (node instanceof Fragment) {
        flat.push(...node.childNodes);
        node.childNodes = [];
      } else {
        flat.push(typeof node === "string" ? new Text(this.ownerDocument, node) : node);
      }
    }
    for (const node of flat) {
      node.remove();
      node.parentNode = this;
    }
    return flat;
  }

  append(...nodes) {
    this.childNodes.push(...this._adopt(nodes));
  }

  insertBefore(node, before) {
    const [adopted] = [this._adopt([node])];
    const at = before ? this.childNodes.indexOf(before) : -1;
    if (at === -1) this.childNodes.push(...adopted);
    else this.childNodes.splice(at, 0, ...adopted);
    return node;
  }

  replaceChild(node, old) {
    this.insertBefore(node, old);
    old.remove();
    return old;
  }

  replaceChildren(...nodes) {
    for (const child of this.childNodes) child.parentNode = null;
    this.childNodes = [];
    this.append(...nodes);
  }

  get firstChild() {
    return this.childNodes[0] ?? null;
  }

  get children() {
    return this.childNodes.filter((node) => node instanceof Element);
  }

  get textContent() {
    return this.childNodes.map((node) => node.textContent).join("");
  }

  set textContent(value) {
    this.replaceChildren(new Text(this.ownerDocument, value));
  }

  get innerHTML() {
    return this.childNodes.map((node) => node.html).join("");
  }
}

class Fragment extends ParentNode {}

class Element extends ParentNode {
  constructor(doc, tag) {
    super(doc);
    this.localName = tag;
    this.attributes = new Map();
  }

  setAttribute(name, value) {
    this.attributes.set(name, String(value));
  }

  getAttribute(name) {
    return this.attributes.get(name) ?? null;
  }

  get className() {
    return this.getAttribute("class") ?? "";
  }

  set className(value) {
    this.setAttribute("class", value);
  }

  get html() {
    const attrs = [...this.attributes].map(([name, value]) => ` ${name}="${escapeText(value)}"`).join("");
    if (VOID.has(this.localName)) return `<${this.localName}${attrs} />`;
    return `<${this.localName}${attrs}>${this.innerHTML}</${this.localName}>`;
  }
}

/** A document that builds these nodes. */
export function createDocument() {
  const doc = {
    createElement: (tag) => new Element(doc, tag),
    createTextNode: (data) => new Text(doc, data),
    createDocumentFragment: () => new Fragment(doc),
  };
  return doc;
}
