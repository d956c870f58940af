// Markdown to DOM nodes, escaping by construction: text only ever becomes Text nodes, never
// HTML, so <script> in a model's answer shows as the characters "<script>". Handles what
// answers use: headings, paragraphs, lists, quotes, fenced code, rules, tables, `code`,
// **strong**, *emphasis* and [links](https://…) (http, https and mailto only).

const element = (tag, className) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
};

export function safeUrl(raw) {
  try {
    const url = new URL(raw, window.location.href);
    return ['http:', 'https:', 'mailto:'].includes(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

const INLINE = new RegExp([
  '(`+)([^`][\\s\\S]*?)\\1',                          // 1, 2: code
  '\\*\\*([^*][\\s\\S]*?)\\*\\*',                     // 3: strong
  '(?<![A-Za-z0-9])__([^_][\\s\\S]*?)__(?![A-Za-z0-9])', // 4: strong
  '\\*([^*\\s][^*]*?)\\*',                            // 5: emphasis
  '(?<![A-Za-z0-9])_([^_\\s][^_]*?)_(?![A-Za-z0-9])',  // 6: emphasis
  '\\[([^\\]]+)\\]\\(([^)\\s]+)\\)',                  // 7, 8: link
].join('|'), 'g');

export function appendInline(parent, text) {
  const pattern = new RegExp(INLINE.source, 'g');
  let last = 0;
  for (let match; (match = pattern.exec(text));) {
    if (match.index > last) parent.append(text.slice(last, match.index));
    last = pattern.lastIndex;
    if (match[1] !== undefined) {
      const code = element('code');
      code.textContent = match[2];
      parent.append(code);
    } else if (match[3] !== undefined || match[4] !== undefined) {
      const strong = element('strong');
      appendInline(strong, match[3] ?? match[4]);
      parent.append(strong);
    } else if (match[5] !== undefined || match[6] !== undefined) {
      const emphasis = element('em');
      appendInline(emphasis, match[5] ?? match[6]);
      parent.append(emphasis);
    } else {
      const href = safeUrl(match[8]);
      if (!href) {
        parent.append(match[0]);
        continue;
      }
      const link = element('a');
      link.href = href;
      link.rel = 'noopener noreferrer nofollow';
      link.target = '_blank';
      appendInline(link, match[7]);
      parent.append(link);
    }
  }
  if (last < text.length) parent.append(text.slice(last));
}

const BLOCK_START = /^(```|#{1,6}\s|>|\s*[-*+]\s+|\s*\d+[.)]\s+|(-{3,}|\*{3,}|_{3,})\s*$|\|)/;
const tableCells = (line) => line.trim().replace(/^\||\|$/g, '').split('|').map((cell) => cell.trim());

export function renderMarkdown(source) {
  const root = element('div', 'markdown');
  renderBlocks(root, String(source ?? '').replace(/\r\n?/g, '\n').split('\n'));
  return root;
}

function renderBlocks(root, lines) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let match;
    if (/^\s*$/.test(line)) {
      i++;
    } else if (/^```/.test(line)) {
      const code = [];
      for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) code.push(lines[i]);
      i++;
      const pre = element('pre');
      const text = element('code');
      text.textContent = code.join('\n');
      pre.append(text);
      root.append(pre);
    } else if ((match = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line))) {
      // The page's own title is the h1: an answer's headings start below it.
      const heading = element(`h${Math.min(match[1].length + 1, 6)}`);
      appendInline(heading, match[2]);
      root.append(heading);
      i++;
    } else if (/^(-{3,}|\*{3,}|_{3,})\s*$/.test(line)) {
      root.append(element('hr'));
      i++;
    } else if (/^>/.test(line)) {
      const quoted = [];
      for (; i < lines.length && /^>/.test(lines[i]); i++) quoted.push(lines[i].replace(/^>\s?/, ''));
      const quote = element('blockquote');
      renderBlocks(quote, quoted);
      root.append(quote);
    } else if ((match = /^\s*([-*+]|\d+[.)])\s+/.exec(line))) {
      const ordered = /\d/.test(match[1]);
      const itemPattern = ordered ? /^\s*\d+[.)]\s+(.*)$/ : /^\s*[-*+]\s+(.*)$/;
      const list = element(ordered ? 'ol' : 'ul');
      for (; i < lines.length && (match = itemPattern.exec(lines[i])); i++) {
        const item = element('li');
        appendInline(item, match[1]);
        list.append(item);
      }
      root.append(list);
    } else if (/^\|/.test(line) && i + 1 < lines.length && /^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/.test(lines[i + 1])) {
      const table = element('table');
      const head = table.createTHead().insertRow();
      for (const cell of tableCells(line)) appendInline(head.appendChild(element('th')), cell);
      const body = table.createTBody();
      for (i += 2; i < lines.length && /^\|/.test(lines[i]); i++) {
        const row = body.insertRow();
        for (const cell of tableCells(lines[i])) appendInline(row.insertCell(), cell);
      }
      const wrapper = element('div', 'table-scroll');
      wrapper.append(table);
      root.append(wrapper);
    } else {
      const paragraph = element('p');
      const text = [];
      for (; i < lines.length && !/^\s*$/.test(lines[i]) && (text.length === 0 || !BLOCK_START.test(lines[i])); i++)
        text.push(lines[i].trim());
      appendInline(paragraph, text.join(' '));
      root.append(paragraph);
    }
  }
}
