// Staff page: live results over server-sent events, QR/wedge input and manual entry.
// Every value from a card or the registry is inserted with textContent, never as HTML.
"use strict";

const CONFIG = JSON.parse(document.getElementById("page-config").textContent);
const L = {
  vi: {
    registry: "Cổng BHXH", live: "Trực tiếp", logout: "Đăng xuất", signed_in: "Đang đăng nhập", scan_title: "Quét hoặc nhập",
    scan_label: "Mã QR (máy quét hoặc dán nội dung)", scan_placeholder: "Quét mã QR CCCD/BHYT tại đây…",
    check: "Kiểm tra", manual_title: "Nhập tay", manual_code: "Mã thẻ BHYT hoặc số CCCD",
    manual_name: "Họ và tên", manual_dob: "Ngày sinh (ngày/tháng/năm hoặc năm)",
    waiting: "Chờ người bệnh", pending: "Đang tra cứu…", eligible: "ĐỦ ĐIỀU KIỆN",
    not_eligible: "KHÔNG ĐỦ ĐIỀU KIỆN", needs_review: "CẦN KIỂM TRA",
    card_code: "Mã thẻ", benefit: "Mức hưởng", validity: "Hạn thẻ", days_left: "còn {n} ngày",
    facility: "Nơi ĐKKCB ban đầu", here: "đúng cơ sở này", not_here: "không phải cơ sở này",
    area: "Mã nơi sống", five_years: "Đủ 5 năm liên tục", new_card: "Thẻ mới", id_number: "Số CCCD",
    source_registry: "Nguồn: cổng BHXH", source_cache: "Nguồn: dữ liệu ngoại tuyến",
    source_none: "Chưa có nguồn dữ liệu", checked_at: "lúc", male: "Nam", female: "Nữ",
    dob: "Ngày sinh", ok: "tốt", degraded: "chập chờn", down: "mất kết nối",
    offline_page: "Mất kết nối tới máy chủ Tiếp Đón — đang thử lại…",
    unknown_error: "Không gửi được yêu cầu. Thử lại.",
    chip_title: "Thẻ chip CCCD", chip_doc: "Số CCCD (12 số)", chip_dob: "Ngày sinh (YYMMDD)",
    chip_exp: "Ngày hết hạn (YYMMDD)", chip_read: "Đọc chip", chip_demo: "Đặt thẻ mẫu (demo)",
    chip_hint: "Đặt thẻ lên đầu đọc. Khóa đọc chip lấy từ mã QR CCCD vừa quét, hoặc nhập số CCCD và ngày trên dòng MRZ.",
    chip_reading: "Đang đọc chip… giữ yên thẻ",
    camera: "Camera", scanner: "Máy quét", camera_demo: "Phát clip camera mẫu (demo)",
    recent: "Người bệnh trong ca", chip_reader: "Đầu đọc chip", cache: "Dữ liệu ngoại tuyến",
    via_camera: "qua camera", via_scanner: "qua máy quét", via_keyboard: "qua ô quét",
    via_manual: "nhập tay", via_chip: "qua chip", via_his: "từ HIS",
    offline_as_of: "NGOẠI TUYẾN — dữ liệu lúc {t}", recheck: "KIỂM TRA LẠI: kết quả của {n} đã đổi: {a} → {b}", pa_authentic: "Chip xác thực",
    pa_unanchored: "Chữ ký hợp lệ — chưa có CSCA", pa_failed: "Chip KHÔNG xác thực",
    pa_copy: "Chip có thể là BẢN SAO", pa_incomplete: "Đọc chip chưa xong",
    history: "Lịch sử khám gần đây", history_pending: "Đang lấy lịch sử khám…",
    history_none: "Không có lượt khám nào gần đây.",
    from_card: "đọc từ thẻ", via_card_image: "đọc từ thẻ, đã xác nhận",
    card_kept: "Camera vừa đọc được một thẻ. Thông tin đang nhập được giữ nguyên.",
    card_use: "Dùng thông tin từ thẻ",
  },
  en: {
    registry: "Registry", live: "Live", logout: "Sign out", signed_in: "Signed in", scan_title: "Scan or type",
    scan_label: "QR code (scanner or paste)", scan_placeholder: "Scan a CCCD/BHYT QR code here…",
    check: "Check", manual_title: "Manual entry", manual_code: "BHYT card code or CCCD number",
    manual_name: "Full name", manual_dob: "Date of birth (day/month/year or year)",
    waiting: "Waiting for a patient", pending: "Checking…", eligible: "ELIGIBLE",
    not_eligible: "NOT ELIGIBLE", needs_review: "NEEDS REVIEW",
    card_code: "Card code", benefit: "Benefit level", validity: "Valid", days_left: "{n} days left",
    facility: "Registered facility", here: "this facility", not_here: "not this facility",
    area: "Living-area code", five_years: "Five consecutive years", new_card: "New card",
    id_number: "CCCD number", source_registry: "Source: registry", source_cache: "Source: offline data",
    source_none: "No data source", checked_at: "at", male: "Male", female: "Female",
    dob: "Date of birth", ok: "ok", degraded: "degraded", down: "down",
    offline_page: "Lost the connection to the Tiếp Đón server — retrying…",
    unknown_error: "The request could not be sent. Try again.",
    chip_title: "Chip CCCD", chip_doc: "CCCD number (12 digits)", chip_dob: "Date of birth (YYMMDD)",
    chip_exp: "Date of expiry (YYMMDD)", chip_read: "Read chip", chip_demo: "Present demo card",
    chip_hint: "Place the card on the reader. The chip key comes from the CCCD QR just scanned, or type the CCCD number and the MRZ dates.",
    chip_reading: "Reading the chip… hold the card still",
    camera: "Camera", scanner: "Scanner", camera_demo: "Play demo camera clip",
    recent: "Patients this shift", chip_reader: "Chip reader", cache: "Offline data",
    via_camera: "via camera", via_scanner: "via scanner", via_keyboard: "via scan field",
    via_manual: "typed", via_chip: "via chip", via_his: "from HIS",
    offline_as_of: "OFFLINE — data as of {t}", recheck: "RE-CHECK: the result for {n} changed: {a} → {b}", pa_authentic: "Chip authentic",
    pa_unanchored: "Valid signature — no CSCA configured", pa_failed: "Chip NOT authentic",
    pa_copy: "Chip may be a COPY", pa_incomplete: "Chip read unfinished",
    history: "Recent visits", history_pending: "Fetching the visit history…",
    history_none: "No recent visits.",
    from_card: "read from the card", via_card_image: "read from the card, confirmed",
    card_kept: "The camera read a card. What you are typing was kept.",
    card_use: "Use the card's details",
  },
};
let lang = CONFIG.language === "en" ? "en" : "vi";
let current = null;        // latest eligibility JSON shown
let clearTimer = null;
let lastCccdQr = null;     // the chip key comes from the CCCD QR just scanned (kept in memory)
// Whose face and name are on screen (raw_fingerprint): a photo is shown only beside the patient
// it was read from, and goes the moment another patient's credential arrives.
let shownFp = null;
let photoFp = null;
// A card image's draft (the card_text event): the manual-entry fields it filled stay marked
// "read from the card" until staff change them; Enter confirms. Nothing read from print
// counts until then. The draft is personal data: purged with the result.
const DRAFT_FIELDS = ["m-code", "m-name", "m-dob"];
let draftNotice = null;
let draftTimer = null;
let pendingDraft = null;  // a card read held while staff type (holdDraft)
const $ = (id) => document.getElementById(id);
const t = (key) => L[lang][key] || key;

function dmy(iso) {
  if (!iso) return "";
  const p = iso.split("-");
  return p.length === 3 ? `${p[2]}/${p[1]}/${p[0]}` : iso;
}

function applyLanguage() {
  document.documentElement.lang = lang;
  $("lang").textContent = lang === "vi" ? "EN" : "VI";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  });
  $("facility").textContent = [CONFIG.facility_name, CONFIG.facility_code].filter(Boolean).join(" · ");
  if (CONFIG.user) $("who").textContent = t("signed_in") + ": " + CONFIG.user;
  showNotice(draftNotice);
  if (current) render(current);
}

// -- a card read through the camera (card_text) ------------------------------------------------
function showNotice(m) {
  draftNotice = m || null;
  const box = $("card-notice");
  box.hidden = !m;
  box.textContent = m ? (m[lang] || m.vi) : "";
  box.dataset.code = m ? m.code : "";
}

function markField(id, fromCard) {
  $(id).dataset.fromCard = String(fromCard);
  $(id + "-mark").hidden = !fromCard;
}

function isDraft() { return DRAFT_FIELDS.some((id) => $(id).dataset.fromCard === "true"); }

function endDraft(clearValues) {
  clearTimeout(draftTimer);
  pendingDraft = null;
  $("card-use").hidden = true;
  for (const id of DRAFT_FIELDS) {
    if (clearValues && $(id).dataset.fromCard === "true") $(id).value = "";
    markField(id, false);
  }
  showNotice(null);
}

// Staff typing by hand (a value in the form not read from a card): a card left in the
// camera's view must not replace it — it may be another patient's. The read waits behind a
// button until the form is used or the draft expires.
function staffTyping() {
  return DRAFT_FIELDS.some((id) => $(id).value.trim() && $(id).dataset.fromCard !== "true");
}

function holdDraft(d) {
  pendingDraft = d;
  showNotice({ code: "card_kept", vi: L.vi.card_kept, en: L.en.card_kept });
  $("card-use").hidden = false;
  clearTimeout(draftTimer);
  draftTimer = setTimeout(() => endDraft(false), CONFIG.keep_last_seconds * 1000);
}

function fillDraft(d) {
  if (!d.key_offered && staffTyping()) { holdDraft(d); return; }
  endDraft(true);
  showNotice((d.messages || [])[0]);
  if (d.key_offered) return;  // an MRZ: the chip reads by itself once the card is placed
  const f = d.fields || {};
  const values = { "m-code": f.id_number || f.card_code || "", "m-name": f.full_name || "",
    "m-dob": f.date_of_birth ? dmy(f.date_of_birth) : "" };
  for (const id of DRAFT_FIELDS) {
    $(id).value = values[id];
    markField(id, Boolean(values[id]));
  }
  // Enter confirms: on the button when every field came from the card, else in the first
  // field the card did not give (typed, then Enter).
  const missing = DRAFT_FIELDS.find((id) => !values[id]);
  (missing ? $(missing) : $("manual-submit")).focus();
  draftTimer = setTimeout(() => endDraft(true), CONFIG.keep_last_seconds * 1000);
}

function fact(dl, label, value, cls) {
  if (value === null || value === undefined || value === "") return;
  const dt = document.createElement("dt");
  dt.textContent = label;
  const dd = document.createElement("dd");
  dd.textContent = value;
  if (cls) dd.className = cls;
  dl.append(dt, dd);
}

function showError(err) {
  const box = $("error");
  if (!err) { box.hidden = true; box.textContent = ""; return; }
  box.textContent = err[lang] || err.vi || t("unknown_error");
  box.hidden = false;
}

function setStatus(status, word) {
  $("result").dataset.status = status;
  $("status-word").textContent = word;
  $("status-word").dataset.i18n = ["eligible", "not_eligible", "needs_review", "pending", "waiting"]
    .includes(status) ? status : "waiting";
}

function setBadge(pa) {
  const badge = $("pa-badge");
  if (!pa) { badge.hidden = true; return; }
  badge.dataset.status = pa.status;
  badge.textContent = t("pa_" + pa.status) + (pa.reason && pa.status === "failed" ? ` (${pa.reason})` : "");
  badge.hidden = false;
}

function clearPhoto() {
  const img = $("photo");
  img.hidden = true;
  img.removeAttribute("src");
  photoFp = null;
}

function showPatient(fp) {  // a credential or an answer is about to fill the card
  shownFp = fp || null;
  if (photoFp !== shownFp) clearPhoto();
}

function clearResult() {
  current = null;
  shownFp = null;
  clearPhoto();
  setBadge(null);
  setStatus("empty", t("waiting"));
  $("name").textContent = "";
  $("person-line").textContent = "";
  $("facts").replaceChildren();
  $("messages").replaceChildren();
  $("meta").textContent = "";
  renderHistory(null);
}

// Visit history (dates, facilities, visit types — the terminal never receives diagnoses).
function renderHistory(h) {
  const box = $("history");
  box.hidden = !h || h.status === "off" || h.status === "none";
  if (box.hidden) return;
  const list = $("history-list");
  list.replaceChildren();
  const note = (h.messages || []).map((m) => m[lang] || m.vi).join(" ");
  $("history-note").textContent = h.status === "pending" ? t("history_pending")
    : note || (h.visits.length ? "" : t("history_none"));
  box.dataset.warn = String(h.visited_today === true);
  const today = h.today || "";  // the terminal's day (Vietnam time), not the browser's
  for (const v of h.visits || []) {
    const li = document.createElement("li");
    const day = v.admitted ? v.admitted.slice(0, 10) : "";
    li.dataset.today = String(day === today);
    const time = v.admitted ? v.admitted.slice(11, 16) : "";
    li.textContent = [dmy(day) + (time ? " " + time : ""), v.facility || "",
      (lang === "vi" ? v.reason_vi : v.reason_en) || ""].filter(Boolean).join(" · ");
    list.append(li);
  }
}

function schedulePurge() {
  clearTimeout(clearTimer);
  clearTimer = setTimeout(clearResult, CONFIG.keep_last_seconds * 1000);
}

function renderPending(cred) {
  current = null;
  showError(null);
  showPatient(cred.raw_fingerprint);
  setBadge(cred.passive_auth || null);
  setStatus("pending", t("pending"));
  $("name").textContent = cred.full_name || "";
  $("person-line").textContent = [dmy(cred.date_of_birth), cred.sex ? t(cred.sex) : ""].filter(Boolean).join(" · ");
  $("facts").replaceChildren();
  $("messages").replaceChildren();
  $("meta").textContent = "";
  renderHistory(null);
}

function render(e) {
  current = e;
  const cred = e.credential || {};
  const person = e.person || {};
  setStatus(e.status, t(e.status));
  setBadge(cred.passive_auth || null);
  showPatient(cred.raw_fingerprint);
  $("name").textContent = person.full_name || cred.full_name || "";
  const sex = person.sex || cred.sex;
  $("person-line").textContent = [
    dmy(person.date_of_birth || cred.date_of_birth), sex ? t(sex) : "",
  ].filter(Boolean).join(" · ");
  const dl = $("facts");
  dl.replaceChildren();
  fact(dl, t("card_code"), e.card_code);
  fact(dl, t("id_number"), cred.id_number);
  if (e.benefit_level) fact(dl, t("benefit"), `${e.benefit_level} — ${e.benefit_percent}%`);
  if (e.valid_from || e.valid_to) {
    let v = `${dmy(e.valid_from)} – ${dmy(e.valid_to)}`;
    if (e.days_left !== null && e.days_left !== undefined && e.days_left >= 0) {
      v += ` (${t("days_left").replace("{n}", e.days_left)})`;
    }
    fact(dl, t("validity"), v);
  }
  if (e.registered_facility) {
    const here = e.is_registered_here === true ? t("here") : e.is_registered_here === false ? t("not_here") : "";
    fact(dl, t("facility"), `${e.registered_facility}${here ? " — " + here : ""}`,
      e.is_registered_here === false ? "warn" : "");
  }
  fact(dl, t("area"), e.area_code);
  fact(dl, t("five_years"), dmy(e.five_years_date));
  if (e.new_card) fact(dl, t("new_card"), `${e.new_card.card_code || ""} (${dmy(e.new_card.valid_from)} – ${dmy(e.new_card.valid_to)})`);
  const ul = $("messages");
  ul.replaceChildren();
  for (const m of e.messages || []) {
    const li = document.createElement("li");
    li.dataset.severity = m.severity;
    li.dataset.code = m.code;
    li.textContent = m[lang] || m.vi;
    ul.append(li);
  }
  // Desk time is Vietnam time whatever the PC's zone is set to.
  const offline = $("offline");
  if (e.source === "cache" && e.data_as_of) {
    const asOf = new Date(e.data_as_of).toLocaleString(lang === "vi" ? "vi-VN" : "en-GB",
      { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", day: "2-digit", month: "2-digit", year: "numeric" });
    offline.textContent = t("offline_as_of").replace("{t}", asOf);
    offline.hidden = false;
  } else {
    offline.hidden = true;
  }
  const when = e.checked_at ? new Date(e.checked_at).toLocaleString(lang === "vi" ? "vi-VN" : "en-GB",
    { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "";
  const via = cred.reader ? ` · ${t("via_" + cred.reader)}` : (cred.kind === "chip" ? ` · ${t("via_chip")}` : "");
  $("meta").textContent = `${t("source_" + e.source)}${via} · ${t("checked_at")} ${when}`;
  schedulePurge();
}

async function post(body, url = "/api/v1/verify") {
  showError(null);
  try {
    const headers = { "Content-Type": "application/json" };
    if (CONFIG.csrf) headers["X-CSRF-Token"] = CONFIG.csrf;  // LAN-bound terminals
    const r = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
    const data = await r.json();
    if (!r.ok) { showError(data.error || null); return; }
    if (url === "/api/v1/verify") render(data);  // chip answers arrive as events
  } catch (err) {
    showError({ vi: L.vi.unknown_error, en: L.en.unknown_error });
  }
}

function showRecheck(e) {
  const box = $("recheck");
  const name = (e.person && e.person.full_name) || (e.credential && e.credential.full_name) || "";
  box.textContent = t("recheck").replace("{n}", name)
    .replace("{a}", t(e.recheck.previous_status)).replace("{b}", t(e.status));
  box.hidden = false;
}

function addRecent(item, atTop = true) {
  const li = document.createElement("li");
  li.dataset.status = item.status;
  const when = document.createElement("span");
  when.className = "when";
  when.textContent = item.checked_at ? new Date(item.checked_at).toLocaleTimeString("vi-VN",
    { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit" }) : "";
  const who = document.createElement("span");
  who.textContent = item.full_name || item.card_code || "—";
  const st = document.createElement("span");
  st.className = "st";
  st.dataset.i18n = item.status;
  st.textContent = t(item.status);
  li.append(when, who, st);
  const list = $("recent");
  if (atTop) list.prepend(li); else list.append(li);
  while (list.children.length > 50) list.lastChild.remove();
}

async function loadRecent() {
  try {
    const r = await fetch("/api/v1/recent");
    if (!r.ok) return;
    $("recent").replaceChildren();
    for (const item of await r.json()) addRecent(item, false);
  } catch (err) { /* the next event fills it */ }
}

function setHealth(status) {
  $("health").dataset.status = status;
  $("health-text").textContent = t(status);
}

async function refreshHealth() {
  try {
    const r = await fetch("/api/v1/health");
    const h = await r.json();
    setHealth(h.components.registry.status);
    for (const [name, id] of [["camera", "camera"], ["scanner", "scanner"], ["chip_reader", "chip-health"], ["cache", "cache-health"]]) {
      const c = h.components[name];
      if (c) { $(id).hidden = false; $(id).dataset.status = c.status; $(id).title = c.reason || ""; }
    }
  } catch (err) { setHealth("down"); }
}

function connect() {
  const es = new EventSource("/api/v1/events");
  es.onopen = () => {  // also after a daemon restart: catch up on what was missed
    $("stream").dataset.status = "ok";
    refreshHealth();
    loadRecent();
  };
  es.onerror = () => {
    $("stream").dataset.status = "down";
    // A daemon stopping mid-stream can answer with an error; the browser then closes the
    // stream for good. Open a new one, so the page comes back with the daemon.
    if (es.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
  };
  es.addEventListener("credential", (ev) => { endDraft(false); renderPending(JSON.parse(ev.data)); });
  es.addEventListener("card_text", (ev) => fillDraft(JSON.parse(ev.data)));
  es.addEventListener("eligibility", (ev) => {
    const data = JSON.parse(ev.data);
    if (data.recheck) { showRecheck(data); return; }  // a past patient: do not replace the card
    showError(null);
    render(data);
    if (data.amended) { loadRecent(); return; }  // the same patient, final word: no new row
    addRecent({ checked_at: data.checked_at, status: data.status, card_code: data.card_code,
      full_name: (data.person && data.person.full_name) || (data.credential || {}).full_name });
  });
  es.addEventListener("error", (ev) => { if (ev.data) showError(JSON.parse(ev.data)); });
  es.addEventListener("photo", (ev) => {
    const p = JSON.parse(ev.data);
    if (!p.raw_fingerprint || p.raw_fingerprint !== shownFp) return;  // another patient's
    const img = $("photo");
    img.src = `${p.url}&t=${Date.now()}`;
    img.hidden = false;
    photoFp = p.raw_fingerprint;
    setBadge(p.passive_auth);
  });
  es.addEventListener("history", (ev) => {
    const h = JSON.parse(ev.data);
    const cred = (current && current.credential) || {};
    if (current && h.raw_fingerprint === cred.raw_fingerprint) renderHistory(h);
  });
  es.addEventListener("chip", (ev) => {
    // The last word on a chip read: a possible copy (AA/CA failed) or an unfinished read
    // replaces the photo's badge, whatever identity time showed.
    const c = JSON.parse(ev.data);
    if (c.raw_fingerprint !== shownFp) return;  // a read that ended after another patient came
    if (c.verdict === "copy_suspected") setBadge({ status: "copy" });
    else if (c.verdict === "incomplete") setBadge({ status: "incomplete" });
  });
  es.addEventListener("device", (ev) => {
    const d = JSON.parse(ev.data);
    if (d.device === "registry") setHealth(d.status);
    if (d.device === "chip_reader") { $("chip-health").hidden = false; $("chip-health").dataset.status = d.status; }
    if (d.device === "camera" || d.device === "scanner") {
      $(d.device).hidden = false;
      $(d.device).dataset.status = d.status;
      $(d.device).title = d.reason || "";
    }
  });
}

function isTyping(el) {
  return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT");
}

document.addEventListener("DOMContentLoaded", async () => {
  applyLanguage();
  $("lang").addEventListener("click", () => { lang = lang === "vi" ? "en" : "vi"; applyLanguage(); });
  if (CONFIG.user) {  // a terminal that requires login: who is signed in, and a way out
    $("who").hidden = false;
    $("logout").hidden = false;
    $("logout").addEventListener("click", async () => {
      await fetch("/logout", {method: "POST", headers: {"X-CSRF-Token": CONFIG.csrf || ""}});
      location.href = "/login";
    });
  }
  $("scan-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("wedge").value;
    $("wedge").value = "";
    if (/^\d{12}\|/.test(text.trim())) lastCccdQr = text;
    if (text.trim()) post({ qr: text, reader: "keyboard" });
  });
  $("manual-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const code = $("m-code").value.replace(/\s/g, "");
    const body = { full_name: $("m-name").value, date_of_birth: $("m-dob").value,
      reader: isDraft() ? "card_image" : "manual" };
    if (/^\d{12}$/.test(code)) body.id_number = code; else body.card_code = code;
    post(body);
  });
  $("card-use").addEventListener("click", () => {  // staff chose the held card over their typing
    const d = pendingDraft;
    if (!d) return;
    for (const id of DRAFT_FIELDS) { $(id).value = ""; markField(id, false); }
    fillDraft(d);
  });
  for (const id of DRAFT_FIELDS) {  // a value staff changed is theirs, no longer as read
    $(id).addEventListener("input", () => markField(id, false));
  }
  // A keyboard-wedge scanner types wherever the focus is: send stray keystrokes to the QR field.
  document.addEventListener("keydown", (ev) => {
    if (isTyping(document.activeElement) || ev.ctrlKey || ev.altKey || ev.metaKey) return;
    if (ev.key.length === 1) { $("wedge").focus(); }
  });
  if (CONFIG.chip) $("chip-form").hidden = false;
  if (CONFIG.chip_demo) $("chip-demo").hidden = false;
  if (CONFIG.camera_demo) $("camera-demo").hidden = false;
  $("camera-demo").addEventListener("click", () => post({}, "/api/v1/camera/demo"));
  $("chip-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const doc = $("c-doc").value.trim();
    const body = doc ? { document_number: doc, date_of_birth: $("c-dob").value.trim(),
      date_of_expiry: $("c-exp").value.trim() } : (lastCccdQr ? { qr: lastCccdQr } : null);
    if (!body) { showError({ vi: L.vi.chip_hint, en: L.en.chip_hint }); return; }
    setStatus("pending", t("chip_reading"));
    post(body, "/api/v1/chip/read");
  });
  $("chip-demo").addEventListener("click", () => {
    setStatus("pending", t("chip_reading"));
    post({}, "/api/v1/chip/demo");
  });
  connect();
  loadRecent();
  refreshHealth();
  setInterval(refreshHealth, 30000);
  try {
    const r = await fetch("/api/v1/last");
    if (r.ok) render(await r.json());
  } catch (err) { /* nothing shown yet */ }
});
