// boxoffice web page: plain JavaScript, no build step. It talks only to the
// /v1 API of the node that served it.
'use strict';

(function () {
  const $ = (sel) => document.querySelector(sel);
  const TOKEN_KEY = 'boxoffice.token';

  // ---- API ---------------------------------------------------------------

  class Problem extends Error {
    constructor(status, body) {
      super((body && (body.detail || body.title)) || ('HTTP ' + status));
      this.status = status;
      this.code = (body && body.code) || 'http_' + status;
    }
  }

  function token() { return localStorage.getItem(TOKEN_KEY) || ''; }

  // api sends one request. A 503 is tried again (at most `tries` times in
  // all) with the same Idempotency-Key, as the API asks of clients.
  async function api(method, path, body, opts) {
    opts = opts || {};
    const headers = { 'Accept': 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token()) headers['Authorization'] = 'Bearer ' + token();
    if (opts.idempotencyKey) headers['Idempotency-Key'] = opts.idempotencyKey;
    Object.assign(headers, opts.headers || {});
    const tries = opts.tries || 1;
    for (let attempt = 1; ; attempt++) {
      let resp;
      try {
        resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      } catch (e) {
        if (attempt < tries) { await sleep(300 * attempt); continue; }
        throw new Problem(0, { code: 'network', detail: 'the server did not answer: ' + e.message });
      }
      if (resp.status === 503 && attempt < tries) {
        await sleep(300 * attempt);
        continue;
      }
      const text = await resp.text();
      let data = null;
      if (text) { try { data = JSON.parse(text); } catch (e) { data = null; } }
      if (!resp.ok) throw new Problem(resp.status, data);
      return data;
    }
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // ---- messages and sign-in ----------------------------------------------

  let lastError = null;
  function say(text, isError, code) {
    const m = $('#message');
    m.textContent = text;
    m.className = isError ? 'error' : '';
    m.hidden = !text;
    if (isError) lastError = { code: code || 'error', text };
  }
  function fail(e) { say(e.message, true, e.code); }

  function claims() {
    const t = token();
    if (!t) return null;
    try {
      const p = t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(p));
    } catch (e) { return null; }
  }

  function showWho() {
    const c = claims();
    $('#who-name').textContent = c ? c.sub + ' (' + c.role + ')' : '';
    $('#sign-out').hidden = !c;
    $('#sign-in').hidden = !!c;
  }

  async function initSignIn() {
    // /dev/sign-in answers 404 unless the server runs with --dev-sign-in.
    try {
      const r = await fetch('/dev/sign-in');
      $('#dev-sign-in-form').hidden = !r.ok;
    } catch (e) { /* stays hidden */ }
    $('#dev-sign-in-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        const r = await api('POST', '/dev/sign-in', { subject: $('#si-subject').value.trim(), role: $('#si-role').value });
        localStorage.setItem(TOKEN_KEY, r.token);
        say('Signed in as ' + r.subject, false);
        showWho();
      } catch (e) { fail(e); }
    });
    $('#token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      localStorage.setItem(TOKEN_KEY, $('#si-token').value.trim());
      if (!claims()) { localStorage.removeItem(TOKEN_KEY); say('That is not a token', true, 'invalid_token'); }
      showWho();
    });
    $('#sign-out').addEventListener('click', () => { localStorage.removeItem(TOKEN_KEY); showWho(); });
    showWho();
  }

  // ---- routing -------------------------------------------------------------

  let leaveView = null;
  function route() {
    if (leaveView) { leaveView(); leaveView = null; }
    const h = location.hash.replace(/^#/, '') || '/';
    document.querySelectorAll('.view').forEach((v) => { v.hidden = true; });
    let m;
    if ((m = h.match(/^\/event\/([A-Za-z0-9._-]{1,64})$/))) {
      $('#view-event').hidden = false;
      leaveView = showEvent(m[1]);
    } else if ((m = h.match(/^\/queue\/([A-Za-z0-9._-]{1,64})$/))) {
      $('#view-queue').hidden = false;
      leaveView = showQueue(m[1]);
    } else if (h === '/orders') {
      $('#view-orders').hidden = false;
      showOrders();
    } else if (h === '/organiser') {
      $('#view-organiser').hidden = false;
    } else if ((m = h.match(/^\/organiser\/report\/([A-Za-z0-9._-]{1,64})$/))) {
      $('#view-report').hidden = false;
      leaveView = showReport(m[1]);
    } else {
      $('#view-events').hidden = false;
      searchEvents(true);
    }
  }

  // ---- event list ------------------------------------------------------------

  let cursor = '';
  async function searchEvents(fresh) {
    if (fresh) { cursor = ''; $('#event-list').textContent = ''; }
    const q = $('#search-q').value.trim();
    const params = new URLSearchParams({ limit: '50' });
    if (q) params.set('q', q);
    if (cursor) params.set('cursor', cursor);
    try {
      const r = await api('GET', '/v1/events?' + params);
      for (const e of r.events || []) {
        const li = document.createElement('li');
        const a = document.createElement('a');
        a.href = '#/event/' + e.id;
        a.textContent = e.name;
        li.appendChild(a);
        const meta = [e.type, e.location, e.startsAt && new Date(e.startsAt).toLocaleString(), e.capacity.toLocaleString() + ' seats'].filter(Boolean).join(' · ');
        li.appendChild(document.createTextNode(' — ' + meta));
        $('#event-list').appendChild(li);
      }
      if (fresh && !(r.events || []).length) $('#event-list').textContent = 'No events found.';
      cursor = r.nextCursor || '';
      $('#more-events').hidden = !cursor;
    } catch (e) { fail(e); }
  }

  // ---- the seat map ------------------------------------------------------------

  const FREE = 0, HELD = 1, SOLD = 2;
  const STATE_OF = { free: FREE, held: HELD, sold: SOLD };
  const STATE_NAME = ['free', 'held', 'sold'];
  const FREE_COLORS = ['#34a873', '#2a9d8f', '#5fb34a', '#3c8dbc', '#26a69a', '#7cb342'];
  const COLORS = { held: '#f0a030', sold: '#9aa0ab', picked: '#2563eb', mine: '#9333ea' };
  const GAP = 4;        // seat units between sections
  const SEAT_ZOOM = 4;  // pixels per seat from which seats are drawn one by one

  // SeatMap holds an event's layout, the state of every seat, and draws it.
  class SeatMap {
    constructor(canvas, ev) {
      this.canvas = canvas;
      this.ctx = canvas.getContext('2d');
      this.ev = ev;
      this.sections = [];
      const cats = new Map(ev.categories.map((c, i) => [c.id, i]));
      let base = 0;
      for (const s of ev.venue.sections) {
        // Positions that the rows' own lengths or gaps (aisles) leave out
        // are no seats: never drawn, never picked.
        let holes = null;
        if (s.rowSeats || s.gaps) {
          holes = new Set(s.gaps || []);
          (s.rowSeats || []).forEach((n, r) => { for (let k = n + 1; k <= s.seatsPerRow; k++) holes.add((r + 1) + '-' + k); });
        }
        this.sections.push({ id: s.id, cat: cats.get(s.category) || 0, rows: s.rows, per: s.seatsPerRow, base, x: 0, y: 0, holes });
        base += s.rows * s.seatsPerRow;
      }
      // General-admission areas follow, numbered as the server numbers
      // them: drawn as a block of places, held by quantity, not by click.
      this.areas = new Map();
      for (const a of ev.venue.areas || []) {
        const per = Math.min(a.capacity, 100);
        const s = { id: a.id, area: true, cap: a.capacity, cat: cats.get(a.category) || 0, rows: Math.ceil(a.capacity / per), per, base, x: 0, y: 0, holes: null };
        this.sections.push(s);
        this.areas.set(a.id, s);
        base += a.capacity;
      }
      this.capacity = base;
      this.byId = new Map(this.sections.filter((s) => !s.area).map((s) => [s.id, s]));
      this.state = new Uint8Array(base);
      this.expiresAt = new Map(); // held seat index -> expiresAtMs, when the feed told us
      this.picked = new Set();
      this.mine = new Set();      // seats of this page's active hold
      this.layoutGrid();
      this.off = document.createElement('canvas');
      this.off.width = this.worldW;
      this.off.height = this.worldH;
      this.offCtx = this.off.getContext('2d');
      this.img = this.offCtx.createImageData(this.worldW, this.worldH);
      this.rgb = [];
      this.fit();
      this.pending = false;
    }

    // layoutGrid places the sections in a grid of columns, in their order,
    // with the number of columns that draws the whole venue largest.
    layoutGrid() {
      let best = null;
      for (let cols = 1; cols <= this.sections.length; cols++) {
        const g = this.grid(cols);
        const scale = Math.min(this.canvas.width / g.w, this.canvas.height / g.h);
        if (!best || scale > best.scale) best = { cols, scale };
      }
      const g = this.grid(best.cols);
      this.sections.forEach((s, i) => { s.x = g.xs[i]; s.y = g.ys[i]; });
      this.worldW = g.w;
      this.worldH = g.h;
    }

    grid(cols) {
      const colW = [], rowH = [];
      this.sections.forEach((s, i) => {
        const c = i % cols, r = Math.floor(i / cols);
        colW[c] = Math.max(colW[c] || 0, s.per);
        rowH[r] = Math.max(rowH[r] || 0, s.rows);
      });
      const colX = [GAP], rowY = [GAP];
      for (let c = 1; c < colW.length; c++) colX[c] = colX[c - 1] + colW[c - 1] + GAP;
      for (let r = 1; r < rowH.length; r++) rowY[r] = rowY[r - 1] + rowH[r - 1] + GAP;
      const xs = [], ys = [];
      this.sections.forEach((s, i) => {
        const c = i % cols, r = Math.floor(i / cols);
        xs.push(colX[c] + Math.floor((colW[c] - s.per) / 2));
        ys.push(rowY[r]);
      });
      return { xs, ys, w: colX[colW.length - 1] + colW[colW.length - 1] + GAP, h: rowY[rowH.length - 1] + rowH[rowH.length - 1] + GAP };
    }

    fit() { this.zoomTo(0, 0, this.worldW, this.worldH); }

    zoomTo(x, y, w, h) {
      const cw = this.canvas.width, ch = this.canvas.height;
      this.scale = Math.min(cw / w, ch / h);
      this.ox = x + w / 2 - cw / 2 / this.scale;
      this.oy = y + h / 2 - ch / 2 / this.scale;
      this.draw();
    }

    zoomAt(px, py, factor) {
      const min = Math.min(this.canvas.width / this.worldW, this.canvas.height / this.worldH) * 0.5;
      const s = Math.min(40, Math.max(min, this.scale * factor));
      const wx = this.ox + px / this.scale, wy = this.oy + py / this.scale;
      this.scale = s;
      this.ox = wx - px / s;
      this.oy = wy - py / s;
      this.draw();
    }

    index(id) {
      const p = id.split('-');
      if (p.length !== 3) return -1;
      if (p[0] === 'GA') {
        const a = this.areas.get(p[1]), n = +p[2];
        return a && n >= 1 && n <= a.cap ? a.base + n - 1 : -1;
      }
      const s = this.byId.get(p[0]);
      const row = +p[1], num = +p[2];
      if (!s || !(row >= 1 && row <= s.rows && num >= 1 && num <= s.per)) return -1;
      if (s.holes && s.holes.has(row + '-' + num)) return -1;
      return s.base + (row - 1) * s.per + (num - 1);
    }

    // exists says whether position (r, n) of section s, from 0, is a seat
    // (or a place of an area).
    exists(s, r, n) {
      if (s.area) return r * s.per + n < s.cap;
      return !s.holes || !s.holes.has((r + 1) + '-' + (n + 1));
    }

    sectionOf(i) {
      let lo = 0, hi = this.sections.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (this.sections[mid].base <= i) lo = mid; else hi = mid - 1;
      }
      return this.sections[lo];
    }

    id(i) {
      const s = this.sectionOf(i), k = i - s.base;
      if (s.area) return 'GA-' + s.id + '-' + (k + 1);
      return s.id + '-' + (Math.floor(k / s.per) + 1) + '-' + (k % s.per + 1);
    }

    // effective is the state a buyer sees: a held seat whose hold has
    // expired is free, as it is to the state machine.
    effective(i) {
      const st = this.state[i];
      if (st === HELD) {
        const exp = this.expiresAt.get(i);
        if (exp && exp <= serverNow()) return FREE;
      }
      return st;
    }

    color(i) {
      const st = this.effective(i);
      if (st === HELD && this.mine.has(i)) return COLORS.mine;
      if (st === FREE && this.picked.has(i)) return COLORS.picked;
      if (st === HELD) return COLORS.held;
      if (st === SOLD) return COLORS.sold;
      return FREE_COLORS[this.sectionOf(i).cat % FREE_COLORS.length];
    }

    // paintAll fills the one-pixel-per-seat image of the whole venue.
    paintAll() {
      const d = this.img.data;
      d.fill(0);
      for (const s of this.sections) {
        for (let r = 0; r < s.rows; r++) {
          for (let n = 0; n < s.per; n++) if (this.exists(s, r, n)) this.paintPixel(s.base + r * s.per + n, s, r, n);
        }
      }
      this.offCtx.putImageData(this.img, 0, 0);
      this.draw();
    }

    paintPixel(i, s, r, n) {
      const c = rgbOf(this.color(i));
      const o = ((s.y + r) * this.worldW + s.x + n) * 4;
      const d = this.img.data;
      d[o] = c[0]; d[o + 1] = c[1]; d[o + 2] = c[2]; d[o + 3] = 255;
    }

    // set changes seats (indexes) and redraws on the next frame.
    touch(i) {
      const s = this.sectionOf(i), k = i - s.base;
      this.paintPixel(i, s, Math.floor(k / s.per), k % s.per);
      this.dirty = true;
      this.draw();
    }

    setState(i, st, expiresAtMs) {
      this.state[i] = st;
      if (st === HELD && expiresAtMs) this.expiresAt.set(i, expiresAtMs); else this.expiresAt.delete(i);
      if (st !== FREE) this.picked.delete(i);
      this.touch(i);
    }

    draw() {
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(() => { this.pending = false; this.render(); });
    }

    render() {
      if (this.dirty) { this.offCtx.putImageData(this.img, 0, 0); this.dirty = false; }
      const g = this.ctx, sc = this.scale, cw = this.canvas.width, ch = this.canvas.height;
      g.setTransform(1, 0, 0, 1, 0, 0);
      g.fillStyle = '#fbfbfd';
      g.fillRect(0, 0, cw, ch);
      if (sc < SEAT_ZOOM) {
        g.imageSmoothingEnabled = sc < 1;
        g.drawImage(this.off, -this.ox * sc, -this.oy * sc, this.worldW * sc, this.worldH * sc);
      } else {
        this.renderSeats(g, sc, cw, ch);
      }
      // Section outlines and names.
      g.textAlign = 'center';
      g.textBaseline = 'middle';
      for (const s of this.sections) {
        const x = (s.x - this.ox) * sc, y = (s.y - this.oy) * sc, w = s.per * sc, h = s.rows * sc;
        if (x > cw || y > ch || x + w < 0 || y + h < 0) continue;
        g.strokeStyle = 'rgba(29,35,48,.35)';
        g.lineWidth = 1;
        g.strokeRect(x - 1.5, y - 1.5, w + 3, h + 3);
        const size = Math.max(10, Math.min(28, Math.min(w, h) / 3));
        if (sc < SEAT_ZOOM) {
          g.font = '700 ' + size + 'px system-ui, sans-serif';
          g.lineWidth = 3;
          g.strokeStyle = 'rgba(255,255,255,.85)';
          g.strokeText(s.id, x + w / 2, y + h / 2);
          g.fillStyle = '#1d2330';
          g.fillText(s.id, x + w / 2, y + h / 2);
        } else {
          g.font = '700 14px system-ui, sans-serif';
          g.fillStyle = '#1d2330';
          g.fillText((s.area ? 'Standing ' : 'Section ') + s.id, x + w / 2, y - 0.5 * GAP * sc);
        }
      }
    }

    renderSeats(g, sc, cw, ch) {
      const size = Math.max(1, sc * 0.8);
      for (const s of this.sections) {
        const r0 = Math.max(0, Math.floor(this.oy - s.y)), r1 = Math.min(s.rows, Math.ceil(this.oy + ch / sc - s.y));
        const n0 = Math.max(0, Math.floor(this.ox - s.x)), n1 = Math.min(s.per, Math.ceil(this.ox + cw / sc - s.x));
        if (r0 >= r1 || n0 >= n1) continue;
        let fill = '';
        for (let r = r0; r < r1; r++) {
          for (let n = n0; n < n1; n++) {
            if (!this.exists(s, r, n)) continue;
            const c = this.color(s.base + r * s.per + n);
            if (c !== fill) { g.fillStyle = c; fill = c; }
            g.fillRect((s.x + n - this.ox) * sc, (s.y + r - this.oy) * sc, size, size);
          }
        }
        if (sc >= 14) {
          g.font = '10px system-ui, sans-serif';
          g.fillStyle = '#667';
          g.textAlign = 'right';
          for (let r = r0; r < r1; r++) g.fillText(String(r + 1), (s.x - this.ox) * sc - 4, (s.y + r + 0.4 - this.oy) * sc);
        }
      }
    }

    // hit returns the section under a canvas point and the seat index, if any.
    hit(px, py) {
      const wx = this.ox + px / this.scale, wy = this.oy + py / this.scale;
      for (const s of this.sections) {
        if (wx >= s.x - GAP / 2 && wx < s.x + s.per + GAP / 2 && wy >= s.y - GAP / 2 && wy < s.y + s.rows + GAP / 2) {
          const n = Math.floor(wx - s.x), r = Math.floor(wy - s.y);
          const seat = (n >= 0 && n < s.per && r >= 0 && r < s.rows && this.exists(s, r, n)) ? s.base + r * s.per + n : -1;
          return { section: s, seat };
        }
      }
      return null;
    }
  }

  const rgbCache = new Map();
  function rgbOf(hex) {
    let c = rgbCache.get(hex);
    if (!c) {
      c = [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16)];
      rgbCache.set(hex, c);
    }
    return c;
  }

  // The state machine's clock, as far as the page knows it: the feed's
  // messages carry it; between them the browser's clock runs on.
  let clockSkewMs = 0;
  function serverNow() { return Date.now() + clockSkewMs; }

  // ---- the waiting room of a protected on-sale ---------------------------------------

  // An admission pass is kept per event for the tab (sessionStorage) until
  // it expires; holds of the event send it in X-Admission-Pass.
  const passKey = (event) => 'boxoffice.pass.' + event;
  function storedPass(event) {
    try {
      const p = JSON.parse(sessionStorage.getItem(passKey(event)) || 'null');
      if (p && Date.parse(p.expiresAt) > serverNow()) return p;
    } catch (e) { /* none */ }
    return null;
  }

  async function needsQueue(event) {
    if (storedPass(event)) return false;
    try {
      await api('GET', '/v1/events/' + encodeURIComponent(event) + '/queue');
      return true;
    } catch (e) {
      if (e.code === 'queue_not_found') return false;
      throw e;
    }
  }

  // showQueue shows the buyer's place, live: a stream (Server-Sent Events,
  // named by the place token, since EventSource sends no header) brings
  // every change of position, and the pass once admitted; then the page
  // moves to the seat map.
  function showQueue(event) {
    let closed = false;
    let es = null;
    $('#q-title').textContent = 'Waiting room: ' + event;
    $('#q-join').hidden = true;
    $('#q-box').hidden = true;
    say('', false);
    const base = '/v1/events/' + encodeURIComponent(event) + '/queue';
    const show = (p) => {
      window.boxoffice.place = p;
      $('#q-box').hidden = false;
      $('#q-join').hidden = true;
      const pos = $('#q-position');
      pos.textContent = p.position == null ? '–' : p.position.toLocaleString();
      $('#q-wait').textContent = p.estimatedWaitSeconds == null ? '' : '(about ' + Math.max(1, Math.round(p.estimatedWaitSeconds / 60)) + ' min)';
      $('#q-counts').textContent = p.queue.waiting.toLocaleString() + ' waiting, ' + p.queue.admitted.toLocaleString() + ' let in';
      $('#q-state').textContent = {
        waiting: p.queue.opened ? 'You are in the queue.' : 'The sale opens at ' + new Date(p.queue.opensAt).toLocaleString() + '; your place is drawn then.',
        admitted: 'It is your turn!',
        expired: 'Your turn has passed: your admission expired.',
        sold_out: 'Sold out: no seats are left for now. Stay in the queue in case some come back.',
      }[p.state] || p.state;
      if (p.state === 'admitted' && p.pass) {
        sessionStorage.setItem(passKey(event), JSON.stringify(p.pass));
        if (es) { es.close(); es = null; }
        if (!closed) location.hash = '#/event/' + event;
      }
    };
    const follow = (p) => {
      show(p);
      if (closed || p.state === 'admitted' || p.state === 'expired') return;
      es = new EventSource(base + '/stream?place=' + encodeURIComponent(p.placeToken));
      es.onopen = () => { $('#q-live').textContent = 'live'; $('#q-live').className = 'live on'; };
      es.onerror = () => { $('#q-live').textContent = 'reconnecting…'; $('#q-live').className = 'live'; };
      es.onmessage = (m) => { try { show(JSON.parse(m.data)); } catch (e) { /* skip */ } };
    };
    (async () => {
      if (!token()) { say('Sign in to join the queue', true, 'unauthorized'); return; }
      try {
        follow(await api('GET', base + '/me'));
      } catch (e) {
        if (e.code !== 'queue_not_found') { fail(e); return; }
        $('#q-join').hidden = false;
      }
    })();
    $('#q-join').onclick = async () => {
      $('#q-join').disabled = true;
      try {
        follow(await api('POST', base, undefined, { idempotencyKey: newKey(), tries: 4 }));
      } catch (e) {
        fail(e);
      } finally {
        $('#q-join').disabled = false;
      }
    };
    return () => { closed = true; if (es) es.close(); };
  }

  // ---- the event page ------------------------------------------------------------

  let map = null;       // the SeatMap on screen
  let hold = null;      // {id, seats, deadline, state}
  let live = null;      // {es, index}
  let holdTimer = null;
  let expiryTimer = null;

  function showEvent(id) {
    let closed = false;
    hold = null;
    $('#hold-box').hidden = true;
    $('#order-box').hidden = true;
    say('', false);
    loadEvent(id, () => closed).catch(fail);
    return () => {
      closed = true;
      if (live) { live.es.close(); live = null; }
      clearInterval(holdTimer);
      clearInterval(expiryTimer);
      map = null;
    };
  }

  async function loadEvent(id, isClosed) {
    // A protected on-sale: without a valid admission pass, the buyer waits
    // in the queue first (the waiting room moves it back here once in).
    if (await needsQueue(id)) {
      if (!isClosed()) location.hash = '#/queue/' + id;
      return;
    }
    const ev = await api('GET', '/v1/events/' + encodeURIComponent(id));
    if (isClosed()) return;
    $('#ev-title').textContent = ev.name;
    $('#ev-meta').textContent = [ev.type, ev.location, ev.startsAt && new Date(ev.startsAt).toLocaleString(),
      ev.capacity.toLocaleString() + ' seats', 'hold time ' + ev.limits.holdTTLSeconds + ' s',
      'at most ' + ev.limits.maxSeatsPerBuyer + ' seats per buyer'].filter(Boolean).join(' · ');
    showAvailability(ev);
    showAreas(ev);
    const t0 = performance.now();
    map = new SeatMap($('#seatmap'), ev);
    await loadSeats(id, isClosed);
    if (isClosed()) return;
    window.boxoffice.drawMs = Math.round(performance.now() - t0);
    renderCart();
    expiryTimer = setInterval(() => {
      // Seats of holds that expired by time are free from now on.
      if (!map) return;
      const now = serverNow();
      for (const [i, exp] of map.expiresAt) {
        if (exp <= now) { map.expiresAt.delete(i); map.state[i] = FREE; map.touch(i); }
      }
    }, 250);
  }

  // loadSeats reads the taken seats (held, sold: a free seat has no record)
  // and follows the change feed from the older of the two reads' indexes:
  // changes are whole states, so applying one twice does no harm.
  async function loadSeats(id, isClosed) {
    const path = '/v1/events/' + encodeURIComponent(id) + '/seats?status=';
    const [held, sold] = await Promise.all([api('GET', path + 'held'), api('GET', path + 'sold')]);
    if (isClosed()) return;
    map.state.fill(FREE);
    map.expiresAt.clear();
    for (const s of held.seats) { const i = map.index(s.id); if (i >= 0) map.state[i] = HELD; }
    for (const s of sold.seats) { const i = map.index(s.id); if (i >= 0) map.state[i] = SOLD; }
    for (const i of map.picked) if (map.state[i] !== FREE) map.picked.delete(i);
    map.paintAll();
    follow(id, Math.min(held.index, sold.index), isClosed);
  }

  function follow(id, from, isClosed) {
    if (live) live.es.close();
    const es = new EventSource('/v1/events/' + encodeURIComponent(id) + '/changes?from=' + from);
    live = { es, index: from };
    const badge = $('#live');
    es.onopen = () => { badge.textContent = 'live'; badge.className = 'live on'; };
    es.onerror = () => { badge.textContent = 'reconnecting…'; badge.className = 'live'; };
    es.onmessage = (m) => {
      if (!map) return;
      const d = JSON.parse(m.data);
      live.index = d.index;
      clockSkewMs = d.nowMs - Date.now();
      for (const s of d.seats) {
        const i = map.index(s.id);
        if (i >= 0) map.setState(i, STATE_OF[s.state], s.expiresAtMs);
      }
      window.boxoffice.messages++;
      renderCart();
    };
    es.addEventListener('reset', () => {
      // Too far behind the feed: reload the map, follow from its index.
      es.close();
      badge.textContent = 'reloading…';
      if (!isClosed() && map) loadSeats(id, isClosed).catch(fail);
    });
  }

  function showAvailability(ev) {
    const t = $('#avail');
    t.textContent = '';
    const names = new Map(ev.categories.map((c) => [c.id, c]));
    const head = t.insertRow();
    ['Category', 'Price', 'Free', 'Held', 'Sold'].forEach((h) => { const th = document.createElement('th'); th.textContent = h; head.appendChild(th); });
    for (const a of ev.availability || []) {
      const r = t.insertRow();
      const c = names.get(a.id) || { name: a.id, priceCents: 0 };
      [c.name || c.id, money(c.priceCents), a.free.toLocaleString(), a.held.toLocaleString(), a.sold.toLocaleString()].forEach((v) => { r.insertCell().textContent = v; });
    }
  }

  function money(cents) { return (cents / 100).toFixed(2); }

  function renderCart() {
    const ul = $('#picked');
    ul.textContent = '';
    if (!map) return;
    for (const i of map.picked) {
      const li = document.createElement('li');
      li.textContent = map.id(i);
      ul.appendChild(li);
    }
    $('#hold-btn').disabled = map.picked.size === 0 || !!(hold && hold.state === 'active');
  }

  function onMapClick(px, py) {
    if (!map) return;
    const h = map.hit(px, py);
    if (!h) return;
    if (map.scale < SEAT_ZOOM) {
      const s = h.section;
      map.zoomTo(s.x - GAP, s.y - GAP * 2, s.per + GAP * 2, s.rows + GAP * 3);
      return;
    }
    if (h.seat < 0) return;
    if (h.section.area) {
      say('Standing: places of ' + h.section.id + ' are held by quantity (below the map)', true, 'invalid_argument');
      return;
    }
    const st = map.effective(h.seat);
    if (map.picked.has(h.seat)) {
      map.picked.delete(h.seat);
    } else if (st === FREE) {
      if (map.picked.size >= map.ev.limits.maxSeatsPerBuyer) {
        say('At most ' + map.ev.limits.maxSeatsPerBuyer + ' seats per buyer', true, 'buyer_limit_exceeded');
        return;
      }
      map.picked.add(h.seat);
    } else {
      say('Seat ' + map.id(h.seat) + ' is ' + STATE_NAME[st], true, 'seat_unavailable');
      return;
    }
    map.touch(h.seat);
    renderCart();
  }

  async function holdPicked() {
    if (!map || map.picked.size === 0) return;
    if (!token()) { say('Sign in first', true, 'unauthorized'); return; }
    const seats = Array.from(map.picked, (i) => map.id(i));
    $('#hold-btn').disabled = true;
    try {
      const pass = storedPass(map.ev.id);
      const h = await api('POST', '/v1/events/' + encodeURIComponent(map.ev.id) + '/holds', { seats },
        { idempotencyKey: newKey(), tries: 4, headers: pass ? { 'X-Admission-Pass': pass.token } : {} });
      startHold(h);
      say('Held ' + seats.length + ' seat(s)', false);
    } catch (e) {
      fail(e);
    } finally {
      renderCart();
    }
  }

  // holdArea holds a quantity of places of a general-admission area.
  async function holdArea(ev) {
    ev.preventDefault();
    if (!map) return;
    if (!token()) { say('Sign in first', true, 'unauthorized'); return; }
    const area = $('#area-select').value, quantity = parseInt($('#area-qty').value, 10);
    try {
      const h = await api('POST', '/v1/events/' + encodeURIComponent(map.ev.id) + '/holds', { area, quantity },
        { idempotencyKey: newKey(), tries: 4 });
      startHold(h);
      say('Held ' + h.seats.length + ' standing place(s)', false);
    } catch (e) {
      fail(e);
    }
  }

  function showAreas(ev) {
    const areas = ev.venue.areas || [];
    $('#area-form').hidden = areas.length === 0;
    const sel = $('#area-select');
    sel.textContent = '';
    for (const a of areas) {
      const o = document.createElement('option');
      o.value = a.id;
      o.textContent = a.id + ' (' + a.capacity.toLocaleString() + ')';
      sel.appendChild(o);
    }
  }

  function startHold(h) {
    // The countdown runs on the browser's clock from the hold's own
    // duration, so that a skewed clock does not shorten or lengthen it.
    const ttl = Date.parse(h.expiresAt) - Date.parse(h.createdAt);
    hold = { id: h.id, seats: h.seats, deadline: Date.now() + ttl, state: 'active' };
    map.mine.clear();
    for (const id of h.seats) {
      const i = map.index(id);
      if (i < 0) continue;
      map.picked.delete(i);
      map.mine.add(i);
      map.setState(i, HELD, Date.parse(h.expiresAt));
    }
    $('#hold-id').textContent = h.id;
    $('#hold-status').textContent = 'Seats ' + h.seats.join(', ');
    $('#hold-box').hidden = false;
    $('#order-box').hidden = true;
    $('#pay-btn').disabled = false;
    $('#release-btn').disabled = false;
    $('#countdown').className = '';
    clearInterval(holdTimer);
    tick();
    holdTimer = setInterval(tick, 200);
  }

  function tick() {
    if (!hold) return;
    const left = Math.max(0, hold.deadline - Date.now());
    const secs = Math.ceil(left / 1000);
    $('#countdown').textContent = Math.floor(secs / 60) + ':' + String(secs % 60).padStart(2, '0');
    if (left === 0 && hold.state === 'active') endHold('expired', 'Hold expired: the seats are free again');
  }

  function endHold(state, text) {
    hold.state = state;
    clearInterval(holdTimer);
    $('#hold-status').textContent = text;
    $('#pay-btn').disabled = true;
    $('#release-btn').disabled = true;
    if (state === 'expired') {
      $('#countdown').textContent = '0:00';
      $('#countdown').className = 'expired';
    }
    if (map) {
      const seats = Array.from(map.mine);
      map.mine.clear();
      for (const i of seats) {
        if (state === 'released' || state === 'expired') map.setState(i, FREE);
        else if (state === 'paid') map.setState(i, SOLD);
      }
    }
    renderCart();
  }

  async function pay() {
    if (!hold || hold.state !== 'active') return;
    $('#pay-btn').disabled = true;
    const key = newKey(); // one purchase, whatever is retried
    try {
      const o = await api('POST', '/v1/holds/' + encodeURIComponent(hold.id) + '/purchase',
        { paymentMethod: $('#pay-method').value }, { idempotencyKey: key, tries: 6 });
      endHold('paid', 'Paid');
      const box = $('#order-box');
      box.hidden = false;
      box.textContent = 'Order ' + o.id + ': ' + o.seats.join(', ') + ' — ' + money(o.amountCents) + ' (' + o.state + ')';
      say('Paid: order ' + o.id, false);
    } catch (e) {
      fail(e);
      if (e.code === 'hold_expired') endHold('expired', 'Hold expired: the seats are free again');
      else if (hold.state === 'active') $('#pay-btn').disabled = false;
    }
  }

  async function release() {
    if (!hold || hold.state !== 'active') return;
    try {
      await api('DELETE', '/v1/holds/' + encodeURIComponent(hold.id), undefined, { idempotencyKey: newKey(), tries: 4 });
      endHold('released', 'Released');
    } catch (e) { fail(e); }
  }

  // ---- orders ------------------------------------------------------------

  async function showOrders() {
    if (!token()) { say('Sign in to see your orders', true, 'unauthorized'); return; }
    try {
      const [o, h] = await Promise.all([api('GET', '/v1/me/orders'), api('GET', '/v1/me/holds')]);
      fill('#orders tbody', o.orders || [], (x) => [x.id, x.event, x.seats.join(', '), money(x.amountCents), x.state]);
      fill('#holds tbody', h.holds || [], (x) => [x.id, x.event, x.seats.join(', '), new Date(x.expiresAt).toLocaleTimeString(), x.state]);
    } catch (e) { fail(e); }
  }

  function fill(sel, rows, cells) {
    const tb = $(sel);
    tb.textContent = '';
    for (const x of rows) {
      const r = tb.insertRow();
      for (const v of cells(x)) r.insertCell().textContent = v;
    }
  }

  // ---- organiser ------------------------------------------------------------

  async function createEvent(ev) {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const lines = (s) => String(s).split('\n').map((l) => l.trim()).filter(Boolean).map((l) => l.split(',').map((x) => x.trim()));
    try {
      const body = {
        id: f.get('id'), name: f.get('name'),
        categories: lines(f.get('categories')).map(([id, name, price]) => ({ id, name: name || id, priceCents: parseInt(price, 10) || 0 })),
        venue: { sections: lines(f.get('sections')).map(([id, category, rows, per]) => ({ id, category, rows: parseInt(rows, 10), seatsPerRow: parseInt(per, 10) })) },
        limits: { maxSeatsPerBuyer: parseInt(f.get('maxSeatsPerBuyer'), 10), holdTTLSeconds: parseInt(f.get('holdTTLSeconds'), 10) },
      };
      if (f.get('type')) body.type = f.get('type');
      if (f.get('location')) body.location = f.get('location');
      if (f.get('startsAt')) body.startsAt = new Date(f.get('startsAt')).toISOString();
      const created = await api('POST', '/v1/events', body, { idempotencyKey: newKey(), tries: 4 });
      // This node may be a follower that has not applied the new event
      // yet: its map and change stream are read locally, so wait for it.
      for (let i = 0; i < 50; i++) {
        try { await api('GET', '/v1/events/' + encodeURIComponent(created.id)); break; } catch (e) {
          if (e.code !== 'event_not_found') throw e;
          await sleep(100);
        }
      }
      say('Created ' + created.id, false);
      location.hash = '#/event/' + created.id;
    } catch (e) { fail(e); }
  }

  // ---- sales report ----------------------------------------------------------
  //
  // The report is read from the server's counters. It is refreshed live: on
  // each message of the event's change feed (a seat held, sold or freed),
  // at most once a second, and every few seconds anyway (holds expire by
  // time, without a message).

  const REPORT_MIN_MS = 1000;
  const REPORT_IDLE_MS = 5000;
  let report = null; // {event, data, loads, es, timer, last, pending, closed}

  function showReport(id) {
    say('', false);
    const r = { event: id, data: null, loads: 0, es: null, timer: null, last: 0, pending: false, closed: false };
    report = r;
    $('#rep-event').textContent = id;
    $('#rep-access').hidden = true;
    loadReport(r).then(() => {
      if (r.closed || !r.data) return;
      const es = new EventSource('/v1/events/' + encodeURIComponent(id) + '/changes?from=' + r.data.index);
      r.es = es;
      const badge = $('#rep-live');
      es.onopen = () => { badge.textContent = 'live'; badge.className = 'live on'; };
      es.onerror = () => { badge.textContent = 'reconnecting…'; badge.className = 'live'; };
      es.onmessage = () => refreshReport(r);
      es.addEventListener('reset', () => refreshReport(r));
      loadAccess(r);
    });
    r.timer = setInterval(() => { if (Date.now() - r.last >= REPORT_IDLE_MS) refreshReport(r); }, 1000);
    return () => {
      r.closed = true;
      if (r.es) r.es.close();
      clearInterval(r.timer);
      if (report === r) report = null;
    };
  }

  // refreshReport reloads the report now, or once a second has passed since
  // the last load: a burst of sales is one reload, not one per message.
  function refreshReport(r) {
    if (r.closed || r.pending) return;
    const wait = r.last + REPORT_MIN_MS - Date.now();
    if (wait > 0) {
      r.pending = true;
      setTimeout(() => { r.pending = false; refreshReport(r); }, wait);
      return;
    }
    loadReport(r);
  }

  async function loadReport(r) {
    r.last = Date.now();
    try {
      const d = await api('GET', '/v1/events/' + encodeURIComponent(r.event) + '/report');
      if (r.closed) return;
      r.data = d;
      r.loads++;
      renderReport(d);
    } catch (e) { if (!r.closed) fail(e); }
  }

  function renderReport(d) {
    $('#rep-at').textContent = 'as of ' + new Date(d.at).toLocaleTimeString();
    const tb = $('#rep-lines tbody');
    tb.textContent = '';
    const row = (kind, l) => {
      const tr = tb.insertRow();
      tr.className = kind;
      tr.dataset.id = kind + ':' + l.id;
      [kind, l.id, l.category || '', l.capacity.toLocaleString(), l.free.toLocaleString(), l.held.toLocaleString(),
        l.sold.toLocaleString(), money(l.revenueCents)].forEach((v) => { tr.insertCell().textContent = v; });
    };
    d.categories.forEach((l) => row('category', l));
    d.sections.forEach((l) => row('section', l));
    row('total', d.total);
    const mins = d.salesPerMinute || [];
    const shown = mins.slice(-90);
    const most = Math.max(1, ...shown.map((m) => m.seats));
    const bars = $('#rep-minutes');
    bars.textContent = '';
    for (const m of shown) {
      const i = document.createElement('i');
      i.style.height = Math.round(70 * m.seats / most) + 'px';
      i.title = new Date(m.minute).toLocaleTimeString() + ': ' + m.seats + ' seats, ' + money(m.revenueCents);
      bars.appendChild(i);
    }
    const seats = mins.reduce((a, m) => a + m.seats, 0);
    $('#rep-rate').textContent = mins.length
      ? seats.toLocaleString() + ' seats sold in ' + mins.length + ' min since ' + new Date(mins[0].minute).toLocaleString() +
        ' (' + (seats / mins.length).toFixed(1) + ' a minute; this minute ' + mins[mins.length - 1].seats + ')'
      : 'nothing sold yet';
  }

  // loadAccess shows the grants to those who may see them (owner, managers,
  // admins); for others the section stays hidden.
  async function loadAccess(r) {
    try {
      const a = await api('GET', '/v1/events/' + encodeURIComponent(r.event) + '/access');
      if (r.closed) return;
      fill('#rep-grants tbody', [{ user: a.owner, level: 'owner' }].concat(a.grants), (g) => [g.user, g.level, '']);
      const rows = $('#rep-grants tbody').rows;
      a.grants.forEach((g, i) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = 'Revoke';
        b.addEventListener('click', async () => {
          try {
            await api('DELETE', '/v1/events/' + encodeURIComponent(r.event) + '/access/' + encodeURIComponent(g.user), undefined, { idempotencyKey: newKey(), tries: 4 });
            loadAccess(r);
          } catch (e) { fail(e); }
        });
        rows[i + 1].cells[2].appendChild(b);
      });
      $('#rep-access').hidden = false;
    } catch (e) {
      $('#rep-access').hidden = true;
    }
  }

  async function grant(ev) {
    ev.preventDefault();
    if (!report) return;
    const r = report;
    try {
      await api('PUT', '/v1/events/' + encodeURIComponent(r.event) + '/access/' + encodeURIComponent($('#grant-user').value.trim()),
        { level: $('#grant-level').value }, { tries: 4 });
      $('#grant-user').value = '';
      loadAccess(r);
    } catch (e) { fail(e); }
  }

  // downloadCSV fetches the CSV with the token (a plain link could not
  // send it) and saves it.
  async function downloadCSV() {
    if (!report) return;
    const id = report.event;
    try {
      const resp = await fetch('/v1/events/' + encodeURIComponent(id) + '/report?format=csv', { headers: { 'Authorization': 'Bearer ' + token() } });
      if (!resp.ok) throw new Problem(resp.status, await resp.json().catch(() => null));
      const url = URL.createObjectURL(await resp.blob());
      const a = document.createElement('a');
      a.href = url;
      a.download = id + '-report.csv';
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (e) { fail(e); }
  }

  // ---- wiring ------------------------------------------------------------

  function wireMap() {
    const c = $('#seatmap');
    let drag = null;
    const pos = (e) => { const r = c.getBoundingClientRect(); return [(e.clientX - r.left) * c.width / r.width, (e.clientY - r.top) * c.height / r.height]; };
    c.addEventListener('mousedown', (e) => { const [x, y] = pos(e); drag = { x, y, ox: map && map.ox, oy: map && map.oy, moved: false }; });
    c.addEventListener('mousemove', (e) => {
      if (!drag || !map) return;
      const [x, y] = pos(e);
      if (Math.abs(x - drag.x) + Math.abs(y - drag.y) > 4) drag.moved = true;
      if (drag.moved) { map.ox = drag.ox - (x - drag.x) / map.scale; map.oy = drag.oy - (y - drag.y) / map.scale; map.draw(); }
    });
    window.addEventListener('mouseup', (e) => {
      if (drag && !drag.moved && e.target === c) { const [x, y] = pos(e); onMapClick(x, y); }
      drag = null;
    });
    c.addEventListener('wheel', (e) => {
      if (!map) return;
      e.preventDefault();
      const [x, y] = pos(e);
      map.zoomAt(x, y, e.deltaY < 0 ? 1.25 : 0.8);
    }, { passive: false });
    $('#zoom-in').addEventListener('click', () => map && map.zoomAt(c.width / 2, c.height / 2, 1.5));
    $('#zoom-out').addEventListener('click', () => map && map.zoomAt(c.width / 2, c.height / 2, 1 / 1.5));
    $('#zoom-all').addEventListener('click', () => map && map.fit());
    $('#hold-btn').addEventListener('click', holdPicked);
    $('#area-form').addEventListener('submit', holdArea);
    $('#clear-btn').addEventListener('click', () => {
      if (!map) return;
      const p = Array.from(map.picked);
      map.picked.clear();
      p.forEach((i) => map.touch(i));
      renderCart();
    });
    $('#pay-btn').addEventListener('click', pay);
    $('#release-btn').addEventListener('click', release);
  }

  // window.boxoffice is the page's hook for tests and the curious: the
  // state of a seat as drawn, and the page's own steps.
  window.boxoffice = {
    messages: 0,
    drawMs: null,
    place: null, // the buyer's place in a waiting room, as last shown
    ready() { return !!(map && live && live.es.readyState === 1); },
    seatState(id) {
      if (!map) return null;
      const i = map.index(id);
      if (i < 0) return null;
      const st = STATE_NAME[map.effective(i)];
      return st === 'held' && map.mine.has(i) ? 'mine' : st;
    },
    // pick selects seats by id, as clicks on the zoomed map would.
    pick(ids) {
      for (const id of ids) {
        const i = map.index(id);
        if (i >= 0 && map.effective(i) === FREE) { map.picked.add(i); map.touch(i); }
      }
      renderCart();
      return map.picked.size;
    },
    hold() { return holdPicked(); },
    pay() { return pay(); },
    holdState() { return hold ? hold.state : 'none'; },
    holdId() { return hold ? hold.id : ''; },
    countdown() { return $('#countdown').textContent; },
    lastError() { return lastError; },
    liveIndex() { return live ? live.index : 0; },
    // report is the sales report on screen and how often it was loaded.
    report() { return report && report.data ? { loads: report.loads, data: report.data } : null; },
    reportCell(kind, id, col) {
      const tr = document.querySelector('#rep-lines tr[data-id="' + kind + ':' + id + '"]');
      const cols = ['kind', 'id', 'category', 'capacity', 'free', 'held', 'sold', 'revenue'];
      return tr ? tr.cells[cols.indexOf(col)].textContent : null;
    },
    zoomToSection(id) {
      const s = map && map.byId.get(id);
      if (s) map.zoomTo(s.x - GAP, s.y - GAP * 2, s.per + GAP * 2, s.rows + GAP * 3);
      return !!s;
    },
    fit() { if (map) map.fit(); },
    picked() { return map ? Array.from(map.picked, (i) => map.id(i)) : []; },
    // seatPoint is where a seat is drawn, in page coordinates (to click it).
    seatPoint(id) {
      const i = map ? map.index(id) : -1;
      if (i < 0) return null;
      const s = map.sectionOf(i), k = i - s.base;
      const c = map.canvas, r = c.getBoundingClientRect();
      const x = (s.x + k % s.per + 0.4 - map.ox) * map.scale, y = (s.y + Math.floor(k / s.per) + 0.4 - map.oy) * map.scale;
      return { x: r.left + window.scrollX + x * r.width / c.width, y: r.top + window.scrollY + y * r.height / c.height };
    },
  };

  document.addEventListener('DOMContentLoaded', () => {
    initSignIn();
    wireMap();
    $('#search-form').addEventListener('submit', (e) => { e.preventDefault(); searchEvents(true); });
    $('#more-events').addEventListener('click', () => searchEvents(false));
    $('#create-form').addEventListener('submit', createEvent);
    $('#report-form').addEventListener('submit', (e) => {
      e.preventDefault();
      location.hash = '#/organiser/report/' + $('#report-event').value.trim();
    });
    $('#grant-form').addEventListener('submit', grant);
    $('#rep-csv').addEventListener('click', downloadCSV);
    window.addEventListener('hashchange', route);
    route();
  });
})();
