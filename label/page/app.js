// cutover label: the labelling page. It talks to the JSON API of the
// server that serves it and nothing else (see the Content-Security-Policy).
// Keys: 1 / 2 take that answer's category, n neither (search the
// taxonomy), s skip, Enter save, Esc back.
'use strict';

const KINDS = ['color', 'pattern', 'material', 'style'];
const state = {
  token: sessionStorage.getItem('cutover-label-token') || '',
  vocab: null,
  item: null,
  mode: 'idle', // choose | search | confirm
  choice: '',
  category: '',
  hits: [],
  active: 0,
  searchSeq: 0,
  busy: false,
  focusOnKeyup: false,
  imageURL: '',
};

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function setMode(mode) {
  state.mode = mode;
  document.body.dataset.mode = mode;
}

function message(text, isError) {
  const m = $('message');
  m.textContent = text || '';
  m.hidden = !text;
  m.classList.toggle('error', !!isError);
}

function authHeaders(extra) {
  const h = Object.assign({}, extra || {});
  if (state.token) h.Authorization = 'Bearer ' + state.token;
  return h;
}

async function api(method, path, body) {
  const opt = { method, headers: authHeaders(body ? { 'Content-Type': 'application/json' } : {}), cache: 'no-store' };
  if (body) opt.body = JSON.stringify(body);
  const r = await fetch(path, opt);
  if (r.status === 401) {
    showLogin();
    throw new Error('this server needs its token');
  }
  const ct = r.headers.get('Content-Type') || '';
  const data = ct.startsWith('application/json') ? await r.json() : null;
  if (!r.ok) throw new Error((data && data.error) || 'HTTP ' + r.status);
  return data;
}

function showLogin() {
  $('login').hidden = false;
  $('item').hidden = true;
  $('token').focus();
}

function pct(x) {
  return Math.round(100 * x) + ' %';
}

function showProgress(p) {
  $('progress').textContent = `${p.labelled} labelled, ${p.skipped} skipped, ${p.remaining} to go of ${p.total}`;
  document.body.dataset.labelled = String(p.labelled);
  document.body.dataset.skipped = String(p.skipped);
}

async function load() {
  try {
    if (!state.vocab) state.vocab = await api('GET', '/api/attributes');
    const r = await api('GET', '/api/next');
    showProgress(r.progress);
    if (r.done) {
      showDone(r.progress);
      return;
    }
    await show(r.item);
  } catch (e) {
    message(e.message, true);
  }
}

function showDone(p) {
  state.item = null;
  setMode('done');
  $('item').hidden = true;
  $('done').hidden = false;
  $('done-summary').textContent = `${p.labelled} labelled and ${p.skipped} skipped of ${p.total}. The labels are saved in the output folder as a fixture set.`;
  document.body.dataset.ready = 'done';
}

async function show(item) {
  state.item = item;
  state.choice = '';
  state.category = '';
  message('');
  $('login').hidden = true;
  $('done').hidden = true;
  $('item').hidden = false;
  $('search').hidden = true;
  renderAnswers();
  renderAttrs({});
  renderChoice();
  setMode('choose');
  if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
  try {
    const r = await fetch(item.image, { headers: authHeaders(), cache: 'no-store' });
    if (!r.ok) {
      let msg = 'HTTP ' + r.status;
      try { msg = (await r.json()).error; } catch (_) { /* not JSON */ }
      throw new Error(msg);
    }
    const url = URL.createObjectURL(await r.blob());
    if (state.imageURL) URL.revokeObjectURL(state.imageURL);
    state.imageURL = url;
    $('image').src = url;
  } catch (e) {
    $('image').removeAttribute('src');
    message('The image could not be shown: ' + e.message, true);
  }
  document.body.dataset.ready = item.sha256;
}

function renderAnswers() {
  const box = $('answers');
  box.replaceChildren();
  for (const a of state.item.answers) {
    const card = el('div', 'answer');
    card.id = 'answer-' + a.slot;
    card.append(el('h2', '', 'Answer ' + a.slot + (a.provider ? ' — ' + a.provider : '')));
    if (a.failed) {
      card.classList.add('failed');
      card.append(el('p', '', 'failed: ' + a.failed));
    } else {
      card.append(el('p', 'cat', a.category));
      card.append(el('p', 'muted', 'confidence ' + pct(a.confidence) + (a.pickable ? '' : ' · not a leaf: use n')));
      if (a.others && a.others.length) {
        card.append(el('p', 'muted', 'then ' + a.others.map((o) => `${o.value} (${pct(o.confidence)})`).join(', ')));
      }
    }
    const attrs = a.attributes || {};
    const shown = KINDS.filter((k) => attrs[k]).map((k) => `${k} ${attrs[k]}`);
    if (shown.length) card.append(el('p', 'muted', shown.join(' · ')));
    box.append(card);
  }
}

function renderAttrs(values) {
  const box = $('attrs');
  box.replaceChildren();
  for (const k of KINDS) {
    const lab = el('label', '', k);
    lab.htmlFor = 'attr-' + k;
    const sel = el('select');
    sel.id = 'attr-' + k;
    sel.append(new Option('— not shown —', ''));
    for (const v of state.vocab[k] || []) sel.append(new Option(v, v));
    sel.value = values[k] || '';
    box.append(lab, sel);
  }
}

function readAttrs() {
  const out = {};
  for (const k of KINDS) {
    const v = $('attr-' + k).value;
    if (v) out[k] = v;
  }
  return out;
}

function renderChoice() {
  $('category').textContent = state.category || 'not chosen';
  $('chosen-from').textContent = state.choice === 'neither' ? '(neither answer)' : state.choice ? `(answer ${state.choice})` : '';
  $('save').disabled = !state.category;
  for (const a of state.item.answers) {
    $('answer-' + a.slot).classList.toggle('chosen', state.choice === String(a.slot));
  }
}

function pick(slot) {
  const a = state.item.answers[slot - 1];
  if (a.failed || !a.pickable) {
    message(`Answer ${slot} cannot be taken${a.failed ? ' (it failed)' : ' (not a leaf category)'}: press n to pick the category.`, true);
    return;
  }
  message('');
  state.choice = String(slot);
  state.category = a.category;
  $('search').hidden = true;
  renderAttrs(a.attributes || {});
  renderChoice();
  setMode('confirm');
}

// neither switches to the taxonomy search. From the keyboard the search
// box takes the focus on the key's release, so that the n itself is not
// typed into it.
function neither(focusNow) {
  message('');
  state.choice = 'neither';
  state.category = '';
  // Attributes both answers agree on are kept; the rest are left to set.
  const [a, b] = state.item.answers.map((x) => x.attributes || {});
  const agreed = {};
  for (const k of KINDS) if (a[k] && a[k] === b[k]) agreed[k] = a[k];
  renderAttrs(agreed);
  renderChoice();
  $('search').hidden = false;
  $('q').value = '';
  setMode('search');
  if (focusNow) $('q').focus();
  else state.focusOnKeyup = true;
  search('');
}

async function search(q) {
  const seq = ++state.searchSeq;
  try {
    const r = await api('GET', '/api/taxonomy?limit=30&q=' + encodeURIComponent(q));
    if (seq !== state.searchSeq) return;
    state.hits = r.categories;
    state.active = 0;
    renderHits();
  } catch (e) {
    message(e.message, true);
  }
}

function renderHits() {
  const list = $('hits');
  list.replaceChildren();
  state.hits.forEach((h, i) => {
    const li = el('li', i === state.active ? 'active' : '', h.path);
    li.addEventListener('click', () => pickHit(i));
    list.append(li);
  });
  document.body.dataset.hits = String(state.hits.length);
}

function pickHit(i) {
  const h = state.hits[i];
  if (!h) return;
  state.category = h.path;
  $('search').hidden = true;
  renderChoice();
  setMode('confirm');
  $('q').blur();
}

function back() {
  state.choice = '';
  state.category = '';
  $('search').hidden = true;
  renderChoice();
  setMode('choose');
  if (document.activeElement) document.activeElement.blur();
}

async function send(body) {
  if (state.busy) return;
  state.busy = true;
  try {
    const r = await api('POST', '/api/label', body);
    showProgress(r.progress);
    await load();
  } catch (e) {
    message('Not saved: ' + e.message, true);
  } finally {
    state.busy = false;
  }
}

function save() {
  if (state.mode !== 'confirm' || !state.category) return;
  send({ sha256: state.item.sha256, decision: 'label', choice: state.choice, category: state.category, attributes: readAttrs() });
}

function skip() {
  send({ sha256: state.item.sha256, decision: 'skip' });
}

document.addEventListener('keydown', (e) => {
  if (!state.item || state.busy || e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  if (t.id === 'q') {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const n = state.hits.length;
      if (n) state.active = (state.active + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
      renderHits();
    } else if (e.key === 'Enter') {
      e.preventDefault();
      pickHit(state.active);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      back();
    }
    return;
  }
  if (t.tagName === 'SELECT') {
    if (e.key === 'Enter') {
      e.preventDefault();
      save();
    } else if (e.key === 'Escape') {
      e.preventDefault();
      back();
    }
    return;
  }
  if (t.tagName === 'INPUT' || (t.tagName === 'BUTTON' && (e.key === 'Enter' || e.key === ' '))) return;
  switch (e.key) {
    case '1':
    case '2':
      pick(Number(e.key));
      break;
    case 'n':
      neither(false);
      break;
    case 's':
      skip();
      break;
    case 'Enter':
      save();
      break;
    case 'Escape':
      back();
      break;
    default:
      return;
  }
  e.preventDefault();
});

document.addEventListener('keyup', () => {
  if (state.focusOnKeyup && state.mode === 'search') $('q').focus();
  state.focusOnKeyup = false;
});
$('q').addEventListener('input', () => search($('q').value));
$('neither').addEventListener('click', () => neither(true));
$('save').addEventListener('click', save);
$('skip').addEventListener('click', skip);
$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  state.token = $('token').value;
  sessionStorage.setItem('cutover-label-token', state.token);
  $('login').hidden = true;
  load();
});

// A token in the address's fragment (#token=…) never reaches a server log.
if (location.hash.startsWith('#token=')) {
  state.token = decodeURIComponent(location.hash.slice(7));
  sessionStorage.setItem('cutover-label-token', state.token);
  history.replaceState(null, '', location.pathname);
}
load();
