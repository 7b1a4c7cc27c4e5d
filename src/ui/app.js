/* app.js: the status page's behaviour (src/ui.h). Everything shown comes from ripcord's JSON
 * API — the one the CLI and curl use; the page has no endpoint of its own:
 *
 *   GET  /api/v1/whoami                       who the token is (roles: may this person vote?)
 *   GET  /api/v1/services                     current and previous version per target
 *   GET  /api/v1/rules?history=1              every trigger: value, threshold, state, sparkline
 *   GET  /api/v1/rollbacks?status=needs_approval   what waits for people
 *   GET  /api/v1/rollbacks?limit=25           recent events and their deliveries
 *   GET  /api/v1/audit?limit=20[&before=N]    the audit trail, a page at a time
 *   POST /api/v1/rollbacks/{id}/approve|reject   a vote
 *
 * polled once a second with fetch (EventSource cannot send an Authorization header). The token
 * is entered once and kept in sessionStorage (this tab only), and sent in the Authorization
 * header with credentials: "omit" — no cookie is ever involved, so another site cannot make
 * the browser send an authenticated request (CSRF).
 *
 * All text from the server (service names, trigger names, reasons, errors) goes into the DOM
 * through textContent, setAttribute or createElement, never as markup: names come from users.
 * Sections are rebuilt only when their data changed, and focus is put back on the same control
 * afterwards, so a keyboard user is not thrown out of a table once a second.
 */
'use strict';

(function () {
  const TOKEN_KEY = 'ripcord.token';
  const POLL_MS = 1000;
  const TIMEOUT_MS = 4000;
  const AUDIT_PAGE = 20;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const state = {
    me: null,                 // /api/v1/whoami's data once known
    timer: null,
    running: false,
    rendered: new Map(),      // section id -> the key of what it shows
    triggerStates: new Map(), // trigger key -> last state seen (for announcements)
    pendingSeen: null,        // ids of pending requests seen at the last poll
    msgs: new Map(),          // event id -> {ok, text}: the outcome of this page's last vote
    busy: new Set(),          // event ids with a vote in flight
    audit: { before: null, stack: [], next: null },
    gen: 0,                   // bumped by every (re)start: answers to older requests are dropped
    again: false,             // poll again as soon as the one in flight is done
  };

  const $ = (id) => document.getElementById(id);
  // Sets text only when it changes: a live region re-reads text that is merely set again.
  const setText = (id, text) => { const e = $(id); if (e.textContent !== text) e.textContent = text; };

  /*---- tokens and requests ----------------------------------------------------------------*/

  function getToken() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }
  function setToken(t) {
    try {
      if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage disabled: the token lives as long as this page */ }
  }

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const tok = getToken();
    if (tok) headers.Authorization = 'Bearer ' + tok;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    let res, text;
    try {
      res = await fetch(path, {
        method, headers, signal: ctl.signal, credentials: 'omit', cache: 'no-store',
        redirect: 'error', body: body === undefined ? undefined : JSON.stringify(body),
      });
      text = await res.text();
    } catch (e) {
      throw new ApiError(0, e && e.name === 'AbortError'
        ? 'ripcord did not answer within ' + TIMEOUT_MS / 1000 + ' s'
        : 'ripcord is unreachable (network error)');
    } finally {
      clearTimeout(timer);
    }
    let doc = null;
    try { doc = JSON.parse(text); } catch (e) { doc = null; }
    if (!res.ok) {
      const msg = doc && typeof doc.error === 'string' ? doc.error
        : (text || '').trim().slice(0, 300) || ('HTTP ' + res.status);
      throw new ApiError(res.status, msg);
    }
    return doc && typeof doc === 'object' ? doc.data : null;
  }

  /*---- DOM helpers: text only, never markup -----------------------------------------------*/

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = String(v);
      else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  function stateTag(word, cls) {
    return el('span', { class: 'state state-' + (cls || word).replace(/[^a-z_-]/gi, '-') }, word);
  }

  // A table whose cells carry their column name (the phone layout shows it as a label).
  function table(caption, headers, rows) {
    const t = el('table', { class: 'stack' });
    if (caption) t.append(el('caption', {}, caption));
    const tr = el('tr');
    for (const h of headers) tr.append(el('th', { scope: 'col' }, h));
    t.append(el('thead', {}, tr));
    const tb = el('tbody');
    for (const r of rows) {
      const row = el('tr', r.attrs || {});
      r.cells.forEach((c, i) => {
        const td = el(i === 0 && r.rowHeader ? 'th' : 'td',
          { 'data-label': headers[i], class: c && c.cls, scope: i === 0 && r.rowHeader ? 'row' : null });
        let content = c && Object.prototype.hasOwnProperty.call(c, 'v') ? c.v : c;
        content = [].concat(content).filter((x) => x !== null && x !== undefined && x !== '');
        // One box per cell: the phone layout puts the column name beside it.
        const box = el('div', { class: 'cell' });
        box.append(...(content.length ? content : ['—']).map((x) => (x instanceof Node ? x : String(x))));
        td.append(box);
        row.append(td);
      });
      tb.append(row);
    }
    t.append(tb);
    return t;
  }

  // Replaces a section's content when key differs from what it shows, keeping the focus on
  // the control with the same data-key if it was inside, and what was typed into inputs
  // (a comment half written when another approver's vote changes the row).
  function renderSection(id, key, build) {
    if (state.rendered.get(id) === key) return;
    const box = $(id);
    const active = document.activeElement;
    const focusKey = active && box.contains(active) ? active.getAttribute('data-key') : null;
    const typed = new Map();
    for (const i of box.querySelectorAll('input[data-key]')) {
      if (i.value) typed.set(i.getAttribute('data-key'), i.value);
    }
    box.replaceChildren(...[].concat(build()));
    state.rendered.set(id, key);
    for (const c of box.querySelectorAll('[data-key]')) {
      const k = c.getAttribute('data-key');
      if (c.tagName === 'INPUT' && typed.has(k)) c.value = typed.get(k);
      if (focusKey && k === focusKey) c.focus();
    }
  }

  function sectionError(id, err) {
    renderSection(id, 'error:' + err.status + ':' + err.message,
      () => el('p', { class: 'msg msg-error' }, err.message));
  }

  /*---- formatting -------------------------------------------------------------------------*/

  function fmtNum(v) {
    if (v === null || v === undefined || typeof v !== 'number' || !isFinite(v)) return '—';
    if (v === 0) return '0';
    const a = Math.abs(v);
    if (a >= 1e6 || a < 1e-3) return v.toExponential(3);
    return String(parseFloat(v.toPrecision(4)));
  }
  function fmtDur(ms) {
    if (!ms) return '—';
    const units = [['d', 86400000], ['h', 3600000], ['m', 60000], ['s', 1000]];
    let out = '';
    let left = ms;
    for (const [u, n] of units) {
      if (left >= n) { out += Math.floor(left / n) + u; left %= n; }
    }
    if (left || !out) out += left + 'ms';
    return out;
  }
  function fmtTime(ms) {
    if (!ms) return '—';
    const d = new Date(ms);
    return isNaN(d) ? '—' : d.toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
  }
  const OPS = { '>=': '≥', '>': '>', '<=': '≤', '<': '<' };
  const PAST = { approve: 'approved', reject: 'rejected' };
  const past = (d) => PAST[d] || String(d);

  /*---- sparkline --------------------------------------------------------------------------*/

  function spark(trig) {
    const h = trig.history;
    const W = 160, H = 36, P = 3;
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('role', 'img');
    const mk = (tag, attrs) => {
      const e = document.createElementNS(SVG_NS, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
      svg.append(e);
      return e;
    };
    const pts = h && Array.isArray(h.points) ? h.points.filter((p) => typeof p[1] === 'number') : [];
    const thr = typeof trig.threshold === 'number' ? trig.threshold : null;
    const span = h ? h.span_ms : 0;
    if (!h || !pts.length || !span || !h.end_ms) {
      svg.setAttribute('aria-label', 'no values in the last ' + fmtDur(span));
      mk('text', { x: 4, y: H / 2 + 3, class: 'spark-empty' }).textContent = 'no values yet';
      return svg;
    }
    let lo = Math.min(...pts.map((p) => p[1])), hi = Math.max(...pts.map((p) => p[1]));
    if (thr !== null) { lo = Math.min(lo, thr); hi = Math.max(hi, thr); }
    if (hi === lo) { hi += 1; lo -= 1; }
    const t0 = h.end_ms - span;
    const x = (t) => Math.min(W - P, Math.max(P, P + ((t + h.step_ms / 2 - t0) / span) * (W - 2 * P)));
    const y = (v) => H - P - ((v - lo) / (hi - lo)) * (H - 2 * P);
    if (thr !== null) mk('line', { x1: 0, x2: W, y1: y(thr), y2: y(thr), class: 'spark-threshold' });
    // A gap of more than one step (no value then) breaks the line.
    let d = '';
    pts.forEach((p, i) => {
      const gap = i === 0 || p[0] - pts[i - 1][0] > h.step_ms * 1.5;
      d += (gap ? 'M' : 'L') + x(p[0]).toFixed(1) + ' ' + y(p[1]).toFixed(1) + ' ';
    });
    mk('path', { d: d.trim(), class: 'spark-line' });
    const op = trig.op || '>=';
    const past = (v) => thr !== null && (op === '>=' ? v >= thr : op === '>' ? v > thr : op === '<=' ? v <= thr : v < thr);
    let crossed = 0;
    for (const p of pts) {
      if (past(p[1])) { crossed++; mk('circle', { cx: x(p[0]), cy: y(p[1]), r: 2, class: 'spark-cross' }); }
    }
    const label = 'last ' + fmtDur(span) + ': from ' + fmtNum(Math.min(...pts.map((p) => p[1]))) +
      ' to ' + fmtNum(Math.max(...pts.map((p) => p[1]))) +
      (thr !== null ? ', threshold ' + (OPS[op] || op) + ' ' + fmtNum(thr) + ', ' + crossed + ' of ' +
        pts.length + ' steps past it' : '');
    svg.setAttribute('aria-label', label);
    mk('title', {}).textContent = label;
    return svg;
  }

  /*---- sections ---------------------------------------------------------------------------*/

  function renderServices(list) {
    renderSection('services', JSON.stringify(list), () => {
      if (!list || !list.length) return el('p', { class: 'empty' }, 'No deploys recorded yet.');
      return table(null, ['Service', 'Environment', 'Current version', 'Previous version', 'Deploys'],
        list.map((s) => ({
          rowHeader: true,
          attrs: { 'data-service': s.service, 'data-environment': s.environment },
          cells: [
            s.service, s.environment,
            [el('strong', {}, s.current.version),
              el('span', { class: 'sub' }, 'since ' + fmtTime(s.current.started_at) +
                (s.current.deployer ? ' by ' + s.current.deployer : '') +
                (s.current.is_rollback ? ' (a rollback)' : ''))],
            s.previous ? [s.previous.version, el('span', { class: 'sub' }, fmtTime(s.previous.started_at))]
              : 'none (nothing to roll back to)',
            { v: String(s.deploys), cls: 'num' },
          ],
        })));
    });
  }

  function triggerState(t) {
    const words = [];
    if (t.state === 'firing') words.push(stateTag('FIRING', 'firing'));
    else if (t.state === 'pending') words.push(stateTag('pending', 'pending'));
    else words.push(stateTag('inactive', 'inactive'));
    if (t.warning) words.push(' ', stateTag('warning'));
    if (t.no_data) words.push(' ', stateTag('no data', 'no-data'));
    if (t.dry_run) words.push(' ', stateTag('dry run', 'dry-run'));
    if (t.error) words.push(el('span', { class: 'sub' }, 'error: ' + t.error));
    return words;
  }

  function renderRules(data) {
    const rows = [];
    const announce = [];
    for (const r of (data && data.rules) || []) {
      for (const t of r.triggers || []) {
        const key = r.service + '/' + r.environment + '/' + t.name;
        const prev = state.triggerStates.get(key);
        if (prev !== undefined && prev !== t.state) {
          announce.push(r.service + ' ' + r.environment + ', trigger ' + t.name + ': now ' + t.state +
            ' (value ' + fmtNum(t.value) + ', threshold ' + (OPS[t.op] || t.op) + ' ' + fmtNum(t.threshold) + ')');
        }
        state.triggerStates.set(key, t.state);
        rows.push({
          attrs: { 'data-service': r.service, 'data-environment': r.environment, 'data-trigger': t.name, 'data-state': t.state },
          cells: [
            [el('strong', {}, r.service), el('span', { class: 'sub' }, r.environment)],
            [t.name, el('code', { class: 'sub expr' }, t.expr)],
            { v: triggerState(t), cls: 'state-cell' },
            { v: t.value === null ? 'no data' : fmtNum(t.value), cls: 'num value' },
            { v: (OPS[t.op] || t.op) + ' ' + fmtNum(t.threshold) +
                (typeof t.warn_threshold === 'number' ? ' (warn ' + fmtNum(t.warn_threshold) + ')' : ''), cls: 'num threshold' },
            [fmtDur(t.window_ms || (t.history && t.history.span_ms)),
              t.for_ms ? el('span', { class: 'sub' }, 'for ' + fmtDur(t.for_ms)) : null],
            { v: spark(t), cls: 'spark-cell' },
            [t.pending_since_ms && !t.firing_since_ms ? el('span', { class: 'sub' }, 'pending since ' + fmtTime(t.pending_since_ms)) : null,
              t.firing_since_ms ? el('span', { class: 'sub' }, 'firing since ' + fmtTime(t.firing_since_ms)) : null,
              typeof t.last_detection_latency_seconds === 'number'
                ? el('span', { class: 'sub' }, 'detected in ' + fmtNum(t.last_detection_latency_seconds * 1000) + ' ms') : null],
          ],
        });
      }
    }
    if (announce.length) say(announce.join('. '));
    // The key leaves out what changes on every round without changing the view (evaluation
    // counters and times), so that an idle page does not rebuild the table each second.
    const key = JSON.stringify(((data && data.rules) || []).map((r) => [r.service, r.environment,
      (r.triggers || []).map((t) => [t.name, t.expr, t.op, t.threshold, t.warn_threshold, t.window_ms,
        t.for_ms, t.value, t.state, t.warning, t.no_data, t.dry_run, t.error, t.pending_since_ms,
        t.firing_since_ms, t.last_detection_latency_seconds, t.history])]));
    renderSection('rules', key, () => {
      if (!rows.length) return el('p', { class: 'empty' }, 'No rules loaded.');
      return table(null, ['Target', 'Trigger', 'State', 'Value now', 'Threshold', 'Window', 'Over the window', 'Details'], rows);
    });
  }

  function canVote() {
    const me = state.me;
    return !!(me && !me.open && me.name && (me.roles || []).some((r) => r === 'approver' || r === 'admin'));
  }

  async function vote(ev, verb) {
    const id = ev.id;
    if (state.busy.has(id)) return;
    const input = $('comment-' + id);
    const comment = input ? input.value.trim() : '';
    state.busy.add(id);
    state.msgs.delete(id);
    renderApprovals(state.lastPending || []);
    const gen = state.gen;
    try {
      const d = await api('POST', '/api/v1/rollbacks/' + encodeURIComponent(id) + '/' + verb,
        comment ? { comment } : undefined);
      const text = (verb === 'approve' ? 'Approved' : 'Rejected') + ': request ' + id + ' is ' +
        d.state + ' (' + d.approvals + ' of ' + d.required + ' approvals)';
      state.msgs.set(id, { ok: true, text });
      say(text);
    } catch (e) {
      const text = (e.status ? 'HTTP ' + e.status + ': ' : '') + e.message;
      state.msgs.set(id, { ok: false, text });
      say('Vote on request ' + id + ' refused: ' + e.message);
    } finally {
      state.busy.delete(id);
    }
    while (state.msgs.size > 5) state.msgs.delete(state.msgs.keys().next().value); // the latest only
    if (gen !== state.gen) return; // signed out or in again meanwhile
    renderApprovals(state.lastPending || []);
    // The buttons may be gone (this identity voted): keep a keyboard user at the outcome.
    const active = document.activeElement;
    if (!active || active === document.body) {
      const m = $('msg-' + id);
      if (m) m.focus();
    }
    pollSoon();
  }

  function renderApprovals(list) {
    state.lastPending = list;
    const voter = canVote();
    const me = state.me && state.me.name;
    const key = JSON.stringify([list, voter, me, [...state.msgs], [...state.busy]]);
    renderSection('approvals', key, () => {
      const out = [];
      // Outcomes of this page's votes on requests no longer pending (the last vote closed it).
      const shown = new Set(list.map((e) => e.id));
      const done = [...state.msgs].filter(([id]) => !shown.has(id));
      if (done.length) {
        out.push(el('ul', { class: 'plain outcomes' }, ...done.map(([id, m]) =>
          el('li', { id: 'msg-' + id, tabindex: -1, class: 'msg ' + (m.ok ? 'msg-ok' : 'msg-error') }, m.text))));
      }
      if (!list.length) {
        out.push(el('p', { class: 'empty' }, 'Nothing waits for approval.'));
        return out;
      }
      if (!voter) {
        out.push(el('p', { class: 'legend' }, state.me && state.me.open
          ? 'ripcord runs without identities: votes need a named approver, so none can be cast here.'
          : 'Sign in with an approver token to approve or reject.'));
      }
      out.push(table(null, ['Request', 'Target', 'Rollback', 'Why', 'Approvals', 'Expires', 'Decision'],
        list.map((ev) => {
          const ap = ev.approval || {};
          const votes = (ap.votes || []).map((v) => el('li', {}, v.identity + ' ' + past(v.decision) + ' ' + fmtTime(v.at) +
            (v.comment ? ': “' + v.comment + '”' : '')));
          const mine = me && (ap.votes || []).find((v) => v.identity === me);
          const msg = state.msgs.get(ev.id);
          const busy = state.busy.has(ev.id);
          const decision = [];
          if (voter && mine) {
            decision.push(el('p', { class: 'msg' }, 'You ' + past(mine.decision) + ' this request.'));
          } else if (voter) {
            const label = ev.service + ' ' + ev.environment;
            decision.push(el('div', { class: 'vote' },
              el('label', { for: 'comment-' + ev.id }, 'Comment (optional)'),
              el('input', { id: 'comment-' + ev.id, type: 'text', maxlength: 1000, 'data-key': 'comment-' + ev.id }),
              el('button', {
                type: 'button', class: 'approve', 'data-action': 'approve', 'data-key': 'approve-' + ev.id,
                'aria-label': 'Approve rollback request ' + ev.id + ' (' + label + ')', 'aria-disabled': busy ? 'true' : null,
                onclick: () => vote(ev, 'approve'),
              }, 'Approve'),
              el('button', {
                type: 'button', class: 'reject', 'data-action': 'reject', 'data-key': 'reject-' + ev.id,
                'aria-label': 'Reject rollback request ' + ev.id + ' (' + label + ')', 'aria-disabled': busy ? 'true' : null,
                onclick: () => vote(ev, 'reject'),
              }, 'Reject')));
          }
          if (busy) decision.push(el('p', { class: 'msg' }, 'Sending…'));
          if (msg) decision.push(el('p', { id: 'msg-' + ev.id, tabindex: -1, class: 'msg ' + (msg.ok ? 'msg-ok' : 'msg-error') }, msg.text));
          return {
            rowHeader: true,
            attrs: { 'data-event': ev.id },
            cells: [
              '#' + ev.id,
              [el('strong', {}, ev.service), el('span', { class: 'sub' }, ev.environment)],
              [(ev.from && ev.from.version) + ' → ' + (ev.to && ev.to.version)],
              [ev.reason || '', ap.requester ? el('span', { class: 'sub' }, 'requested by ' + ap.requester)
                : el('span', { class: 'sub' }, 'trigger ' + ((ev.trigger && ev.trigger.name) || '?'))],
              [el('strong', { class: 'count' }, (ap.approvals || 0) + ' of ' + (ap.required || '?')),
                votes.length ? el('ul', { class: 'plain' }, ...votes) : null],
              fmtTime(ap.expires_at),
              decision.length ? decision : '—',
            ],
          };
        })));
      return out;
    });
    const ids = list.map((e) => e.id).sort();
    if (state.pendingSeen) {
      const fresh = ids.filter((i) => !state.pendingSeen.includes(i));
      if (fresh.length) say('New approval request' + (fresh.length > 1 ? 's' : '') + ': ' + fresh.map((i) => '#' + i).join(', '));
    }
    state.pendingSeen = ids;
  }

  function renderRollbacks(list) {
    renderSection('rollbacks', JSON.stringify(list), () => {
      if (!list || !list.length) return el('p', { class: 'empty' }, 'No rollback events yet.');
      return table(null, ['Event', 'When', 'Target', 'Status', 'Rollback', 'Cause', 'Deliveries'],
        list.map((ev) => {
          const dl = (ev.deliveries || []).map((d) => el('li', {}, d.receiver + ': ', stateTag(d.state),
            ' (' + d.attempts + ' attempt' + (d.attempts === 1 ? '' : 's') +
            (d.last_status ? ', HTTP ' + d.last_status : '') + (d.last_error ? ', ' + d.last_error : '') + ')'));
          const ap = ev.approval;
          const trig = ev.trigger || {};
          return {
            rowHeader: true,
            attrs: { 'data-event': ev.id, 'data-status': ev.status },
            cells: [
              '#' + ev.id,
              fmtTime(ev.created_at),
              [el('strong', {}, ev.service), el('span', { class: 'sub' }, ev.environment)],
              [stateTag(ev.status), ap ? el('span', { class: 'sub' }, 'approval ' + ap.state + ' (' + ap.approvals + ' of ' + ap.required + ')') : null],
              (ev.from && ev.from.version ? ev.from.version : '—') + ' → ' + (ev.to && ev.to.version ? ev.to.version : '—'),
              [trig.name && ev.kind !== 'manual_rollback' ? trig.name + ' = ' + fmtNum(trig.value) + ' (' + (OPS[trig.op] || trig.op || '') + ' ' + fmtNum(trig.threshold) + ')' : '',
                el('span', { class: 'sub' }, ev.reason || '')],
              dl.length ? el('ul', { class: 'plain' }, ...dl) : 'none',
            ],
          };
        }));
    });
  }

  function auditPath() {
    return '/api/v1/audit?limit=' + AUDIT_PAGE + (state.audit.before ? '&before=' + state.audit.before : '');
  }

  function renderAudit(data) {
    const entries = (data && data.entries) || [];
    state.audit.next = data && data.next && data.next.before ? data.next.before : null;
    renderSection('audit', JSON.stringify(entries.map((e) => e.seq)), () => {
      if (!entries.length) return el('p', { class: 'empty' }, 'The audit trail is empty.');
      return table(null, ['#', 'When', 'Actor', 'Action', 'Subject'], entries.map((e) => ({
        rowHeader: true,
        cells: [String(e.seq), fmtTime(e.at_ms), e.actor, e.action, e.subject],
      })));
    });
    $('audit-older').disabled = !state.audit.next;
    $('audit-newer').disabled = !state.audit.before;
    $('audit-page').textContent = state.audit.before
      ? 'Entries before #' + state.audit.before : 'Newest entries';
  }

  /*---- status line, alerts, announcements -------------------------------------------------*/

  // Announcements for screen readers: each one a paragraph of its own in the live region, so
  // that two in one poll (a trigger firing, its approval request) are both read; the last five
  // are kept.
  function say(text) {
    const a = $('announce');
    a.append(el('p', {}, text));
    while (a.childElementCount > 5) a.firstElementChild.remove();
  }

  function alertBox(text) {
    const a = $('alert');
    if (!text) { a.hidden = true; a.textContent = ''; return; }
    if (a.textContent !== text) a.textContent = text;
    a.hidden = false;
  }

  function showIdentity() {
    const me = state.me;
    const signedIn = !!(me && me.name);
    $('identity').hidden = !signedIn;
    $('signin').hidden = signedIn || !!(me && me.open);
    if (signedIn) {
      $('who').textContent = me.name;
      $('roles').textContent = '(' + ((me.roles || []).join(', ') || 'no roles') + ')';
    }
    setText('conn', me && me.open ? 'Live. ripcord runs without identities: no sign-in needed.'
      : signedIn ? 'Live.' : 'Sign in to see the status.');
  }

  function clearData() {
    state.rendered.clear();
    for (const id of ['services', 'rules', 'approvals', 'rollbacks', 'audit']) {
      $(id).replaceChildren(el('p', { class: 'empty' }, 'Sign in to see this.'));
    }
  }

  // 401: the token is missing or wrong — ask for one (a stored token that no longer works is
  // dropped). 403: the identity may not read. Anything else is shown and retried.
  function authProblem(err) {
    if (err.status === 401) {
      const had = !!getToken();
      setToken('');
      state.me = null;
      stop();
      showIdentity();
      clearData();
      alertBox((had ? 'The token was not accepted: ' : 'Sign in with a viewer token: ') + err.message + ' (HTTP 401)');
      $('token').focus();
      return true;
    }
    if (err.status === 403) {
      alertBox('This identity may not read the status: ' + err.message + ' (HTTP 403)');
      return true;
    }
    return false;
  }

  /*---- the poll loop ----------------------------------------------------------------------*/

  function stop() {
    state.running = false;
    if (state.timer) clearTimeout(state.timer);
    state.timer = null;
  }

  function pollSoon() {
    if (!state.running) return;
    if (inFlight) { state.again = true; return; }
    if (state.timer) clearTimeout(state.timer);
    state.timer = setTimeout(poll, 0);
  }

  let inFlight = false;
  async function poll() {
    state.timer = null;
    if (!state.running) return;
    if (inFlight) { state.again = true; return; }
    inFlight = true;
    const gen = state.gen;
    try {
      const names = ['services', 'rules', 'approvals', 'rollbacks', 'audit'];
      const results = await Promise.allSettled([
        api('GET', '/api/v1/services'),
        api('GET', '/api/v1/rules?history=1'),
        api('GET', '/api/v1/rollbacks?status=needs_approval&limit=100'),
        api('GET', '/api/v1/rollbacks?limit=25'),
        api('GET', auditPath()),
      ]);
      if (!state.running || gen !== state.gen) return;
      const errors = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
      const auth = errors.find((e) => e.status === 401) || errors.find((e) => e.status === 403);
      if (auth && authProblem(auth) && auth.status === 401) return;
      const down = errors.find((e) => e.status === 0);
      if (down) alertBox(down.message + '. Retrying every second; what is shown is from ' + $('updated').textContent + '.');
      else if (!auth) alertBox('');
      results.forEach((r, i) => {
        const id = names[i];
        if (r.status === 'rejected') {
          if (r.reason.status !== 0) sectionError(id, r.reason);
          return;
        }
        try {
          if (id === 'services') renderServices(r.value || []);
          else if (id === 'rules') renderRules(r.value || {});
          else if (id === 'approvals') renderApprovals(r.value || []);
          else if (id === 'rollbacks') renderRollbacks(r.value || []);
          else renderAudit(r.value || {});
        } catch (e) {
          sectionError(id, { status: -1, message: 'cannot show this: ' + e.message });
        }
      });
      if (!down) {
        setText('updated', fmtTime(Date.now()));
        setText('conn', state.me && state.me.open ? 'Live. ripcord runs without identities: no sign-in needed.' : 'Live.');
      } else {
        setText('conn', 'Disconnected: retrying.');
      }
    } finally {
      inFlight = false;
      if (state.running && !state.timer) state.timer = setTimeout(poll, state.again ? 0 : POLL_MS);
      state.again = false;
    }
  }

  // Who am I (and does this ripcord need a token at all)? Then start polling.
  async function start() {
    stop();
    const gen = ++state.gen;
    let me;
    try {
      me = await api('GET', '/api/v1/whoami');
    } catch (e) {
      if (gen !== state.gen) return;
      if (e.status === 403) {
        // A token that authenticates but may not read (a writer's): let another be entered.
        setToken('');
        state.me = null;
        showIdentity();
        clearData();
        alertBox('This token may not read the status: ' + e.message + ' (HTTP 403)');
        return;
      }
      if (authProblem(e)) return;
      alertBox(e.message + '. Retrying every second.');
      setText('conn', 'Disconnected: retrying.');
      state.timer = setTimeout(start, POLL_MS);
      return;
    }
    if (gen !== state.gen) return;
    state.me = me;
    alertBox('');
    showIdentity();
    state.rendered.clear();
    state.running = true;
    poll();
  }

  function init() {
    $('signin').addEventListener('submit', (ev) => {
      ev.preventDefault(); // no navigation (and form-action 'none' would refuse one)
      const input = $('token');
      const tok = input.value.trim();
      input.value = '';
      if (!tok) return;
      setToken(tok);
      start();
    });
    $('signout').addEventListener('click', () => {
      state.gen++;
      setToken('');
      state.me = null;
      stop();
      state.msgs.clear();
      alertBox('');
      showIdentity();
      clearData();
      $('token').focus();
    });
    $('audit-older').addEventListener('click', () => {
      if (!state.audit.next) return;
      state.audit.stack.push(state.audit.before);
      state.audit.before = state.audit.next;
      pollSoon();
    });
    $('audit-newer').addEventListener('click', () => {
      state.audit.before = state.audit.stack.length ? state.audit.stack.pop() : null;
      pollSoon();
    });
    start();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
