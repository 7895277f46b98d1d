// Patient-facing display: large type, no controls. Its event stream carries only a status,
// a masked name and a sentence — never ID numbers, card codes, full names or photos.
"use strict";

const CONFIG = JSON.parse(document.getElementById("page-config").textContent);
const $ = (id) => document.getElementById(id);
const IDLE = {
  vi: "Đặt thẻ CCCD lên đầu đọc, hoặc đưa mã QR (CCCD, thẻ BHYT, VssID) vào camera.",
  en: "Tap your ID card on the reader, or show the QR code to the camera.",
};
const HEAD = {
  idle: ["Xin chào!", "Welcome!"], reading: ["Đang kiểm tra…", "Checking…"],
  eligible: ["Thẻ hợp lệ", "Card valid"], not_eligible: ["Chưa dùng được thẻ", "Card not usable"],
  needs_review: ["Xin chờ giây lát", "One moment please"],
};
let timer = null;

function show(status, name, vi, en, offline) {
  document.body.dataset.status = status;
  $("headline").textContent = HEAD[status][0];
  $("headline-en").textContent = HEAD[status][1];
  $("name").textContent = name || "";
  $("message").textContent = vi;
  $("message-en").textContent = en;
  $("offline").hidden = !offline;
  clearTimeout(timer);
  if (status !== "idle") timer = setTimeout(() => show("idle", "", IDLE.vi, IDLE.en, false), CONFIG.clear_seconds * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  $("facility").textContent = CONFIG.facility_name || "";
  connectStream();
});

function connectStream() {
  const es = new EventSource("/api/v1/kiosk/events");  // reconnects by itself after a restart
  es.onopen = () => { $("link").dataset.status = "ok"; };
  es.onerror = () => {
    $("link").dataset.status = "down";
    // A daemon stopping mid-stream may close the stream for good: open a new one.
    if (es.readyState === EventSource.CLOSED) setTimeout(connectStream, 2000);
  };
  es.addEventListener("reading", () => show("reading", "", "Xin vui lòng chờ trong giây lát.", "Please wait a moment.", false));
  es.addEventListener("result", (ev) => {
    const r = JSON.parse(ev.data);
    show(r.status, r.name, r.vi, r.en, r.offline);
  });
}
