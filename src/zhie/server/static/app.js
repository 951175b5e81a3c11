/* zhie web page: vanilla JS, no build step, nothing loaded from elsewhere. */
(() => {
  'use strict';

  const HISTORY_MAX = 20;            // entries kept per tab
  const HISTORY_MAX_CHARS = 20000;   // longer inputs are run but not kept (localStorage is ~5 MB)
  const TABLE_MAX_ROWS = 1000;       // the highlighted text always shows every entity
  const EMOJI = { positive: '😄', negative: '😠', neutral: '😐' };
  const EXAMPLES = {
    ner: '华为技术有限公司总裁任正非昨天在深圳会见了来自北京大学的张伟教授。',
    sentiment: '这家餐厅的菜太好吃了，服务也很周到，下次还会再来！',
  };
  const TABS = ['ner', 'sentiment', 'schema'];

  const $ = (id) => document.getElementById(id);
  const HTML_ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
  const fmtScore = (x) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(4) : String(x));
  const fmtPct = (x) => `${(Math.max(0, Math.min(1, Number(x) || 0)) * 100).toFixed(1)}%`;
  const countCodePoints = (s) => s.length - (s.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g) || []).length;

  // -- API ---------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(message, { status = 0, code = null, requestId = null } = {}) {
      super(message);
      this.status = status;
      this.code = code;
      this.requestId = requestId;
    }
  }

  // -- API key: asked for when the server answers 401, kept for this tab only (sessionStorage) ------
  const KEY_STORE = 'zhie.apiKey';
  const storedKey = () => { try { return sessionStorage.getItem(KEY_STORE) || ''; } catch (_) { return ''; } };
  function askKey(rejected) {
    const form = $('key-form');
    const input = $('key-input');
    $('key-title').textContent = rejected ? 'That API key was not accepted: enter another' : 'This server needs an API key';
    form.hidden = false;
    input.value = '';
    input.focus();
    return new Promise((resolve) => {
      const done = (key) => {
        form.hidden = true;
        form.removeEventListener('submit', onSubmit);
        $('key-cancel').removeEventListener('click', onCancel);
        resolve(key);
      };
      const onSubmit = (ev) => { ev.preventDefault(); done(input.value.trim() || null); };
      const onCancel = () => done(null);
      form.addEventListener('submit', onSubmit);
      $('key-cancel').addEventListener('click', onCancel);
    });
  }

  async function post(path, payload) {
    let resp;
    for (;;) {
      const key = storedKey();
      try {
        // relative URL: the page also works behind a proxy that serves it under a path prefix
        resp = await fetch(path, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
          body: JSON.stringify(payload),
        });
      } catch (err) {
        throw new ApiError(`Could not reach the zhie server (${err && err.message ? err.message : err}).`, { code: 'network_error' });
      }
      if (resp.status !== 401) break;
      const next = await askKey(Boolean(key));
      if (!next) break;  // cancelled: the 401 is shown as an error
      try { sessionStorage.setItem(KEY_STORE, next); } catch (_) { /* storage off: the key lives in this request only */ }
    }
    const raw = await resp.text();
    let body = null;
    try { body = raw ? JSON.parse(raw) : null; } catch (_) { body = null; }
    const requestId = (body && body.request_id) || resp.headers.get('x-request-id');
    if (!resp.ok) {
      const e = body && body.error;
      const message = e && e.message ? e.message
        : `HTTP ${resp.status} ${resp.statusText}${raw && !body ? `: ${raw.slice(0, 300)}` : ''}`;
      throw new ApiError(message, { status: resp.status, code: e && e.code, requestId });
    }
    if (body === null || typeof body !== 'object') {
      throw new ApiError('The server answered with something that is not JSON.', { status: resp.status, requestId });
    }
    return body;
  }

  // -- error box ---------------------------------------------------------------------------------
  const errorBox = $('error');
  function showError(err) {
    const status = err && err.status ? `${err.status} ` : '';
    const code = err && err.code ? err.code : 'error';
    $('error-title').textContent = `${status}${code}`.trim();
    $('error-message').textContent = (err && err.message) || String(err);
    const rid = $('error-rid');
    if (err && err.requestId) {
      rid.querySelector('code').textContent = err.requestId;
      rid.hidden = false;
    } else {
      rid.hidden = true;
    }
    errorBox.dataset.status = err && err.status ? String(err.status) : '';
    errorBox.dataset.code = code;
    errorBox.hidden = false;
  }
  function clearError() { errorBox.hidden = true; }
  $('error-close').addEventListener('click', clearError);

  // -- loading state -----------------------------------------------------------------------------
  function setLoading(button, on) {
    button.disabled = on;
    button.classList.toggle('is-loading', on);
    button.setAttribute('aria-busy', on ? 'true' : 'false');
    button.querySelector('.btn-text').textContent = on ? 'Running…' : 'Run';
  }

  // -- history (localStorage, per tab) -----------------------------------------------------------
  const store = {
    key: (tab) => `zhie.history.${tab}`,
    load(tab) {
      try {
        const v = JSON.parse(localStorage.getItem(this.key(tab)) || '[]');
        return Array.isArray(v) ? v.filter((x) => x && typeof x.text === 'string') : [];
      } catch (_) {
        return [];
      }
    },
    save(tab, list) {
      for (let items = list; ; items = items.slice(0, -1)) {
        try {
          if (items.length) localStorage.setItem(this.key(tab), JSON.stringify(items));
          else localStorage.removeItem(this.key(tab));
          return;
        } catch (_) {
          if (!items.length) return;  // storage unavailable (private mode, quota): history is best effort
        }
      }
    },
    add(tab, text, schema) {
      if (!text.trim() || text.length > HISTORY_MAX_CHARS) return;
      const item = schema === undefined ? { text, at: Date.now() } : { text, schema, at: Date.now() };
      const same = (x) => x.text === text && (x.schema || null) === (item.schema || null);
      const list = [item, ...this.load(tab).filter((x) => !same(x))].slice(0, HISTORY_MAX);
      this.save(tab, list);
      renderHistory(tab);
    },
    clear(tab) {
      this.save(tab, []);
      renderHistory(tab);
    },
  };

  const HISTORY_IDS = { ner: 'ner-history', sentiment: 'sent-history', schema: 'schema-history' };
  function renderHistory(tab) {
    const ol = $(HISTORY_IDS[tab]);
    const frag = document.createDocumentFragment();
    for (const item of store.load(tab)) {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      const preview = item.text.replace(/\s+/g, ' ').trim();
      const pv = document.createElement('span');
      pv.className = 'preview';
      pv.lang = 'zh';
      pv.textContent = preview.length > 120 ? `${preview.slice(0, 120)}…` : preview;
      b.appendChild(pv);
      b.title = item.text.length > 500 ? `${item.text.slice(0, 500)}…` : item.text;
      b.dataset.text = item.text;
      const meta = document.createElement('span');
      meta.className = 'meta';
      const when = item.at ? new Date(item.at).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' }) : '';
      meta.textContent = `${when}${when ? ' · ' : ''}${countCodePoints(item.text)} chars`;
      b.appendChild(meta);
      b.addEventListener('click', () => {
        if (typeof item.schema === 'string' && RUNNERS[tab].editor) RUNNERS[tab].editor.value = item.schema;
        RUNNERS[tab].input.value = item.text;
        updateCount(tab);
        RUNNERS[tab].run();
      });
      li.appendChild(b);
      frag.appendChild(li);
    }
    ol.replaceChildren(frag);
  }

  // -- NER ---------------------------------------------------------------------------------------
  const ner = {
    input: $('ner-input'),
    button: $('ner-run'),
    last: null,  // the last API answer, for "Copy as JSON"
    async run() {
      if (ner.button.disabled) return;
      const text = ner.input.value;
      clearError();
      if (!text.trim()) {
        showError(new ApiError('Type or paste some text first.', { code: 'empty_input' }));
        ner.input.focus();
        return;
      }
      setLoading(ner.button, true);
      try {
        const body = await post('v1/ner', { text });
        ner.last = body;
        renderNer(text, Array.isArray(body.entities) ? body.entities : []);
        store.add('ner', text);
      } catch (err) {
        showError(err);
        $('ner-result').classList.add('stale');  // still the previous text's answer
      } finally {
        setLoading(ner.button, false);
      }
    },
  };

  // Chromium lays out one block of text in time that grows faster than its length, so a long text is
  // cut into blocks: after a newline once a block has LINE_BLOCK code points (invisible: the next line
  // starts a new line anyway), else after a sentence end past SENTENCE_BLOCK, else at HARD_BLOCK;
  // never inside an entity. Texts of ordinary length are one block. Off-screen blocks skip layout
  // (content-visibility in style.css).
  const LINE_BLOCK = 1000;
  const SENTENCE_BLOCK = 3000;
  const HARD_BLOCK = 6000;
  const SENTENCE_END = new Set(['。', '！', '？', '；', '…', '!', '?', ';', '.']);

  function blockBreaks(cps, ents) {
    const breaks = [];
    let last = 0;
    let ei = 0;
    for (let p = 1; p < cps.length; p++) {
      while (ei < ents.length && ents[ei].end <= p) ei++;
      if (ei < ents.length && ents[ei].start < p) continue;  // inside an entity
      const len = p - last;
      if (len < LINE_BLOCK) continue;
      const prev = cps[p - 1];
      if (prev === '\n' || (len >= SENTENCE_BLOCK && SENTENCE_END.has(prev)) || len >= HARD_BLOCK) {
        breaks.push(p);
        last = p;
      }
    }
    return breaks;
  }

  // Highlighted text as one HTML string (set once: no per-character DOM work). Offsets are code-point
  // indices (Python str indices), so slice an array of code points, never the UTF-16 string: an emoji
  // before a span would otherwise shift every highlight. Overlapping spans: the first wins, except that
  // with nest a span lying wholly inside a shown one is shown as a <mark> inside it (a schema answer's
  // opinion inside a longer one, a chip model inside a product name); a span that crosses a shown one's
  // edge is left out of the text (the table or tree still lists it).
  // mark(span) gives the attributes of a span's <mark>. Returns {html, blocks}.
  function highlight(cps, spans, mark, nest = false) {
    const sorted = spans
      .filter((e) => Number.isInteger(e.start) && Number.isInteger(e.end) && e.start >= 0 && e.start < e.end && e.end <= cps.length)
      .sort((a, b) => a.start - b.start || b.end - a.end);
    const shown = [];
    const open = []; // the shown spans that hold the current position, outermost first
    for (const e of sorted) {
      while (open.length && open[open.length - 1].e.end <= e.start) open.pop();
      const parent = open[open.length - 1];
      if (parent && !(nest && e.end <= parent.e.end)) continue; // crosses or (without nest) overlaps a shown span
      const node = { e, kids: [] };
      (parent ? parent.kids : shown).push(node);
      open.push(node);
    }
    const text = (a, b) => escapeHtml(cps.slice(a, b).join(''));
    const render = ({ e, kids }) => {
      const parts = [`<mark ${mark(e)} data-start="${e.start}" data-end="${e.end}">`];
      let pos = e.start;
      for (const k of kids) {
        parts.push(text(pos, k.e.start), render(k));
        pos = k.e.end;
      }
      parts.push(text(pos, e.end), '</mark>');
      return parts.join('');
    };
    const breaks = blockBreaks(cps, shown.map((n) => n.e));
    const parts = ['<div class="block">'];
    let bi = 0;
    const plain = (a, b) => {
      for (; bi < breaks.length && breaks[bi] <= b; bi++) {
        parts.push(text(a, breaks[bi]), '</div><div class="block">');
        a = breaks[bi];
      }
      parts.push(text(a, b));
    };
    let pos = 0;
    for (const n of shown) {
      plain(pos, n.e.start);
      parts.push(render(n));
      pos = n.e.end;
    }
    plain(pos, cps.length);
    parts.push('</div>');
    return { html: parts.join(''), blocks: breaks.length + 1 };
  }

  // PER red, LOC cyan, ORG yellow (style.css); an imported model's other types take palette colours,
  // in the order of their sorted names, so a type keeps its colour across answers with the same types
  const NER_FIXED = new Set(['PER', 'LOC', 'ORG']);
  const nerColour = (types) => {
    const other = [...new Set(types)].filter((t) => !NER_FIXED.has(t)).sort();
    return (t) => (NER_FIXED.has(t) ? '' : ` data-color="${other.indexOf(t) % 6}"`);
  };

  function renderNer(text, entities) {
    const colourOf = nerColour(entities.map((e) => e.type));
    const { html, blocks } = highlight(Array.from(text), entities.map((e, i) => ({ ...e, i })), (e) =>
      `data-type="${escapeHtml(e.type)}"${colourOf(e.type)} data-score="${escapeHtml(e.score)}" data-index="${e.i}" `
      + `title="${escapeHtml(`${e.type} · score ${fmtScore(e.score)} · [${e.start}, ${e.end})`)}"`);
    const out = $('ner-output');
    out.innerHTML = html;
    out.dataset.blocks = String(blocks);

    const rows = [];
    entities.slice(0, TABLE_MAX_ROWS).forEach((e, i) => {
      rows.push(`<tr data-index="${i}" data-type="${escapeHtml(e.type)}"><td class="num">${i + 1}</td>`
        + `<td><span class="type-chip" data-type="${escapeHtml(e.type)}"${colourOf(e.type)}>${escapeHtml(e.type)}</span></td>`
        + `<td class="text" lang="zh">${escapeHtml(e.text)}</td><td class="num">${escapeHtml(e.start)}</td>`
        + `<td class="num">${escapeHtml(e.end)}</td><td class="num">${escapeHtml(fmtScore(e.score))}</td></tr>`);
    });
    if (entities.length > TABLE_MAX_ROWS) {
      rows.push(`<tr class="more"><td colspan="6">… and ${entities.length - TABLE_MAX_ROWS} more (Copy as JSON has them all)</td></tr>`);
    }
    $('ner-table').tBodies[0].innerHTML = rows.join('');
    $('ner-table').hidden = entities.length === 0;
    $('ner-empty').hidden = entities.length !== 0;
    $('ner-total').textContent = String(entities.length);
    $('ner-result').hidden = false;
    $('ner-result').classList.remove('stale');
    $('ner-copy').textContent = 'Copy as JSON';
  }

  $('ner-table').addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr[data-index]');
    if (!tr) return;
    const mark = $('ner-output').querySelector(`mark[data-index="${tr.dataset.index}"]`);
    if (!mark) return;
    mark.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    mark.classList.add('flash');
    setTimeout(() => mark.classList.remove('flash'), 1200);
  });

  async function copyText(s) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(s);
        return true;
      } catch (_) { /* fall back below */ }
    }
    const ta = document.createElement('textarea');
    ta.value = s;
    ta.setAttribute('readonly', '');
    ta.style.position = 'fixed';
    ta.style.top = '0';
    ta.style.opacity = '0';
    document.body.appendChild(ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch (_) { ok = false; }
    ta.remove();
    return ok;
  }

  $('ner-copy').addEventListener('click', async () => {
    const b = $('ner-copy');
    if (!ner.last) return;
    const ok = await copyText(JSON.stringify(ner.last, null, 2));
    b.textContent = ok ? 'Copied ✓' : 'Copy failed';
    b.classList.toggle('ok', ok);
    b.dataset.copied = ok ? 'true' : 'false';
    setTimeout(() => { b.textContent = 'Copy as JSON'; b.classList.remove('ok'); }, 1800);
  });

  // -- sentiment ---------------------------------------------------------------------------------
  const sentiment = {
    input: $('sent-input'),
    button: $('sent-run'),
    async run() {
      if (sentiment.button.disabled) return;
      const text = sentiment.input.value;
      clearError();
      if (!text.trim()) {
        showError(new ApiError('Type or paste some text first.', { code: 'empty_input' }));
        sentiment.input.focus();
        return;
      }
      setLoading(sentiment.button, true);
      try {
        const body = await post('v1/sentiment', { text });
        renderSentiment(body);
        store.add('sentiment', text);
      } catch (err) {
        showError(err);
        $('sent-result').classList.add('stale');
      } finally {
        setLoading(sentiment.button, false);
      }
    },
  };

  function renderSentiment(r) {
    const label = String(r.label);
    const result = $('sent-result');
    result.dataset.label = label;
    $('sent-emoji').textContent = EMOJI[label] || '🤔';
    $('sent-label').textContent = label;
    const conf = $('sent-confidence');
    conf.textContent = fmtPct(r.confidence);
    conf.dataset.value = String(r.confidence);
    const bar = $('sent-bar');
    const fill = bar.querySelector('.fill');
    fill.className = `fill ${label.replace(/[^\w-]/g, '')}`;
    fill.style.width = fmtPct(r.confidence);
    bar.setAttribute('aria-valuenow', (Math.max(0, Math.min(1, Number(r.confidence) || 0)) * 100).toFixed(1));

    const scores = Object.entries(r.scores || {}).sort((a, b) => b[1] - a[1]);
    const frag = document.createDocumentFragment();
    for (const [name, p] of scores) {
      const li = document.createElement('li');
      li.dataset.label = name;
      li.dataset.score = String(p);
      if (name === label) li.className = 'is-top';
      const n = document.createElement('span');
      n.className = 'name';
      const em = document.createElement('span');
      em.className = 'emoji';
      em.setAttribute('aria-hidden', 'true');
      em.textContent = EMOJI[name] || '•';
      n.append(em, ` ${name}`);
      const b = document.createElement('span');
      b.className = 'bar';
      const f = document.createElement('span');
      f.className = `fill ${name.replace(/[^\w-]/g, '')}`;
      f.style.width = fmtPct(p);
      b.appendChild(f);
      const v = document.createElement('span');
      v.className = 'val';
      v.textContent = fmtPct(p);
      li.append(n, b, v);
      frag.appendChild(li);
    }
    $('sent-scores').replaceChildren(frag);
    result.hidden = false;
    result.classList.remove('stale');
  }

  // -- schema extraction ---------------------------------------------------------------------------
  const PRESETS = {
    review: {
      schema: { 产品名称: null, 芯片型号: null, 功能: null, 价格: null, 属性词: { 情感词: null } },
      text: '华为Mate60 Pro搭载自研麒麟9000S芯片，支持卫星通话功能，起售价6999元。用户普遍反馈信号强、拍照清晰，但部分用户抱怨系统更新后电池续航下降明显。',
    },
    entities: { schema: ['人物', '地点', '组织机构', '时间'], text: '2023年9月，张伟在上海参加了由复旦大学主办的人工智能论坛。' },
    relations: { schema: { 人物: ['出生地', '毕业院校', '职位'] }, text: '李明出生于湖南长沙，毕业于清华大学，现任腾讯公司副总裁。' },
    events: { schema: { 地震触发词: ['时间', '震级', '震中位置'] }, text: '据中国地震台网测定，3月15日凌晨2时许，四川雅安发生4.5级地震，震源深度10公里。' },
  };
  const PALETTE = 6;  // colours in style.css: mark[data-color="0".."5"]

  const schemaTab = {
    input: $('schema-input'),
    editor: $('schema-editor'),
    button: $('schema-run'),
    threshold: $('schema-threshold'),
    last: null,
    parseSchema() {
      const raw = schemaTab.editor.value.trim();
      const err = $('schema-editor-error');
      if (!raw) {
        err.textContent = 'Write a schema first, or pick an example.';
      } else {
        try {
          const v = JSON.parse(raw);
          err.hidden = true;
          schemaTab.editor.removeAttribute('aria-invalid');
          return v;
        } catch (e) {
          err.textContent = `The schema is not valid JSON: ${e.message}`;
        }
      }
      err.hidden = false;
      schemaTab.editor.setAttribute('aria-invalid', 'true');
      schemaTab.editor.focus();
      return undefined;
    },
    async run() {
      if (schemaTab.button.disabled) return;
      clearError();
      const schema = schemaTab.parseSchema();
      if (schema === undefined) return;
      const text = schemaTab.input.value;
      if (!text.trim()) {
        showError(new ApiError('Type or paste some text first.', { code: 'empty_input' }));
        schemaTab.input.focus();
        return;
      }
      setLoading(schemaTab.button, true);
      try {
        const threshold = Number(schemaTab.threshold.value);
        const body = await post('v1/extract', { text, schema, threshold });
        schemaTab.last = body;
        renderSchema(text, schema, body);
        store.add('schema', text, JSON.stringify(schema));
      } catch (err) {
        showError(err);
        $('schema-result').classList.add('stale');
      } finally {
        setLoading(schemaTab.button, false);
      }
    },
  };

  function schemaTypes(schema) {
    // every type name in the schema, in order (colours follow it)
    const out = [];
    const walk = (v) => {
      if (typeof v === 'string') { if (!out.includes(v)) out.push(v); return; }
      if (Array.isArray(v)) { v.forEach(walk); return; }
      if (v && typeof v === 'object') for (const [k, c] of Object.entries(v)) { if (!out.includes(k)) out.push(k); walk(c); }
    };
    walk(schema);
    return out;
  }

  function renderSchema(text, schema, result) {
    const types = schemaTypes(schema);
    const colour = (t) => String(Math.max(0, types.indexOf(t)) % PALETTE);
    const flat = [];
    const walk = (res, path) => {
      for (const [type, spans] of Object.entries(res || {})) {
        for (const s of Array.isArray(spans) ? spans : []) {
          flat.push({ ...s, type, path: [...path, type] });
          if (s.relations) walk(s.relations, [...path, type]);
        }
      }
    };
    walk(result, []);
    $('schema-output').innerHTML = highlight(Array.from(text), flat, (e) =>
      `data-type="${escapeHtml(e.type)}" data-color="${colour(e.type)}" `
      + `title="${escapeHtml(`${e.path.join(' › ')} · p ${fmtScore(e.probability)} · [${e.start}, ${e.end})`)}"`, true).html;

    const legend = document.createDocumentFragment();
    for (const t of types) {
      const li = document.createElement('li');
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.dataset.color = colour(t);
      li.append(sw, t);
      legend.appendChild(li);
    }
    $('schema-legend').replaceChildren(legend);

    const tree = (res) => {
      const ul = document.createDocumentFragment();
      for (const [type, spans] of Object.entries(res || {})) {
        const li = document.createElement('li');
        li.dataset.type = type;
        const head = document.createElement('span');
        head.className = 'type-chip';
        head.dataset.color = colour(type);
        head.textContent = `${type} · ${spans.length}`;
        li.appendChild(head);
        const inner = document.createElement('ul');
        for (const s of spans) {
          const si = document.createElement('li');
          si.className = 'span';
          si.dataset.start = String(s.start);
          si.dataset.end = String(s.end);
          const t = document.createElement('span');
          t.className = 'span-text';
          t.textContent = s.text;
          const m = document.createElement('span');
          m.className = 'meta';
          m.textContent = ` [${s.start}, ${s.end}) p ${fmtScore(s.probability)}`;
          si.append(t, m);
          if (s.relations && Object.keys(s.relations).length) {
            const sub = document.createElement('ul');
            sub.appendChild(tree(s.relations));
            si.appendChild(sub);
          }
          inner.appendChild(si);
        }
        li.appendChild(inner);
        ul.appendChild(li);
      }
      return ul;
    };
    $('schema-tree').replaceChildren(tree(result));
    $('schema-total').textContent = String(flat.length);
    $('schema-empty').hidden = flat.length !== 0;
    $('schema-tree').hidden = flat.length === 0;
    $('schema-result').hidden = false;
    $('schema-result').classList.remove('stale');
  }

  for (const btn of document.querySelectorAll('[data-preset]')) {
    btn.addEventListener('click', () => {
      const p = PRESETS[btn.dataset.preset];
      schemaTab.editor.value = JSON.stringify(p.schema, null, 1);
      schemaTab.input.value = p.text;
      $('schema-editor-error').hidden = true;
      updateCount('schema');
    });
  }
  schemaTab.threshold.addEventListener('input', () => { $('schema-threshold-value').textContent = Number(schemaTab.threshold.value).toFixed(2); });
  schemaTab.editor.addEventListener('input', () => { $('schema-editor-error').hidden = true; schemaTab.editor.removeAttribute('aria-invalid'); });
  $('schema-copy').addEventListener('click', async () => {
    const b = $('schema-copy');
    if (!schemaTab.last) return;
    const ok = await copyText(JSON.stringify(schemaTab.last, null, 2));
    b.textContent = ok ? 'Copied ✓' : 'Copy failed';
    b.dataset.copied = ok ? 'true' : 'false';
    setTimeout(() => { b.textContent = 'Copy as JSON'; }, 1800);
  });
  $('schema-history-clear').addEventListener('click', () => store.clear('schema'));

  const RUNNERS = { ner, sentiment, schema: schemaTab };

  // -- inputs: counts, examples, history buttons -------------------------------------------------
  const COUNT_IDS = { ner: 'ner-count', sentiment: 'sent-count', schema: 'schema-count' };
  function updateCount(tab) {
    const n = countCodePoints(RUNNERS[tab].input.value);
    $(COUNT_IDS[tab]).textContent = n ? `${n} chars` : '';
  }
  for (const tab of Object.keys(RUNNERS)) {
    const r = RUNNERS[tab];
    r.button.addEventListener('click', () => r.run());
    r.input.addEventListener('input', () => updateCount(tab));
    renderHistory(tab);
  }
  $('ner-example').addEventListener('click', () => { ner.input.value = EXAMPLES.ner; updateCount('ner'); ner.run(); });
  $('sent-example').addEventListener('click', () => { sentiment.input.value = EXAMPLES.sentiment; updateCount('sentiment'); sentiment.run(); });
  $('ner-history-clear').addEventListener('click', () => store.clear('ner'));
  $('sent-history-clear').addEventListener('click', () => store.clear('sentiment'));
  window.addEventListener('storage', (ev) => {  // another window of the page changed the history
    for (const tab of Object.keys(RUNNERS)) if (ev.key === null || ev.key === store.key(tab)) renderHistory(tab);
  });

  // -- tabs --------------------------------------------------------------------------------------
  let current = 'ner';
  function activate(tab, { focus = false, updateHash = true } = {}) {
    if (!TABS.includes(tab)) tab = 'ner';
    current = tab;
    for (const t of TABS) {
      const btn = $(`tab-${t}`);
      const on = t === tab;
      btn.setAttribute('aria-selected', on ? 'true' : 'false');
      btn.tabIndex = on ? 0 : -1;
      $(`panel-${t}`).hidden = !on;
      if (on && focus) btn.focus();
    }
    document.body.dataset.tab = tab;
    clearError();
    if (updateHash && location.hash !== `#${tab}`) replaceHash(`#${tab}`);
  }
  function replaceHash(hash) {
    try { window.history.replaceState(null, '', hash); } catch (_) { /* file:// or sandboxed */ }
  }
  const tablist = document.querySelector('[role="tablist"]');
  tablist.addEventListener('click', (ev) => {
    const btn = ev.target.closest('[role="tab"]');
    if (btn) activate(btn.dataset.tab);
  });
  tablist.addEventListener('keydown', (ev) => {
    const i = TABS.indexOf(current);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: TABS.length - 1 }[ev.key];
    if (next === undefined) return;
    ev.preventDefault();
    activate(TABS[(next + TABS.length) % TABS.length], { focus: true });
  });
  window.addEventListener('hashchange', () => activate(location.hash.slice(1), { updateHash: false }));

  // Ctrl+Enter (Cmd+Enter on a Mac) runs the current tab, wherever the focus is
  document.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter' || !(ev.ctrlKey || ev.metaKey) || ev.isComposing) return;
    const r = RUNNERS[current];
    if (!r) return;
    ev.preventDefault();
    r.run();
  });

  // -- server status -----------------------------------------------------------------------------
  async function checkStatus(attempt = 0) {
    const el = $('status');
    const text = $('status-text');
    try {
      const resp = await fetch('readyz', { headers: { accept: 'application/json' }, cache: 'no-store' });
      const body = await resp.json().catch(() => ({}));
      if (resp.ok && body.status === 'ready') {
        const m = body.models || {};
        el.dataset.state = 'ready';
        text.textContent = `ready · ner: ${m.ner || '—'} · sentiment: ${m.sentiment || 'off'} · extract: ${m.extract || 'off'}`;
        $('schema-model-note').hidden = Boolean(m.extract);
        const labels = (body.labels || {}).sentiment;
        if (Array.isArray(labels) && labels.length) $('sent-hint').textContent = labels.join(' · ');
        return;
      }
      el.dataset.state = 'loading';
      text.textContent = 'loading models…';
    } catch (_) {
      el.dataset.state = 'down';
      text.textContent = 'server unreachable';
    }
    if (attempt < 60) setTimeout(() => checkStatus(attempt + 1), 1000);
  }

  activate(location.hash.slice(1) || 'ner', { updateHash: false });
  checkStatus();
  document.documentElement.dataset.ready = 'true';  // the page's script has run (tests wait on this)
})();
