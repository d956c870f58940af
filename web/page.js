// The public app page (README "Public runtime"): reads the boot data the daemon put in the shell, asks
// the runtime for the app's schema, draws the form, runs the app and shows the result.
// Everything reaches the DOM through render.js and markdown.js (Text nodes, never HTML); the
// page's Content-Security-Policy allows no inline script and requires Trusted Types, so an
// HTML sink would throw rather than run.
import { el, buildBlocks, valueOf, setValue, problemsOf, renderResult, fillHelpers } from './render.js';

const boot = JSON.parse(document.getElementById('flowgres-boot').textContent);
const root = document.getElementById('app');
const storageKey = (what) => `flowgres.${what}:${boot.base}`;

function stored(store, key) {
  try { return store.getItem(key); } catch { return null; }
}
function store(storeObject, key, value) {
  try { storeObject.setItem(key, value); } catch { /* private mode: remembered for this page only */ }
}

// A sign-in provider sends visitors back with #access_token=<JWT>&state=<state>: taken only
// when the state is the one this tab sent with its own sign-in link (so no other site can
// sign a visitor in as someone else by linking here with a token), once, for this tab only.
(function takeToken() {
  const hash = new URLSearchParams(window.location.hash.slice(1));
  const token = hash.get('access_token');
  if (!token) return;
  const expected = stored(sessionStorage, storageKey('sign_in_state'));
  if (expected && hash.get('state') === expected) store(sessionStorage, storageKey('token'), token);
  try { sessionStorage.removeItem(storageKey('sign_in_state')); } catch { /* nothing kept */ }
  history.replaceState(null, '', window.location.pathname + window.location.search);
})();

function newSignInState() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  const state = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  store(sessionStorage, storageKey('sign_in_state'), state);
  return state;
}

// The session the page's own request was given: the runs this tab starts belong to it.
if (boot.session) store(sessionStorage, storageKey('session'), boot.session);

async function call(method, path, body) {
  const headers = { Accept: 'application/json' };
  const session = stored(sessionStorage, storageKey('session'));
  const token = stored(sessionStorage, storageKey('token'));
  if (session) headers['X-App-Session-Id'] = session;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(boot.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    return { status: 0, error: { code: 'NETWORK', message: 'The network is unreachable.' } };
  }
  const sessionId = response.headers.get('X-App-Session-Id');
  if (sessionId) store(sessionStorage, storageKey('session'), sessionId);
  const payload = await response.json().catch(() => null);
  const result = { status: response.status, data: payload?.data, headers: response.headers };
  if (!response.ok) {
    result.error = {
      code: payload?.error_code ?? `HTTP_${response.status}`,
      message: payload?.error_message ?? response.statusText,
      details: payload?.data?.details ?? null,
      retryAfter: Number(response.headers.get('Retry-After')) || null,
      requestId: payload?.request_id,
    };
  }
  return result;
}

// ---------------------------------------------------------------------------------------
// Messages a visitor can act on.
// ---------------------------------------------------------------------------------------

const status = el('div', { className: 'status', role: 'status' });
let countdownTimer = null;

function say(kind, ...content) {
  clearInterval(countdownTimer);
  status.className = `status status-${kind}`;
  status.dataset.kind = kind;
  status.replaceChildren(...content);
  status.hidden = content.length === 0;
}

// "Try again in 42 s", counting down; `done` runs at zero.
function countdown(seconds, sentence, done) {
  const line = el('p', { className: 'countdown' });
  let left = Math.max(1, Math.ceil(seconds));
  const draw = () => { line.textContent = sentence(left); };
  draw();
  say('wait', line);
  countdownTimer = setInterval(() => {
    left -= 1;
    if (left > 0) return draw();
    clearInterval(countdownTimer);
    line.textContent = 'You can try again now.';
    done();
  }, 1000);
}

function signInLink(branding) {
  if (!branding.sign_in_url) return null;
  const url = new URL(branding.sign_in_url);
  url.searchParams.set('return_to', window.location.href);
  url.searchParams.set('state', newSignInState());
  return el('a', { href: url.href, className: 'button' }, 'Sign in');
}

// Every refusal the runtime documents, in words; unknown ones keep their code for support.
function explain(error, branding, retry) {
  const details = error.details ?? {};
  switch (error.code) {
    case 'RATE_LIMITED':
      return countdown(error.retryAfter ?? details.retry_after_seconds ?? 60,
        (s) => `You are sending requests faster than this app allows. Try again in ${s} s.`, retry);
    case 'OVERLOADED':
      return countdown(error.retryAfter ?? 1, (s) => `The service is busy right now. Trying again is possible in ${s} s.`, retry);
    case 'QUOTA_EXCEEDED': {
      const reset = details.reset_at ? new Date(details.reset_at) : null;
      return say('error', el('p', {}, 'This app has used up its allowance for now.' +
        (reset && !Number.isNaN(reset.valueOf()) ? ` It will be available again on ${reset.toLocaleDateString()}.` : '')));
    }
    case 'CAPTCHA_REQUIRED':
    case 'CAPTCHA_INVALID':
      return say('error', el('p', {}, error.code === 'CAPTCHA_REQUIRED'
        ? 'This app needs a quick check that you are a person before it runs. Please try again in a little while.'
        : 'The check that you are a person did not pass. Please try again.'));
    case 'AUTH_REQUIRED':
      return say('error', el('p', {}, 'Sign in to use this app.'), signInLink(branding));
    case 'ACCESS_DENIED':
      return say('error', el('p', {}, 'This app is only open to its team.'), signInLink(branding));
    case 'RUNTIME_APP_NOT_FOUND':
    case 'NOT_FOUND':
      return say('error', el('p', {}, 'There is no app at this address. Check the link you followed.'));
    case 'APP_NOT_PUBLISHED':
    case 'APP_ARCHIVED':
    case 'APP_DEPRECATED':
      return say('error', el('p', {}, 'This app is not available at the moment.'));
    case 'WORKSPACE_SUSPENDED':
      return say('error', el('p', {}, 'This app’s workspace is suspended.'));
    case 'IP_BLOCKED':
    case 'SESSION_BLOCKED':
      return say('error', el('p', {}, 'Requests from your connection are blocked for this app.'));
    case 'ORIGIN_NOT_ALLOWED':
      return say('error', el('p', {}, 'This app cannot be used from this site.'));
    case 'VALIDATION_FAILED':
      return say('error', el('p', {}, 'Some fields need a second look.'));
    case 'NETWORK':
      return say('error', el('p', {}, 'The connection was lost. Check your network and try again.'));
    default:
      return say('error', el('p', {}, `Something went wrong (${error.code}). Please try again.`),
        error.requestId ? el('p', { className: 'help' }, `Reference: ${error.requestId}`) : null);
  }
}

// ---------------------------------------------------------------------------------------
// The page.
// ---------------------------------------------------------------------------------------

function applyBranding(branding) {
  const style = document.documentElement.style;  // CSSOM: allowed under style-src 'self'
  if (branding.accent_color) style.setProperty('--accent', branding.accent_color);
  if (branding.background_color) style.setProperty('--background', branding.background_color);
  if (branding.theme && branding.theme !== 'auto') document.documentElement.dataset.theme = branding.theme;
}

function header(app, branding) {
  const top = el('header', { className: 'app-header' });
  if (branding.logo_url) top.append(el('img', { src: branding.logo_url, alt: '', className: 'logo' }));
  top.append(el('h1', {}, branding.title ?? app.name ?? 'App'));
  const tagline = branding.tagline ?? app.description;
  if (tagline) top.append(el('p', { className: 'tagline' }, tagline));
  return top;
}

function notices(app, branding) {
  const box = el('aside', { className: 'notices' });
  if (app.access_mode === 'public_anonymous')
    box.append(el('p', { className: 'notice notice-anonymous' }, branding.anonymous_notice ??
      'You are using this app without signing in. Use is limited per visitor; please do not enter personal data.'));
  if (branding.privacy) {
    const privacy = el('p', { className: 'notice notice-privacy' }, branding.privacy.text ?? '');
    if (branding.privacy.url) privacy.append(' ', el('a', { href: branding.privacy.url, rel: 'noopener', target: '_blank' }, 'Privacy'));
    box.append(privacy);
  }
  return box.childElementCount ? box : null;
}

// Terms: asked once; the answer is remembered in this browser until the terms change.
function termsAccepted(terms) {
  return stored(localStorage, storageKey('terms')) === JSON.stringify([terms.text ?? '', terms.url ?? '']);
}

function termsPrompt(terms, accepted) {
  const box = el('section', { className: 'terms', role: 'dialog', 'aria-labelledby': 'terms-title' });
  box.append(el('h2', { id: 'terms-title' }, 'Terms of use'));
  if (terms.text) box.append(el('p', { className: 'terms-text' }, terms.text));
  if (terms.url) box.append(el('p', {}, el('a', { href: terms.url, rel: 'noopener', target: '_blank' }, 'Read the full terms')));
  const agree = el('button', { type: 'button', className: 'button', id: 'terms-accept' }, 'I agree');
  agree.addEventListener('click', () => {
    store(localStorage, storageKey('terms'), JSON.stringify([terms.text ?? '', terms.url ?? '']));
    box.remove();
    accepted();
  });
  box.append(agree);
  return box;
}

function showFieldProblems(fields, problems) {
  for (const field of fields) field.error.textContent = '';
  let first = null;
  for (const problem of problems) {
    const key = String(problem.field ?? '').replace(/^inputs\./, '');
    const field = fields.find((f) => f.key === key);
    if (!field) continue;
    field.error.textContent = field.error.textContent ? `${field.error.textContent}; ${problem.message}` : problem.message;
    field.control.setAttribute('aria-invalid', 'true');
    first ??= field;
  }
  first?.control.focus();
}

// SSE over fetch (EventSource cannot send the session header): progress lines until the
// execution_finished event. Resolves when the stream ends, however it ends.
async function follow(executionId, onEvent) {
  const headers = { Accept: 'text/event-stream' };
  const session = stored(sessionStorage, storageKey('session'));
  const token = stored(sessionStorage, storageKey('token'));
  if (session) headers['X-App-Session-Id'] = session;
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const response = await fetch(`${boot.base}/executions/${executionId}/events`, { headers });
    if (!response.ok || !response.body) return;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = 'message';
        const data = [];
        for (const line of frame.split('\n')) {
          if (line.startsWith('event:')) name = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
        }
        if (data.length === 0) continue;
        let payload = null;
        try { payload = JSON.parse(data.join('\n')); } catch { continue; }
        onEvent(name, payload);
        if (name === 'execution_finished') { reader.cancel().catch(() => {}); return; }
      }
    }
  } catch { /* the final state is read below either way */ }
}

// Seed §47.2: a withheld answer is explained, not just refused.
const SAFETY_CATEGORIES = { self_harm: 'self-harm', violence: 'violence', illegal: 'illegal activity', hate: 'hate', minors: 'the safety of minors' };
function blockedExplanation(error) {
  const category = /category (\w+)/.exec(error?.message ?? '')?.[1];
  const topic = SAFETY_CATEGORIES[category] ?? 'harmful content';
  return el('div', { className: 'blocked' },
    el('p', {}, `The answer was withheld: it may contain content about ${topic}, which this app's safety rules do not allow.`),
    el('p', {}, 'Nothing of it was kept. Please rephrase your request and try again.'));
}

async function finalState(executionId) {
  for (let attempt = 0; attempt < 600; attempt++) {
    const answer = await call('GET', `/executions/${executionId}`);
    if (answer.error) return answer;
    if (!['pending', 'running'].includes(answer.data?.status)) return answer;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return { error: { code: 'TIMEOUT', message: 'the run took too long' } };
}

async function start() {
  const bootApp = boot.app ?? {};
  const branding = bootApp.page?.branding ?? {};
  applyBranding(branding);
  root.append(header(bootApp, branding), status);
  status.hidden = true;
  const haveToken = Boolean(stored(sessionStorage, storageKey('token')));
  if (boot.error && !(boot.error.code === 'AUTH_REQUIRED' && haveToken)) return explain(boot.error, branding, () => location.reload());

  const schemaAnswer = await call('GET', '/schema');
  if (schemaAnswer.error) return explain(schemaAnswer.error, branding, () => location.reload());
  const schema = schemaAnswer.data;
  const app = schema.app ?? bootApp;
  const page = app.page ?? {};
  const brand = page.branding ?? {};
  applyBranding(brand);
  root.querySelector('.app-header')?.replaceWith(header(app, brand));

  const form = el('form', { className: 'run-form', noValidate: true });
  const extras = el('div', { className: 'result-blocks' });
  const { fields, helpers } = buildBlocks(form, extras, schema);
  const defaults = page.inputs?.defaults ?? {};
  for (const field of fields) setValue(field, defaults[field.key]);
  const examples = Array.isArray(page.inputs?.examples) ? page.inputs.examples : [];
  const submitLabel = brand.submit_label ?? schema.ui_schema?.actions?.find((a) => a.type === 'submit')?.label ?? 'Run';
  const submit = el('button', { type: 'submit', className: 'button primary', id: 'run' }, submitLabel);
  form.append(el('div', { className: 'actions' }, submit));
  const progress = el('ol', { className: 'progress', hidden: true });
  const result = el('section', { className: 'result', id: 'result', hidden: true });

  const exampleBar = examples.length ? el('div', { className: 'examples' }, el('span', {}, 'Try:'),
    ...examples.map((example) => {
      const button = el('button', { type: 'button', className: 'chip' }, example.label);
      button.addEventListener('click', () => {
        for (const field of fields) if (field.key in (example.inputs ?? {})) setValue(field, example.inputs[field.key]);
      });
      return button;
    })) : null;

  root.append(...[notices(app, brand), exampleBar, form, progress, result, extras].filter(Boolean));
  if (!brand.hide_powered_by) root.append(el('footer', { className: 'powered' }, 'Runs on flowgres'));

  if (brand.terms && !termsAccepted(brand.terms)) {
    form.inert = true;
    form.classList.add('locked');
    form.before(termsPrompt(brand.terms, () => { form.inert = false; form.classList.remove('locked'); }));
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    const inputs = {};
    const problems = [];
    for (const field of fields) {
      field.control.removeAttribute('aria-invalid');
      const value = valueOf(field);
      if (value !== undefined) inputs[field.key] = value;
      for (const message of problemsOf(field, value)) problems.push({ field: `inputs.${field.key}`, message });
    }
    showFieldProblems(fields, problems);
    if (problems.length) return say('error', el('p', {}, 'Some fields need a second look.'));

    submit.disabled = true;
    result.hidden = true;
    progress.replaceChildren();
    progress.hidden = false;
    const started = Date.now();
    const running = el('p', { className: 'running' }, 'Running…');
    say('busy', running);
    const clock = setInterval(() => { running.textContent = `Running… ${Math.round((Date.now() - started) / 1000)} s`; }, 1000);
    const enable = () => { submit.disabled = false; };
    try {
      const answer = await call('POST', '?async=true', { inputs });
      if (answer.error) {
        if (answer.error.code === 'VALIDATION_FAILED') showFieldProblems(fields, answer.error.details?.problems ?? []);
        progress.hidden = true;
        return explain(answer.error, brand, enable);  // `finally` re-enables unless counting down
      }
      const executionId = answer.data.execution_id;
      let steps = 0;
      // A model's answer shows as it streams; the finished result replaces it.
      const live = el('div', { className: 'live-answer', id: 'live-answer', 'aria-live': 'polite' });
      await follow(executionId, (name, data) => {
        if (name === 'node_delta' && typeof data.delta === 'string') {
          if (!live.isConnected) { result.replaceChildren(live); result.hidden = false; }
          live.textContent += data.delta;
        } else if (name === 'node_finished') {
          steps += 1;
          progress.append(el('li', { className: `step step-${data.status ?? 'done'}` }, `Step ${steps} ${data.status === 'failed' ? 'failed' : 'done'}`));
        }
      });
      const final = await finalState(executionId);
      enable();
      if (final.error) return explain(final.error, brand, enable);
      const run = final.data;
      if (run.status !== 'completed') {
        result.hidden = true;
        if (run.error?.error_code === 'AI_OUTPUT_BLOCKED') return say('error', blockedExplanation(run.error));
        return say('error', el('p', {}, run.status === 'cancelled' ? 'The run was cancelled.'
          : `The app could not finish: ${run.error?.message ?? 'unknown error'}.`));
      }
      say('done');
      status.hidden = true;
      result.replaceChildren(el('h2', {}, 'Result'), renderResult(schema, run.outputs ?? {}));
      result.hidden = false;
      fillHelpers(helpers, run.outputs ?? {});
    } finally {
      clearInterval(clock);
      if (!status.classList.contains('status-wait')) submit.disabled = false;
    }
  });
}

start();
