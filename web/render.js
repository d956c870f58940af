// The form and the result views of the public page, built from the UI schema with DOM calls
// only (seed §28, §51). Field checks mirror the server's (core/src/ui_schema.cpp,
// validate_inputs) message for message, so a visitor hears the same thing either way.
import { renderMarkdown } from './markdown.js';
import { renderChart } from './chart.js';

// el('p', {className: 'x'}, 'text', child): strings become Text nodes.
export function el(tag, properties = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(properties)) {
    if (value === undefined || value === null) continue;
    if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name in node) node[name] = value;
    else node.setAttribute(name, String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

const NUMBER_TYPES = new Set(['number', 'integer', 'float']);

// An input or select block, or a start input when the schema has no fields.
function fieldOf(block, startInputs) {
  const key = block.input_key ?? block.id;
  const port = startInputs.find((input) => input.name === key);
  const props = block.props ?? {};
  const rules = { ...(block.validation ?? {}) };
  const options = block.type === 'select' && Array.isArray(props.options) ? props.options : null;
  if (options && !rules.enum) rules.enum = options.map((option) => (option && typeof option === 'object' ? option.value : option));
  const numeric = props.type === 'number' || NUMBER_TYPES.has(port?.type);
  return { key, label: block.label ?? props.label ?? key, props, rules, options, numeric };
}

function controlFor(field, id) {
  if (field.options) {
    const select = el('select', { id, name: field.key });
    if (!field.rules.required) select.append(el('option', { value: '' }, '—'));
    field.options.forEach((option, index) => {
      const value = option && typeof option === 'object' ? option.value : option;
      const label = option && typeof option === 'object' ? (option.label ?? value) : value;
      select.append(el('option', { value: String(index) }, String(label)));
    });
    return select;
  }
  const multiline = field.props.multiline === true || field.props.type === 'textarea' ||
    (typeof field.rules.max === 'number' && !field.numeric && field.rules.max > 200);
  const control = multiline
    ? el('textarea', { id, name: field.key, rows: field.props.rows ?? 4 })
    : el('input', { id, name: field.key, type: field.numeric ? 'number' : 'text' });
  if (field.numeric) control.step = 'any';
  if (typeof field.props.placeholder === 'string') control.placeholder = field.props.placeholder;
  return control;
}

// What the visitor entered, as the JSON the server checks.
export function valueOf(field) {
  const control = field.control;
  if (field.options) return control.value === '' ? undefined : (() => {
    const option = field.options[Number(control.value)];
    return option && typeof option === 'object' ? option.value : option;
  })();
  if (control.value === '') return undefined;
  if (field.numeric) {
    const number = Number(control.value);
    return Number.isFinite(number) ? number : control.value;
  }
  return control.value;
}

export function setValue(field, value) {
  if (value === undefined || value === null) return;
  if (field.options) {
    const index = field.options.findIndex((option) =>
      JSON.stringify(option && typeof option === 'object' ? option.value : option) === JSON.stringify(value));
    if (index >= 0) field.control.value = String(index);
  } else {
    field.control.value = String(value);
  }
}


// The server's messages: "is required", "must be at least 3 characters", …
export function problemsOf(field, value) {
  const rules = field.rules;
  const blank = value === undefined || value === null || value === '';
  if (blank) return rules.required === true ? ['is required'] : [];
  const problems = [];
  let size = null;
  let unit = '';
  if (typeof value === 'string') { size = [...value].length; unit = ' characters'; }
  else if (typeof value === 'number') size = value;
  else if (Array.isArray(value)) { size = value.length; unit = ' items'; }
  if (size !== null && typeof rules.min === 'number' && size < rules.min) problems.push(`must be at least ${rules.min}${unit}`);
  if (size !== null && typeof rules.max === 'number' && size > rules.max) problems.push(`must be at most ${rules.max}${unit}`);
  if (Array.isArray(rules.enum) && !rules.enum.some((choice) => JSON.stringify(choice) === JSON.stringify(value)))
    problems.push(`must be one of ${JSON.stringify(rules.enum)}`);
  if (typeof rules.pattern === 'string' && typeof value === 'string') {
    try {
      if (!new RegExp(rules.pattern).test(value)) problems.push(`does not match the pattern ${rules.pattern}`);
    } catch {
      problems.push('cannot be checked: the pattern is invalid');
    }
  }
  return problems;
}

// Builds the blocks into `container`. Helper blocks (tables, charts, markdown and cards
// bound to an output by props.source) go into `results`, hidden until a run fills them.
// Returns the fields and the helpers.
export function buildBlocks(container, results, schema) {
  const ui = schema.ui_schema ?? {};
  const startInputs = schema.start_inputs ?? [];
  const fields = [];
  const helpers = [];
  let counter = 0;

  const addField = (parent, field) => {
    const id = `field-${++counter}`;
    field.control = controlFor(field, id);
    field.error = el('p', { className: 'field-error', id: `${id}-error` });
    field.control.setAttribute('aria-describedby', field.error.id);
    const label = el('label', { htmlFor: id }, field.label);
    if (field.rules.required) label.append(el('span', { className: 'required', title: 'required' }, ' *'));
    const help = typeof field.props.help === 'string' ? el('p', { className: 'help' }, field.props.help) : null;
    parent.append(el('div', { className: 'field', dataset: { key: field.key } }, label, field.control, help, field.error));
    fields.push(field);
  };

  const walk = (parent, blocks) => {
    for (const block of Array.isArray(blocks) ? blocks : []) {
      if (!block || typeof block !== 'object') continue;
      const props = block.props ?? {};
      switch (block.type) {
        case 'form': {
          const group = el('fieldset', { className: 'group' });
          if (block.label) group.append(el('legend', {}, block.label));
          walk(group, block.children);
          parent.append(group);
          break;
        }
        case 'input':
        case 'select':
          addField(parent, fieldOf(block, startInputs));
          break;
        case 'markdown':
        case 'card':
        case 'table':
        case 'chart': {
          const box = el('section', { className: `block block-${block.type}` });
          if (block.label || props.title) box.append(el('h2', {}, block.label ?? props.title));
          const body = el('div', { className: 'block-body' });
          box.append(body);
          if (typeof props.content === 'string' && !props.source) body.append(renderMarkdown(props.content));
          if (props.source) {
            helpers.push({ block, body, box });
            box.hidden = true;
            results.append(box);
          } else {
            parent.append(box);
          }
          walk(box, block.children);
          break;
        }
        default:
          break;  // the server accepts only the whitelist; anything else is not drawn
      }
    }
  };

  container.classList.add(ui.layout?.type === 'grid' || ui.layout === 'grid' ? 'layout-grid' : 'layout-single');
  walk(container, ui.blocks);
  if (fields.length === 0)
    for (const input of startInputs)
      addField(container, fieldOf({ type: 'input', input_key: input.name, label: input.name,
        validation: input.required ? { required: true } : {} }, startInputs));
  return { fields, helpers };
}

// A dotted path into the outputs: "summary", "result.rows".
function pick(outputs, path) {
  return String(path).split('.').reduce((value, key) => (value && typeof value === 'object' ? value[key] : undefined), outputs);
}

function mainValue(outputs, props) {
  if (props?.source) return pick(outputs, props.source);
  if (outputs && typeof outputs === 'object' && !Array.isArray(outputs)) {
    const keys = Object.keys(outputs);
    if (keys.length === 1) return outputs[keys[0]];
  }
  return outputs;
}

function firstArray(outputs) {
  if (Array.isArray(outputs)) return outputs;
  if (outputs && typeof outputs === 'object') return Object.values(outputs).find(Array.isArray);
  return undefined;
}

const asText = (value) => (typeof value === 'string' ? value : JSON.stringify(value, null, 2));

export function renderTable(rows) {
  if (!Array.isArray(rows) || rows.length === 0) return el('p', { className: 'empty' }, 'No rows.');
  const objects = rows.every((row) => row && typeof row === 'object' && !Array.isArray(row));
  const columns = objects ? [...new Set(rows.slice(0, 200).flatMap((row) => Object.keys(row)))].slice(0, 20) : ['value'];
  const table = el('table');
  const head = table.createTHead().insertRow();
  for (const column of columns) head.append(el('th', { scope: 'col' }, column));
  const body = table.createTBody();
  for (const row of rows.slice(0, 500)) {
    const line = body.insertRow();
    for (const column of columns) {
      const value = objects ? row[column] : row;
      line.insertCell().textContent = value === undefined || value === null ? '' : asText(value);
    }
  }
  const wrapper = el('div', { className: 'table-scroll' }, table);
  if (rows.length > 500) wrapper.append(el('p', { className: 'help' }, `The first 500 of ${rows.length} rows.`));
  return wrapper;
}

// {{path}} in a markdown template, from the outputs.
function fillTemplate(template, outputs) {
  return template.replace(/\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g, (_, path) => {
    const value = path === 'output' && outputs?.output === undefined ? mainValue(outputs, {}) : pick(outputs, path);
    return value === undefined || value === null ? '' : asText(value);
  });
}

export function renderView(type, props, outputs) {
  switch (type) {
    case 'markdown': {
      if (typeof props.content === 'string') return renderMarkdown(fillTemplate(props.content, outputs));
      const value = mainValue(outputs, props);
      return typeof value === 'string' ? renderMarkdown(value) : el('pre', {}, asText(value));
    }
    case 'table':
      return renderTable(props.source ? pick(outputs, props.source) : firstArray(outputs));
    case 'chart': {
      const rows = props.source ? pick(outputs, props.source) : firstArray(outputs);
      return renderChart(rows, props) ?? renderTable(rows);
    }
    default: {
      const value = mainValue(outputs, props);
      return typeof value === 'string' ? el('div', { className: 'result-text' }, value) : el('pre', {}, asText(value));
    }
  }
}

export function renderResult(schema, outputs) {
  const view = schema.ui_schema?.result_view ?? {};
  return renderView(view.type ?? 'text', view.props ?? {}, outputs);
}

export function fillHelpers(helpers, outputs) {
  for (const { block, body, box } of helpers) {
    body.replaceChildren(renderView(block.type === 'card' ? 'markdown' : block.type, block.props ?? {}, outputs));
    box.hidden = false;
  }
}
