/* The coordinators' dashboard of linkage-gateway: live queues, incident detail and actions,
 * planned-work windows. Plain ES2017, no build step, no external resources.
 *
 * Data flow: GET /api/incidents gives a snapshot (rows, the ledger position, the server's
 * clock); the EventSource on /api/stream then sends every later change as the full row
 * (`incident`), the planned-work windows when they change (`planned_work`), or `reset` when
 * the gateway cannot resume and the snapshot must be fetched again. The page keeps one Map of rows by id and redraws from it.
 *
 * Safety: data only ever reaches the DOM through textContent and attribute setters (el()),
 * never innerHTML, so a description cannot inject markup. */
'use strict';

(function () {
  /* ------------------------------------------------------------------ labels */

  /* Every label of the page, both languages. Keys of domain words are the API's own words
   * (category names, tiers, states, severities, event types), so lookups need no mapping. */
  const I18N = {
    en: {
      title: 'Linkage — incident queues',
      lang_toggle: '中文',
      logout: 'Change token',
      position: 'Ledger position',
      conn_live: 'live',
      conn_reconnecting: 'reconnecting…',
      conn_offline: 'offline',
      token_title: 'API token',
      token_label: 'Token',
      token_submit: 'Open',
      token_needed: 'Enter an API token to open the dashboard.',
      token_refused: 'The token was refused (401). Enter a valid token.',
      group_by: 'Group by',
      group_tier: 'Tier',
      group_community: 'Community',
      f_tier: 'Tier',
      f_community: 'Community',
      f_compound: 'Compound',
      f_state: 'State',
      f_category: 'Category',
      f_severity: 'Severity',
      f_search: 'Search',
      search_ph: 'id, kind, description, building…',
      all: 'All',
      show_closed: 'Show closed',
      counts: '{shown} shown of {total}',
      unrouted: 'Not yet routed',
      unknown_community: 'Unknown community',
      empty_group: 'No incidents',
      overdue: 'OVERDUE',
      suppressed: 'held back',
      held_back_by: 'held back by {id}',
      exercise_tag: 'EXERCISE',
      missing_tag: 'no {role} engaged',
      group_none: 'None: most urgent first',
      assignments: 'Units called',
      a_state: 'State',
      a_tier: 'Tier',
      a_role: 'Role',
      a_unit: 'Unit',
      lead_mark: 'lead',
      a_declined: 'declined or no answer',
      call_again: 'Call again',
      link: 'Link to this incident',
      act_call: 'Call a role again',
      arg_call: 'role, e.g. fire_brigade',
      need_arg_call: 'Name the role to call (fire_brigade, property_company, ...).',
      acknowledged_tag: 'acknowledged',
      deadline_acknowledge: 'acknowledge in',
      deadline_resolve: 'resolve in',
      late_acknowledge: 'acknowledge overdue',
      late_resolve: 'resolve overdue',
      no_deadline: 'no deadline',
      merged_into: 'merged into',
      units: 'units',
      timeline: 'Timeline',
      tl_at: 'Time',
      tl_type: 'Event',
      tl_actor: 'Actor',
      tl_detail: 'Detail',
      close_panel: '×',
      id: 'Incident',
      severity: 'Severity',
      category: 'Category',
      kind: 'Kind',
      state: 'State',
      tier: 'Tier',
      organisation: 'Answering',
      compound: 'Compound',
      community: 'Community',
      street: 'Street',
      building: 'Building',
      unit: 'Unit',
      floor: 'Floor',
      description: 'Description',
      reported_at: 'Reported',
      updated_at: 'Updated',
      deadline: 'Deadline',
      lead_unit: 'Lead unit',
      loc_building: 'Bldg {v}',
      loc_unit: 'Unit {v}',
      loc_floor: '{v}F',
      act_acknowledge: 'Acknowledge',
      act_escalate: 'Escalate',
      'act_de-escalate': 'De-escalate',
      act_merge: 'Merge',
      act_close: 'Close',
      act_note: 'Add note',
      arg_acknowledge: 'note (optional)',
      arg_escalate: 'reason',
      'arg_de-escalate': 'reason',
      arg_merge: 'into incident id',
      arg_close: 'reason (required)',
      arg_note: 'note',
      need_arg_close: 'A reason is required to close.',
      need_arg_merge: 'Name the incident to merge into.',
      need_arg_note: 'Write the note first.',
      sending: 'Sending…',
      done: '{action}: done (position {position})',
      failed: '{action} failed: {error}',
      retry_hint: 'Press again to retry with the same command.',
      reader_only: 'Read-only token: actions are not available.',
      planned_title: 'Planned-work windows',
      planned_declare: 'Declare a window',
      planned_none: 'No windows',
      from: 'From',
      to: 'To',
      reason: 'Reason',
      optional: 'optional',
      declare: 'Declare',
      lift: 'Lift',
      lift_reason: 'reason for lifting',
      lifted: 'lifted',
      active: 'active',
      ended: 'ended',
      upcoming: 'upcoming',
      whole_compound: 'whole compound',
      any_kind: 'any kind',
      declared: 'Window {id} declared',
      lifted_ok: 'Window {id} lifted',
      load_failed: 'Could not load {what}: {error}',
      forbidden: 'Not allowed for this token (403).',
      busy: 'The system is busy; retry in a moment.',
      network: 'network error',
      // tiers
      compound_tier: 'Compound',
      community_tier: 'Community',
      street_tier: 'Street',
      district_tier: 'District',
      // categories
      accident_disaster: 'Accident / disaster',
      natural_disaster: 'Natural disaster',
      public_health: 'Public health',
      social_safety: 'Social safety',
      property_service: 'Property service',
      neighbour_dispute: 'Neighbour dispute',
      latent_hazard: 'Latent hazard',
      // states
      // severities
      sev_I: 'I especially major',
      sev_II: 'II major',
      sev_III: 'III large',
      sev_IV: 'IV general',
      // kinds known to the demo plans (others show as sent)
      kind_gas_leak: 'gas leak',
      kind_lift_entrapment: 'lift entrapment',
      kind_flooding: 'flooding',
      kind_fire: 'fire',
      kind_blocked_fire_lane: 'blocked fire lane',
      // timeline event types
      role_coordinator: 'coordinator',
      role_reporter: 'reporter',
      role_reader: 'reader',
    },
    zh: {
      title: '联动响应 — 事件队列',
      lang_toggle: 'EN',
      logout: '更换令牌',
      position: '账本位置',
      conn_live: '实时',
      conn_reconnecting: '重新连接中…',
      conn_offline: '离线',
      token_title: 'API 令牌',
      token_label: '令牌',
      token_submit: '打开',
      token_needed: '请输入 API 令牌以打开值班台。',
      token_refused: '令牌被拒绝（401），请输入有效令牌。',
      group_by: '分组',
      group_tier: '层级',
      group_community: '社区',
      f_tier: '层级',
      f_community: '社区',
      f_compound: '小区',
      f_state: '状态',
      f_category: '类别',
      f_severity: '等级',
      f_search: '搜索',
      search_ph: '编号、类型、描述、楼栋…',
      all: '全部',
      show_closed: '显示已关闭',
      counts: '显示 {shown} / 共 {total}',
      unrouted: '尚未分派层级',
      unknown_community: '未知社区',
      empty_group: '无事件',
      overdue: '超时',
      suppressed: '暂缓升级',
      held_back_by: '因 {id} 暂缓升级',
      exercise_tag: '演练',
      missing_tag: '无{role}到位',
      group_none: '不分组：最紧急在前',
      assignments: '已呼叫单位',
      a_state: '状态',
      a_tier: '层级',
      a_role: '角色',
      a_unit: '单位',
      lead_mark: '牵头',
      a_declined: '拒单或未应答',
      call_again: '重新呼叫',
      link: '本事件链接',
      act_call: '重新呼叫某角色',
      arg_call: '角色，如 fire_brigade',
      need_arg_call: '请填写要呼叫的角色（fire_brigade、property_company 等）。',
      acknowledged_tag: '已受理',
      deadline_acknowledge: '受理剩余',
      deadline_resolve: '处置剩余',
      late_acknowledge: '受理已超时',
      late_resolve: '处置已超时',
      no_deadline: '无时限',
      merged_into: '已合并至',
      units: '单位',
      timeline: '时间线',
      tl_at: '时间',
      tl_type: '事件',
      tl_actor: '操作者',
      tl_detail: '详情',
      close_panel: '×',
      id: '事件',
      severity: '等级',
      category: '类别',
      kind: '类型',
      state: '状态',
      tier: '层级',
      organisation: '责任主体',
      compound: '小区',
      community: '社区',
      street: '街道',
      building: '楼栋',
      unit: '单元',
      floor: '楼层',
      description: '描述',
      reported_at: '上报时间',
      updated_at: '更新时间',
      deadline: '时限',
      lead_unit: '牵头单位',
      loc_building: '{v}栋',
      loc_unit: '{v}单元',
      loc_floor: '{v}层',
      act_acknowledge: '受理',
      act_escalate: '升级',
      'act_de-escalate': '降级',
      act_merge: '合并',
      act_close: '关闭',
      act_note: '添加备注',
      arg_acknowledge: '备注（可选）',
      arg_escalate: '原因',
      'arg_de-escalate': '原因',
      arg_merge: '目标事件编号',
      arg_close: '原因（必填）',
      arg_note: '备注',
      need_arg_close: '关闭事件须填写原因。',
      need_arg_merge: '请填写要合并到的事件编号。',
      need_arg_note: '请先填写备注。',
      sending: '发送中…',
      done: '{action}：完成（位置 {position}）',
      failed: '{action}失败：{error}',
      retry_hint: '再次点击将以同一指令重试。',
      reader_only: '只读令牌：不能操作。',
      planned_title: '计划作业窗口',
      planned_declare: '登记窗口',
      planned_none: '暂无窗口',
      from: '开始',
      to: '结束',
      reason: '原因',
      optional: '可选',
      declare: '登记',
      lift: '解除',
      lift_reason: '解除原因',
      lifted: '已解除',
      active: '生效中',
      ended: '已结束',
      upcoming: '未开始',
      whole_compound: '整个小区',
      any_kind: '任何类型',
      declared: '窗口 {id} 已登记',
      lifted_ok: '窗口 {id} 已解除',
      load_failed: '无法加载{what}：{error}',
      forbidden: '此令牌无权操作（403）。',
      busy: '系统繁忙，请稍后重试。',
      network: '网络错误',
      compound_tier: '小区',
      community_tier: '社区',
      street_tier: '街道',
      district_tier: '区',
      accident_disaster: '事故灾难',
      natural_disaster: '自然灾害',
      public_health: '公共卫生',
      social_safety: '社会安全',
      property_service: '物业服务',
      neighbour_dispute: '邻里纠纷',
      latent_hazard: '安全隐患',
      sev_I: 'I 特别重大',
      sev_II: 'II 重大',
      sev_III: 'III 较大',
      sev_IV: 'IV 一般',
      kind_gas_leak: '燃气泄漏',
      kind_lift_entrapment: '电梯困人',
      kind_flooding: '水浸',
      kind_fire: '火灾',
      kind_blocked_fire_lane: '消防通道堵塞',
      role_coordinator: '值班员',
      role_reporter: '上报员',
      role_reader: '只读',
    },
  };

  const TIERS = ['compound', 'community', 'street', 'district'];
  const STATES = ['reported', 'routed', 'dispatched', 'acknowledged', 'on_scene', 'resolved', 'closed'];
  const CATEGORIES = ['natural_disaster', 'accident_disaster', 'public_health', 'social_safety',
    'property_service', 'neighbour_dispute', 'latent_hazard'];
  const SEVERITIES = ['I', 'II', 'III', 'IV'];
  const ACTIONS = ['acknowledge', 'escalate', 'de-escalate', 'merge', 'close', 'note', 'call'];
  // The form field each action sends its text in (the API's names).
  const ACTION_ARG = {
    acknowledge: 'note', escalate: 'reason', 'de-escalate': 'reason', merge: 'into',
    close: 'reason', note: 'text', call: 'role',
  };
  const ACTION_REQUIRED = { merge: true, close: true, note: true, call: true };

  /* The words of states, event types and roles come from the gateway's life-cycle table
   * (/lifecycle.js), the one every reader is made from. */
  const LIFECYCLE = window.LINKAGE_LIFECYCLE || { states: {}, types: {}, roles: {} };
  for (const [prefix, table] of [['st_', LIFECYCLE.states], ['ev_', LIFECYCLE.types], ['role_', LIFECYCLE.roles]]) {
    for (const word of Object.keys(table)) {
      I18N.en[prefix + word] = table[word].en;
      I18N.zh[prefix + word] = table[word].zh;
    }
  }

  /* ------------------------------------------------------------------ state */

  const S = {
    lang: 'en',
    token: null,
    me: null,               // {name, role}
    district: null,         // the /api/district answer
    names: new Map(),       // area id -> {name, name_zh}
    units: new Map(),       // unit id -> {name, name_zh, type}
    compoundCommunity: new Map(),
    rows: new Map(),        // incident id -> row
    elems: new Map(),       // incident id -> its row element (kept, so references stay valid)
    sigs: new Map(),        // incident id -> what the element was last drawn from
    position: 0,            // the last ledger position seen
    offset: 0,              // server clock - local clock, ms
    es: null,
    esRetry: null,
    selected: null,         // id of the incident in the detail panel
    detail: null,           // its /api/incidents/{id} answer
    detailTimer: null,
    pending: new Map(),     // command key -> command_id, kept until the command succeeds
    renderQueued: false,
    overdueSeen: new Set(), // ids whose deadline passed on the local clock
    generation: 0,          // bumps on every (re)start, so stale async answers are dropped
  };

  const $ = (sel) => document.querySelector(sel);

  function t(key, vars) {
    let s = I18N[S.lang][key];
    if (s === undefined) s = I18N.en[key];
    if (s === undefined) s = key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] === undefined ? m : String(vars[k])));
    return s;
  }

  /* A label for a domain word, or the word itself when the dictionary has none. */
  function tw(prefix, word) {
    if (word === null || word === undefined || word === '') return '';
    const key = prefix + word;
    return I18N[S.lang][key] !== undefined || I18N.en[key] !== undefined ? t(key) : String(word);
  }
  const tierLabel = (x) => tw('', x ? x + '_tier' : '');
  const catLabel = (x) => tw('', x);
  const stateLabel = (x) => tw('st_', x);
  const sevLabel = (x) => tw('sev_', x);
  const kindLabel = (x) => tw('kind_', x);
  const evLabel = (x) => tw('ev_', x);
  const roleLabel = (x) => tw('role_', x);

  function unitName(id) {
    const u = S.units.get(id);
    if (!u) return id || '';
    return (S.lang === 'zh' ? u.name_zh || u.name : u.name || u.name_zh) || id;
  }

  function areaName(id) {
    if (!id) return '';
    const n = S.names.get(id);
    if (!n) return String(id);
    return (S.lang === 'zh' ? n.name_zh || n.name : n.name || n.name_zh) || String(id);
  }

  /* Builds an element: attrs are set with setAttribute (class via className, on* as
   * listeners); children are nodes or strings (text nodes). Never parses HTML. */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        const v = attrs[k];
        if (v === null || v === undefined || v === false) continue;
        if (k === 'className') e.className = v;
        else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
  }

  /* A status line: the text comes from a function, so switching the language redraws it. */
  const said = new Map(); // selector -> [text function, kind]
  function tell(sel, fn, kind) {
    const e = $(sel);
    said.set(sel, [fn, kind || '']);
    e.textContent = fn();
    e.className = kind || '';
  }
  function retell() {
    for (const [sel, [fn, kind]] of said) {
      if (sel === '#msg') {
        if (!$('#msg').hidden) $('#msg').textContent = fn();
      } else {
        tell(sel, fn, kind);
      }
    }
  }

  let msgTimer = null;

  /* The banner under the header; a success fades after a few seconds, an error stays. */
  function showMsg(fn, kind) {
    const m = $('#msg');
    tell('#msg', fn || (() => ''), kind);
    m.hidden = !fn;
    if (msgTimer) clearTimeout(msgTimer);
    msgTimer = kind === 'ok' ? setTimeout(() => { m.hidden = true; }, 6000) : null;
  }

  /* ------------------------------------------------------------------ time */

  const serverNow = () => Date.now() + S.offset;

  function pad2(n) {
    return n < 10 ? '0' + n : String(n);
  }

  /* ms left as mm:ss, or h:mm:ss from an hour; negative with a leading minus. */
  function formatLeft(ms) {
    const neg = ms < 0;
    let s = Math.floor(Math.abs(ms) / 1000);
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    const body = h > 0 ? h + ':' + pad2(m) + ':' + pad2(s) : pad2(m) + ':' + pad2(s);
    return (neg ? '-' : '') + body;
  }

  function formatTime(ms) {
    if (!ms) return '';
    const d = new Date(ms);
    return d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate()) + ' ' +
      pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
  }

  /* The time of day, for the timeline (the full date is in the cell's title). */
  function clockTime(ms) {
    return ms ? formatTime(ms).slice(11) : '';
  }

  function toLocalInput(ms) {
    const d = new Date(ms);
    return d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate()) + 'T' +
      pad2(d.getHours()) + ':' + pad2(d.getMinutes());
  }

  const isOverdue = (row) =>
    !!row.overdue || (row.state !== 'closed' && !!row.deadline && row.deadline.at <= serverNow());

  /* ------------------------------------------------------------------ HTTP */

  class HttpError extends Error {
    constructor(status, message, retryAfter) {
      super(message);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  /* fetch with the token; JSON in, JSON out. A 401 anywhere sends the user back to the token
   * form (and still throws, so callers stop). */
  async function api(method, path, form) {
    const opts = { method, headers: { Authorization: 'Bearer ' + S.token, Accept: 'application/json' } };
    if (form) {
      opts.headers['Content-Type'] = 'application/x-www-form-urlencoded';
      opts.body = new URLSearchParams(form).toString();
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (e) {
      throw new HttpError(0, t('network'));
    }
    let body = null;
    const text = await res.text();
    if (text) {
      try {
        body = JSON.parse(text);
      } catch (e) {
        body = null;
      }
    }
    if (res.status === 401) {
      askToken(t('token_refused'));
      throw new HttpError(401, t('token_refused'));
    }
    if (!res.ok) {
      let why = body && body.error ? body.error : res.status + ' ' + res.statusText;
      if (res.status === 403) why = t('forbidden') + (body && body.error ? ' ' + body.error : '');
      if (res.status === 503 || res.status === 429) why = t('busy') + (body && body.error ? ' (' + body.error + ')' : '');
      throw new HttpError(res.status, why, res.headers.get('Retry-After'));
    }
    return body;
  }

  function newId() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    const b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    return Array.from(b, (x) => (x < 16 ? '0' : '') + x.toString(16)).join('');
  }

  /* ------------------------------------------------------------------ token */

  function tokenFromFragment() {
    const h = window.location.hash.replace(/^#/, '');
    if (!h) return null;
    const p = new URLSearchParams(h);
    const tok = p.get('token');
    if (tok === null) return null;
    // Out of the visible URL (and of the history), into this tab's storage only; a link to an
    // incident keeps its part.
    p.delete('token');
    const rest = p.toString();
    window.history.replaceState(null, '', window.location.pathname + window.location.search +
      (rest ? '#' + rest : ''));
    return tok;
  }

  /* "#incident=<id>": the incident a link points at, opened once the rows are in. */
  function incidentFromFragment() {
    const p = new URLSearchParams(window.location.hash.replace(/^#/, ''));
    return p.get('incident');
  }

  function openLinked() {
    const id = incidentFromFragment();
    if (id && S.selected !== id) openDetail(id);
  }

  function askToken(message) {
    S.generation++;
    stopStream();
    S.token = null;
    try {
      window.sessionStorage.removeItem('linkage-token');
    } catch (e) { /* storage may be off */ }
    $('#app').hidden = true;
    $('#token-panel').hidden = false;
    $('#token-msg').textContent = message || t('token_needed');
    $('#token-msg').className = message ? 'error' : '';
    setConn('offline');
    $('#token-input').focus();
  }

  function useToken(tok) {
    S.token = tok;
    try {
      window.sessionStorage.setItem('linkage-token', tok);
    } catch (e) { /* storage may be off */ }
    $('#token-panel').hidden = true;
    start();
  }

  /* ------------------------------------------------------------------ start */

  async function start() {
    const gen = ++S.generation;
    showMsg(null);
    let me;
    let district;
    try {
      [me, district] = await Promise.all([api('GET', '/api/me'), api('GET', '/api/district')]);
    } catch (e) {
      if (e.status !== 401 && gen === S.generation) showMsg(() => t('load_failed', { what: '/api/me', error: e.message }), 'error');
      return;
    }
    if (gen !== S.generation) return;
    S.me = me;
    setDistrict(district);
    document.body.classList.toggle('coordinator', me.role === 'coordinator');
    document.body.dataset.role = me.role;
    $('#app').hidden = false;
    drawMe();
    fillFilters();
    if (!(await loadSnapshot(gen))) return;
    openStream(gen);
    loadPlanned();
  }

  function setDistrict(d) {
    S.district = d || {};
    S.names.clear();
    S.compoundCommunity.clear();
    const put = (a) => {
      if (a && a.id) S.names.set(a.id, { name: a.name, name_zh: a.name_zh });
    };
    S.units.clear();
    for (const u of S.district.units || []) S.units.set(u.id, u);
    put(S.district.district);
    (S.district.streets || []).forEach(put);
    (S.district.communities || []).forEach(put);
    (S.district.compounds || []).forEach((c) => {
      // A compound can share its id with its community (an established community): the
      // community's name is kept for the id, the compound's for compound fields.
      if (!S.names.has(c.id)) put(c);
      S.compoundCommunity.set(c.id, c.community);
    });
  }

  function compoundName(id) {
    const c = (S.district.compounds || []).find((x) => x.id === id);
    if (!c) return areaName(id);
    return (S.lang === 'zh' ? c.name_zh || c.name : c.name || c.name_zh) || id;
  }

  async function loadSnapshot(gen) {
    let snap;
    const t0 = Date.now();
    try {
      snap = await api('GET', '/api/incidents' + ($('#show-closed').checked ? '?closed=1' : ''));
    } catch (e) {
      if (e.status !== 401 && gen === S.generation) showMsg(() => t('load_failed', { what: '/api/incidents', error: e.message }), 'error');
      return false;
    }
    if (gen !== S.generation) return false;
    const t1 = Date.now();
    // The server's clock at the middle of the round trip: deadlines are server times.
    if (typeof snap.now === 'number') S.offset = snap.now - (t0 + t1) / 2;
    S.rows.clear();
    for (const r of snap.incidents || []) S.rows.set(r.id, r);
    setPosition(snap.position || 0, true);
    document.body.dataset.ready = '1';
    scheduleRender();
    if (S.selected) loadDetail(S.selected);
    else openLinked();
    return true;
  }

  function setPosition(p, force) {
    if (typeof p !== 'number' || !isFinite(p)) return;
    if (force || p > S.position) S.position = p;
    $('#position').textContent = S.position ? String(S.position) : '—';
  }

  /* ------------------------------------------------------------------ stream */

  function setConn(state) {
    const c = $('#conn');
    c.dataset.state = state;
    c.textContent = t('conn_' + state);
  }

  function stopStream() {
    if (S.es) {
      S.es.close();
      S.es = null;
    }
    if (S.esRetry) {
      clearTimeout(S.esRetry);
      S.esRetry = null;
    }
  }

  /* The browser reconnects by itself after a network error, sending Last-Event-ID. When
   * the connection is refused outright (HTTP error) it gives up: then we ask /api/me whether
   * the token still holds, and open a new stream after the last position we saw. */
  function openStream(gen) {
    stopStream();
    const url = '/api/stream?token=' + encodeURIComponent(S.token) + '&after=' + S.position;
    const es = new EventSource(url);
    S.es = es;
    es.onopen = () => {
      if (S.es === es) setConn('live');
    };
    es.onerror = () => {
      if (S.es !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        setConn('reconnecting');
        S.es = null;
        es.close();
        S.esRetry = setTimeout(async () => {
          S.esRetry = null;
          try {
            await api('GET', '/api/me');
          } catch (e) {
            if (e.status === 401 || gen !== S.generation) return;
          }
          if (gen === S.generation) openStream(gen);
        }, 2000);
      } else {
        setConn('reconnecting');
      }
    };
    es.addEventListener('incident', (ev) => {
      if (S.es !== es) return;
      let row;
      try {
        row = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      setConn('live');
      upsert(row);
      const p = Number(ev.lastEventId);
      setPosition(ev.lastEventId !== '' && isFinite(p) ? p : row.position);
    });
    // Planned-work windows changed: the data is the whole list, as GET /api/planned-work.
    es.addEventListener('planned_work', (ev) => {
      if (S.es !== es) return;
      let res;
      try {
        res = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      plannedWindows = (res && res.windows) || [];
      drawPlanned();
      const p = Number(ev.lastEventId);
      if (ev.lastEventId !== '' && isFinite(p)) setPosition(p);
    });
    es.addEventListener('reset', () => {
      if (S.es !== es) return;
      loadSnapshot(gen);
      loadPlanned();
    });
  }

  function upsert(row) {
    if (!row || !row.id) return;
    const old = S.rows.get(row.id);
    // A replay after a reconnect may bring an older copy: the ledger position orders them.
    if (old && typeof old.position === 'number' && typeof row.position === 'number' && row.position < old.position) return;
    S.rows.set(row.id, row);
    scheduleRender();
    if (S.selected === row.id) {
      // Refresh the timeline, coalescing bursts of events for the same incident.
      if (S.detailTimer) clearTimeout(S.detailTimer);
      S.detailTimer = setTimeout(() => {
        S.detailTimer = null;
        loadDetail(row.id);
      }, 150);
    }
  }

  /* ------------------------------------------------------------------ filters */

  function option(value, label) {
    return el('option', { value }, label);
  }

  function fillSelect(sel, items) {
    const keep = sel.value;
    clear(sel);
    sel.appendChild(option('', t('all')));
    for (const [v, label] of items) sel.appendChild(option(v, label));
    sel.value = items.some((x) => x[0] === keep) ? keep : '';
  }

  function fillFilters() {
    fillSelect($('#f-tier'), TIERS.map((x) => [x, tierLabel(x)]));
    fillSelect($('#f-community'), (S.district.communities || []).map((c) => [c.id, areaName(c.id)]));
    const comm = $('#f-community').value;
    fillSelect($('#f-compound'), (S.district.compounds || [])
      .filter((c) => !comm || c.community === comm).map((c) => [c.id, compoundName(c.id)]));
    fillSelect($('#f-state'), STATES.map((x) => [x, stateLabel(x)]));
    fillSelect($('#f-category'), CATEGORIES.map((x) => [x, catLabel(x)]));
    fillSelect($('#f-severity'), SEVERITIES.map((x) => [x, sevLabel(x)]));
    const pw = $('#pw-compound');
    const keep = pw.value;
    clear(pw);
    for (const c of S.district.compounds || []) pw.appendChild(option(c.id, compoundName(c.id)));
    if (keep) pw.value = keep;
    const gb = $('#group-by');
    for (const o of gb.options) o.textContent = t(o.dataset.i18n);
  }

  function communityOf(row) {
    return row.community || S.compoundCommunity.get(row.compound) || '';
  }

  function matches(row) {
    if (row.state === 'closed' && !$('#show-closed').checked) return false;
    const f = (id) => $(id).value;
    if (f('#f-tier') && row.tier !== f('#f-tier')) return false;
    if (f('#f-community') && communityOf(row) !== f('#f-community')) return false;
    if (f('#f-compound') && row.compound !== f('#f-compound')) return false;
    if (f('#f-state') && row.state !== f('#f-state')) return false;
    if (f('#f-category') && row.category !== f('#f-category')) return false;
    if (f('#f-severity') && row.severity !== f('#f-severity')) return false;
    const q = $('#f-text').value.trim().toLowerCase();
    if (q) {
      const hay = [row.id, row.kind, kindLabel(row.kind), row.description, row.building, row.unit,
        row.compound, compoundName(row.compound), areaName(communityOf(row)), row.organisation,
        row.lead_unit, catLabel(row.category), stateLabel(row.state)].join(' ').toLowerCase();
      if (!q.split(/\s+/).every((w) => hay.includes(w))) return false;
    }
    return true;
  }

  const SEV_RANK = { I: 0, II: 1, III: 2, IV: 3 };

  const TIER_RANK = { compound: 1, community: 2, street: 3, district: 4 };

  /* The server's order (gw_incident_urgency_cmp; /api/incidents comes sorted so): overdue
   * first, then the most severe, then the highest tier, then the deadline that runs out first,
   * then the earliest report. Closed incidents last. Kept here so the list stays in order
   * between snapshots as deadlines pass; the browser test checks the two agree. */
  function compareRows(a, b) {
    const ca = a.state === 'closed' ? 1 : 0;
    const cb = b.state === 'closed' ? 1 : 0;
    if (ca !== cb) return ca - cb;
    const oa = isOverdue(a) ? 0 : 1;
    const ob = isOverdue(b) ? 0 : 1;
    if (oa !== ob) return oa - ob;
    const sa = SEV_RANK[a.severity] === undefined ? 9 : SEV_RANK[a.severity];
    const sb = SEV_RANK[b.severity] === undefined ? 9 : SEV_RANK[b.severity];
    if (sa !== sb) return sa - sb;
    const ta = TIER_RANK[a.tier] || 0;
    const tb = TIER_RANK[b.tier] || 0;
    if (ta !== tb) return tb - ta;
    const da = a.deadline ? a.deadline.at : Infinity;
    const db = b.deadline ? b.deadline.at : Infinity;
    if (da !== db) return da < db ? -1 : 1;
    if ((a.reported_at || 0) !== (b.reported_at || 0)) return (a.reported_at || 0) - (b.reported_at || 0);
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  }

  /* ------------------------------------------------------------------ queues */

  function scheduleRender() {
    if (S.renderQueued) return;
    S.renderQueued = true;
    setTimeout(() => {
      S.renderQueued = false;
      render();
    }, 0);
  }

  function groupsFor(rows) {
    const by = $('#group-by').value;
    const groups = [];
    if (by === 'none') {
      groups.push({ key: 'all', label: t('group_none'), rows: rows.slice() });
    } else if (by === 'community') {
      for (const c of S.district.communities || []) groups.push({ key: 'c:' + c.id, label: areaName(c.id), rows: [] });
      groups.push({ key: 'c:', label: t('unknown_community'), rows: [], optional: true });
      const idx = new Map(groups.map((g, i) => [g.key, i]));
      for (const r of rows) {
        const i = idx.get('c:' + communityOf(r));
        groups[i === undefined ? groups.length - 1 : i].rows.push(r);
      }
    } else {
      for (const x of TIERS) groups.push({ key: 't:' + x, label: tierLabel(x), rows: [] });
      groups.push({ key: 't:', label: t('unrouted'), rows: [], optional: true });
      const idx = new Map(groups.map((g, i) => [g.key, i]));
      for (const r of rows) {
        const i = idx.get('t:' + (r.tier || ''));
        groups[i === undefined ? groups.length - 1 : i].rows.push(r);
      }
    }
    return groups.filter((g) => !g.optional || g.rows.length);
  }

  function render() {
    const all = Array.from(S.rows.values());
    const shown = all.filter(matches).sort(compareRows);
    const q = $('#queues');
    clear(q);
    for (const g of groupsFor(shown)) {
      const overdue = g.rows.filter(isOverdue).length;
      const head = el('h2', null, g.label, ' ', el('span', { className: 'count' }, String(g.rows.length)),
        overdue ? el('span', { className: 'tag overdue-tag' }, t('overdue') + ' ' + overdue) : null);
      const list = el('ol', { className: 'rows' });
      for (const r of g.rows) list.appendChild(rowElement(r));
      if (!g.rows.length) list.appendChild(el('li', { className: 'empty' }, t('empty_group')));
      q.appendChild(el('section', { className: 'group', 'data-group': g.key }, head, list));
    }
    // Forget elements of rows no longer present (they are rebuilt if they come back).
    for (const id of Array.from(S.elems.keys())) {
      if (!S.rows.has(id)) {
        S.elems.delete(id);
        S.sigs.delete(id);
      }
    }
    $('#counts').textContent = t('counts', { shown: shown.length, total: all.filter((r) => r.state !== 'closed').length });
    tick();
  }

  /* The row's element, redrawn only when its data (or the language or role) changed, so a
   * button the user is about to press is not replaced under the pointer by a mere regroup. */
  function rowElement(r) {
    const sig = JSON.stringify(r) + '|' + S.lang + '|' + (S.me && S.me.role);
    let li = S.elems.get(r.id);
    if (li && S.sigs.get(r.id) === sig) {
      li.classList.toggle('overdue', isOverdue(r));
      return li;
    }
    if (!li) {
      li = el('li', { 'data-incident': r.id, tabindex: '0' });
      li.addEventListener('click', (ev) => {
        if (ev.target.closest('[data-action]')) return;
        openDetail(li.dataset.incident);
      });
      li.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' && ev.target === li) openDetail(li.dataset.incident);
      });
      S.elems.set(r.id, li);
    }
    S.sigs.set(r.id, sig);
    clear(li);
    li.className = 'row sev-' + (SEV_RANK[r.severity] === undefined ? 'unknown' : r.severity) +
      (isOverdue(r) ? ' overdue' : '') + (r.state === 'closed' ? ' closed' : '') +
      (S.selected === r.id ? ' selected' : '');
    li.dataset.severity = r.severity || '';
    li.dataset.state = r.state || '';
    li.dataset.tier = r.tier || '';

    const where = [compoundName(r.compound), placeOf(r)].filter(Boolean).join(' ');
    const tags = el('span', { className: 'tags' },
      el('span', { className: 'tag overdue-tag' }, t('overdue')),
      r.acknowledged ? el('span', { className: 'tag ack-tag' }, t('acknowledged_tag')) : null,
      r.exercise ? el('span', { className: 'tag exercise-tag' }, t('exercise_tag')) : null,
      ...(r.missing_roles || []).map((x) => el('span', { className: 'tag missing-tag', 'data-role': x },
        t('missing_tag', { role: roleLabel(x) }))),
      r.suppressed ? el('span', { className: 'tag sup-tag' },
        r.held_back_by ? t('held_back_by', { id: r.held_back_by }) : t('suppressed')) : null,
      r.merged_into ? el('span', { className: 'tag' }, t('merged_into') + ' ' + r.merged_into) : null);
    li.appendChild(el('span', { className: 'badge sev-badge' }, r.severity || '?'));
    li.appendChild(el('div', { className: 'main' },
      el('div', { className: 'line1' },
        el('span', { className: 'cat' }, catLabel(r.category)),
        r.kind ? el('span', { className: 'kind' }, kindLabel(r.kind)) : null,
        el('span', { className: 'where' }, where),
        tags),
      el('div', { className: 'line2' },
        el('span', { className: 'state', 'data-state': r.state }, stateLabel(r.state)),
        r.tier ? el('span', { className: 'tier' }, tierLabel(r.tier)) : null,
        r.organisation ? el('span', { className: 'org' }, areaName(r.organisation)) : null,
        r.units ? el('span', { className: 'units' }, r.units + ' ' + t('units')) : null,
        el('span', { className: 'desc' }, r.description || ''),
        el('span', { className: 'id' }, r.id))));
    li.appendChild(deadlineBox(r));
    if (isCoordinator() && r.state !== 'closed' && !r.acknowledged) {
      const b = el('button', { type: 'button', className: 'quick', 'data-action': 'acknowledge' }, t('act_acknowledge'));
      b.addEventListener('click', (ev) => {
        ev.stopPropagation();
        runAction(r.id, 'acknowledge', '', b, null);
      });
      li.appendChild(b);
    }
    return li;
  }

  /* Building, unit and floor in the words of the language: "Bldg 7 · Unit 2 · 5F", "7栋 2单元 5层". */
  function placeOf(r) {
    const parts = [];
    if (r.building) parts.push(t('loc_building', { v: r.building }));
    if (r.unit) parts.push(t('loc_unit', { v: r.unit }));
    if (r.floor) parts.push(t('loc_floor', { v: r.floor }));
    return parts.join(S.lang === 'zh' ? ' ' : ' · ');
  }

  function deadlineBox(r) {
    const box = el('div', { className: 'deadline' });
    if (r.deadline && r.state !== 'closed') {
      const late = r.deadline.at <= serverNow();
      box.appendChild(el('span', { className: 'dl-kind' }, t((late ? 'late_' : 'deadline_') + r.deadline.kind)));
      box.appendChild(el('span', { className: 'countdown' + (late ? ' late' : ''), 'data-at': String(r.deadline.at),
        'data-kind': r.deadline.kind }, formatLeft(r.deadline.at - serverNow())));
    } else {
      box.appendChild(el('span', { className: 'dl-kind none' }, r.state === 'closed' ? stateLabel('closed') : t('no_deadline')));
    }
    return box;
  }

  /* Once a second: every countdown, and a redraw when a deadline passes on this clock (the
   * row becomes overdue and moves to the top before the server's alarm arrives). */
  function tick() {
    const now = serverNow();
    for (const c of document.querySelectorAll('.countdown')) {
      const at = Number(c.dataset.at);
      c.textContent = formatLeft(at - now);
      c.classList.toggle('late', at <= now);
      const label = c.previousSibling;
      if (label && c.dataset.kind) label.textContent = t((at <= now ? 'late_' : 'deadline_') + c.dataset.kind);
    }
    let passed = false;
    for (const r of S.rows.values()) {
      if (r.deadline && r.deadline.at <= now && r.state !== 'closed' && !S.overdueSeen.has(r.id + '@' + r.deadline.at)) {
        S.overdueSeen.add(r.id + '@' + r.deadline.at);
        passed = true;
      }
    }
    if (passed) scheduleRender(); // re-sort: the row's own element only toggles its class
    if (S.detail && S.detail.deadline) {
      const d = $('#detail-countdown');
      if (d) d.textContent = formatLeft(S.detail.deadline.at - now);
    }
  }

  /* ------------------------------------------------------------------ detail */

  const isCoordinator = () => !!S.me && S.me.role === 'coordinator';

  function openDetail(id) {
    S.selected = id;
    for (const li of S.elems.values()) li.classList.toggle('selected', li.dataset.incident === id);
    const d = $('#detail');
    d.hidden = false;
    d.dataset.incident = id;
    tell('#action-result', () => '');
    // Draw at once from the row we hold; the timeline follows.
    S.detail = Object.assign({ timeline: null }, S.rows.get(id) || { id });
    drawDetail();
    loadDetail(id);
  }

  function closeDetail() {
    S.selected = null;
    S.detail = null;
    const d = $('#detail');
    d.hidden = true;
    delete d.dataset.incident;
    for (const li of S.elems.values()) li.classList.remove('selected');
  }

  async function loadDetail(id) {
    let inc;
    try {
      inc = await api('GET', '/api/incidents/' + encodeURIComponent(id));
    } catch (e) {
      if (S.selected === id && e.status !== 401) tell('#action-result', () => t('load_failed', { what: id, error: e.message }), 'error');
      return;
    }
    if (S.selected !== id) return;
    S.detail = inc;
    drawDetail();
  }

  function drawDetail() {
    const r = S.detail;
    if (!r) return;
    const title = $('#detail-title');
    title.textContent = '';
    title.appendChild(el('span', { className: 'badge sev-badge sev-' + r.severity }, r.severity || '?'));
    title.appendChild(document.createTextNode(' ' + (catLabel(r.category) || '') + (r.kind ? ' · ' + kindLabel(r.kind) : '')));
    $('#detail').className = 'sev-' + (r.severity || 'unknown') + (isOverdue(r) ? ' overdue' : '');

    const dl = $('#detail-fields');
    clear(dl);
    const field = (key, value, node) => {
      if ((value === null || value === undefined || value === '') && !node) return;
      dl.appendChild(el('dt', null, t(key)));
      dl.appendChild(el('dd', { 'data-field': key }, node || String(value)));
    };
    field('id', r.id);
    field('severity', sevLabel(r.severity));
    field('state', stateLabel(r.state));
    field('tier', tierLabel(r.tier));
    field('organisation', areaName(r.organisation));
    field('compound', compoundName(r.compound));
    field('community', areaName(communityOf(r)));
    field('building', r.building);
    field('unit', r.unit);
    field('floor', r.floor ? String(r.floor) : '');
    field('description', r.description);
    field('reported_at', formatTime(r.reported_at));
    field('updated_at', formatTime(r.updated_at));
    if (r.deadline && r.state !== 'closed') {
      const late = r.deadline.at <= serverNow();
      field('deadline', null, el('span', null, t((late ? 'late_' : 'deadline_') + r.deadline.kind) + ' ',
        el('span', { id: 'detail-countdown', className: 'countdown-detail' }, formatLeft(r.deadline.at - serverNow())),
        ' (' + formatTime(r.deadline.at) + ')',
        isOverdue(r) ? el('span', { className: 'tag overdue-tag' }, t('overdue')) : null));
    }
    field('lead_unit', r.lead_unit ? unitName(r.lead_unit) : '');
    if (r.merged_into) field('merged_into', r.merged_into);
    if (r.held_back_by) field('suppressed', t('held_back_by', { id: r.held_back_by }));
    for (const x of r.missing_roles || []) {
      const b = isCoordinator() ? el('button', { type: 'button', 'data-action': 'call', 'data-role': x }, t('call_again')) : null;
      if (b) b.addEventListener('click', () => runAction(r.id, 'call', x, b, null));
      field('missing_tag', null, el('span', { className: 'missing', 'data-role': x },
        t('missing_tag', { role: roleLabel(x) }) + ' ', b));
    }
    if (r.exercise) field('exercise_tag', t('exercise_tag'));
    field('link', null, el('a', { href: '#incident=' + encodeURIComponent(r.id), id: 'detail-link' },
      window.location.pathname + '#incident=' + r.id));

    const at = $('#assignments tbody');
    clear(at);
    for (const a of r.assignments || []) {
      at.appendChild(el('tr', { 'data-unit': a.unit, 'data-state': a.state },
        el('td', null, unitName(a.unit), a.lead ? el('span', { className: 'tag' }, t('lead_mark')) : null),
        el('td', null, roleLabel(a.role)),
        el('td', null, tierLabel(a.tier)),
        el('td', null, a.state === 'declined' ? t('a_declined') : stateLabel(a.state))));
    }
    $('#assignments').hidden = !(r.assignments && r.assignments.length);

    drawActions(r);

    const tb = $('#timeline tbody');
    clear(tb);
    for (const s of r.timeline || []) {
      tb.appendChild(el('tr', { 'data-type': s.type },
        el('td', { title: formatTime(s.at) }, clockTime(s.at)),
        el('td', null, evLabel(s.type)),
        el('td', null, s.actor || ''),
        el('td', null, (S.lang === 'zh' ? s.detail_zh || s.detail : s.detail) || '')));
    }
  }

  /* The action form of the open incident. It is rebuilt only when the actions on offer change
   * (another incident, state, acknowledgement, role, language), so an update of the incident
   * arriving while the user types does not take the field away; then it keeps what was typed. */
  function drawActions(r) {
    const box = $('#detail-actions');
    const sig = [r.id, r.state === 'closed', !!r.acknowledged, isCoordinator(), S.lang].join('|');
    if (box.dataset.sig === sig) return;
    box.dataset.sig = sig;
    const typed = {};
    for (const i of box.querySelectorAll('input[data-arg]')) {
      if (box.dataset.incident === r.id) typed[i.dataset.arg] = i.value;
    }
    clear(box);
    box.dataset.incident = r.id;
    if (!isCoordinator()) {
      box.appendChild(el('p', { className: 'hint' }, t('reader_only')));
      return;
    }
    if (r.state === 'closed') return;
    for (const a of ACTIONS) {
      if (a === 'acknowledge' && r.acknowledged) continue; // taken at this tier already
      const input = el('input', { 'data-arg': a, placeholder: t('arg_' + a), 'aria-label': t('arg_' + a) });
      if (typed[a]) input.value = typed[a];
      const b = el('button', { type: 'button', 'data-action': a }, t('act_' + a));
      b.addEventListener('click', () => runAction(r.id, a, input.value.trim(), b, input));
      input.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter') b.click();
      });
      box.appendChild(el('div', { className: 'action' }, input, b));
    }
  }

  /* POSTs one action. The command_id is kept per (incident, action, argument) until the
   * command succeeds, so pressing again after an error retries the same command and the
   * router commits it at most once. */
  async function runAction(id, action, arg, button, input) {
    const out = S.selected === id;
    const say = (fn, kind) => (out ? tell('#action-result', fn, kind) : showMsg(fn, kind));
    if (ACTION_REQUIRED[action] && !arg) {
      say(() => t('need_arg_' + action), 'error');
      if (input) input.focus();
      return;
    }
    const key = id + '\u0000' + action + '\u0000' + arg;
    let cid = S.pending.get(key);
    if (!cid) {
      cid = newId();
      S.pending.set(key, cid);
    }
    const form = { command_id: cid };
    if (arg) form[ACTION_ARG[action]] = arg;
    if (button) button.disabled = true;
    say(() => t('sending'), '');
    try {
      const res = await api('POST', '/api/incidents/' + encodeURIComponent(id) + '/' + action, form);
      S.pending.delete(key);
      const pos = res && res.position !== undefined ? res.position : '?';
      say(() => t('done', { action: t('act_' + action), position: pos }), 'ok');
      if (input) input.value = '';
      if (res && typeof res.position === 'number') setPosition(res.position);
      if (S.selected === id) loadDetail(id);
    } catch (e) {
      if (e.status === 401) return;
      // A refusal (4xx other than 408/429) will not change on retry: a fresh id next time.
      if (e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429) S.pending.delete(key);
      const again = S.pending.has(key);
      say(() => t('failed', { action: t('act_' + action), error: e.message }) +
        (again ? ' ' + t('retry_hint') : ''), 'error');
    } finally {
      if (button && button.isConnected) button.disabled = false;
    }
  }

  /* ------------------------------------------------------------------ planned work */

  let plannedWindows = [];

  async function loadPlanned() {
    if (!S.token) return;
    try {
      const res = await api('GET', '/api/planned-work');
      plannedWindows = (res && res.windows) || [];
    } catch (e) {
      if (e.status !== 401) tell('#pw-result', () => t('load_failed', { what: t('planned_title'), error: e.message }), 'error');
      return;
    }
    drawPlanned();
  }

  function windowId(w) {
    return w.window_id || w.id || '';
  }

  function windowState(w) {
    if (w.lifted || w.lifted_at || w.state === 'lifted') return 'lifted';
    const now = serverNow();
    if (typeof w.to === 'number' && w.to <= now) return 'ended';
    if (typeof w.from === 'number' && w.from > now) return 'upcoming';
    return 'active';
  }

  /* Rebuilt only when the windows (or language, role) change, keeping a lift reason being typed. */
  function drawPlanned() {
    const ul = $('#planned-list');
    const sig = JSON.stringify(plannedWindows) + '|' + S.lang + '|' + isCoordinator();
    if (ul.dataset.sig === sig) return;
    ul.dataset.sig = sig;
    const typed = {};
    for (const i of ul.querySelectorAll('li[data-window] input[data-arg]')) {
      typed[i.closest('li').dataset.window] = i.value;
    }
    clear(ul);
    if (!plannedWindows.length) {
      ul.appendChild(el('li', { className: 'empty' }, t('planned_none')));
      return;
    }
    for (const w of plannedWindows) {
      const id = windowId(w);
      const st = windowState(w);
      const li = el('li', { 'data-window': id, className: 'window ' + st },
        el('div', null,
          el('strong', null, compoundName(w.compound || w.compound_id)), ' ',
          w.building ? '#' + w.building : t('whole_compound'), ' · ',
          w.kind ? kindLabel(w.kind) : t('any_kind'), ' ',
          el('span', { className: 'tag' }, t(st))),
        el('div', { className: 'when' }, formatTime(w.from) + ' → ' + formatTime(w.to)),
        w.reason ? el('div', { className: 'why' }, w.reason) : null,
        el('div', { className: 'id' }, id));
      if (isCoordinator() && st !== 'lifted' && st !== 'ended') {
        const input = el('input', { 'data-arg': 'lift', placeholder: t('lift_reason'), 'aria-label': t('lift_reason') });
        if (typed[id]) input.value = typed[id];
        const b = el('button', { type: 'button', 'data-action': 'lift' }, t('lift'));
        b.addEventListener('click', () => liftWindow(id, input, b));
        li.appendChild(el('div', { className: 'action' }, input, b));
      }
      ul.appendChild(li);
    }
  }

  async function declareWindow(ev) {
    ev.preventDefault();
    const from = new Date($('#pw-from').value).getTime();
    const to = new Date($('#pw-to').value).getTime();
    const form = {
      compound: $('#pw-compound').value,
      building: $('#pw-building').value.trim(),
      kind: $('#pw-kind').value.trim(),
      from: String(from),
      to: String(to),
      reason: $('#pw-reason').value.trim(),
    };
    // The window id is the idempotency key of a declaration: kept until it succeeds.
    const key = 'pw\u0000' + JSON.stringify(form);
    let wid = S.pending.get(key);
    if (!wid) {
      wid = 'pw-' + newId().replace(/-/g, '').slice(0, 12);
      S.pending.set(key, wid);
    }
    form.window_id = wid;
    const b = $('#pw-submit');
    b.disabled = true;
    tell('#pw-result', () => t('sending'));
    try {
      await api('POST', '/api/planned-work', form);
      S.pending.delete(key);
      tell('#pw-result', () => t('declared', { id: wid }), 'ok');
      $('#pw-reason').value = '';
      loadPlanned();
    } catch (e) {
      if (e.status === 401) return;
      if (e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429) S.pending.delete(key);
      tell('#pw-result', () => t('failed', { action: t('declare'), error: e.message }), 'error');
    } finally {
      b.disabled = false;
    }
  }

  async function liftWindow(id, input, b) {
    b.disabled = true;
    try {
      await api('POST', '/api/planned-work/' + encodeURIComponent(id) + '/lift', { reason: input.value.trim() });
      tell('#pw-result', () => t('lifted_ok', { id }), 'ok');
      loadPlanned();
    } catch (e) {
      if (e.status === 401) return;
      tell('#pw-result', () => t('failed', { action: t('lift'), error: e.message }), 'error');
    } finally {
      if (b.isConnected) b.disabled = false;
    }
  }

  /* ------------------------------------------------------------------ language */

  function applyLang() {
    document.documentElement.lang = S.lang === 'zh' ? 'zh-CN' : 'en';
    document.title = t('title');
    for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
    for (const e of document.querySelectorAll('[data-i18n-ph]')) e.placeholder = t(e.dataset.i18nPh);
    $('#lang-toggle').textContent = t('lang_toggle');
    setConn($('#conn').dataset.state || 'offline');
    if (S.district) fillFilters();
    drawMe();
    retell();
    if (S.rows.size || S.district) render();
    if (S.detail) drawDetail();
    drawPlanned();
  }

  function drawMe() {
    const m = $('#me');
    m.textContent = S.me ? S.me.name + ' (' + tw('role_', S.me.role) + ')' : '';
  }

  /* ------------------------------------------------------------------ wiring */

  function init() {
    try {
      S.lang = window.localStorage.getItem('linkage-lang') === 'zh' ? 'zh' : 'en';
    } catch (e) { /* storage may be off */ }
    $('#lang-toggle').addEventListener('click', () => {
      S.lang = S.lang === 'en' ? 'zh' : 'en';
      try {
        window.localStorage.setItem('linkage-lang', S.lang);
      } catch (e) { /* storage may be off */ }
      applyLang();
    });
    $('#token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = $('#token-input').value.trim();
      if (v) useToken(v);
    });
    $('#logout').addEventListener('click', () => askToken(''));
    for (const id of ['#f-tier', '#f-compound', '#f-state', '#f-category', '#f-severity', '#group-by']) {
      $(id).addEventListener('change', scheduleRender);
    }
    $('#f-community').addEventListener('change', () => {
      fillFilters();
      scheduleRender();
    });
    $('#f-text').addEventListener('input', scheduleRender);
    $('#show-closed').addEventListener('change', () => {
      // Closed rows are only in the snapshot with closed=1; the stream brings new ones anyway.
      if ($('#show-closed').checked) loadSnapshot(S.generation);
      else scheduleRender();
    });
    $('#detail-close').addEventListener('click', closeDetail);
    $('#planned-form').addEventListener('submit', declareWindow);
    const now = Date.now();
    $('#pw-from').value = toLocalInput(now);
    $('#pw-to').value = toLocalInput(now + 4 * 3600 * 1000);
    setInterval(tick, 1000);
    applyLang();

    const fromUrl = tokenFromFragment();
    let tok = fromUrl;
    if (!tok) {
      try {
        tok = window.sessionStorage.getItem('linkage-token');
      } catch (e) {
        tok = null;
      }
    }
    if (tok) useToken(tok);
    else askToken('');
    // A link with another token opened in this tab changes only the fragment: no reload.
    window.addEventListener('hashchange', () => {
      const next = tokenFromFragment();
      if (next) useToken(next);
      else if (S.token) openLinked();
    });
  }

  init();
})();
